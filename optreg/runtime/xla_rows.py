"""A sparse gradient's repeated rows summed inside an XLA computation.

Inside the caller's XLA computation (a whole training step under ``jit_compile=True``) there is
no "outside" to sum a ``tf.IndexedSlices`` gradient's repeated rows in, and XLA's ``Unique`` is
slow on a CPU. :func:`summed_in_xla` finds each entry's *first entry*, the first one with the same
row, by hashing the rows into a table of :data:`BUCKETS_PER_ENTRY` buckets an entry (the size of
the batch, not of the variable: 32 bytes an entry), then adds each later entry onto its first
one, in their order, as the dense conversion's scatter does.

One round of hashing keeps, in each bucket, the first entry that falls there; an entry whose
bucket's first entry has the same row has found its first entry (an earlier entry of its row would
have fallen in the same bucket). The others, which share their bucket with an earlier row, hash
again with another multiplier; every round settles at least the row of the first open entry, and
after :data:`HASH_ROUNDS` rounds any still open are settled by a stable sort of the indices. The
first entries are exact whatever the hashing does; it only decides how fast they are found
(`benchmarks/sparse_embedding.py --summing`).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

__all__ = ["BUCKETS_PER_ENTRY", "HASH_ROUNDS", "first_entries", "summed_in_xla"]

#: Hash buckets per gradient entry (a power of two): at 8, about one entry in sixteen shares its
#: bucket with an earlier row in the first round.
BUCKETS_PER_ENTRY = 8

#: Rounds of hashing before the entries still open are settled by sorting.
HASH_ROUNDS = 8

#: Fibonacci hashing's multiplier (2^32 over the golden ratio, odd), and the step between rounds'.
_MULTIPLIER, _MULTIPLIER_STEP = 0x9E3779B1, 0x6A09E667


def summed_in_xla(grad: tf.IndexedSlices, length: Any) -> tf.IndexedSlices:
    """The gradient with each row once, for :func:`optreg.runtime.sparse.summed_rows` inside XLA:
    the sum of a row's entries at its first entry, added in their order onto zero as the dense
    conversion adds them; every other entry a zero row at the first entry's index.

    Args:
        grad: the gradient.
        length: its number of entries (an int when known while tracing, else a tensor).

    Returns:
        A ``tf.IndexedSlices`` of the same length and dense shape.

    Example:
        >>> g = tf.IndexedSlices(tf.constant([[1.0], [2.0], [4.0]]), tf.constant([3, 0, 3]), tf.constant([5, 1]))
        >>> summed = tf.function(lambda g: summed_in_xla(g, 3), jit_compile=True)(g)
        >>> summed.indices.numpy(), summed.values.numpy()[:, 0]
        (array([3, 0, 3], dtype=int32), array([5., 2., 0.], dtype=float32))
    """
    indices, values = grad.indices, grad.values
    positions = tf.range(length, dtype=indices.dtype)
    first = first_entries(indices, length)
    is_first = tf.equal(first, positions)
    at_first = tf.reshape(is_first, [-1] + [1] * (values.shape.rank - 1))
    # the dense conversion starts each row at zero: 0 + g is g, except that -0 becomes +0
    start = tf.where(tf.logical_and(at_first, tf.not_equal(values, 0)), values, tf.zeros_like(values))
    # each later entry added onto its first one; a first entry's own addition lands on a spare
    # row past the end, which is dropped
    spare = tf.zeros_like(values[:1])
    target = tf.where(is_first, tf.cast(length, indices.dtype), first)
    sums = tf.tensor_scatter_nd_add(tf.concat([start, spare], 0), target[:, None], values)[:length]
    return tf.IndexedSlices(sums, tf.where(is_first, indices, indices[0]), grad.dense_shape)


def first_entries(indices: tf.Tensor, length: Any) -> tf.Tensor:
    """Each entry's first entry: the least position holding the same index.

    Args:
        indices: a gradient's row indices, a vector.
        length: their number (an int when known while tracing, else a tensor, which sorts).

    Returns:
        A vector of positions, of ``indices``' dtype.

    Example:
        >>> first_entries(tf.constant([7, 2, 7, 7, 2]), 5).numpy()
        array([0, 1, 0, 0, 1], dtype=int32)
    """
    if not isinstance(length, int) or BUCKETS_PER_ENTRY * length >= 1 << 30:
        return _first_entries_by_sorting(indices, length)
    bits = max(6, (BUCKETS_PER_ENTRY * length - 1).bit_length())
    positions = tf.range(length, dtype=indices.dtype)
    keys = tf.bitcast(indices, tf.uint32) if indices.dtype == tf.int32 else tf.cast(indices, tf.uint32)

    def settle(round_: tf.Tensor, first: tf.Tensor, open_: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        bucket = _bucket(keys, round_, bits, indices.dtype)
        bucket = tf.where(open_, bucket, 1 << bits)  # settled entries fall in a spare bucket
        unset = tf.fill([(1 << bits) + 1], tf.constant(length, indices.dtype))
        earliest = tf.tensor_scatter_nd_min(unset, bucket[:, None], positions)
        candidate = tf.minimum(tf.gather(earliest, bucket), length - 1)
        found = tf.logical_and(open_, tf.equal(tf.gather(indices, candidate), indices))
        return round_ + 1, tf.where(found, candidate, first), tf.logical_and(open_, tf.logical_not(found))

    def going_on(round_: tf.Tensor, _: tf.Tensor, open_: tf.Tensor) -> tf.Tensor:
        return tf.logical_and(round_ < HASH_ROUNDS, tf.reduce_any(open_))

    start = (tf.constant(0), positions, tf.ones([length], tf.bool))
    _, first, open_ = tf.while_loop(going_on, settle, start)
    # the sort finds every entry's first entry, so a step that needs it takes all of its answer
    return tf.cond(tf.reduce_any(open_), lambda: _first_entries_by_sorting(indices, length), lambda: first)


def _bucket(keys: tf.Tensor, round_: tf.Tensor, bits: int, dtype: tf.DType) -> tf.Tensor:
    """Each key's bucket in a round: the top ``bits`` bits of the key times the round's odd
    multiplier, modulo 2^32."""
    step = tf.cast(round_, tf.uint32) * tf.constant(_MULTIPLIER_STEP, tf.uint32)
    multiplier = tf.bitwise.bitwise_or(tf.constant(_MULTIPLIER, tf.uint32) + step, tf.constant(1, tf.uint32))
    return tf.cast(tf.bitwise.right_shift(keys * multiplier, tf.constant(32 - bits, tf.uint32)), dtype)


def _first_entries_by_sorting(indices: tf.Tensor, length: Any) -> tf.Tensor:
    """:func:`first_entries` by a stable sort of the indices: memory in the entries alone."""
    order = tf.argsort(indices, stable=True)
    ordered = tf.gather(indices, order)
    starts = tf.concat([tf.ones([1], tf.bool), tf.not_equal(ordered[1:], ordered[:-1])], 0)
    segments = tf.cumsum(tf.cast(starts, indices.dtype)) - 1
    firsts = tf.math.unsorted_segment_min(tf.cast(order, indices.dtype), segments, length)
    return tf.tensor_scatter_nd_update(tf.zeros_like(indices), order[:, None], tf.gather(firsts, segments))
