"""``digits-mlp`` and ``digits-cnn``: classifying the shipped 8×8 handwritten digits.

Both minimise the mean softmax cross-entropy on the 1347 training images
(:mod:`optreg.problems.digits_data`) and report the held-out figures of the 450 test images.
Each run's network is one flat parameter vector (:mod:`optreg.problems.networks`), so a sweep
trains many networks side by side. The convolution is written as a matrix product over each
image's 3×3 patches, cut once from the constant images, which XLA compiles to one batched
matrix multiplication for all runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from optreg.errors import OptionError
from optreg.problems import MAX_DIMENSION, Problem, Tensor
from optreg.problems.digits_data import CLASSES, PIXELS, TRAIN_ROWS, image_patches, load_digits
from optreg.problems.networks import Block, Layout, batched, cross_entropy, training_losses
from optreg.problems.targets import Target

__all__ = [
    "CNN_TARGET",
    "DIGITS_CNN",
    "DIGITS_MLP",
    "MLP_TARGET",
    "classifier",
    "cnn_layout",
    "cnn_logits",
    "digits_cnn",
    "digits_mlp",
    "mlp_layout",
    "mlp_logits",
]

#: What a run of each problem counts as reaching: held-out accuracy on the 450 test images.
MLP_TARGET = Target("test_accuracy", 0.95, higher_is_better=True)
CNN_TARGET = Target("test_accuracy", 0.97, higher_is_better=True)
#: The convolution's kernel side, and the side of its output (no padding) and of the pooled map.
KERNEL, CONV_SIDE, POOLED_SIDE = 3, 6, 3
#: The widest hidden layer / most filters that stay within MAX_DIMENSION parameters.
MAX_HIDDEN = (MAX_DIMENSION - CLASSES) // (PIXELS + 1 + CLASSES)
MAX_FILTERS = (MAX_DIMENSION - CLASSES) // (KERNEL * KERNEL + 1 + POOLED_SIDE**2 * CLASSES)


def mlp_layout(hidden: int) -> Layout:
    """The parameters of a ``64 → hidden (ReLU) → 10`` perceptron.

    Example:
        >>> mlp_layout(32).size
        2410
    """
    return Layout(
        (
            Block("hidden_weights", (PIXELS, hidden), fans=(PIXELS, hidden)),
            Block("hidden_bias", (hidden,)),
            Block("output_weights", (hidden, CLASSES), fans=(hidden, CLASSES)),
            Block("output_bias", (CLASSES,)),
        )
    )


def mlp_logits(blocks: dict[str, Tensor], pixels: Tensor) -> Tensor:
    """``[runs, images, 10]`` logits of every run's perceptron on ``[images, 64]`` pixels."""
    import tensorflow as tf

    hidden = tf.einsum("nf,rfh->rnh", pixels, blocks["hidden_weights"]) + blocks["hidden_bias"][:, None, :]
    return tf.einsum("rnh,rhk->rnk", tf.nn.relu(hidden), blocks["output_weights"]) + blocks["output_bias"][:, None, :]


def cnn_layout(filters: int) -> Layout:
    """The parameters of a 3×3 convolution (``filters`` maps, ReLU, 2×2 max pooling) and a dense
    layer on the pooled 3×3 maps. Glorot fans as Keras counts them for a convolution
    (kernel area × channels in, kernel area × channels out).

    Example:
        >>> cnn_layout(8).size
        810
    """
    area, pooled = KERNEL * KERNEL, POOLED_SIDE**2 * filters
    return Layout(
        (
            Block("conv_weights", (area, filters), fans=(area, area * filters)),
            Block("conv_bias", (filters,)),
            Block("output_weights", (pooled, CLASSES), fans=(pooled, CLASSES)),
            Block("output_bias", (CLASSES,)),
        )
    )


def cnn_logits(blocks: dict[str, Tensor], patches: Tensor) -> Tensor:
    """``[runs, images, 10]`` logits of every run's convolutional network on
    ``[images, 36, 9]`` patches (:func:`~optreg.problems.digits_data.image_patches`)."""
    import tensorflow as tf

    filters = blocks["conv_bias"].shape[-1]
    maps = tf.einsum("npk,rkc->rnpc", patches, blocks["conv_weights"]) + blocks["conv_bias"][:, None, None, :]
    images = tf.shape(patches)[0]
    # [runs, images, 6·6, filters] → 2×2 windows → [runs, images, 3·3·filters]
    windows = tf.reshape(tf.nn.relu(maps), [-1, images, POOLED_SIDE, 2, POOLED_SIDE, 2, filters])
    pooled = tf.reshape(tf.reduce_max(windows, axis=[3, 5]), [-1, images, POOLED_SIDE**2 * filters])
    return tf.einsum("rnq,rqk->rnk", pooled, blocks["output_weights"]) + blocks["output_bias"][:, None, :]


@lru_cache(maxsize=2)
def _inputs(kind: str) -> tuple[Any, ...]:
    """The network inputs of each split: pixels for the perceptron, patches for the convolution."""
    x_train, y_train, x_test, y_test = load_digits()
    if kind == "patches":
        return image_patches(x_train, KERNEL), y_train, image_patches(x_test, KERNEL), y_test
    return x_train, y_train, x_test, y_test


def _check(name: str, option: str, value: int, largest: int, batch_size: int, seed: int) -> None:
    if not 1 <= value <= largest or not 0 <= batch_size <= TRAIN_ROWS:
        raise OptionError(
            f"{name} needs 1 <= {option} <= {largest} and 0 <= batch_size <= {TRAIN_ROWS}, got {value} and {batch_size}"
        )
    if not -(2**31) <= seed < 2**31:
        raise OptionError(f"{name} needs a seed that fits in int32, got {seed}")


def classifier(
    name: str,
    summary: str,
    layout: Layout,
    logits: Callable[[dict[str, Tensor], Tensor], Tensor],
    inputs: str,
    target: Target,
    batch_size: int,
    seed: int,
) -> dict[str, Any]:
    """The fields of a digit-classification :class:`Problem` (all but its options and configure).

    Args:
        name: the problem's name.
        summary: what it is; the target is appended.
        layout: its parameters.
        logits: ``(blocks, inputs) → [runs, images, 10]``.
        inputs: ``"pixels"`` or ``"patches"``, what ``logits`` reads.
        target: the held-out figure a run counts as reaching, on ``test_accuracy``.
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the start point and the minibatch order.

    Returns:
        Keyword arguments for :class:`Problem`: the loss on the training images, the minibatch
        loss, and metrics ``train_loss``, ``test_loss``, ``train_accuracy``, ``test_accuracy``,
        ``baseline_test_loss`` (the cross-entropy of predicting the training set's class
        frequencies) and ``target_met``.

    Example:
        >>> sorted(classifier("m", "s", mlp_layout(2), mlp_logits, "pixels", MLP_TARGET, 0, 0))[:3]
        ['baseline', 'batch_loss', 'judged_by']
    """

    def split_loss(parameters: Tensor, x: Any, y: Any) -> Tensor:
        import tensorflow as tf

        return batched(
            parameters, lambda flat: cross_entropy(logits(layout.unpack(flat), tf.cast(x, flat.dtype)), y, CLASSES)
        )

    loss, batch_loss = training_losses(split_loss, lambda: _inputs(inputs)[:2], seed, TRAIN_ROWS, batch_size)

    def test_accuracy(parameters: Tensor) -> Tensor:
        import tensorflow as tf

        _, _, x_test, y_test = _inputs(inputs)
        scores = logits(layout.unpack(parameters), tf.constant(x_test, parameters.dtype))
        right = tf.equal(tf.argmax(scores, axis=-1, output_type=tf.int32), tf.constant(y_test, tf.int32))
        return tf.reduce_mean(tf.cast(right, parameters.dtype), axis=-1)

    def metrics(parameters: Tensor) -> dict[str, Any]:
        import numpy as np
        import tensorflow as tf

        x_train, y_train, x_test, y_test = _inputs(inputs)
        flat = tf.reshape(tf.convert_to_tensor(parameters, tf.float32), [-1, layout.size])
        figures: dict[str, Any] = {}
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            scores = logits(layout.unpack(flat), tf.constant(x))
            figures[f"{split}_loss"] = np.asarray(cross_entropy(scores, y, CLASSES))
            figures[f"{split}_accuracy"] = np.mean(np.argmax(np.asarray(scores), axis=-1) == y, axis=-1)
        frequencies = np.bincount(y_train, minlength=CLASSES) / len(y_train)
        baseline = -float(np.mean(np.log(frequencies[y_test])))
        figures["baseline_test_loss"] = np.full(len(figures["test_loss"]), baseline)
        return target.with_verdict(figures)

    return {
        "name": name,
        "summary": f"{summary}; target {target}",
        "start": layout.glorot_start(seed),
        "loss": loss,
        "batch_loss": batch_loss if batch_size else None,
        "metrics": metrics,
        "tolerance": 0.0,
        "judged_by": "test_loss",
        "baseline": "baseline_test_loss",
        "target": target,
        "target_figure": test_accuracy,
    }


def digits_mlp(hidden: int = 32, batch_size: int = 0, seed: int = 0) -> Problem:
    """A one-hidden-layer ReLU perceptron classifying the digits.

    Args:
        hidden: the hidden layer's width.
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the Glorot-uniform start and the minibatch order.

    Returns:
        The :class:`Problem` (``64·hidden + hidden + 10·hidden + 10`` parameters).

    Example:
        >>> digits_mlp(hidden=8).dimension
        610
    """
    hidden, batch_size, seed = int(hidden), int(batch_size), int(seed)
    _check("digits-mlp", "hidden", hidden, MAX_HIDDEN, batch_size, seed)
    batches = f"minibatches of {batch_size}" if batch_size else "full batch"
    fields = classifier(
        "digits-mlp",
        f"A {hidden}-unit ReLU network classifying the 8×8 digits (Alpaydin & Kaynak 1998), {batches}",
        mlp_layout(hidden),
        mlp_logits,
        "pixels",
        MLP_TARGET,
        batch_size,
        seed,
    )
    return Problem(**fields, options={"hidden": hidden, "batch_size": batch_size, "seed": seed}, configure=digits_mlp)


def digits_cnn(filters: int = 8, batch_size: int = 0, seed: int = 0) -> Problem:
    """A small convolutional network classifying the digits: 3×3 convolution, ReLU, 2×2 max
    pooling, dense softmax layer.

    Args:
        filters: the convolution's feature maps.
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the Glorot-uniform start and the minibatch order.

    Returns:
        The :class:`Problem` (``100·filters + 10`` parameters).

    Example:
        >>> digits_cnn().dimension
        810
    """
    filters, batch_size, seed = int(filters), int(batch_size), int(seed)
    _check("digits-cnn", "filters", filters, MAX_FILTERS, batch_size, seed)
    batches = f"minibatches of {batch_size}" if batch_size else "full batch"
    fields = classifier(
        "digits-cnn",
        f"A {filters}-filter 3×3 convolution, 2×2 max pooling and a softmax layer on the 8×8 digits, {batches}",
        cnn_layout(filters),
        cnn_logits,
        "patches",
        CNN_TARGET,
        batch_size,
        seed,
    )
    return Problem(**fields, options={"filters": filters, "batch_size": batch_size, "seed": seed}, configure=digits_cnn)


DIGITS_MLP = digits_mlp()
DIGITS_CNN = digits_cnn()
