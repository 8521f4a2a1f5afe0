"""Hyperparameter grids from the command line: ``--lr`` values and ``--set NAME=V[,V…]``."""

from __future__ import annotations

import itertools
import re
from typing import Iterable, Sequence

from optreg.errors import HyperparameterError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_value(text: str) -> float | int | bool:
    """One value of a ``--set``: ``true``/``false``, an integer or a float.

    Raises:
        HyperparameterError: the text is none of those.

    Example:
        >>> [parse_value(t) for t in ("0.9", "3", "true")]
        [0.9, 3, True]
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(lowered)
    except ValueError:
        pass
    try:
        return float(lowered)
    except ValueError:
        raise HyperparameterError(f"{text.strip()!r} is not a number or true/false") from None


def parse_setting(text: str) -> tuple[str, list[float | int | bool]]:
    """Parse ``NAME=V`` or ``NAME=V1,V2,…``.

    Raises:
        HyperparameterError: the text is not of that form.

    Example:
        >>> parse_setting("beta_1=0.8,0.9")
        ('beta_1', [0.8, 0.9])
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name) or not values.strip():
        raise HyperparameterError(f"--set expects NAME=VALUE[,VALUE...], got {text!r}")
    return name, [parse_value(part) for part in values.split(",")]


def settings_grid(learning_rates: Sequence[float], settings: Iterable[str]) -> list[dict]:
    """Every combination of the given values, in command-line order.

    Args:
        learning_rates: the ``--lr`` values (for ``learning_rate``).
        settings: the ``--set`` texts; a name given twice adds values.

    Returns:
        One dict of explicitly set hyperparameters per run; ``[{}]`` when nothing is set.

    Example:
        >>> settings_grid([0.1, 0.01], ["momentum=0.5"])
        [{'learning_rate': 0.1, 'momentum': 0.5}, {'learning_rate': 0.01, 'momentum': 0.5}]
    """
    axes: dict[str, list] = {}
    if learning_rates:
        axes["learning_rate"] = [float(lr) for lr in learning_rates]
    for text in settings:
        name, values = parse_setting(text)
        axes.setdefault(name, []).extend(values)
    names = list(axes)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]
