"""Sparse gradients: updating only the rows a ``tf.IndexedSlices`` gradient touches.

An embedding's gradient arrives as ``tf.IndexedSlices``: some rows of the table, perhaps
the same row several times. The ``sparse_updates`` option decides what a step does with it:

* ``"exact"`` (the default): when the rule is exact-sparse (:mod:`optreg.lang.sparsity`:
  a zero-gradient row keeps its variable and slots, as in SGD, Adagrad, signSGD), the step
  sums the duplicate rows, gathers the touched rows of the variable and its slots, runs the
  rule on them and scatters the results back: the dense update's result, without a dense
  copy of the gradient. A rule with reductions that still leaves untouched rows as they are
  (Adafactor, SM3: :mod:`optreg.spec.touched_rows`) runs on the touched rows with its
  reductions counting the untouched ones (:mod:`optreg.runtime.rule_rows`): the dense result
  up to rounding, the variable written on its touched rows, its row and column statistics
  whole. Any other rule, or variable, gets the densified gradient;
* ``"lazy"``: any row-local rule updates only the touched rows and their slots (TensorFlow
  Addons' LazyAdam): a different algorithm, whose untouched rows' slots do not decay.
  ``step`` (and so bias corrections) is the optimizer's one step counter, as in LazyAdam;
* ``"dense"``: every gradient is densified.

Around the rule, a sparse gradient keeps its rows: ``loss_scale_factor`` divides them,
``clipnorm`` and ``global_clipnorm`` measure the summed rows (the dense gradient's norm) and
``clipvalue`` clips them, ``skip_nonfinite`` looks at them. Decoupled ``weight_decay`` decays
the whole variable before the update, as Keras does for sparse gradients too. Gradient
accumulation densifies (its sums are dense).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from optreg.errors import OptionError
from optreg.lang.sparsity import SparseSupport
from optreg.runtime.rule_rows import Rows
from optreg.runtime.variables import dense_gradient
from optreg.runtime.xla import in_xla_context
from optreg.runtime.xla_rows import summed_in_xla

__all__ = [
    "SPARSE_UPDATES",
    "check_sparse_updates",
    "divided",
    "gradient_values",
    "prepared_gradients",
    "summed_rows",
    "update_rows",
    "write_touched_rows",
]

#: The values of the ``sparse_updates`` option.
SPARSE_UPDATES = ("exact", "lazy", "dense")

#: ``rows_update(grad_rows, var_rows, slot_rows)`` → target → new rows.
RowsUpdate = Callable[[tf.Tensor, tf.Tensor, Mapping[str, tf.Tensor]], Mapping[str, tf.Tensor]]


def check_sparse_updates(value: Any, name: str, support: SparseSupport | None) -> str:
    """Validate the ``sparse_updates`` option for an optimizer.

    Args:
        value: the option's value.
        name: the optimizer's name, for the error.
        support: what its rule can do with sparse gradients; None for an optimizer without a
            rule (a Python optimizer), which always densifies.

    Returns:
        The value.

    Raises:
        OptionError: not one of :data:`SPARSE_UPDATES`, or ``"lazy"`` for an optimizer whose
            rule is not row-local (the error names the reduction or slot that prevents it).

    Example:
        >>> check_sparse_updates("lazy", "lars", SparseSupport(False, False, "calls norm (a reduction)"))
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: sparse_updates='lazy' updates only the touched rows, which needs a rule \
without reductions; the rule of 'lars' calls norm (a reduction)
    """
    if value not in SPARSE_UPDATES:
        raise OptionError(f"sparse_updates must be one of {', '.join(map(repr, SPARSE_UPDATES))}, got {value!r}")
    if value == "lazy" and (support is None or not support.row_local):
        why = "has no update rule (it is a Python optimizer)" if support is None else f"{support.blocker}"
        raise OptionError(
            f"sparse_updates='lazy' updates only the touched rows, which needs a rule without reductions; "
            f"the rule of {name!r} {why}"
        )
    return str(value)


def summed_rows(grad: tf.IndexedSlices) -> tf.IndexedSlices:
    """The same gradient with each row once: the rows of a repeated index summed, in the order
    the dense conversion sums them.

    The result keeps the input's length, so its shape does not change from step to step (an
    XLA-compiled step is compiled once, not once per number of distinct rows): after the distinct
    rows come zero rows at the first row's index. Zeros leave norms, clipping and finiteness as
    they are; :func:`update_rows` gives each padding entry the first entry's gradient, so the
    first row is written the same value every time it appears.

    Traced inside an XLA computation (the caller's whole step under ``jit_compile=True``), where
    XLA's ``Unique`` is slow on a CPU, the rows are summed without it, by hashing
    (:func:`optreg.runtime.xla_rows.summed_in_xla`): the same rows and sums, each at its row's first
    entry, and zero rows at the first row's index in the other places.

    Example:
        >>> g = tf.IndexedSlices(tf.constant([[1.0], [2.0], [4.0]]), tf.constant([3, 0, 3]), tf.constant([5, 1]))
        >>> summed = summed_rows(g)
        >>> summed.indices.numpy(), summed.values.numpy()[:, 0]
        (array([3, 0, 3], dtype=int32), array([5., 2., 0.], dtype=float32))
    """
    if grad.indices.shape.num_elements() == 0:
        return grad
    # a static length where the gradient has one: XLA gives tf.unique's rows its bound, not their count
    length = grad.indices.shape[0] if grad.indices.shape[0] is not None else tf.size(grad.indices)
    if in_xla_context():
        return summed_in_xla(grad, length)
    rows, positions = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, positions, length)
    distinct = tf.math.unsorted_segment_max(grad.indices, positions, length)
    padded = tf.where(tf.range(length) < tf.size(rows), distinct, grad.indices[0])
    return tf.IndexedSlices(values, padded, grad.dense_shape)


def prepared_gradients(grads: Sequence[Any], sparse: bool) -> list[Any]:
    """The gradients a step works on: a ``tf.IndexedSlices`` with its rows summed when the
    optimizer takes sparse gradients, else densified; every other gradient as a tensor.

    Args:
        grads: the gradients, as ``apply_gradients`` received them (None already dropped).
        sparse: whether the optimizer updates sparse gradients row by row.

    Example:
        >>> g = tf.IndexedSlices(tf.constant([[1.0]]), tf.constant([1]), tf.constant([2, 1]))
        >>> [type(x).__name__ for x in prepared_gradients([g, [1.0]], sparse=True)]
        ['IndexedSlices', 'EagerTensor']
    """
    return [summed_rows(g) if sparse and isinstance(g, tf.IndexedSlices) else dense_gradient(g) for g in grads]


def divided(grad: Any, factor: float) -> Any:
    """A gradient divided by a number (a sparse gradient's rows divided).

    Example:
        >>> divided(tf.constant([2.0]), 2.0).numpy()
        array([1.], dtype=float32)
    """
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values / tf.constant(factor, grad.values.dtype), grad.indices, grad.dense_shape)
    return grad / tf.constant(factor, grad.dtype)


def gradient_values(grad: Any) -> tf.Tensor:
    """The numbers a gradient holds: a sparse gradient's rows, or the tensor itself.

    Example:
        >>> gradient_values(tf.IndexedSlices(tf.constant([[1.0]]), tf.constant([1]))).numpy()
        array([[1.]], dtype=float32)
    """
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def update_rows(
    grad: tf.IndexedSlices, var: tf.Variable, slots: Mapping[str, tf.Variable], rows_update: RowsUpdate
) -> None:
    """Update only the rows a sparse gradient touches: gather them from the variable and its
    slots, compute their new values, scatter them back.

    Args:
        grad: the gradient, each row once (:func:`summed_rows`).
        var: the variable (its first axis is the gradient's rows).
        slots: the variable's slots, each shaped like it.
        rows_update: ``rows_update(grad_rows, var_rows, slot_rows)``, returning the new rows of
            ``"var"`` and of each slot it changes.

    Example:
        >>> x = tf.Variable([[1.0], [2.0]])  # a rule of var - grad on row 1
        >>> g = tf.IndexedSlices(tf.constant([[1.0]]), tf.constant([1]), tf.constant([2, 1]))
        >>> update_rows(g, x, {}, lambda g, v, s: {"var": v - g})
        >>> x.numpy()[:, 0]
        array([1., 1.], dtype=float32)
    """
    rows = grad.indices
    # a padding entry (the first row's index again, see summed_rows) computes the first entry's values
    padding = tf.logical_and(tf.equal(rows, rows[0]), tf.range(tf.size(rows, out_type=rows.dtype)) > 0)
    padding = tf.reshape(padding, [-1] + [1] * (grad.values.shape.rank - 1))
    grad_rows = tf.where(padding, grad.values[:1], grad.values)
    current = {name: tf.gather(slot, rows) for name, slot in slots.items()}
    values = rows_update(grad_rows, tf.gather(var, rows), current)
    for target, value in values.items():
        destination = var if target == "var" else slots[target]
        destination.scatter_update(tf.IndexedSlices(tf.cast(value, destination.dtype), rows))


def write_touched_rows(
    indices: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], values: Mapping[str, Any]
) -> None:
    """Write what a step on touched rows computed (:meth:`optreg.runtime.compile.CompiledRule.update_touched_rows`):
    new rows scattered into their variable, whole values assigned.

    Args:
        indices: the sparse gradient's rows (summed: :func:`summed_rows`).
        var: the variable.
        slots: its slots, by name.
        values: target → :class:`~optreg.runtime.rule_rows.Rows` or the whole new value.

    Example:
        >>> x, r = tf.Variable([[1.0], [2.0]]), tf.Variable([[0.0], [0.0]])
        >>> write_touched_rows(tf.constant([1]), x, {"r": r}, {"var": Rows(tf.constant([[5.0]])), "r": tf.ones([2, 1])})
        >>> x.numpy()[:, 0], r.numpy()[:, 0]
        (array([1., 5.], dtype=float32), array([1., 1.], dtype=float32))
    """
    for target, value in values.items():
        destination = var if target == "var" else slots[target]
        if isinstance(value, Rows):
            destination.scatter_update(tf.IndexedSlices(tf.cast(value.values, destination.dtype), indices))
        else:
            destination.assign(tf.cast(value, destination.dtype))
