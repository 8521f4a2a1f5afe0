"""Problems given by a closed-form loss: the tutorial's quartic and the classic test functions.

Every loss reads the coordinates from the last axis (``x[..., 0]``, ``x[..., 1]``), so one call
evaluates a whole batch of runs.
"""

from __future__ import annotations

import math

from optreg.problems import MAX_DIMENSION, Problem, Tensor


def quartic_loss(x: Tensor) -> Tensor:
    """L(x) = 2x⁴ + 3x³ + 2: a steep wall, a plateau at the saddle x = 0, a minimum at −9/8."""
    t = x[..., 0]
    return 2 * t**4 + 3 * t**3 + 2


def rosenbrock_loss(x: Tensor) -> Tensor:
    """(1 − x)² + 100 (y − x²)²: a curved, narrow valley with its minimum at (1, 1)."""
    a, b = x[..., 0], x[..., 1]
    return (1 - a) ** 2 + 100 * (b - a**2) ** 2


def beale_loss(x: Tensor) -> Tensor:
    """Beale's function: flat plateaus and sharp ridges, minimum 0 at (3, ½)."""
    a, b = x[..., 0], x[..., 1]
    return (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2


def booth_loss(x: Tensor) -> Tensor:
    """Booth's function, a plain quadratic with minimum 0 at (1, 3)."""
    a, b = x[..., 0], x[..., 1]
    return (a + 2 * b - 7) ** 2 + (2 * a + b - 5) ** 2


def himmelblau_loss(x: Tensor) -> Tensor:
    """Himmelblau's function: four minima of loss 0, at (3, 2) among others."""
    a, b = x[..., 0], x[..., 1]
    return (a**2 + b - 11) ** 2 + (a + b**2 - 7) ** 2


def rastrigin_loss(x: Tensor) -> Tensor:
    """Rastrigin's function in 2-D: a bowl covered in local minima, global minimum 0 at the origin."""
    import tensorflow as tf

    return 20 + tf.reduce_sum(x**2 - 10 * tf.cos(2 * math.pi * x), axis=-1)


QUARTIC = Problem(
    name="quartic",
    summary="The TensorFlow Core optimizer tutorial's L(x) = 2x⁴ + 3x³ + 2 from x = 2",
    start=(2.0,),
    loss=quartic_loss,
    minimum=(-1.125,),
    minimum_loss=2 * 1.125**4 - 3 * 1.125**3 + 2,
    tolerance=1e-5,
)

ROSENBROCK = Problem(
    name="rosenbrock",
    summary="Rosenbrock's banana valley (1 − x)² + 100(y − x²)² from the standard start (−1.2, 1)",
    start=(-1.2, 1.0),
    loss=rosenbrock_loss,
    minimum=(1.0, 1.0),
    minimum_loss=0.0,
    tolerance=1e-4,
)

BEALE = Problem(
    name="beale",
    summary="Beale's function from (1, 1): plateaus and ridges around the minimum at (3, ½)",
    start=(1.0, 1.0),
    loss=beale_loss,
    minimum=(3.0, 0.5),
    minimum_loss=0.0,
    tolerance=1e-4,
)

BOOTH = Problem(
    name="booth",
    summary="Booth's quadratic (x + 2y − 7)² + (2x + y − 5)² from the origin",
    start=(0.0, 0.0),
    loss=booth_loss,
    minimum=(1.0, 3.0),
    minimum_loss=0.0,
    tolerance=1e-4,
)

HIMMELBLAU = Problem(
    name="himmelblau",
    summary="Himmelblau's function from the origin: four minima of loss 0",
    start=(0.0, 0.0),
    loss=himmelblau_loss,
    minimum=(3.0, 2.0),
    minimum_loss=0.0,
    tolerance=1e-4,
)

RASTRIGIN = Problem(
    name="rastrigin",
    summary="Rastrigin's function in 2-D from (2.5, 2.5): local minima everywhere, the global one at 0",
    start=(2.5, 2.5),
    loss=rastrigin_loss,
    minimum=(0.0, 0.0),
    minimum_loss=0.0,
    tolerance=1e-3,
)

def quadratic(dimension: int = 10, condition: float = 100.0) -> Problem:
    """An ill-conditioned quadratic bowl ½ Σ λᵢ xᵢ², its curvatures λᵢ spread geometrically from 1
    to ``condition``, from the all-ones start.

    Example:
        >>> quadratic(dimension=2, condition=4.0).start
        (1.0, 1.0)
    """
    dimension, condition = int(dimension), float(condition)
    if not 1 <= dimension <= MAX_DIMENSION or not 1 <= condition < math.inf:
        from optreg.errors import OptionError

        raise OptionError(
            f"quadratic needs 1 <= dimension <= {MAX_DIMENSION} and a finite condition >= 1, "
            f"got {dimension} and {condition}"
        )
    curvatures = tuple(condition ** (i / max(dimension - 1, 1)) for i in range(dimension))

    def loss(x: Tensor) -> Tensor:
        import tensorflow as tf

        return 0.5 * tf.reduce_sum(tf.constant(curvatures, x.dtype) * tf.square(x), axis=-1)

    return Problem(
        name="quadratic",
        summary=f"An ill-conditioned quadratic bowl: {dimension} dimensions, condition number {condition:g}",
        start=(1.0,) * dimension,
        loss=loss,
        minimum=(0.0,) * dimension,
        minimum_loss=0.0,
        tolerance=1e-6,
        options={"dimension": dimension, "condition": condition},
        configure=quadratic,
    )


QUADRATIC = quadratic()

#: Every problem of this module, for the built-in plugin to register.
ANALYTIC_PROBLEMS = (QUARTIC, QUADRATIC, ROSENBROCK, BEALE, BOOTH, HIMMELBLAU, RASTRIGIN)
