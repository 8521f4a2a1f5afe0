"""Problems given by a closed-form loss function."""

from __future__ import annotations

from optreg.problems import Problem


def quartic_loss(x):
    """L(x) = 2x⁴ + 3x³ + 2: a steep wall, a plateau at the saddle x = 0, a minimum at −9/8."""
    t = x[0]
    return 2 * t**4 + 3 * t**3 + 2


QUARTIC = Problem(
    name="quartic",
    summary="The TensorFlow Core optimizer tutorial's L(x) = 2x⁴ + 3x³ + 2 from x = 2",
    start=(2.0,),
    loss=quartic_loss,
    minimum=(-1.125,),
    tolerance=1e-3,
)

#: Every problem of this module, for the built-in plugin to register.
ANALYTIC_PROBLEMS = (QUARTIC,)
