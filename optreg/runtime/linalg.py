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
    reads the lower triangle only, as NumPy's ``eigh`` does by default."""
    if x.shape.rank is None or x.shape.rank < 2:
        raise ValueError(f"an eigendecomposition needs a tensor of rank >= 2, got shape {x.shape}")
    wide = x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    values, vectors = tf.linalg.eigh(wide)
    return values, vectors


def inverse_root(x: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """``x ** (-1 / p)`` for symmetric positive semi-definite matrices: ``Q diag(max(λ, floor) **
    (-1 / p)) Qᵀ`` from x's eigendecomposition, each eigenvalue floored at
    :data:`~optreg.lang.functions.EIGEN_FLOOR` (rounding can leave a tiny negative one).

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
    floored = tf.maximum(values, tf.constant(EIGEN_FLOOR, values.dtype))
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
