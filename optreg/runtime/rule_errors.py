"""What TensorFlow raises while a rule line's ops are built, as a RuleError naming the line.

The loader finds the shape errors a rule is certain to raise (:mod:`optreg.lang.ranks`); the
others depend on the variable: ``matmul(grad, grad)`` works on a square matrix and fails on a
vector. They surface when the rule is traced for that variable, as TensorFlow's ``ValueError``
(graph building) or ``InvalidArgumentError`` (eager ops) deep inside a compiled step. The
compiler builds each rule line inside :func:`building`, which turns them into one
:class:`~optreg.errors.RuleError`: the file, the rule line, the sub-expression that failed and
TensorFlow's reason without its graph internals.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from optreg.errors import OptregError, RuleError  # noqa: F401 (RuleError: what building raises)
from optreg.lang import tree
from optreg.spec.locations import RuleLocation

#: What TensorFlow raises when ops cannot be built from their inputs.
TF_ERRORS = (ValueError, TypeError, tf.errors.OpError)
MAX_PROBLEM_CHARS = 300

_GRAPH_NODE = re.compile(r" for '\{\{node [^']*'")
_EAGER_PREFIX = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_EAGER_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\].*$", re.DOTALL)


class OpFailed(Exception):
    """One node's TensorFlow function failed; :func:`building` names the node in the RuleError.

    Args:
        node: the node whose function failed.
        problem: TensorFlow's reason, cleaned (see :func:`tf_problem`).
    """

    def __init__(self, node: tree.Node, problem: str):
        self.node = node
        self.problem = problem
        super().__init__(problem)


def applied(node: tree.Node, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, the TensorFlow function of ``node``; what TensorFlow raises becomes
    :class:`OpFailed` naming the node.

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> try:
        ...     applied(parse_expression("a + b"), tf.add, tf.ones([2]), tf.ones([3]))
        ... except OpFailed as failure:
        ...     print(tree.unparse(failure.node), "->", failure.problem)
        a + b -> Incompatible shapes: [2] vs. [3]
    """
    try:
        return function(*args)
    except TF_ERRORS as error:
        raise OpFailed(node, tf_problem(error)) from error


@contextlib.contextmanager
def building(location: RuleLocation, variable: tf.Tensor | None = None) -> Iterator[None]:
    """Build one rule line's ops; TensorFlow's errors meanwhile become its RuleError.

    Args:
        location: where the line is.
        variable: the variable being updated, whose dtype and shape the message gives.

    Raises:
        RuleError: TensorFlow could not build the line.

    Example (TensorFlow's reason is worded by the CPU's matmul kernel, hence the ellipses):
        >>> try:
        ...     with building(RuleLocation("x.toml", 1, 9, "var = var - matmul(grad, grad)")):
        ...         tf.linalg.matmul(tf.ones([2]), tf.ones([2]))
        ... except RuleError as error:
        ...     print(error)
        x.toml:9: [update] rule line 1 "var = var - matmul(grad, grad)": In[0] ...ndims must be ...
    """
    suffix = "" if variable is None else f" (for a {variable.dtype.name} variable of shape {variable.shape.as_list()})"
    try:
        yield
    except OptregError:
        raise
    except OpFailed as failure:
        raise location.error(f"{tree.unparse(failure.node)}: {failure.problem}{suffix}") from failure.__cause__
    except TF_ERRORS as error:
        raise location.error(f"{tf_problem(error)}{suffix}") from error


def tf_problem(error: Exception) -> str:
    """TensorFlow's reason for an error, on one line, without graph node definitions, eager
    function names or op tags.

    Example:
        >>> reason = "Shape must be rank 2 but is rank 1 for '{{node MatMul}} = MatMul[T=DT_FLOAT](a, b)'"
        >>> tf_problem(ValueError(reason + " with input shapes: [1], [1]."))
        'Shape must be rank 2 but is rank 1 with input shapes: [1], [1]'
    """
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    text = _EAGER_SUFFIX.sub("", _EAGER_PREFIX.sub("", _GRAPH_NODE.sub("", text)))
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def locate(assignments: Sequence[tree.Assignment], locations: Sequence[RuleLocation] = ()) -> tuple[RuleLocation, ...]:
    """Where each line of a (specialised) rule is: the spec's line with the same text (the
    same copy of it, when a line is repeated), else the line's own position in the rule.

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = [parse_assignment("var = var - grad")]
        >>> locate(lines, [RuleLocation("x.toml", 3, 12, "var = var - grad")])[0].file_line
        12
    """
    by_text: dict[str, list[RuleLocation]] = {}
    for location in locations:
        by_text.setdefault(location.text, []).append(location)
    found: list[RuleLocation] = []
    seen: dict[str, int] = {}
    for index, assignment in enumerate(assignments):
        copy = seen.get(assignment.text, 0)
        seen[assignment.text] = copy + 1
        candidates = by_text.get(assignment.text, [])
        found.append(
            candidates[copy] if copy < len(candidates) else RuleLocation("<rule>", index + 1, None, assignment.text)
        )
    return tuple(found)
