"""Hyperparameter grids from the command line: ``--lr`` values and ``--set NAME=V[,V…]``.

A value may also be a range: ``logspace:START:STOP:N`` (N values spaced evenly on a log scale,
both ends included) or ``linspace:START:STOP:N`` (evenly spaced), or a random sample:
``lograndom:LOW:HIGH:N[:SEED]`` (N values drawn uniformly on a log scale between LOW and HIGH,
as random search draws learning rates) or ``random:LOW:HIGH:N[:SEED]`` (uniformly), drawn from
Python's ``random.Random(SEED)`` (SEED 0 when not given), so the same text gives the same values
on every machine. Every combination of the given values runs.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence

from optreg.errors import HyperparameterError, OptionError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The most values one range may expand to.
MAX_RANGE = 100_000
#: The most runs one bench may make: combinations of the grid × optimizers × problems.
MAX_RUNS = 100_000
#: One command-line value: a number, true/false, or a name.
Value = float | int | bool | str


def parse_values(text: str) -> list[Value]:
    """One command-line value or range: a number, ``true``/``false``, a name,
    ``logspace:START:STOP:N`` / ``linspace:START:STOP:N``, or a seeded random sample
    ``lograndom:LOW:HIGH:N[:SEED]`` / ``random:LOW:HIGH:N[:SEED]`` (sorted, low to high).

    Raises:
        HyperparameterError: the text is none of those, or the range is malformed.

    Example:
        >>> parse_values("logspace:1e-3:1e-1:3")
        [0.001, 0.01, 0.1]
        >>> parse_values("linspace:0:1:3")
        [0.0, 0.5, 1.0]
        >>> parse_values("lograndom:1e-4:1:3:7") == parse_values("lograndom:1e-4:1:3:7")
        True
    """
    kind, sep, rest = text.strip().partition(":")
    if not sep or (_VALUE_NAME.match(text.strip()) and kind not in _RANGES):
        return [parse_value(text)]
    if kind not in _RANGES:
        raise HyperparameterError(
            f"{text.strip()!r}: a range is logspace:START:STOP:N, linspace:START:STOP:N, "
            f"lograndom:LOW:HIGH:N[:SEED] or random:LOW:HIGH:N[:SEED]"
        )
    start, stop, count, seed = _range_parts(text.strip(), kind, rest.split(":"))
    if kind in ("logspace", "lograndom") and (start <= 0 or stop <= 0):
        raise HyperparameterError(f"{text.strip()!r}: {kind} needs positive ends")
    if kind == "logspace":
        return list(_spaced(math.log10(start), math.log10(stop), count, lambda x: 10.0**x))
    if kind == "linspace":
        return list(_spaced(start, stop, count, float))
    if start > stop:
        raise HyperparameterError(f"{text.strip()!r}: LOW must not be above HIGH")
    draw = random.Random(seed)
    if kind == "lograndom":
        low, high = math.log10(start), math.log10(stop)
        return sorted(float(f"{10.0 ** draw.uniform(low, high):.12g}") for _ in range(count))
    return sorted(float(f"{draw.uniform(start, stop):.12g}") for _ in range(count))


#: The range kinds a value may name.
_RANGES = ("logspace", "linspace", "lograndom", "random")


def _range_parts(text: str, kind: str, parts: list[str]) -> tuple[float, float, int, int]:
    """START, STOP, N and the seed (0 unless a random range gives one) of a range's text.

    Raises:
        HyperparameterError: not numbers and an integer N (and seed), or N out of bounds.
    """
    seeded = kind in ("lograndom", "random")
    form = f"{kind}:LOW:HIGH:N[:SEED]" if seeded else f"{kind}:START:STOP:N"
    try:
        if len(parts) not in ((3, 4) if seeded else (3,)):
            raise ValueError
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        seed = int(parts[3]) if len(parts) == 4 else 0
        if not (math.isfinite(start) and math.isfinite(stop)):
            raise ValueError
    except ValueError:
        raise HyperparameterError(
            f"{text!r}: expected {form} with finite numbers and an integer N{' and SEED' if seeded else ''}"
        ) from None
    if not 1 <= count <= MAX_RANGE:
        raise HyperparameterError(f"{text!r}: N must be between 1 and {MAX_RANGE}")
    return start, stop, count, seed


def _spaced(start: float, stop: float, count: int, transform: Callable[[float], float]) -> list[float]:
    """``count`` values from start to stop (both included), mapped through ``transform``."""
    if count == 1:
        return [transform(start)]
    step = (stop - start) / (count - 1)
    return [float(f"{transform(start + i * step):.12g}") for i in range(count)]


def parse_value(text: str) -> Value:
    """One value of a ``--set``: ``true``/``false``, an integer, a float, or a name (such as the
    optimizer lookahead's ``inner`` wraps; a hyperparameter refuses it when the run is planned).

    Raises:
        HyperparameterError: the text is none of those.

    Example:
        >>> [parse_value(t) for t in ("0.9", "3", "true", "radam")]
        [0.9, 3, True, 'radam']
    """
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for number in (int, float):
        try:
            return number(lowered)
        except ValueError:
            pass
    if _VALUE_NAME.match(stripped):
        return stripped
    raise HyperparameterError(f"{stripped!r} is not a number, true/false or a name")


#: A value that names something (an optimizer, qualified or not): letters first.
_VALUE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*(:[A-Za-z][A-Za-z0-9_.-]*)?$")


def parse_setting(text: str) -> tuple[str, list[Value]]:
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
    return name, parse_value_list(values)


def parse_value_list(text: str) -> list[Value]:
    """Comma-separated values and ranges, each as :func:`parse_values` reads it.

    Example:
        >>> parse_value_list("0.1,linspace:0:1:3")
        [0.1, 0.0, 0.5, 1.0]
    """
    return [value for part in text.split(",") for value in parse_values(part)]


def settings_grid(learning_rates: Sequence[float | str], settings: Iterable[str]) -> list[dict[str, Value]]:
    """Every combination of the given values, in command-line order.

    Args:
        learning_rates: the ``--lr`` values or ranges (for ``learning_rate``), each possibly
            several separated by commas.
        settings: the ``--set`` texts; a name given twice adds values.

    Returns:
        One dict of explicitly set hyperparameters per run; ``[{}]`` when nothing is set.

    Example:
        >>> settings_grid([0.1, 0.01], ["momentum=0.5"])
        [{'learning_rate': 0.1, 'momentum': 0.5}, {'learning_rate': 0.01, 'momentum': 0.5}]
    """
    axes: dict[str, list[Value]] = {}
    if learning_rates:
        axes["learning_rate"] = [_number("--lr", v) for lr in learning_rates for v in parse_value_list(str(lr))]
    for text in settings:
        name, values = parse_setting(text)
        axes.setdefault(name, []).extend(values)
    check_run_count(math.prod(len(values) for values in axes.values()), "the --lr and --set values make")
    names = list(axes)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]


def check_run_count(runs: int, what: str) -> None:
    """Refuse more than :data:`MAX_RUNS` runs, before any is listed.

    Args:
        runs: how many runs there would be.
        what: what makes them, for the message (``"the --lr and --set values make"``).

    Raises:
        OptionError: more than MAX_RUNS.

    Example:
        >>> check_run_count(10**10, "the --lr and --set values make")
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: the --lr and --set values make 10000000000 runs, more than the limit of 100000
    """
    if runs > MAX_RUNS:
        raise OptionError(f"{what} {runs} runs, more than the limit of {MAX_RUNS}")


def _number(option: str, value: float | int | bool | str) -> float:
    """A value of an option that takes numbers only, as a float.

    Raises:
        HyperparameterError: the value is a name or true/false.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparameterError(f"{option} takes numbers, got {value!r}")
    return float(value)
