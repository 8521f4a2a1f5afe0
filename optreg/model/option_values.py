"""The options an optimizer was given, validated: :class:`GradientOptions` (clipping and the
non-finite policy), :class:`StepOptions` (weight decay, EMA, accumulation, loss scaling, the
variables ``excluded(var)`` selects) and a spec's ``[options]`` defaults (:func:`check_spec_options`).

Their fields are the options of :data:`optreg.model.options.OPTIONS` of the matching group
(a test keeps the two equal); validation needs no TensorFlow, so a spec's ``[options]`` table is
checked when it is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from optreg.errors import OptionError
from optreg.model.option_checks import (
    boolean,
    fraction,
    non_negative_or_none,
    patterns,
    positive_or_none,
    regular_expressions,
    whole_at_least,
)
from optreg.model.options import CLIPPING_OPTIONS, GRADIENT_OPTION_NAMES, SPEC_OPTION_NAMES, STEP_OPTION_NAMES

__all__ = ["GradientOptions", "StepOptions", "check_spec_options"]


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

    clipnorm: float | None = attrs.field(default=None, validator=positive_or_none)
    global_clipnorm: float | None = attrs.field(default=None, validator=positive_or_none)
    clipvalue: float | None = attrs.field(default=None, validator=positive_or_none)
    skip_nonfinite: bool = attrs.field(default=False, validator=boolean)

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

    weight_decay: float | None = attrs.field(default=None, validator=non_negative_or_none)
    use_ema: bool = attrs.field(default=False, validator=boolean)
    ema_momentum: float = attrs.field(default=0.99, validator=fraction)
    ema_overwrite_frequency: int | None = attrs.field(default=None, validator=whole_at_least(1))
    gradient_accumulation_steps: int | None = attrs.field(default=None, validator=whole_at_least(2))
    loss_scale_factor: float | None = attrs.field(default=None, validator=positive_or_none)
    exclude_layers: tuple[str, ...] = attrs.field(default=(), converter=patterns, validator=regular_expressions)
    exclude_embeddings: bool = attrs.field(default=False, validator=boolean)

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
