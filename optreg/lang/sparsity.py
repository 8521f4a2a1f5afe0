"""Which update rules can take a sparse gradient, decided from the rule itself (no TensorFlow).

A sparse gradient (an embedding's ``tf.IndexedSlices``) is zero on every row a batch did not
touch. Two questions decide what an optimizer may do with it:

* **row-local**: every element of the new variable and slots depends only on the same
  element of the inputs, so a rule can run on the gathered touched rows alone. Only
  element-wise functions, ``where`` and the variable facts (one number per variable) qualify;
  a reduction over the variable (``sum``, ``mean``, ``norm``, ``row_mean``, …), a shape fact
  (the gathered rows have another shape) or a matrix operation does not, nor does a slot not
  shaped like the variable.
* **exact**: row-local, and a row whose gradient is zero keeps its variable and every slot.
  The rule is folded with ``grad = 0`` line by line (locals carried forward); every
  assignment of ``var`` and of each slot must reduce to that name itself. Folding uses
  ``0 * x = 0`` and ``0 / x = 0``, so it assumes the values a zero gradient is multiplied by or
  divided by are finite and non-zero (Keras's sparse updates assume the same). A decaying
  slot (``m = beta * m + …``), a read of ``step`` or of a hyperparameter that is not multiplied
  by the gradient, or a weight-decay term makes a rule not exact.

For an exact rule, updating only the touched rows gives the dense update's result. Any
row-local rule may also update only the touched rows when asked (``sparse_updates="lazy"``):
that is a different algorithm (TensorFlow Addons' LazyAdam), whose untouched rows' slots do
not decay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from optreg.lang.fold import finite_constant, static_value
from optreg.lang.functions import FUNCTIONS
from optreg.lang.tree import Assignment, Binary, Call, Compare, Const, Node, Ref, Unary, functions_in, map_children

__all__ = ["ROW_LOCAL_KINDS", "SparseSupport", "sparse_support", "zero_gradient_fold"]

#: The function kinds a row-local rule may call.
ROW_LOCAL_KINDS = frozenset({"elementwise", "select", "variable_fact", "creation_fact"})


#: How a blocking function kind reads in :meth:`SparseSupport.describe`.
_KIND_PHRASES = {
    "reduction": "a reduction over the whole variable",
    "axis_reduction": "a reduction along an axis",
    "matrix": "a matrix operation",
    "shape_fact": "a fact about the shape, which the gathered rows do not share",
    "random": "random numbers, which the gathered rows would not draw as the whole variable does",
}


@attrs.frozen
class SparseSupport:
    """What a rule can do with a sparse gradient.

    Attributes:
        row_local: the rule can run on the touched rows alone (lazy updates are possible).
        exact: row-local, and a zero-gradient row keeps its variable and slots, so updating
            only the touched rows gives the dense result.
        blocker: why the rule is not row-local (a function it calls, or a slot's shape), or
            why it is not exact (the first target a zero gradient changes); empty when exact.
        touched_rows: not exact, yet an embedding table's update changes only its touched rows
            and slots much smaller than it (:mod:`optreg.spec.touched_rows`), so the rule runs
            on the touched rows with its reductions taking the rest in.

    Example:
        >>> print(SparseSupport(row_local=True, exact=False, blocker="slot 'm' changes").describe())
        lazy only (slot 'm' changes when its row's gradient is zero)
    """

    row_local: bool
    exact: bool
    blocker: str = ""
    touched_rows: bool = False

    def describe(self) -> str:
        """One phrase for ``optreg show``: exact, on touched rows, lazy only (and why), or dense (and why)."""
        if self.exact:
            return "exact (only the touched rows change; the same result as the dense update)"
        if self.touched_rows:
            return (
                "touched rows (only a table's touched rows change; its reductions and row statistics count the "
                "untouched rows as the dense update does, so the result is the dense one up to rounding)"
            )
        if self.row_local:
            return f"lazy only ({self.blocker} when its row's gradient is zero)"
        return f"dense (the rule {self.blocker})"


def sparse_support(assignments: Iterable[Assignment], slot_shapes: Mapping[str, str]) -> SparseSupport:
    """Decide whether a (specialised) rule is row-local and whether it is exact-sparse.

    Args:
        assignments: the rule's lines, in order, after specialisation (fixed hyperparameters
            folded, absent slots pruned).
        slot_shapes: every present slot's name → its shape kind (``"var"``, ``"rows"``, …).

    Returns:
        A :class:`SparseSupport`.

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> adagrad = [parse_assignment("acc = acc + square(grad)"),
        ...            parse_assignment("var = var - lr * grad / sqrt(acc + eps)")]
        >>> sparse_support(adagrad, {"acc": "var"}).exact
        True
        >>> momentum = [parse_assignment("m = beta * m + grad"), parse_assignment("var = var - lr * m")]
        >>> sparse_support(momentum, {"m": "var"})
        SparseSupport(row_local=True, exact=False, blocker="slot 'm' changes", touched_rows=False)
    """
    lines = tuple(assignments)
    blocker = _row_local_blocker(lines, slot_shapes)
    if blocker:
        return SparseSupport(row_local=False, exact=False, blocker=blocker)
    changed = _changed_by_zero_gradient(lines, slot_shapes)
    if changed:
        return SparseSupport(row_local=True, exact=False, blocker=changed)
    return SparseSupport(row_local=True, exact=True)


def _row_local_blocker(lines: tuple[Assignment, ...], slot_shapes: Mapping[str, str]) -> str:
    """Why the rule cannot run on gathered rows, or ``""``."""
    for name, kind in slot_shapes.items():
        if kind != "var":
            return f"keeps slot {name!r} of shape {kind!r}, not one value per element"
    for line in lines:
        for function in sorted(functions_in(line.expression)):
            kind = FUNCTIONS[function].kind if function in FUNCTIONS else "unknown"
            if kind not in ROW_LOCAL_KINDS:
                return f"calls {function} ({_KIND_PHRASES.get(kind, 'not element-wise')})"
    return ""


def _changed_by_zero_gradient(lines: tuple[Assignment, ...], slot_shapes: Mapping[str, str]) -> str:
    """The first of ``var`` and the slots a zero gradient changes (as a phrase), or ``""``."""
    env: dict[str, Node] = {"grad": Const(0.0)}
    for line in lines:
        value = zero_gradient_fold(line.expression, env)
        if line.target == "var" or line.target in slot_shapes:
            if value != Ref(line.target):
                return "var changes" if line.target == "var" else f"slot {line.target!r} changes"
        else:
            env[line.target] = value
    return ""


def zero_gradient_fold(node: Node, env: Mapping[str, Node]) -> Node:
    """An expression with names replaced from ``env`` (``grad`` by 0), simplified where a zero
    decides the result: ``x + 0``, ``x - 0``, ``x * 1`` and ``x / 1`` are ``x``; ``0 * x``,
    ``0 / x``, ``0 ** c`` (c > 0) and ``x - x`` are 0; constant calls are computed; a ``where``
    with a decided condition or equal branches is its branch.

    Args:
        node: an expression.
        env: name → what it stands for.

    Returns:
        The simplified expression.

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> zero_gradient_fold(parse_expression("var - lr * sign(grad)"), {"grad": Const(0.0)})
        Ref(name='var')
    """
    if isinstance(node, Ref):
        return env.get(node.name, node)
    folded = map_children(node, lambda child: zero_gradient_fold(child, env))
    return _simplify(folded)


def _is(node: Node, value: float) -> bool:
    """True when a node is the literal ``value``."""
    return isinstance(node, Const) and node.value == value


def _simplify(node: Node) -> Node:
    """One node simplified, its children already simplified."""
    if isinstance(node, Unary):
        if _is(node.operand, 0.0) or node.op == "+":
            return node.operand
        return node
    if isinstance(node, Binary):
        return _simplify_binary(node)
    if isinstance(node, Compare):
        decided = static_value(node)
        return node if decided is None else Const(float(decided))
    if isinstance(node, Call):
        if node.function == "where":
            decided = static_value(node.args[0])
            if decided is not None:
                return node.args[1] if decided else node.args[2]
            return node.args[1] if node.args[1] == node.args[2] else node
        if all(isinstance(arg, Const) for arg in node.args) and FUNCTIONS[node.function].kind == "elementwise":
            value = finite_constant(node)
            return node if value is None else Const(value)
    return node


def _simplify_binary(node: Binary) -> Node:
    """``a OP b`` simplified where a zero or a one decides it."""
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Const) and isinstance(right, Const):
        value = finite_constant(node)
        return node if value is None else Const(value)
    if op == "+":
        return right if _is(left, 0.0) else left if _is(right, 0.0) else node
    if op == "-":
        if _is(right, 0.0):
            return left
        if left == right:
            return Const(0.0)
        return Unary("-", right) if _is(left, 0.0) else node
    if op == "*":
        if _is(left, 0.0) or _is(right, 0.0):
            return Const(0.0)
        return right if _is(left, 1.0) else left if _is(right, 1.0) else node
    if op == "/":
        return Const(0.0) if _is(left, 0.0) else left if _is(right, 1.0) else node
    if op == "**" and _is(left, 0.0) and isinstance(right, Const) and right.value > 0:
        return Const(0.0)
    return node
