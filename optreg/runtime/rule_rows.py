"""Evaluating a rule on a sparse gradient's touched rows, reductions included.

For a variable :mod:`optreg.spec.touched_rows` admits, the variable program runs on values of the
variable's shape kept in two parts (:class:`Split`): the touched rows, computed as usual from the
gathered rows of every tensor they meet, and one value that every untouched row holds, computed
once (for the gradient it is zero, and ``0 * x``, ``0 / x``, ``x - 0`` fold away, so the untouched
rows of ``var - lr * update`` are ``var`` itself). A reduction along axes that keep the rows axis
keeps both parts; one across the rows combines the distinct touched rows with the untouched rows'
value counted as often as there are untouched rows. A value that fits neither (a result of
higher rank) is made whole: its untouched value broadcast, its touched rows scattered in.

Tensors reading no split value are evaluated by :func:`optreg.runtime.rule_eval.evaluate`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import tensorflow as tf

from optreg.lang import functions, tree
from optreg.runtime.rule_errors import applied
from optreg.runtime.rule_eval import Hoisted, Trace, evaluate, static
from optreg.runtime.tf_functions import BINARY, COMPARE, TF_FUNCTIONS

__all__ = ["Rows", "Split", "TouchedRows", "evaluate_rows", "materialised"]

#: The element-wise functions whose value at zero is zero (exactly, in every float dtype).
_ZERO_AT_ZERO = frozenset({"sqrt", "square", "abs", "sign", "tanh"})

#: The reductions that take the largest element (the others sum).
_MAXIMA = frozenset({"max_abs", "row_max", "col_max", "channel_max"})

#: The reductions that divide their sum by the number of elements summed.
_MEANS = frozenset({"mean", "row_mean", "col_mean", "channel_mean"})


@attrs.frozen
class Split:
    """A value of a variable's shape kept as its touched rows and what every untouched row holds.

    Attributes:
        rows: the touched rows, ``[n, *shape[1:]]`` (a padding entry repeats the first row).
        rest: the untouched rows' value, broadcastable to ``shape``; None when it is zero.
        shape: the whole value's static shape (its first axis the table's rows).
    """

    rows: tf.Tensor
    rest: tf.Tensor | None
    shape: tuple[int, ...]


@attrs.frozen
class Rows:
    """The new values of a target's touched rows; its other rows keep theirs."""

    values: tf.Tensor


@attrs.frozen
class TouchedRows:
    """Where a sparse gradient's rows sit in its table.

    Attributes:
        indices: each entry's row, ``[n]`` (summed: each row once, then padding at the first row).
        distinct: ``[n]`` bools, False at the padding entries.
        table_rows: the table's number of rows.
    """

    indices: tf.Tensor
    distinct: tf.Tensor
    table_rows: int

    @classmethod
    def of(cls, grad: tf.IndexedSlices, table_rows: int) -> tuple[TouchedRows, tf.Tensor]:
        """The rows of a summed sparse gradient (:func:`optreg.runtime.sparse.summed_rows`), and its
        values with each padding entry given the first entry's, so every entry of a row computes
        the same values.

        Example:
            >>> g = tf.IndexedSlices(tf.constant([[2.0], [0.0]]), tf.constant([3, 3]), tf.constant([5, 1]))
            >>> touched, values = TouchedRows.of(g, 5)
            >>> touched.distinct.numpy(), values.numpy()[:, 0]
            (array([ True, False]), array([2., 2.], dtype=float32))
        """
        indices = grad.indices
        positions = tf.range(tf.size(indices, out_type=indices.dtype))
        padding = tf.logical_and(tf.equal(indices, indices[0]), positions > 0)
        shaped = tf.reshape(padding, [-1] + [1] * (grad.values.shape.rank - 1))
        values = tf.where(shaped, grad.values[:1], grad.values)
        return cls(indices, tf.logical_not(padding), table_rows), values

    def untouched(self, dtype: tf.DType) -> tf.Tensor:
        """How many rows of the table the gradient does not touch, as a ``dtype`` scalar."""
        touched = tf.reduce_sum(tf.cast(self.distinct, dtype))
        return tf.constant(float(self.table_rows), dtype) - touched


def evaluate_rows(node: tree.Node | Hoisted, trace: Trace, touched: TouchedRows) -> tf.Tensor | Split:
    """Evaluate a tree whose names may hold :class:`Split` values (the gradient does).

    Args:
        node: the expression.
        trace: the names' values (tensors or splits); ``trace.shapes`` holds each split name's shape.
        touched: the gradient's rows.

    Returns:
        A tensor, or a :class:`Split` when the value varies with the touched rows.
    """
    if not tree.names_in(node) & trace.shapes.keys():  # type: ignore[arg-type]
        return evaluate(node, trace)
    if isinstance(node, tree.Ref):
        return trace.env[node.name]
    if isinstance(node, tree.Call) and node.function == "where":
        decided = static(node.args[0], trace)
        if decided is not None:
            return evaluate_rows(node.args[1] if decided else node.args[2], trace, touched)
    if isinstance(node, tree.Call) and node.function in functions.TRACE_FACTS:
        fact = static(node, trace)
        assert fact is not None  # a shape fact of a name, answered from trace.shapes
        return trace.constant(float(fact))
    parts = [evaluate_rows(child, trace, touched) for child in tree.children(node)]  # type: ignore[arg-type]
    if isinstance(node, tree.Unary):
        return parts[0] if node.op == "+" else _negated(parts[0])
    if isinstance(node, tree.Binary):
        return _elementwise(node, BINARY[node.op], parts, trace, touched)
    if isinstance(node, tree.Compare):
        return _elementwise(node, COMPARE[node.op], parts, trace, touched)
    assert isinstance(node, tree.Call)
    if functions.FUNCTIONS[node.function].kind in ("reduction", "axis_reduction"):
        return _reduced(node, parts[0], trace, touched)
    return _elementwise(node, TF_FUNCTIONS[node.function], parts, trace, touched)


def materialised(value: tf.Tensor | Split, touched: TouchedRows) -> tf.Tensor:
    """A value as one tensor: a split's untouched value broadcast, its touched rows scattered in.

    Example:
        >>> touched = TouchedRows(tf.constant([1]), tf.constant([True]), 3)
        >>> materialised(Split(tf.constant([[5.0]]), None, (3, 1)), touched).numpy()[:, 0]
        array([0., 5., 0.], dtype=float32)
    """
    if not isinstance(value, Split):
        return value
    rest = tf.zeros([], value.rows.dtype) if value.rest is None else tf.cast(value.rest, value.rows.dtype)
    return tf.tensor_scatter_nd_update(tf.broadcast_to(rest, value.shape), touched.indices[:, None], value.rows)


def _negated(value: tf.Tensor | Split) -> tf.Tensor | Split:
    """``-value``."""
    if not isinstance(value, Split):
        return tf.negative(value)
    return Split(tf.negative(value.rows), None if value.rest is None else tf.negative(value.rest), value.shape)


def _shape(value: tf.Tensor | Split) -> tuple[int, ...]:
    """A value's whole static shape."""
    return value.shape if isinstance(value, Split) else tuple(value.shape.as_list())


def _elementwise(
    node: tree.Node, function: Callable[..., Any], parts: Sequence[tf.Tensor | Split], trace: Trace,
    touched: TouchedRows,
) -> tf.Tensor | Split:
    """An element-wise operation: on the touched rows (every tensor's rows gathered) and on the
    untouched value; made whole when the result's rank exceeds a split operand's."""
    if not any(isinstance(p, Split) for p in parts):  # a reduction across the rows made them whole
        return applied(node, function, *parts)
    shape = tuple(functools.reduce(tf.broadcast_static_shape, (tf.TensorShape(_shape(p)) for p in parts)).as_list())
    rank = len(shape)
    if any(isinstance(p, Split) and len(p.shape) != rank for p in parts):
        return applied(node, function, *(materialised(p, touched) for p in parts))
    rows = applied(node, function, *(_rows_of(p, rank, touched) for p in parts))
    rest = _untouched_value(node, function, [p.rest if isinstance(p, Split) else p for p in parts], trace)
    return Split(rows, rest, shape)


def _rows_of(value: tf.Tensor | Split, rank: int, touched: TouchedRows) -> tf.Tensor:
    """What an operand contributes to the touched rows: a split's rows, a tensor's rows gathered
    (a tensor broadcast along the rows axis as it is)."""
    if isinstance(value, Split):
        return value.rows
    if value.shape.rank == rank and value.shape[0] != 1:
        return tf.gather(value, touched.indices)
    return value


def _untouched_value(
    node: tree.Node, function: Callable[..., Any], rests: Sequence[tf.Tensor | None], trace: Trace
) -> tf.Tensor | None:
    """An operation on the untouched rows' values (None: zero), where a zero decides it without
    an op: ``x + 0``, ``x - 0``, ``0 * x``, ``0 / x``, ``f(0)`` for f zero at zero, a ``where``
    on a zero condition. The same operand object comes back where the result is it, so an
    unchanged variable is recognised."""
    if isinstance(node, tree.Binary):
        a, b = rests
        if node.op in "+-" and b is None:
            return a
        if node.op == "+" and a is None:
            return b
        if node.op == "-" and a is None:
            return tf.negative(b)
        if (node.op == "*" and (a is None or b is None)) or (node.op == "/" and a is None):
            return None
    if isinstance(node, tree.Call) and rests[0] is None:
        if node.function in _ZERO_AT_ZERO:
            return None
        if node.function == "where":
            return rests[2]
    filled = [trace.constant(0.0) if value is None else value for value in rests]
    return applied(node, function, *filled)


def _reduced(node: tree.Call, value: tf.Tensor | Split, trace: Trace, touched: TouchedRows) -> tf.Tensor | Split:
    """A reduction of a value: a split's parts reduced, combined when the reduction crosses rows."""
    function = node.function
    axes = _axes(function, len(value.shape)) if isinstance(value, Split) else None
    if axes is None:
        return applied(node, TF_FUNCTIONS[function], materialised(value, touched))
    assert isinstance(value, Split)
    if function in ("norm", "channel_norm"):
        value = Split(tf.square(value.rows), None if value.rest is None else tf.square(value.rest), value.shape)
    elif function == "max_abs":
        value = Split(tf.abs(value.rows), None if value.rest is None else tf.abs(value.rest), value.shape)
    largest = function in _MAXIMA
    total = _reduce_split(value, axes, largest, trace, touched)
    if function in _MEANS:
        count = 1
        for axis in axes:
            count *= value.shape[axis]
        total = _scaled(total, trace.constant(1.0 / count) if count else trace.constant(float("nan")))
    if function in ("norm", "channel_norm"):
        total = _scaled(total, None)
    if function in ("sum", "mean", "norm", "max_abs"):
        assert not isinstance(total, Split)
        return tf.reshape(total, [])
    return total


def _axes(function: str, rank: int) -> tuple[int, ...] | None:
    """The axes a reduction takes of a value of this rank, or None for the reductions of too low
    a rank that run as they are (a column statistic of a vector, a channel one below rank 2)."""
    if function in ("sum", "mean", "norm", "max_abs"):
        return tuple(range(rank))
    if function.startswith("row_"):
        return (rank - 1,)
    if function.startswith("col_"):
        return (rank - 2,) if rank >= 2 else None
    return tuple(range(rank - 1)) if rank >= 2 else None


def _scaled(value: tf.Tensor | Split, factor: tf.Tensor | None) -> tf.Tensor | Split:
    """``value * factor``, or ``sqrt(value)`` when ``factor`` is None."""
    def apply(x: tf.Tensor) -> tf.Tensor:
        return tf.sqrt(x) if factor is None else x * factor

    if isinstance(value, Split):
        return Split(apply(value.rows), None if value.rest is None else apply(value.rest), value.shape)
    return apply(value)


def _reduce_split(
    value: Split, axes: tuple[int, ...], largest: bool, trace: Trace, touched: TouchedRows
) -> tf.Tensor | Split:
    """The sum (or the largest element) of a split over some axes, each kept as a size-1 axis."""
    reduce = tf.reduce_max if largest else tf.reduce_sum
    if 0 not in axes:
        rows = reduce(value.rows, axis=list(axes), keepdims=True)
        rest = None if value.rest is None else _reduce_broadcast(value.rest, value.shape, axes, largest)
        return Split(rows, rest, tuple(1 if axis in axes else dim for axis, dim in enumerate(value.shape)))
    if largest:  # a padding entry repeats its row: the largest element is the same
        inside = reduce(value.rows, axis=list(axes), keepdims=True)
    else:
        mask = tf.reshape(touched.distinct, [-1] + [1] * (len(value.shape) - 1))
        inside = reduce(tf.where(mask, value.rows, tf.zeros([], value.rows.dtype)), axis=list(axes), keepdims=True)
    untouched = touched.untouched(value.rows.dtype)
    rest = value.rest
    if rest is None:
        rest = trace.constant(0.0)
    rest = tf.reshape(rest, [1] * (len(value.shape) - rest.shape.rank) + rest.shape.as_list())
    if rest.shape[0] == 1:  # the same on every untouched row
        outside = _reduce_broadcast(rest, value.shape, tuple(a for a in axes if a != 0), largest)
        if largest:
            return tf.where(untouched > 0, tf.maximum(inside, outside), inside)
        return inside + untouched * outside
    keep = tf.tensor_scatter_nd_update(
        tf.ones([value.shape[0]], tf.bool), touched.indices[:, None], tf.zeros_like(touched.indices, tf.bool)
    )
    keep = tf.reshape(keep, [-1] + [1] * (len(value.shape) - 1))
    fill = tf.constant(-float("inf") if largest else 0.0, rest.dtype)
    outside = _reduce_broadcast(tf.where(keep, rest, fill), value.shape, axes, largest)
    return tf.maximum(inside, outside) if largest else inside + outside


def _reduce_broadcast(value: tf.Tensor, shape: tuple[int, ...], axes: Sequence[int], largest: bool) -> tf.Tensor:
    """The sum (or largest element) over some axes of ``value`` broadcast to ``shape``, without
    broadcasting it: an axis it broadcasts along multiplies a sum by its length. Axes kept."""
    value = tf.reshape(value, [1] * (len(shape) - value.shape.rank) + value.shape.as_list())
    along = [axis for axis in axes if value.shape[axis] != 1]
    factor = 1
    for axis in axes:
        if value.shape[axis] == 1:
            factor *= shape[axis]
    reduce = tf.reduce_max if largest else tf.reduce_sum
    total = reduce(value, axis=along, keepdims=True) if along else value
    return total if largest or factor == 1 else total * tf.constant(float(factor), total.dtype)
