"""optreg-classics: optimizers outside optreg's core set, written as TOML specs only,
and the three-hump camel loss problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optreg
from optreg.problems import Problem


def three_hump_camel(x: Any) -> Any:
    """2x² − 1.05x⁴ + x⁶/6 + xy + y²: three local minima, the global one at the origin."""
    a, b = x[..., 0], x[..., 1]
    return 2 * a**2 - 1.05 * a**4 + a**6 / 6 + a * b + b**2


@optreg.hookimpl
def optreg_spec_paths() -> list[Path]:
    """The specs shipped inside this package."""
    return [Path(__file__).parent / "specs"]


@optreg.hookimpl
def optreg_register_problems(register: Callable[[Problem], None]) -> None:
    """The three-hump camel function, started inside the global minimum's basin."""
    register(
        Problem(
            name="three_hump_camel",
            summary="Three-hump camel: 2x² − 1.05x⁴ + x⁶/6 + xy + y², global minimum at (0, 0)",
            start=(0.8, -0.6),
            loss=three_hump_camel,
            minimum=(0.0, 0.0),
            minimum_loss=0.0,
            tolerance=1e-3,
        )
    )
