"""Hyperparameters: their record, the checks a value passes, and merging given values over the defaults."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from optreg.errors import HyperparameterError
from optreg.model.option_checks import is_finite_number

HYPERPARAMETER_TYPES = ("float", "int", "bool")


NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@attrs.frozen
class Hyperparameter:
    """One hyperparameter: its default, type, inclusive bounds and a one-line doc.

    Example:
        >>> beta = Hyperparameter("beta_1", 0.9, "float", 0.0, 1.0, "decay of the first moment")
        >>> beta.check(0.5)
        0.5
    """

    name: str
    default: float | int | bool
    type: str = "float"
    min: float | None = None
    max: float | None = None
    doc: str = ""
    #: Chosen when the optimizer is created and folded into the rule as a constant.
    fixed: bool = False
    #: May be None (a float only; Keras Muon's ``rms_rate=None``): the rule reads whether it is
    #: set with ``given(name)``; the step holds it as NaN.
    none: bool = False
    #: May be infinite (a float only; Prodigy's ``growth_rate=inf``).
    infinite: bool = False

    def check(self, value: Any) -> float | int | bool:
        """Validate a value for this hyperparameter and return it in the declared type.

        Args:
            value: a Python number or bool.

        Returns:
            ``value`` as a float, int or bool, per :attr:`type`.

        Raises:
            HyperparameterError: wrong type, not finite, or outside ``[min, max]``;
                the message names the bound.

        Example:
            >>> Hyperparameter("momentum", 0.0, "float", 0.0, 1.0).check(2)
            Traceback (most recent call last):
            ...
            optreg.errors.HyperparameterError: momentum must be at most 1.0, got 2
        """
        if value is None and self.none:
            return None  # type: ignore[return-value]  # only for hyperparameters declared none
        converted = _convert_hyperparameter(self, value)
        if self.min is not None and converted < self.min:
            raise HyperparameterError(f"{self.name} must be at least {self.min}, got {value!r}")
        if self.max is not None and converted > self.max:
            raise HyperparameterError(f"{self.name} must be at most {self.max}, got {value!r}")
        return converted


def _convert_hyperparameter(hyper: Hyperparameter, value: Any) -> float | int | bool:
    """Convert to the declared type, refusing lossy or nonsensical conversions."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalars
    if hyper.type == "bool":
        if isinstance(value, bool):
            return value
        raise HyperparameterError(f"{hyper.name} must be true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparameterError(f"{hyper.name} must be a number, got {show_value(value)}")
    if not is_finite_number(value) and not (hyper.infinite and isinstance(value, float) and math.isinf(value)):
        raise HyperparameterError(f"{hyper.name} must be finite, got {show_value(value)}")
    if hyper.type == "int":
        if float(value) != int(value):
            raise HyperparameterError(f"{hyper.name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def check_values(hyper: Hyperparameter, values: Sequence[Any]) -> list[float | int | bool]:
    """Check many values of one hyperparameter (a swept column) as :meth:`Hyperparameter.check`
    checks each, in bulk where the column allows it.

    A column of plain floats for a float hyperparameter, or of bools for a bool one, is checked
    by a few passes over the whole column (finite, at least ``min``, at most ``max``; a bool
    column of an unbounded bool hyperparameter needs none); any other
    column, or one a bulk pass finds a bad value in, is checked value by value, so the first bad
    value raises exactly the error ``check`` raises for it.

    Args:
        hyper: the hyperparameter.
        values: its values, one per setting.

    Returns:
        The checked values, in order, each as ``check`` returns it.

    Raises:
        HyperparameterError: the first bad value's, as :meth:`Hyperparameter.check` words it.

    Example:
        >>> check_values(Hyperparameter("momentum", 0.0, "float", 0.0, 1.0), [0.5, 0.9])
        [0.5, 0.9]
    """
    kinds = set(map(type, values))
    if kinds == {float} and hyper.type == "float":
        finite = not any(map(math.isnan, values)) if hyper.infinite else all(map(math.isfinite, values))
        low_ok = hyper.min is None or min(values) >= hyper.min
        high_ok = hyper.max is None or max(values) <= hyper.max
        if finite and low_ok and high_ok:
            return list(values)
    elif kinds == {bool} and hyper.type == "bool" and hyper.min is None and hyper.max is None:
        return list(values)
    return [hyper.check(value) for value in values]


def as_float64(value: float | int | bool | None) -> float:
    """A checked hyperparameter value as the float a step holds: None (a ``none`` hyperparameter
    left unset) as NaN, which ``given(name)`` reads as 0.

    Example:
        >>> as_float64(3), as_float64(None)
        (3.0, nan)
    """
    return math.nan if value is None else float(value)


def from_float64(hyper: Hyperparameter, value: float) -> float | int | bool | None:
    """The Python value of a hyperparameter a step holds as ``value`` (see :func:`as_float64`).

    Example:
        >>> from_float64(Hyperparameter("rms", 0.2, none=True), math.nan) is None
        True
    """
    if hyper.none and math.isnan(value):
        return None
    converted: float | int | bool = {"bool": bool, "int": int}.get(hyper.type, float)(value)
    return converted


def resolve_hyperparameters(
    specs: Sequence[Hyperparameter], given: Mapping[str, Any], optimizer: str = ""
) -> dict[str, float | int | bool]:
    """Merge given hyperparameters over the defaults, checking names, types and bounds.

    Args:
        specs: the optimizer's hyperparameters.
        given: the values the user passed.
        optimizer: the optimizer's name, for messages.

    Returns:
        name → checked value, for every hyperparameter.

    Raises:
        HyperparameterError: an unknown name, or a bad value (the message names the bound).

    Example:
        >>> resolve_hyperparameters([Hyperparameter("learning_rate", 0.1, min=0.0)], {})
        {'learning_rate': 0.1}
    """
    known = {spec.name: spec for spec in specs}
    for name in given:
        if name not in known:
            raise HyperparameterError(unknown_hyperparameter_message(optimizer, name, specs))
    return {name: spec.check(given[name]) if name in given else spec.default for name, spec in known.items()}


def unknown_hyperparameter_message(optimizer: str, name: str, specs: Sequence[Hyperparameter]) -> str:
    """The message for a hyperparameter an optimizer does not have, listing those it has."""
    accepted = ", ".join(spec.name for spec in specs) or "none"
    owner = f"{optimizer!r} " if optimizer else ""
    return f"optimizer {owner}has no hyperparameter {name!r}; it accepts: {accepted}"


def show_value(value: Any) -> str:
    """A short rendering of a bad value for messages.

    Example:
        >>> show_value("x" * 100)[-5:]
        'xx...'
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
