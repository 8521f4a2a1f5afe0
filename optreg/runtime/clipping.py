"""Gradient clipping, written once: pure functions of gradients and thresholds that every host
calls — :class:`~optreg.runtime.optimizer.Optimizer`'s gradient hooks and the bench's stacked
loop, whose runs lie side by side on the variables' last axis.

Every function takes the gradients of one step (a list, one tensor per variable) and
``run_axes``, which axes index runs: 0 for one optimizer's own variables (the one-run case), 1
for variables whose leading axis holds the runs (``[runs, …]``), -1 for variables whose last
axis does (``[…, runs]``, as the bench's loop holds them). Norms are taken over the other axes,
so each run is clipped on its own, and a threshold is a number, or one value per run (a tensor
of the run axes' shape) broadcast over the rest:

* :func:`clip_by_norm` (``clipnorm``): each gradient tensor rescaled to an L2 norm of at most the
  threshold (Keras's and ``tf.clip_by_norm``'s formula);
* :func:`clip_by_global_norm` (``global_clipnorm``): all of a run's gradients rescaled together
  to a joint L2 norm of at most the threshold (``tf.clip_by_global_norm``'s formula; a
  non-finite norm makes the scale NaN, as there);
* :func:`clip_by_value` (``clipvalue``): each element limited to ``[-threshold, threshold]``.

:func:`clip_gradients` applies the one a :class:`~optreg.model.option_values.GradientOptions`
sets. A sparse gradient (``tf.IndexedSlices``, only with ``run_axes=0``) is clipped by its rows'
values, as TensorFlow's functions do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from optreg.model.option_values import GradientOptions
from optreg.runtime.xla import total

__all__ = ["clip_by_global_norm", "clip_by_norm", "clip_by_value", "clip_gradients", "clipping"]

#: A clipping function: gradients, a threshold and the run axes (0, 1 or -1) → new gradients.
Clip = Callable[[Sequence[Any], Any, int], list[Any]]


def _values(grad: Any, run_axes: int) -> tf.Tensor:
    """The dense values clipping works on (a sparse gradient's rows)."""
    if isinstance(grad, tf.IndexedSlices):
        if run_axes:
            raise ValueError("a sparse gradient has no run axes")
        return grad.values
    return tf.convert_to_tensor(grad)


def _rebuilt(grad: Any, values: tf.Tensor) -> Any:
    """``values`` in the form ``grad`` had (sparse stays sparse)."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(values, grad.indices, grad.dense_shape)
    return values


def _per_run(threshold: Any, values: tf.Tensor, run_axes: int, dtype: tf.DType) -> tf.Tensor:
    """The threshold as ``dtype``, shaped to broadcast over ``values``'s non-run axes."""
    limit = tf.cast(threshold, dtype)
    if limit.shape.rank:
        if run_axes < 0:  # the runs on the last axis
            return tf.reshape(limit, [1] * (values.shape.rank - 1) + [-1])
        limit = tf.reshape(limit, tf.concat([tf.shape(limit), tf.ones([values.shape.rank - run_axes], tf.int32)], 0))
    return limit


def _norm_axes(rank: int, run_axes: int) -> list[int]:
    """The axes a run's norm is taken over: every axis but the run axes."""
    return list(range(rank - 1)) if run_axes < 0 else list(range(run_axes, rank))


def _squared_sum(values: tf.Tensor, run_axes: int, keepdims: bool = True) -> tf.Tensor:
    """The sum of squares over the non-run axes, kept as size-1 axes unless ``keepdims`` is
    False (over every axis, one optimizer's case, by :func:`~optreg.runtime.xla.total`)."""
    if run_axes == 0:
        whole = total(tf.square(values))
        return tf.reshape(whole, [1] * values.shape.rank) if keepdims else whole
    return tf.reduce_sum(tf.square(values), axis=_norm_axes(values.shape.rank, run_axes), keepdims=keepdims)


def clip_by_norm(grads: Sequence[Any], threshold: Any, run_axes: int = 0) -> list[Any]:
    """Each gradient tensor rescaled, per run, to an L2 norm of at most ``threshold``.

    Args:
        grads: one gradient per variable.
        threshold: a positive number, or one per run (shape of the run axes).
        run_axes: which axes index runs: 0 (the gradients of one optimizer), 1 (the leading
            axis) or -1 (the last axis).

    Returns:
        The clipped gradients, in order.

    Example:
        >>> [g.numpy().tolist() for g in clip_by_norm([tf.constant([[3.0, 4.0], [0.3, 0.4]])], [1.0, 2.0], 1)]
        [[[0.6000000238418579, 0.800000011920929], [0.30000001192092896, 0.4000000059604645]]]
    """
    clipped = []
    for grad in grads:
        values = _values(grad, run_axes)
        limit = _per_run(threshold, values, run_axes, values.dtype)
        squared = _squared_sum(values, run_axes)
        positive = squared > 0
        norm = tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))), squared)
        clipped.append(_rebuilt(grad, values * limit / tf.maximum(norm, limit)))
    return clipped


def clip_by_global_norm(grads: Sequence[Any], threshold: Any, run_axes: int = 0) -> list[Any]:
    """All of a run's gradients rescaled together to a joint L2 norm of at most ``threshold``.

    The joint norm of a run is over every one of its variables; it is computed in float64 when
    a gradient is float64, in float32 otherwise.

    Args:
        grads: one gradient per variable.
        threshold: a positive number, or one per run (shape of the run axes).
        run_axes: which axes index runs: 0 (the gradients of one optimizer), 1 (the leading
            axis) or -1 (the last axis).

    Returns:
        The clipped gradients, in order.

    Example:
        >>> [g.numpy().tolist() for g in clip_by_global_norm([tf.constant([3.0]), tf.constant([4.0])], 1.0)]
        [[0.6000000238418579], [0.800000011920929]]
    """
    values = [_values(grad, run_axes) for grad in grads]
    if not values:
        return []
    dtype = tf.float64 if any(v.dtype == tf.float64 for v in values) else tf.float32
    # one sum of squares per run, over every variable's non-run axes
    sums = [_squared_sum(v, run_axes, keepdims=False) for v in values]
    squared = tf.add_n([tf.cast(s, dtype) for s in sums])
    norm = tf.sqrt(squared)
    limit = tf.cast(threshold, dtype)
    scale = limit * tf.minimum(1.0 / norm, 1.0 / limit)
    scale = scale + (norm - norm)  # a non-finite norm makes the scale NaN
    clipped = []
    for grad, v in zip(grads, values):
        clipped.append(_rebuilt(grad, v * _per_run(scale, v, run_axes, v.dtype)))
    return clipped


def clip_by_value(grads: Sequence[Any], threshold: Any, run_axes: int = 0) -> list[Any]:
    """Every gradient element limited, per run, to ``[-threshold, threshold]``.

    Args:
        grads: one gradient per variable.
        threshold: a positive number, or one per run (shape of the run axes).
        run_axes: which axes index runs: 0 (the gradients of one optimizer), 1 (the leading
            axis) or -1 (the last axis).

    Returns:
        The clipped gradients, in order.

    Example:
        >>> clip_by_value([tf.constant([[-3.0, 0.5], [-3.0, 0.5]])], [1.0, 0.25], 1)[0].numpy().tolist()
        [[-1.0, 0.5], [-0.25, 0.25]]
    """
    clipped = []
    for grad in grads:
        values = _values(grad, run_axes)
        limit = _per_run(threshold, values, run_axes, values.dtype)
        clipped.append(_rebuilt(grad, tf.clip_by_value(values, -limit, limit)))
    return clipped


_CLIPS: dict[str, Clip] = {
    "clipnorm": clip_by_norm,
    "global_clipnorm": clip_by_global_norm,
    "clipvalue": clip_by_value,
}


def clipping(options: GradientOptions) -> tuple[Clip, float] | None:
    """The clipping function the options choose and its threshold, or None for no clipping.

    Example:
        >>> clip, threshold = clipping(GradientOptions(global_clipnorm=2.0))
        >>> clip.__name__, threshold
        ('clip_by_global_norm', 2.0)
    """
    for name, clip in _CLIPS.items():
        threshold = getattr(options, name)
        if threshold is not None:
            return clip, threshold
    return None


def clip_gradients(options: GradientOptions, grads: Sequence[Any], run_axes: int = 0) -> list[Any]:
    """The gradients clipped as the options say (unchanged when they set no clipping).

    Args:
        options: the validated gradient options (at most one clipping option is set).
        grads: one gradient per variable.
        run_axes: which axes index runs: 0 (the gradients of one optimizer), 1 (the leading
            axis) or -1 (the last axis).

    Returns:
        The gradients, in order.

    Example:
        >>> clip_gradients(GradientOptions(clipvalue=0.5), [tf.constant([2.0, -0.1])])[0].numpy().tolist()
        [0.5, -0.10000000149011612]
    """
    chosen = clipping(options)
    if chosen is None:
        return list(grads)
    clip, threshold = chosen
    return clip(grads, threshold, run_axes)
