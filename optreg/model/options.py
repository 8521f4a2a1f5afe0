"""The step options every optimizer accepts besides gradient clipping, as in Keras 3.

* ``weight_decay``: decoupled decay, ``var ← var − var·weight_decay·learning_rate``, applied to
  every variable (but those excluded with ``exclude_from_weight_decay``) just before its update;
* ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``: a moving average of each variable,
  optionally copied into the variable every so many steps, and by ``finalize_variable_values``;
* ``gradient_accumulation_steps``: gradients are summed over that many calls and their mean
  applied on the last one;
* ``loss_scale_factor``: gradients are divided by it (``scale_loss`` multiplies a loss by it);
* ``exclude_layers``, ``exclude_embeddings``: which variables a rule's ``excluded(var)`` selects
  (regular expressions searched for in the variable's path, and any path holding
  ``embedding``), as Keras's Muon sends them to its AdamW branch. Only optimizers whose rule
  calls ``excluded(var)`` accept them.

Validation needs no TensorFlow, so a spec's ``[options]`` table is checked when it is loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from optreg.errors import OptionError

CLIPPING_OPTIONS = ("clipnorm", "global_clipnorm", "clipvalue")
#: Every option name an optimizer accepts besides its hyperparameters.
GRADIENT_OPTION_NAMES = (*CLIPPING_OPTIONS, "skip_nonfinite")


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


def _non_negative_or_none(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: None, or a finite number ≥ 0."""
    if value is not None and (not is_finite_number(value) or value < 0):
        raise OptionError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive_or_none(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: None, or a finite number > 0."""
    if value is not None and (not is_finite_number(value) or value <= 0):
        raise OptionError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _whole_at_least(least: int) -> Callable[[Any, attrs.Attribute, Any], None]:
    """attrs validator factory: None, or a whole number ≥ ``least``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise OptionError(f"{attribute.name} must be a whole number >= {least}, got {value!r}")

    return check


def _boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: exactly True or False."""
    if not isinstance(value, bool):
        raise OptionError(f"{attribute.name} must be true or false, got {value!r}")


def _fraction(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: a number in [0, 1]."""
    if not is_finite_number(value) or not 0 <= value <= 1:
        raise OptionError(f"{attribute.name} must be a number in [0, 1], got {value!r}")


def _patterns(value: Any) -> Any:
    """attrs converter: None → (), one string → a 1-tuple, a list or tuple → a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _regular_expressions(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
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


@attrs.frozen
class GradientOptions:
    """The gradient options every optimizer accepts.

    Raises:
        OptionError: a value is not a positive number, or more than one clipping option is set.

    Example:
        >>> GradientOptions(clipnorm=1.0, clipvalue=0.5)
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: set at most one of clipnorm, global_clipnorm, clipvalue; got clipnorm and clipvalue
    """

    clipnorm: float | None = attrs.field(default=None, validator=_positive_or_none)
    global_clipnorm: float | None = attrs.field(default=None, validator=_positive_or_none)
    clipvalue: float | None = attrs.field(default=None, validator=_positive_or_none)
    skip_nonfinite: bool = attrs.field(default=False, validator=_boolean)

    def __attrs_post_init__(self) -> None:
        chosen = [name for name in CLIPPING_OPTIONS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise OptionError(
                f"set at most one of {', '.join(CLIPPING_OPTIONS)}; got {' and '.join(chosen)}"
            )

    def as_dict(self) -> dict[str, float]:
        """The options that differ from their defaults, by name."""
        return {name: value for name, value in attrs.asdict(self).items() if value not in (None, False)}


@attrs.frozen
class StepOptions:
    """Weight decay, EMA, gradient accumulation and loss scaling, validated.

    Raises:
        OptionError: a value of the wrong type or out of range.

    Example:
        >>> StepOptions(gradient_accumulation_steps=1)
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: gradient_accumulation_steps must be a whole number >= 2, got 1
        >>> StepOptions(weight_decay=0.004).as_dict()
        {'weight_decay': 0.004}
    """

    weight_decay: float | None = attrs.field(default=None, validator=_non_negative_or_none)
    use_ema: bool = attrs.field(default=False, validator=_boolean)
    ema_momentum: float = attrs.field(default=0.99, validator=_fraction)
    ema_overwrite_frequency: int | None = attrs.field(default=None, validator=_whole_at_least(1))
    gradient_accumulation_steps: int | None = attrs.field(default=None, validator=_whole_at_least(2))
    loss_scale_factor: float | None = attrs.field(default=None, validator=_positive_or_none)
    exclude_layers: tuple[str, ...] = attrs.field(default=(), converter=_patterns, validator=_regular_expressions)
    exclude_embeddings: bool = attrs.field(default=False, validator=_boolean)

    def excludes(self, path: str) -> bool:
        """Whether a variable with this path is one ``excluded(var)`` selects.

        Example:
            >>> StepOptions(exclude_layers=["head"], exclude_embeddings=True).excludes("token_embedding/embeddings")
            True
            >>> StepOptions(exclude_layers=["head"]).excludes("dense/kernel")
            False
        """
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    @property
    def selects_variables(self) -> bool:
        """True when ``exclude_layers`` or ``exclude_embeddings`` is set."""
        return bool(self.exclude_layers) or self.exclude_embeddings

    def as_dict(self) -> dict[str, Any]:
        """The options that differ from their defaults, by name."""
        defaults = StepOptions()
        return {name: _plain(value) for name, value in attrs.asdict(self).items() if value != getattr(defaults, name)}

    @property
    def accumulation(self) -> int:
        """How many calls make one update (1 without gradient accumulation)."""
        return self.gradient_accumulation_steps or 1


def _plain(value: Any) -> Any:
    """A config value as JSON holds it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


#: The step options' names, in Keras's order.
STEP_OPTION_NAMES = tuple(field.name for field in attrs.fields(StepOptions))
#: The options a spec's ``[options]`` table may set defaults for.
SPEC_OPTION_NAMES = (*STEP_OPTION_NAMES, *GRADIENT_OPTION_NAMES)
#: Every keyword an optimizer accepts besides its hyperparameters (none may name a hyperparameter).
ALL_OPTION_NAMES = frozenset({*SPEC_OPTION_NAMES, "slot_dtype", "jit_compile"})


def check_spec_options(table: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a spec's ``[options]`` defaults.

    Args:
        table: option name → value.

    Returns:
        The same options, as a dict.

    Raises:
        OptionError: an unknown option, or a value that option refuses.

    Example:
        >>> check_spec_options({"weight_decay": 0.004})
        {'weight_decay': 0.004}
        >>> check_spec_options({"decay": 0.1})  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: unknown option 'decay'; allowed: clipnorm, clipvalue, ema_momentum,
        ema_overwrite_frequency, exclude_embeddings, exclude_layers, global_clipnorm, gradient_accumulation_steps,
        loss_scale_factor, skip_nonfinite, use_ema, weight_decay
    """
    for name in table:
        if name not in SPEC_OPTION_NAMES:
            raise OptionError(f"unknown option {name!r}; allowed: {', '.join(sorted(SPEC_OPTION_NAMES))}")
    StepOptions(**{k: v for k, v in table.items() if k in STEP_OPTION_NAMES})
    GradientOptions(**{k: v for k, v in table.items() if k in GRADIENT_OPTION_NAMES})
    return dict(table)
