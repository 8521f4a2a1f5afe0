"""normal_like's and rademacher_like's numbers as docs/spec-language.md defines them, in NumPy:
the key from the documented formula, the generator's raw words from TensorFlow's stateless
Philox (the one thing shared with optreg's code), the transforms in NumPy."""

from __future__ import annotations

import numpy as np


def philox_words(seed: int, counter: int, shape: tuple) -> np.ndarray:
    """The raw uint32 words TensorFlow's stateless Philox generator gives for the key (seed, counter)."""
    import tensorflow as tf

    key = tf.constant([seed, counter], tf.int64)
    return tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint32, alg="philox").numpy()


def reference_normal(seed: int, step: int, index: int, call: int, shape: tuple) -> np.ndarray:
    """normal_like's numbers as the language reference defines them, in NumPy."""
    words = philox_words(seed, step * 2**32 + index * 2**8 + call, (2, *shape)).astype(np.float64)
    u1, u2 = (words + 0.5) / 2.0**32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def reference_rademacher(seed: int, step: int, index: int, call: int, shape: tuple) -> np.ndarray:
    """rademacher_like's numbers as the language reference defines them: −1 where a word's top bit is set."""
    words = philox_words(seed, step * 2**32 + index * 2**8 + call, shape)
    return np.where(words >= 2**31, -1.0, 1.0)
