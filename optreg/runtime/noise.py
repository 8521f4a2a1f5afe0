"""The random numbers a rule draws (``normal_like``, ``rademacher_like``): reproducible by design.

Every draw comes from TensorFlow's stateless generator (Philox), keyed by a pair of int64s:

    key = (seed, step · 2³² + index · 2⁸ + call)

where ``seed`` is the spec's int hyperparameter ``seed``, ``step`` the 1-based update number,
``index`` the variable's position among the optimizer's variables (the order they were first
built in, at most 2²⁴ of them; a spec optimizer keeps it as the slot ``noise_index``, so
checkpoints hold it) and ``call`` the random call's place in the rule as it is built
for that variable (at most 2⁸ calls). Nothing is carried from one draw to the next, so a run
repeats its numbers exactly, a run resumed from a checkpoint (which restores ``iterations``)
draws what the uninterrupted run drew, and every replica of a MirroredStrategy draws the same.

Only raw 32-bit words are drawn from the generator; the transforms are written here, because
TensorFlow's own normal transform gives other numbers under XLA than without it, while the raw
words are the same. Each word ``w`` becomes ``u = (w + ½)/2³²`` in (0, 1), and

* ``normal_like``: Box–Muller on two words ``w₁, w₂``: ``√(−2 ln u₁) · cos(2π u₂)``, computed
  in float64 and cast to the draw's dtype;
* ``rademacher_like``: ``+1`` where the word's top bit is 0, ``−1`` where it is 1.
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["MAX_CALLS", "MAX_VARIABLES", "draw", "noise_key"]

#: How many random calls one variable's rule may build (the ``call`` field of the key).
MAX_CALLS = 2**8
#: How many variables one optimizer may draw for (the ``index`` field of the key).
MAX_VARIABLES = 2**24


def noise_key(seed: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """The step's part of every key: ``(seed, step · 2³²)`` as int64, from float64 scalars.

    Example:
        >>> noise_key(tf.constant(7.0, tf.float64), tf.constant(2.0, tf.float64)).numpy().tolist()
        [7, 8589934592]
    """
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 2**32])


def draw(function: str, like: tf.Tensor, step_key: tf.Tensor, index: int | tf.Tensor, call: int) -> tf.Tensor:
    """Random numbers shaped like ``like``, in its dtype.

    Args:
        function: ``"normal_like"`` or ``"rademacher_like"``.
        like: the tensor whose shape and dtype the numbers take (its values are not read).
        step_key: :func:`noise_key` of the step.
        index: the variable's index among the optimizer's variables (an int, or a number tensor
            such as the slot a spec optimizer keeps it in).
        call: the call's place among the rule's random calls for this variable.

    Raises:
        ValueError: more variables or calls than the key holds.

    Example:
        >>> key = noise_key(tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64))
        >>> draw("rademacher_like", tf.zeros([3]), key, 0, 0).shape
        TensorShape([3])
    """
    if isinstance(index, int) and not 0 <= index < MAX_VARIABLES or not 0 <= call < MAX_CALLS:
        raise ValueError(f"random numbers for at most {MAX_VARIABLES} variables and {MAX_CALLS} calls per rule")
    offset = tf.cast(index, tf.int64) * MAX_CALLS + call
    key = step_key + tf.stack([tf.constant(0, tf.int64), tf.reshape(offset, [])])
    shape = tf.shape(like)
    if function == "rademacher_like":
        words = _words(shape, key)
        return tf.cast(1 - 2 * tf.cast(words >= 2**31, tf.int32), like.dtype)
    words = _words(tf.concat([[2], shape], 0), key)
    u = (tf.cast(words, tf.float64) + 0.5) * 2.0**-32
    normal = tf.sqrt(-2.0 * tf.math.log(u[0])) * tf.cos(2.0 * math.pi * u[1])
    return tf.cast(normal, like.dtype)


def _words(shape: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """Raw uint32 words of the stateless Philox generator (the same with and without XLA)."""
    return tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint32, alg="philox")
