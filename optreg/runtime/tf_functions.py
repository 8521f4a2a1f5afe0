"""The TensorFlow implementation of the rule language's operators and functions: one fixed
TensorFlow function for each operator and for each function of
:data:`optreg.lang.functions.FUNCTIONS` whose kind TensorFlow computes (the table is checked
against the language's when this module is imported). Nothing here evaluates user text."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import tensorflow as tf

from optreg.lang import functions
from optreg.runtime import linalg
from optreg.runtime.xla import mean, total

__all__ = ["BINARY", "COMPARE", "TF_FUNCTIONS"]

BINARY: Mapping[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "+": tf.add,
    "-": tf.subtract,
    "*": tf.multiply,
    "/": tf.divide,
    "%": tf.math.floormod,
    "**": lambda x, y: _power(x, y),
}
COMPARE: Mapping[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "<": tf.less,
    "<=": tf.less_equal,
    ">": tf.greater,
    ">=": tf.greater_equal,
    "==": tf.equal,
    "!=": tf.not_equal,
}


def _power(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``x ** y``. A tensor to a scalar power that is 0.5 when the step runs is its square root:
    XLA's ``pow`` on a CPU calls a scalar routine for every element, about 15 times slower than its
    ``sqrt`` on a 500k × 64 table (FTRL's ``accumulator ** power``, PAdam's partial power). A
    base of one element (a bias correction's ``beta ** step``, also as the bench holds a shared
    ``beta``, shaped ``[1, 1]``, or a one-element variable) and a stacked exponent keep ``pow``. The
    two differ only at bases no rule's square root sees: ``pow`` gives +inf for -inf and +0.0 for
    -0.0, ``sqrt`` NaN and -0.0."""
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    if x.shape.rank == 0 or y.shape.rank != 0 or not x.dtype.is_floating or x.dtype != y.dtype:
        return tf.pow(x, y)
    known = tf.get_static_value(y)
    if known is not None:
        return tf.sqrt(x) if float(known) == 0.5 else tf.pow(x, y)
    if x.shape.is_fully_defined() and x.shape.num_elements() == 1:
        return tf.pow(x, y)
    return tf.cond(tf.equal(y, tf.constant(0.5, y.dtype)), lambda: tf.sqrt(x), lambda: tf.pow(x, y))


def _where(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """where(cond, a, b) with a numeric condition meaning 'non-zero'."""
    return tf.where(_as_bool(cond), a, b)


def _as_bool(value: tf.Tensor) -> tf.Tensor:
    """A boolean tensor from a comparison or a number (non-zero is true)."""
    if value.dtype == tf.bool:
        return value
    return tf.not_equal(value, tf.zeros([], value.dtype))


def _transpose(x: tf.Tensor) -> tf.Tensor:
    """The last two axes swapped; tensors of rank < 2 unchanged."""
    rank = x.shape.rank
    if rank < 2:
        return x
    return tf.transpose(x, [*range(rank - 2), rank - 1, rank - 2])


def _over(reduce: Callable[..., tf.Tensor], axis: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """A reduction over one axis, kept as a size-1 axis."""
    return lambda x: reduce(x, axis=axis, keepdims=True)


def _per_channel(reduce: Callable[..., tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    """A reduction over every axis but the last, each kept as a size-1 axis: one number per
    output channel of a kernel (a vector or a scalar is returned unreduced)."""

    def reduced(x: tf.Tensor) -> tf.Tensor:
        return reduce(x, axis=list(range(x.shape.rank - 1)), keepdims=True) if x.shape.rank >= 2 else x

    return reduced


def _norm(x: tf.Tensor, axis: int | list[int] | None = None, keepdims: bool = False) -> tf.Tensor:
    """The L2 norm over some axes (every axis when None, summed by :func:`~optreg.runtime.xla.total`)."""
    if axis is None and not keepdims:
        return tf.sqrt(total(tf.square(x)))
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims))


def _channel_norm(x: tf.Tensor) -> tf.Tensor:
    """The L2 norm per output channel; for a vector or scalar, its absolute value."""
    return _per_channel(_norm)(x) if x.shape.rank >= 2 else tf.abs(x)


#: The TensorFlow implementation of every function of :data:`optreg.lang.functions.FUNCTIONS` whose kind
#: TensorFlow computes (:data:`optreg.lang.functions.TENSORFLOW_COMPUTED`): one each, keyed by name. The
#: facts (shape, variable, creation) are answered without TensorFlow: from static shapes, from the
#: variable's name, and when the optimizer is created.
TF_FUNCTIONS: Mapping[str, Callable[..., tf.Tensor]] = {
    "sqrt": tf.sqrt,
    "rsqrt": tf.math.rsqrt,
    "square": tf.square,
    "abs": tf.abs,
    "sign": tf.sign,
    "exp": tf.exp,
    "log": tf.math.log,
    "tanh": tf.tanh,
    "maximum": tf.maximum,
    "minimum": tf.minimum,
    "clip": lambda x, lo, hi: tf.minimum(tf.maximum(x, lo), hi),
    "where": _where,
    "given": lambda x: tf.cast(tf.logical_not(tf.math.is_nan(x)), x.dtype),
    "sum": total,
    "mean": mean,
    "norm": _norm,
    "max_abs": lambda x: tf.reduce_max(tf.abs(x)),
    "row_mean": _over(tf.reduce_mean, -1),
    "col_mean": _over(tf.reduce_mean, -2),
    "row_max": _over(tf.reduce_max, -1),
    "col_max": _over(tf.reduce_max, -2),
    "channel_sum": _per_channel(tf.reduce_sum),
    "channel_mean": _per_channel(tf.reduce_mean),
    "channel_norm": _channel_norm,
    "channel_max": _per_channel(tf.reduce_max),
    "matmul": tf.linalg.matmul,
    "transpose": _transpose,
    "eye_like": linalg.eye_like,
    "inverse_root": linalg.inverse_root,
    "eigvecs": linalg.eigvecs,
}
if set(TF_FUNCTIONS) != functions.TENSORFLOW_COMPUTED:  # pragma: no cover - a table edited on one side only
    raise ImportError(
        f"TF_FUNCTIONS and the function table disagree on {sorted(set(TF_FUNCTIONS) ^ functions.TENSORFLOW_COMPUTED)}"
    )
