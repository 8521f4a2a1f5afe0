"""``autoencoder``: a small autoencoder reconstructing the shipped 8×8 digits.

``64 → code (tanh) → 64`` with a linear output, trained on the mean squared reconstruction
error of the 1347 training images (pixels in [0, 1]) and judged on the 450 held-out ones. The
reference is principal component analysis with as many components as the code has units, the
best any linear code of that size does: its held-out error is reported beside the network's,
and the target is a held-out error within 10% of it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from optreg.errors import OptionError
from optreg.problems import MAX_DIMENSION, Problem, Tensor
from optreg.problems.digits_data import PIXELS, TRAIN_ROWS, load_digits
from optreg.problems.networks import Block, Layout, batched, training_losses
from optreg.problems.targets import Target

__all__ = ["AUTOENCODER", "AUTOENCODER_TARGET", "autoencoder", "autoencoder_layout", "pca_errors", "reconstruct"]

#: Held-out error over PCA's, at most 1.1.
AUTOENCODER_TARGET = Target("test_loss_over_pca", 1.1)
#: The widest code within MAX_DIMENSION parameters.
MAX_CODE = (MAX_DIMENSION - PIXELS) // (2 * PIXELS + 1)


def autoencoder_layout(code: int) -> Layout:
    """The encoder's and decoder's weights and biases.

    Example:
        >>> autoencoder_layout(8).size
        1096
    """
    return Layout(
        (
            Block("encoder_weights", (PIXELS, code), fans=(PIXELS, code)),
            Block("encoder_bias", (code,)),
            Block("decoder_weights", (code, PIXELS), fans=(code, PIXELS)),
            Block("decoder_bias", (PIXELS,)),
        )
    )


def reconstruct(blocks: dict[str, Tensor], pixels: Tensor) -> Tensor:
    """``[runs, images, 64]`` reconstructions of ``[images, 64]`` pixels by every run's network."""
    import tensorflow as tf

    code = tf.tanh(tf.einsum("nf,rfc->rnc", pixels, blocks["encoder_weights"]) + blocks["encoder_bias"][:, None, :])
    return tf.einsum("rnc,rcf->rnf", code, blocks["decoder_weights"]) + blocks["decoder_bias"][:, None, :]


@lru_cache(maxsize=8)
def pca_errors(code: int) -> tuple[float, float]:
    """Mean squared reconstruction error, train and test, of projecting onto the training
    images' first ``code`` principal components (around the training mean), in float64.

    Example:
        >>> train, test = pca_errors(64)
        >>> train < 1e-20 and test < 1e-20
        True
    """
    import numpy as np

    x_train, _, x_test, _ = load_digits()
    x_train, x_test = x_train.astype(np.float64), x_test.astype(np.float64)
    mean = x_train.mean(axis=0)
    # the leading eigenvectors of the 64 × 64 covariance (the data's right singular vectors)
    eigenvalues, eigenvectors = np.linalg.eigh((x_train - mean).T @ (x_train - mean))
    components = eigenvectors[:, np.argsort(eigenvalues)[::-1][:code]].T

    def error(x: Any) -> float:
        centred = x - mean
        return float(np.mean((centred - centred @ components.T @ components) ** 2))

    return error(x_train), error(x_test)


def autoencoder(code: int = 8, batch_size: int = 0, seed: int = 0) -> Problem:
    """The autoencoder as a problem.

    Args:
        code: the code layer's width.
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the Glorot-uniform start and the minibatch order.

    Returns:
        The :class:`Problem` (``129·code + 64`` parameters); its metrics are ``train_loss``,
        ``test_loss``, ``pca_test_loss``, ``test_loss_over_pca``, ``baseline_test_loss`` (the
        error of predicting the training mean image) and ``target_met``.

    Example:
        >>> autoencoder(code=4).dimension
        580
    """
    code, batch_size, seed = int(code), int(batch_size), int(seed)
    if not 1 <= code <= MAX_CODE or not 0 <= batch_size <= TRAIN_ROWS:
        raise OptionError(
            f"autoencoder needs 1 <= code <= {MAX_CODE} and 0 <= batch_size <= {TRAIN_ROWS}, "
            f"got {code} and {batch_size}"
        )
    if not -(2**31) <= seed < 2**31:
        raise OptionError(f"autoencoder needs a seed that fits in int32, got {seed}")
    layout = autoencoder_layout(code)

    def split_loss(parameters: Tensor, x: Any) -> Tensor:
        import tensorflow as tf

        def per_run(flat: Tensor) -> Tensor:
            pixels = tf.cast(x, flat.dtype)
            return tf.reduce_mean(tf.square(reconstruct(layout.unpack(flat), pixels) - pixels), axis=[-2, -1])

        return batched(parameters, per_run)

    loss, batch_loss = training_losses(split_loss, lambda: load_digits()[:1], seed, TRAIN_ROWS, batch_size)

    def over_pca(parameters: Tensor) -> Tensor:
        return split_loss(parameters, load_digits()[2]) / pca_errors(code)[1]

    def metrics(parameters: Tensor) -> dict[str, Any]:
        import numpy as np

        x_train, _, x_test, _ = load_digits()
        points = np.asarray(parameters, np.float32).reshape(-1, layout.size)
        test = np.asarray(split_loss(points, x_test), np.float64)
        pca_test = pca_errors(code)[1]
        figures = {
            "train_loss": np.asarray(split_loss(points, x_train), np.float64),
            "test_loss": test,
            "pca_test_loss": np.full(len(test), pca_test),
            "test_loss_over_pca": test / pca_test,
            "baseline_test_loss": np.full(len(test), float(np.mean((x_test - x_train.mean(axis=0)) ** 2))),
        }
        return AUTOENCODER_TARGET.with_verdict(figures)

    batches = f"minibatches of {batch_size}" if batch_size else "full batch"
    return Problem(
        name="autoencoder",
        summary=f"A 64→{code}→64 tanh autoencoder of the 8×8 digits, {batches}; "
        f"target test error ≤ 1.1 × PCA's with {code} components",
        start=layout.glorot_start(seed),
        loss=loss,
        batch_loss=batch_loss if batch_size else None,
        metrics=metrics,
        tolerance=0.0,
        judged_by="test_loss",
        baseline="baseline_test_loss",
        target=AUTOENCODER_TARGET,
        target_figure=over_pca,
        options={"code": code, "batch_size": batch_size, "seed": seed},
        configure=autoencoder,
    )


AUTOENCODER = autoencoder()
