"""The TensorFlow side of the rule language's matrix functions beyond ``matmul``: the identity
shaped like a matrix, and the two built on a symmetric eigendecomposition (Shampoo's inverse
roots, SOAP's eigenbases).

``inverse_root`` and ``eigvecs`` call ``tf.linalg.eigh``. Under XLA that eigendecomposition is an
iterative Jacobi method that stops early: on a 64 x 64 positive definite float64 matrix its inverse
fourth root is 7e-7 from NumPy's, against 2e-14 op by op (``docs/spec-language.md`` has the
figures), so a rule calling either never runs its step with XLA
(:attr:`optreg.runtime.compile.CompiledRule.runs_without_xla`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from optreg.lang.functions import EIGEN_FLOOR

__all__ = ["eigvecs", "eye_like", "inverse_root"]


def eye_like(x: tf.Tensor) -> tf.Tensor:
    """x's shape, ones on the diagonal of the last two axes and zeros elsewhere.

    Args:
        x: a tensor of rank >= 2 with a static shape.

    Returns:
        A tensor of x's shape and dtype (a batch of identities when x's matrices are square).

    Example:
        >>> eye_like(tf.zeros([2, 2])).numpy().tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    dims = x.shape.as_list()
    if len(dims) < 2 or None in dims:
        raise ValueError(f"eye_like needs a tensor of rank >= 2 with a static shape, got {dims}")
    return tf.eye(dims[-2], dims[-1], batch_shape=dims[:-2], dtype=x.dtype)


def _eigh(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices over the last
    two axes, computed in float32 at least: ``tf.linalg.eigh`` has no half-precision kernel. It
    reads the lower triangle only, as NumPy's ``eigh`` does by default. A matrix holding a NaN or
    an infinity gives NaNs (``tf.linalg.eigh`` would raise)."""
    if x.shape.rank is None or x.shape.rank < 2:
        raise ValueError(f"an eigendecomposition needs a tensor of rank >= 2, got shape {x.shape}")
    wide = x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    # eigh raises on a matrix holding a NaN or an infinity (a diverged run's statistics): such a
    # matrix is decomposed as zeros and its results made NaN, so the run diverges as any would
    finite = tf.reduce_all(tf.math.is_finite(wide), axis=[-2, -1], keepdims=True)
    values, vectors = tf.linalg.eigh(tf.where(finite, wide, tf.zeros_like(wide)))
    nan = tf.constant(float("nan"), wide.dtype)
    return tf.where(finite[..., 0], values, nan), tf.where(finite, vectors, nan)


def _floor(values: tf.Tensor) -> tf.Tensor:
    """The least eigenvalue ``inverse_root`` raises to ``-1 / p``, per matrix: the largest
    eigenvalue times the dtype's machine epsilon (below it the decomposition's eigenvalues are
    rounding noise, of either sign), and at least :data:`~optreg.lang.functions.EIGEN_FLOOR`."""
    precision = tf.constant(float(np.finfo(values.dtype.as_numpy_dtype).eps), values.dtype)
    largest = tf.reduce_max(values, axis=-1, keepdims=True)
    return tf.maximum(largest * precision, tf.constant(EIGEN_FLOOR, values.dtype))


def inverse_root(x: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """``x ** (-1 / p)`` for symmetric positive semi-definite matrices: ``Q diag(max(λ, floor) **
    (-1 / p)) Qᵀ`` from x's eigendecomposition, each eigenvalue floored at the largest one times
    the dtype's machine epsilon (1.2e-7 in float32, 2.2e-16 in float64), and at least
    :data:`~optreg.lang.functions.EIGEN_FLOOR`: smaller eigenvalues are rounding noise, and
    rounding can leave one negative.

    Args:
        x: symmetric matrices over the last two axes (rank >= 2).
        p: the root, a positive number (a scalar tensor).

    Returns:
        A tensor of x's shape and dtype.

    Example:
        >>> inverse_root(tf.constant([[4.0, 0.0], [0.0, 16.0]]), tf.constant(2.0)).numpy().tolist()
        [[0.5, 0.0], [0.0, 0.25]]
    """
    values, vectors = _eigh(x)
    floored = tf.maximum(values, _floor(values))
    powered = tf.pow(floored, tf.constant(-1.0, values.dtype) / tf.cast(p, values.dtype))
    root = tf.linalg.matmul(vectors * tf.expand_dims(powered, -2), vectors, transpose_b=True)
    return tf.cast(root, x.dtype)


def eigvecs(x: tf.Tensor) -> tf.Tensor:
    """The eigenvectors of symmetric matrices over the last two axes, as columns, by ascending
    eigenvalue (each column's sign as ``tf.linalg.eigh`` gives it).

    Args:
        x: symmetric matrices over the last two axes (rank >= 2).

    Returns:
        A tensor of x's shape and dtype whose matrices are orthogonal.

    Example:
        >>> eigvecs(tf.constant([[2.0, 0.0], [0.0, 1.0]])).numpy().tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    return tf.cast(_eigh(x)[1], x.dtype)
