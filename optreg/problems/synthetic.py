"""Generated workloads with a known minimum: ``logistic-regression`` and ``noisy-quadratic``.

``logistic-regression`` is L2-regularised logistic regression on a seeded, generated data set
whose optimum was found once in float64 by Newton's method (:func:`solve_logistic`; the test
suite solves it again and compares). ``noisy-quadratic`` is the noisy quadratic model of Zhang
et al. (2019, "Which Algorithmic Choices Matter at Which Batch Sizes?"): a quadratic whose
minibatch gradients carry Gaussian noise with covariance proportional to the curvature,
divided by the batch size. Both are judged by the bench's tolerance on the known minimum.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

from optreg.errors import OptionError
from optreg.problems import MAX_DIMENSION, Problem, Tensor
from optreg.problems.networks import batched, training_losses

__all__ = [
    "LOGISTIC_OPTIMUM",
    "LOGISTIC_OPTIMUM_LOSS",
    "LOGISTIC_REGRESSION",
    "NOISY_QUADRATIC",
    "logistic_data",
    "logistic_loss",
    "logistic_regression",
    "noisy_quadratic",
    "solve_logistic",
]

#: The generated data: features, training and test rows, the generator's seed, the L2 weight.
FEATURES, LOGISTIC_TRAIN_ROWS, LOGISTIC_TEST_ROWS, DATA_SEED, L2 = 20, 800, 200, 2019, 0.01

#: The regularised training loss's minimiser (weights, then bias) and its loss, float64,
#: from :func:`solve_logistic`.
LOGISTIC_OPTIMUM = (
    0.8135868150039494, -1.3417686546592513, 0.534316170777688, -0.05829351286252521, -1.0041957718805108,
    -1.09607909237227, 1.7078417077917436, -0.2669499381756058, 0.11196993470796958, -1.3966139774659008,
    -0.09015973661089115, -0.5661096885258248, 0.21424091639252812, 0.3968645976812555, 0.3020170413423471,
    -0.3376552129713451, 0.18298250354856113, 0.024379146314515997, 0.10604965967670234, -0.14819302701256432,
    0.2648328349770458,
)
LOGISTIC_OPTIMUM_LOSS = 0.40394691952930506
#: The logistic problem's tolerance on its training loss.
LOGISTIC_TOLERANCE = 1e-5


@lru_cache(maxsize=1)
def logistic_data() -> tuple[Any, ...]:
    """The generated data as float64 NumPy arrays: train features ``[800, 20]``, train labels
    (0 or 1), test features ``[200, 20]``, test labels. Features are standard normal draws
    scaled by 1 down to 0.1 (feature ``j`` by ``10^(−j/19)``), so the loss is ill-conditioned;
    labels are drawn from a logistic model with standard normal true weights and bias 0.5, all
    from ``random.Random(2019)``.

    Example:
        >>> x_train, y_train, x_test, y_test = logistic_data()
        >>> x_train.shape, x_test.shape
        ((800, 20), (200, 20))
    """
    import numpy as np

    draw = random.Random(DATA_SEED)
    scales = [10 ** (-j / (FEATURES - 1)) for j in range(FEATURES)]
    true_weights = [draw.gauss(0.0, 1.0) for _ in range(FEATURES)]
    rows, labels = [], []
    for _ in range(LOGISTIC_TRAIN_ROWS + LOGISTIC_TEST_ROWS):
        row = [draw.gauss(0.0, 1.0) * scale for scale in scales]
        logit = sum(w * x for w, x in zip(true_weights, row)) / math.sqrt(sum(s * s for s in scales)) * 3 + 0.5
        labels.append(1.0 if draw.random() < 1 / (1 + math.exp(-logit)) else 0.0)
        rows.append(row)
    x, y = np.array(rows), np.array(labels)
    cut = LOGISTIC_TRAIN_ROWS
    return x[:cut], y[:cut], x[cut:], y[cut:]


def logistic_loss(parameters: Tensor, x: Any, y: Any, l2: float = L2) -> Tensor:
    """Mean log loss of the logistic model plus ``l2 / 2 · |weights|²`` (the bias unpenalised).

    Args:
        parameters: ``[..., 21]``: 20 weights, then the bias.
        x: ``[rows, 20]`` features.
        y: ``[rows]`` labels, 0 or 1.
        l2: the penalty's weight (0 for the held-out log loss).

    Returns:
        ``[...]`` losses.
    """
    import tensorflow as tf

    def per_run(flat: Tensor) -> Tensor:
        weights, bias = flat[:, :FEATURES], flat[:, FEATURES:]
        logits = tf.einsum("nf,rf->rn", tf.cast(x, flat.dtype), weights) + bias
        labels = tf.cast(y, flat.dtype)
        log_loss = tf.reduce_mean(tf.nn.softplus(logits) - labels * logits, axis=-1)
        return log_loss + l2 / 2 * tf.reduce_sum(tf.square(weights), axis=-1)

    return batched(parameters, per_run)


def solve_logistic(iterations: int = 50) -> tuple[tuple[float, ...], float]:
    """The regularised training loss's minimiser and its loss, by Newton's method in float64
    with NumPy (the loss is strictly convex: the L2 term makes the Hessian positive definite
    in the weights, and the bias direction has positive curvature from the data).

    Returns:
        ``(point, loss)``; the constants :data:`LOGISTIC_OPTIMUM` and :data:`LOGISTIC_OPTIMUM_LOSS`.

    Example:
        >>> point, loss = solve_logistic()
        >>> abs(loss - LOGISTIC_OPTIMUM_LOSS) < 1e-12
        True
    """
    import numpy as np

    x_train, y_train, _, _ = logistic_data()
    design = np.hstack([x_train, np.ones((len(x_train), 1))])
    penalty = np.diag([L2] * FEATURES + [0.0])
    point = np.zeros(FEATURES + 1)
    for _ in range(iterations):
        chance = 1 / (1 + np.exp(-design @ point))
        gradient = design.T @ (chance - y_train) / len(design) + penalty @ point
        hessian = design.T @ (design * (chance * (1 - chance))[:, None]) / len(design) + penalty
        point = point - np.linalg.solve(hessian, gradient)
    logits = design @ point
    loss = np.mean(np.logaddexp(0, logits) - y_train * logits) + L2 / 2 * np.sum(point[:FEATURES] ** 2)
    return tuple(float(v) for v in point), float(loss)


def logistic_regression(batch_size: int = 0, seed: int = 0) -> Problem:
    """L2-regularised logistic regression on the generated data, with its known optimum.

    Args:
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the start point (standard normal per coordinate) and the minibatch order.

    Returns:
        The :class:`Problem`, solved within 1e-5 of :data:`LOGISTIC_OPTIMUM_LOSS`; its metrics
        are ``test_loss`` (held-out log loss), ``test_accuracy`` and ``distance_to_optimum``.

    Example:
        >>> logistic_regression().dimension
        21
    """
    batch_size, seed = int(batch_size), int(seed)
    if not 0 <= batch_size <= LOGISTIC_TRAIN_ROWS:
        raise OptionError(f"logistic-regression needs 0 <= batch_size <= {LOGISTIC_TRAIN_ROWS}, got {batch_size}")
    if not -(2**31) <= seed < 2**31:
        raise OptionError(f"logistic-regression needs a seed that fits in int32, got {seed}")
    draw = random.Random(seed).gauss

    loss, batch_loss = training_losses(
        logistic_loss, lambda: logistic_data()[:2], seed, LOGISTIC_TRAIN_ROWS, batch_size
    )

    def metrics(parameters: Tensor) -> dict[str, Any]:
        import numpy as np

        _, _, x_test, y_test = logistic_data()
        points = np.asarray(parameters, np.float64).reshape(-1, FEATURES + 1)
        logits = x_test @ points[:, :FEATURES].T + points[:, FEATURES]
        return {
            "test_loss": np.asarray(logistic_loss(points, x_test, y_test, l2=0.0)),
            "test_accuracy": np.mean((logits > 0) == (y_test[:, None] > 0.5), axis=0),
            "distance_to_optimum": np.linalg.norm(points - np.array(LOGISTIC_OPTIMUM), axis=-1),
        }

    batches = f"minibatches of {batch_size}" if batch_size else "full batch"
    return Problem(
        name="logistic-regression",
        summary=f"L2-regularised logistic regression on 800 generated rows of 20 features, {batches}; "
        "optimum known (Newton's method)",
        start=tuple(draw(0.0, 1.0) for _ in range(FEATURES + 1)),
        loss=loss,
        batch_loss=batch_loss if batch_size else None,
        metrics=metrics,
        minimum=LOGISTIC_OPTIMUM,
        minimum_loss=LOGISTIC_OPTIMUM_LOSS,
        tolerance=LOGISTIC_TOLERANCE,
        options={"batch_size": batch_size, "seed": seed},
        configure=logistic_regression,
    )


def curvatures(dimension: int, condition: float) -> list[float]:
    """Curvatures spread geometrically from 1 to ``condition``.

    Example:
        >>> curvatures(3, 100.0)
        [1.0, 10.0, 100.0]
    """
    if dimension == 1:
        return [1.0]
    return [condition ** (i / (dimension - 1)) for i in range(dimension)]


def noisy_quadratic(
    dimension: int = 10, condition: float = 100.0, noise: float = 0.01, batch_size: int = 1, seed: int = 0
) -> Problem:
    """The noisy quadratic model: ``½ Σ hᵢ xᵢ²`` whose minibatch loss at iteration ``t`` is
    ``½ Σ hᵢ (xᵢ − εᵢ)²``, ``εᵢ ~ N(0, noise / (hᵢ · batch_size))`` drawn statelessly from
    ``(seed, t)``: the gradient's noise has covariance ``noise · H / batch_size``.

    Args:
        dimension: how many coordinates.
        condition: the largest curvature (the smallest is 1).
        noise: the gradient noise's scale at batch size 1.
        batch_size: divides the noise's variance; 0 gives exact gradients.
        seed: the noise's stream (every run of a loop sees the same noise).

    Returns:
        The :class:`Problem`: from all ones, minimum 0 at the origin, tolerance 1e-3.

    Example:
        >>> noisy_quadratic(dimension=3).minimum
        (0.0, 0.0, 0.0)
    """
    dimension, condition, noise = int(dimension), float(condition), float(noise)
    batch_size, seed = int(batch_size), int(seed)
    if not 1 <= dimension <= MAX_DIMENSION or not condition >= 1 or not noise >= 0 or batch_size < 0:
        raise OptionError(
            f"noisy-quadratic needs 1 <= dimension <= {MAX_DIMENSION}, condition >= 1, noise >= 0 and "
            f"batch_size >= 0, got {dimension}, {condition}, {noise} and {batch_size}"
        )
    if not -(2**31) <= seed < 2**31:
        raise OptionError(f"noisy-quadratic needs a seed that fits in int32, got {seed}")
    h = curvatures(dimension, condition)

    def loss(parameters: Tensor) -> Tensor:
        import tensorflow as tf

        parameters = tf.convert_to_tensor(parameters)
        return 0.5 * tf.reduce_sum(tf.constant(h, parameters.dtype) * tf.square(parameters), axis=-1)

    def batch_loss(parameters: Tensor, iteration: Tensor) -> Tensor:
        import tensorflow as tf

        parameters = tf.convert_to_tensor(parameters)
        key = tf.stack([tf.constant(seed, tf.int32), tf.cast(iteration, tf.int32)])
        spread = tf.constant([math.sqrt(noise / (c * batch_size)) for c in h], parameters.dtype)
        shift = tf.random.stateless_normal([dimension], seed=key, dtype=parameters.dtype) * spread
        return 0.5 * tf.reduce_sum(tf.constant(h, parameters.dtype) * tf.square(parameters - shift), axis=-1)

    stochastic = batch_size > 0 and noise > 0
    return Problem(
        name="noisy-quadratic",
        summary=f"The noisy quadratic model (Zhang et al. 2019): {dimension} dimensions, condition {condition:g}, "
        + (f"gradient noise {noise:g} / batch size {batch_size}" if stochastic else "exact gradients"),
        start=(1.0,) * dimension,
        loss=loss,
        batch_loss=batch_loss if stochastic else None,
        minimum=(0.0,) * dimension,
        minimum_loss=0.0,
        tolerance=1e-3,
        options={
            "dimension": dimension, "condition": condition, "noise": noise, "batch_size": batch_size, "seed": seed
        },
        configure=noisy_quadratic,
    )


LOGISTIC_REGRESSION = logistic_regression()
NOISY_QUADRATIC = noisy_quadratic()
