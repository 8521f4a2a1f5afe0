"""Evaluating a rule's tree to TensorFlow tensors, node by node, with the fixed functions of
:mod:`optreg.runtime.tf_functions`: what :class:`~optreg.runtime.compile.CompiledRule` runs for
its step program and its variable program. A ``where`` whose condition is known when traced
builds only its branch; ``repeat`` is unrolled; shape and variable facts are answered from
static shapes and the variable's facts, never from user text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import tensorflow as tf

from optreg.lang import fold, functions, tree
from optreg.runtime.noise import draw
from optreg.runtime.rule_errors import applied
from optreg.runtime.tf_functions import BINARY, COMPARE, TF_FUNCTIONS
from optreg.spec.variable_slots import fact_values

__all__ = ["Hoisted", "Noise", "Trace", "evaluate", "static"]


@attrs.frozen
class Hoisted:
    """A reference to the k-th result of the step program."""

    index: int


def _shape_facts(x: tf.Tensor) -> dict[str, int]:
    """rank, size, rows and cols of a tensor whose shape is known when the rule is traced."""
    dims = x.shape.as_list()
    if None in dims:
        raise ValueError(f"shape facts need a static shape, got {dims}")
    return fact_values(dims)


@attrs.define
class Noise:
    """What a variable's draws are keyed by: the step's key, the variable's index, and how many
    random calls have been built so far."""

    key: tf.Tensor
    index: int | tf.Tensor
    calls: int = 0


@attrs.define
class Trace:
    """What evaluating a rule's tree needs: the values of names, a literal maker, the step
    program's results (and their expressions), the variable facts, and the locals whose value
    was known when traced."""

    env: dict[str, tf.Tensor]
    constant: Callable[[float], tf.Tensor]
    scalars: Sequence[tf.Tensor] = ()
    hoisted: Sequence[tree.Node] = ()
    facts: Mapping[str, bool] = attrs.field(factory=dict)
    known: dict[str, float | bool] = attrs.field(factory=dict)
    #: Inside a repeat's body: each sub-expression's tensor, built once per pass.
    memo: dict[tree.Node, tf.Tensor] | None = None
    #: The key of the variable's random numbers (None in the step program).
    noise: Noise | None = None
    #: The whole static shapes of the names whose value is not a tensor of that shape (a sparse
    #: gradient kept as its touched rows, :mod:`optreg.runtime.rule_rows`): their shape facts.
    shapes: dict[str, tuple[int, ...]] = attrs.field(factory=dict)


def evaluate(node: tree.Node | Hoisted, trace: Trace) -> tf.Tensor:
    """Evaluate a tree to a tensor, node by node, with fixed TensorFlow functions.

    A ``where`` whose condition is known when traced (from literals, shape and variable facts,
    and locals computed from them) builds only the branch it takes; ``trace.hoisted`` holds
    the step program's expressions, so literals moved there still count as known.
    """
    if isinstance(node, tree.Call) and node.function == "where":
        decided = static(node.args[0], trace)
        if decided is not None:
            return evaluate(node.args[1] if decided else node.args[2], trace)
    if isinstance(node, tree.Call) and node.function in functions.ITERATIONS:
        return _repeat(node, trace)
    if isinstance(node, tree.Call) and node.function in functions.TRACE_FACTS:
        fact = static(node, trace)
        assert fact is not None  # a trace fact is always known when traced
        return trace.constant(float(fact))
    if isinstance(node, Hoisted):
        return trace.scalars[node.index]
    if isinstance(node, tree.Const):
        return trace.constant(node.value)
    if isinstance(node, tree.Ref):
        return trace.env[node.name]
    if isinstance(node, tree.Unary):
        operand = evaluate(node.operand, trace)
        return tf.negative(operand) if node.op == "-" else operand
    assert isinstance(node, (tree.Binary, tree.Compare, tree.Call))
    if trace.memo is not None and isinstance(node, (tree.Binary, tree.Call)):
        if node not in trace.memo:
            trace.memo[node] = _build(node, trace)
        return trace.memo[node]
    return _build(node, trace)


def _build(node: tree.Binary | tree.Compare | tree.Call, trace: Trace) -> tf.Tensor:
    """An operator or function node's tensor, from its operands' (see :func:`evaluate`)."""
    if isinstance(node, tree.Binary):
        return applied(node, BINARY[node.op], evaluate(node.left, trace), evaluate(node.right, trace))
    if isinstance(node, tree.Compare):
        return applied(node, COMPARE[node.op], evaluate(node.left, trace), evaluate(node.right, trace))
    args = [evaluate(arg, trace) for arg in node.args]
    if node.function in functions.RANDOM:
        return applied(node, _next_draw(node.function, trace), *args)
    return applied(node, TF_FUNCTIONS[node.function], *args)


def _next_draw(function: str, trace: Trace) -> Callable[[tf.Tensor], tf.Tensor]:
    """The next random call's draw, shaped like its argument: each call built (every pass of a
    ``repeat`` too) takes the next place in the variable's key."""
    noise = trace.noise
    assert noise is not None  # draws are never hoisted into the step program
    call, noise.calls = noise.calls, noise.calls + 1
    return lambda like: draw(function, like, noise.key, noise.index, call)


def _repeat(node: tree.Call, trace: Trace) -> tf.Tensor:
    """``repeat(count, start, body)`` unrolled: the body built ``count`` times, each reading the
    previous value as :data:`optreg.lang.functions.REPEATED`. The count is known when traced (a
    literal, or a fixed hyperparameter folded in when the optimizer was created)."""
    count = static(node.args[0], trace)
    if count is None or not float(count).is_integer() or not 0 <= count <= functions.MAX_REPEAT:
        raise ValueError(f"repeat's count must be a whole number from 0 to {functions.MAX_REPEAT} known when traced")
    value = evaluate(node.args[1], trace)
    outer = trace.env.get(functions.REPEATED)
    for _ in range(int(count)):
        trace.env[functions.REPEATED] = value
        trace.memo = {}  # a sub-expression written twice in the body is built once per pass
        value = evaluate(node.args[2], trace)
    trace.memo = None
    if outer is None:
        trace.env.pop(functions.REPEATED, None)
    else:
        trace.env[functions.REPEATED] = outer
    return value


def static(node: tree.Node | Hoisted, trace: Trace) -> float | bool | None:
    """The value of an expression of literals, facts and known locals when traced, or None."""
    if isinstance(node, Hoisted):
        return fold.static_value(trace.hoisted[node.index]) if trace.hoisted else None
    if isinstance(node, tree.Call) and node.function in functions.VARIABLE_FACTS:
        return bool(trace.facts.get(node.function, node.function == "decayed"))
    if isinstance(node, tree.Call) and node.function in functions.SHAPE_FACTS:
        argument = node.args[0]
        if isinstance(argument, tree.Ref) and argument.name in trace.shapes:
            return fact_values(trace.shapes[argument.name])[node.function]
        return _shape_facts(evaluate(argument, trace))[node.function]
    if isinstance(node, tree.Ref):
        return trace.known.get(node.name)
    if isinstance(node, tree.Const):
        return node.value
    if isinstance(node, tree.Call) and node.function == "where":
        decided = static(node.args[0], trace)
        return None if decided is None else static(node.args[1] if decided else node.args[2], trace)
    if not isinstance(node, (tree.Unary, tree.Binary, tree.Compare)):
        return None
    values = [static(part, trace) for part in tree.children(node)]
    known = [value for value in values if value is not None]
    if len(known) < len(values):
        return None
    return fold.static_value(_rebuild_with_constants(node, known))


def _rebuild_with_constants(node: tree.Unary | tree.Binary | tree.Compare, values: Sequence[float | bool]) -> tree.Node:
    """The node with its operands replaced by literals, for :func:`optreg.lang.fold.static_value`."""
    constants = [tree.Const(float(value)) for value in values]
    if isinstance(node, tree.Unary):
        return attrs.evolve(node, operand=constants[0])
    return attrs.evolve(node, left=constants[0], right=constants[1])
