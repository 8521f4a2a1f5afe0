"""``mlp-regression``: the implementing-optimizers chapter's experiment on a shipped data set.

A multilayer perceptron with one hidden layer of ReLU units regresses disease progression on
the ten unscaled measurements of the diabetes data (``data/diabetes.csv``; origin and licence in
``data/README.md``). Its parameters are one flat vector, so a sweep stacks many networks along
a leading run axis and trains them side by side. The start point is a Glorot-uniform draw
(Keras's default for dense layers) with zero biases, seeded; minibatches, when asked for, are
reshuffled every epoch from the same seed, so two runs with one seed are identical.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from optreg.errors import OptionError
from optreg.problems import MAX_DIMENSION, Problem, Tensor

DATA_FILE = Path(__file__).parent / "data" / "diabetes.csv"


#: The measurements the network sees, in the file's column order.
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
#: Rows of the training split (the rest, 88, are the test split).
TRAIN_ROWS = 354
#: The widest hidden layer: its weights, (features + 2) per unit plus one, stay within
#: :data:`~optreg.problems.MAX_DIMENSION` parameters.
MAX_HIDDEN = (MAX_DIMENSION - 1) // (len(FEATURES) + 2)


@lru_cache(maxsize=1)
def load_data() -> tuple[Any, Any, Any, Any]:
    """The shipped data as float32 NumPy arrays: train features, train targets, test features,
    test targets (read on first use, so registering the problem costs nothing).

    Example:
        >>> x_train, y_train, x_test, y_test = load_data()
        >>> x_train.shape, x_test.shape
        ((354, 10), (88, 10))
    """
    import numpy as np

    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    parts = {}
    for split in ("train", "test"):
        chosen = [row for row in rows if row["split"] == split]
        x = np.array([[float(row[name]) for name in FEATURES] for row in chosen], np.float32)
        y = np.array([float(row["target"]) for row in chosen], np.float32)
        parts[split] = (x, y)
    return (*parts["train"], *parts["test"])


def parameter_count(features: int, hidden: int) -> int:
    """Weights and biases of a ``features → hidden → 1`` perceptron.

    Example:
        >>> parameter_count(10, 4)
        49
    """
    return features * hidden + hidden + hidden + 1


def glorot_start(features: int, hidden: int, seed: int) -> tuple[float, ...]:
    """Glorot-uniform weights and zero biases, flattened in the order :func:`predict` reads them
    (drawn with the standard library's generator, so registering the problem needs no NumPy).

    Example:
        >>> len(glorot_start(10, 4, seed=0))
        49
    """
    draw = random.Random(seed).uniform
    first_limit, second_limit = math.sqrt(6 / (features + hidden)), math.sqrt(6 / (hidden + 1))
    first = [draw(-first_limit, first_limit) for _ in range(features * hidden)]
    second = [draw(-second_limit, second_limit) for _ in range(hidden)]
    return (*first, *[0.0] * hidden, *second, 0.0)


def predict(parameters: Tensor, x: Tensor, hidden: int) -> Tensor:
    """Predictions of every network in a batch of flat parameter vectors.

    Args:
        parameters: ``[..., parameter_count]`` flat parameter vectors.
        x: ``[samples, features]`` inputs.
        hidden: the hidden layer's width.

    Returns:
        ``[..., samples]`` predictions.
    """
    import tensorflow as tf

    x = tf.cast(x, parameters.dtype)
    features = x.shape[-1]
    batch_shape = tf.shape(parameters)[:-1]
    flat = tf.reshape(parameters, [-1, parameters.shape[-1]])
    cut = features * hidden
    first = tf.reshape(flat[:, :cut], [-1, features, hidden])
    first_bias = flat[:, cut : cut + hidden]
    second = flat[:, cut + hidden : cut + 2 * hidden]
    second_bias = flat[:, cut + 2 * hidden :]
    activations = tf.nn.relu(tf.einsum("nf,rfh->rnh", x, first) + first_bias[:, None, :])
    outputs = tf.einsum("rnh,rh->rn", activations, second) + second_bias
    return tf.reshape(outputs, tf.concat([batch_shape, [x.shape[0]]], 0))


def _mse(parameters: Tensor, x: Tensor, y: Tensor, hidden: int) -> Tensor:
    import tensorflow as tf

    return tf.reduce_mean(tf.square(predict(parameters, x, hidden) - tf.cast(y, parameters.dtype)), axis=-1)


def mlp_regression(hidden: int = 4, batch_size: int = 0, seed: int = 0) -> Problem:
    """The chapter's experiment as a problem: mean squared error of a one-hidden-layer ReLU network.

    Args:
        hidden: the hidden layer's width (the chapter uses 4).
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the start point and the minibatch order.

    Returns:
        The :class:`Problem`; its metrics are the train and test losses and the train and
        test losses of the best constant prediction (the training targets' mean). Runs are
        judged by the held-out test loss, against the constant prediction's.

    Example:
        >>> mlp_regression(batch_size=32).options["batch_size"]
        32
    """
    hidden, batch_size, seed = int(hidden), int(batch_size), int(seed)
    if not 1 <= hidden <= MAX_HIDDEN or not 0 <= batch_size <= TRAIN_ROWS:
        raise OptionError(
            f"mlp-regression needs 1 <= hidden <= {MAX_HIDDEN} and 0 <= batch_size <= {TRAIN_ROWS}, "
            f"got {hidden} and {batch_size}"
        )
    if not -(2**31) <= seed < 2**31:
        raise OptionError(f"mlp-regression needs a seed that fits in int32, got {seed}")

    def loss(parameters: Tensor) -> Tensor:
        x_train, y_train, _, _ = load_data()
        return _mse(parameters, x_train, y_train, hidden)

    def metrics(parameters: Tensor) -> dict[str, Any]:
        import numpy as np

        x_train, y_train, x_test, y_test = load_data()
        runs = np.shape(parameters)[:-1]
        return {
            "train_loss": np.asarray(_mse(parameters, x_train, y_train, hidden)),
            "test_loss": np.asarray(_mse(parameters, x_test, y_test, hidden)),
            "baseline_train_loss": np.full(runs, float(np.mean((y_train - y_train.mean()) ** 2))),
            "baseline_test_loss": np.full(runs, float(np.mean((y_test - y_train.mean()) ** 2))),
        }

    return Problem(
        name="mlp-regression",
        summary=f"A {hidden}-unit ReLU network regressing the diabetes data (Efron et al. 2004), "
        + (f"minibatches of {batch_size}" if batch_size else "full batch"),
        start=glorot_start(len(FEATURES), hidden, seed),
        loss=loss,
        batch_loss=_minibatch_loss(hidden, batch_size, seed) if batch_size else None,
        metrics=metrics,
        judged_by="test_loss",
        baseline="baseline_test_loss",
        tolerance=0.0,
        options={"hidden": hidden, "batch_size": batch_size, "seed": seed},
        configure=mlp_regression,
    )


def _minibatch_loss(hidden: int, batch_size: int, seed: int) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss on iteration ``i``'s minibatch: epochs of ``len // batch_size`` batches, each
    epoch a fresh permutation drawn statelessly from ``(seed, epoch)``."""
    per_epoch = TRAIN_ROWS // batch_size

    def batch_loss(parameters: Tensor, iteration: Tensor) -> Tensor:
        import tensorflow as tf

        x_train, y_train, _, _ = load_data()
        iteration = tf.cast(iteration, tf.int32)
        epoch, position = iteration // per_epoch, iteration % per_epoch
        keys = tf.random.stateless_uniform([TRAIN_ROWS], seed=tf.stack([tf.constant(seed, tf.int32), epoch]))
        chosen = tf.slice(tf.argsort(keys), [position * batch_size], [batch_size])
        return _mse(parameters, tf.gather(x_train, chosen), tf.gather(y_train, chosen), hidden)

    return batch_loss


MLP_REGRESSION = mlp_regression()
