"""The checks an option's value passes, as attrs validators and converters (no TensorFlow).

Each validator raises :class:`~optreg.errors.OptionError` naming the option and the value it
refused; :mod:`optreg.model.option_values` builds the options records from them, and the
hyperparameter and spec readers share :func:`is_finite_number`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import attrs

from optreg.errors import OptionError

__all__ = [
    "boolean",
    "fraction",
    "is_finite_number",
    "non_negative_or_none",
    "patterns",
    "positive_or_none",
    "regular_expressions",
    "whole_at_least",
]


def is_finite_number(value: Any) -> bool:
    """True for an int or float (not a bool) that a float64 holds as a finite number.

    Example:
        >>> [is_finite_number(v) for v in (1, 0.5, float("nan"), float("inf"), 10**400, True, "1")]
        [True, True, False, False, False, False, False]
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def non_negative_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: None, or a finite number ≥ 0."""
    if value is not None and (not is_finite_number(value) or value < 0):
        raise OptionError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def positive_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: None, or a finite number > 0."""
    if value is not None and (not is_finite_number(value) or value <= 0):
        raise OptionError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def whole_at_least(least: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """attrs validator factory: None, or a whole number ≥ ``least``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise OptionError(f"{attribute.name} must be a whole number >= {least}, got {value!r}")

    return check


def boolean(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: exactly True or False."""
    if not isinstance(value, bool):
        raise OptionError(f"{attribute.name} must be true or false, got {value!r}")


def fraction(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: a number in [0, 1]."""
    if not is_finite_number(value) or not 0 <= value <= 1:
        raise OptionError(f"{attribute.name} must be a number in [0, 1], got {value!r}")


def patterns(value: Any) -> Any:
    """attrs converter: None → (), one string → a 1-tuple, a list or tuple → a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, (list, tuple)) else value


def regular_expressions(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: a tuple of strings, each a valid regular expression."""
    if not isinstance(value, tuple):
        raise OptionError(f"{attribute.name} must be a list of regular expressions, got {value!r}")
    for pattern in value:
        if not isinstance(pattern, str):
            raise OptionError(f"{attribute.name} must hold strings, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as error:
            raise OptionError(f"{attribute.name}: {pattern!r} is not a regular expression ({error})") from None
