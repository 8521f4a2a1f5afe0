"""Small networks whose parameters are one flat vector per run, for the workload problems.

A :class:`Layout` names the blocks of a flat parameter vector (weights and biases, in order);
:meth:`Layout.unpack` cuts a batch of vectors ``[runs, size]`` into one tensor per block with
the run axis in front, so every run's network is evaluated side by side by ``einsum``. The
start point is Glorot-uniform weights and zero biases, drawn with the standard library's
generator so that building a problem needs neither NumPy nor TensorFlow.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from optreg.problems import Tensor

__all__ = [
    "Block",
    "Layout",
    "batched",
    "cross_entropy",
    "minibatch_rows",
    "training_losses",
]


@attrs.frozen
class Block:
    """One block of a flat parameter vector.

    Attributes:
        name: what the network calls it, e.g. ``"hidden_weights"``.
        shape: its shape within one run.
        fans: ``(fan_in, fan_out)`` for a Glorot-uniform start; None for a bias (starts at zero).

    Example:
        >>> Block("w", (64, 32), fans=(64, 32)).size
        2048
    """

    name: str
    shape: tuple[int, ...]
    fans: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        """How many numbers the block holds."""
        return math.prod(self.shape)


@attrs.frozen
class Layout:
    """The blocks of a flat parameter vector, in order.

    Example:
        >>> layout = Layout((Block("w", (3, 2), fans=(3, 2)), Block("b", (2,))))
        >>> layout.size, len(layout.glorot_start(seed=0))
        (8, 8)
    """

    blocks: tuple[Block, ...]

    @property
    def size(self) -> int:
        """How many parameters one run has."""
        return sum(block.size for block in self.blocks)

    def glorot_start(self, seed: int) -> tuple[float, ...]:
        """Glorot-uniform weights (limit √(6 / (fan_in + fan_out)), Keras's default for dense and
        convolution layers) and zero biases, block after block, from ``random.Random(seed)``.

        Example:
            >>> Layout((Block("b", (2,)),)).glorot_start(seed=3)
            (0.0, 0.0)
        """
        draw = random.Random(seed).uniform
        values: list[float] = []
        for block in self.blocks:
            if block.fans is None:
                values.extend([0.0] * block.size)
                continue
            limit = math.sqrt(6 / sum(block.fans))
            values.extend(draw(-limit, limit) for _ in range(block.size))
        return tuple(values)

    def unpack(self, flat: Tensor) -> dict[str, Tensor]:
        """Cut ``[runs, size]`` parameter vectors into ``name → [runs, *shape]`` tensors.

        Example:
            >>> layout.unpack(tf.zeros([5, layout.size]))["w"].shape  # doctest: +SKIP
            TensorShape([5, 3, 2])
        """
        import tensorflow as tf

        pieces = tf.split(flat, [block.size for block in self.blocks], axis=-1)
        return {block.name: tf.reshape(piece, [-1, *block.shape]) for block, piece in zip(self.blocks, pieces)}


def batched(parameters: Tensor, per_run: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply a function of ``[runs, size]`` vectors returning ``[runs]`` to parameters of any
    batch shape ``[..., size]`` (a single vector gives a scalar).

    Args:
        parameters: ``[..., size]`` parameter vectors (a tensor, a variable or a NumPy array).
        per_run: ``[runs, size]`` → ``[runs]``.

    Returns:
        ``[...]``: one figure per vector.

    Example:
        >>> batched(tf.ones([2, 3, 4]), lambda p: tf.reduce_sum(p, -1)).shape  # doctest: +SKIP
        TensorShape([2, 3])
    """
    import tensorflow as tf

    parameters = tf.convert_to_tensor(parameters)
    flat = tf.reshape(parameters, [-1, parameters.shape[-1]])
    return tf.reshape(per_run(flat), tf.shape(parameters)[:-1])


def cross_entropy(logits: Tensor, labels: Sequence[int] | Tensor, classes: int) -> Tensor:
    """Mean softmax cross-entropy of ``[runs, samples, classes]`` logits against integer labels.

    Returns:
        ``[runs]``: each run's mean over the samples of ``logsumexp(logits) − logits[label]``.

    Example:
        >>> cross_entropy(tf.zeros([1, 4, 10]), [0, 1, 2, 3], 10)  # doctest: +SKIP
        <tf.Tensor: ... numpy=array([2.3025851], dtype=float32)>
    """
    import tensorflow as tf

    chosen = tf.reduce_sum(logits * tf.one_hot(labels, classes, dtype=logits.dtype), axis=-1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=-1) - chosen, axis=-1)


def minibatch_rows(seed: int, iteration: Tensor, rows: int, batch_size: int) -> Tensor:
    """The rows of an iteration's minibatch: epochs of ``rows // batch_size`` batches, each epoch
    a fresh permutation drawn statelessly from ``(seed, epoch)`` (the rows left over at the end
    of a permutation wait for the next epoch), so two runs with one seed see the same batches.

    Example:
        >>> minibatch_rows(0, tf.constant(3), rows=10, batch_size=4).shape  # doctest: +SKIP
        TensorShape([4])
    """
    import tensorflow as tf

    per_epoch = rows // batch_size
    iteration = tf.cast(iteration, tf.int32)
    epoch, position = iteration // per_epoch, iteration % per_epoch
    keys = tf.random.stateless_uniform([rows], seed=tf.stack([tf.constant(seed, tf.int32), epoch]))
    return tf.slice(tf.argsort(keys), [position * batch_size], [batch_size])


def training_losses(
    split_loss: Callable[..., Tensor],
    train_arrays: Callable[[], Sequence[Any]],
    seed: int,
    rows: int,
    batch_size: int,
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """A problem's full-batch loss and its minibatch loss, from the loss of any split.

    Args:
        split_loss: ``split_loss(parameters, *arrays)``, the loss on the given rows.
        train_arrays: the training split's arrays (inputs, and targets where there are any),
            each with ``rows`` rows; called when a loss is built.
        seed: orders the minibatches (:func:`minibatch_rows`).
        rows: the training split's rows.
        batch_size: the minibatch size (the minibatch loss is unused at 0).

    Returns:
        ``(loss(parameters), batch_loss(parameters, iteration))``.

    Example:
        >>> loss, batch_loss = training_losses(mse, lambda: (x, y), seed=0, rows=354, batch_size=32)  # doctest: +SKIP
    """

    def loss(parameters: Tensor) -> Tensor:
        return split_loss(parameters, *train_arrays())

    def batch_loss(parameters: Tensor, iteration: Tensor) -> Tensor:
        import tensorflow as tf

        picked = minibatch_rows(seed, iteration, rows, batch_size)
        return split_loss(parameters, *(tf.gather(array, picked) for array in train_arrays()))

    return loss, batch_loss
