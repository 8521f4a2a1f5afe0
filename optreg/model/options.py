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

Every option is described once, in :data:`OPTIONS` (one :class:`Option` record each: name,
default, one-line doc, group, whether a spec may set it). The name lists
(:data:`STEP_OPTION_NAMES`, :data:`GRADIENT_OPTION_NAMES`, :data:`SPEC_OPTION_NAMES`,
:data:`ALL_OPTION_NAMES`), the docs' table (:func:`option_table_markdown`), the paragraph
optimizer docstrings splice in (:func:`options_docstring`), ``optreg bench --help`` and the
split of an optimizer's keyword arguments (:func:`split_options`) are all derived from it.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from optreg.errors import OptionError

#: Which part of an optimizer an option configures: its gradients (before the update), its
#: step (around the update), or how it runs (slot dtype, compilation).
OptionGroup = Literal["gradient", "step", "runtime"]


@attrs.frozen
class Option:
    """One optimizer option, described once.

    Attributes:
        name: the keyword argument.
        default: its value when not given (as the validated options hold it).
        doc: one line saying what it does (reStructuredText inline markup: ````code````).
        group: ``"gradient"`` (:class:`GradientOptions`), ``"step"`` (:class:`StepOptions`)
            or ``"runtime"`` (checked by the optimizer itself: ``slot_dtype``, ``jit_compile``).
        in_spec: whether a spec's ``[options]`` table may set its default.

    Example:
        >>> option("clipnorm").group, option("jit_compile").in_spec
        ('gradient', False)
    """

    name: str
    default: Any
    doc: str
    group: OptionGroup
    in_spec: bool = True


#: Every option an optimizer accepts besides its hyperparameters, in the constructor's order
#: (none may name a hyperparameter).
OPTIONS: tuple[Option, ...] = (
    Option("clipnorm", None, "rescale each gradient tensor to at most this L2 norm", "gradient"),
    Option("global_clipnorm", None, "rescale all gradients together to at most this joint L2 norm", "gradient"),
    Option("clipvalue", None, "limit each gradient element to ``[-clipvalue, clipvalue]``", "gradient"),
    Option(
        "skip_nonfinite", False,
        "skip, whole, every step whose gradients hold a NaN or an infinity (``skipped_steps`` counts them)",
        "gradient",
    ),
    Option(
        "slot_dtype", None,
        "the dtype of every slot (``\"float32\"`` for bfloat16 or float16 variables), overriding the spec's; "
        "None keeps the spec's, or the variable's own",
        "runtime", in_spec=False,
    ),
    Option(
        "jit_compile", "auto",
        "compile each step into one XLA computation: True, False, or ``\"auto\"`` "
        "(XLA except under a distribution strategy)",
        "runtime", in_spec=False,
    ),
    Option(
        "sparse_updates", "exact",
        "what a step does with a ``tf.IndexedSlices`` gradient: ``\"exact\"`` (only the touched rows change "
        "where the rule makes that the dense result, else densify), ``\"lazy\"`` (only the touched rows and "
        "their slots change, as LazyAdam: a different algorithm) or ``\"dense\"``",
        "runtime", in_spec=False,
    ),
    Option(
        "weight_decay", None,
        "decoupled decay, ``var -= var * weight_decay * learning_rate``, before each update", "step",
    ),
    Option("use_ema", False, "keep a moving average of every variable", "step"),
    Option("ema_momentum", 0.99, "the moving average's momentum", "step"),
    Option("ema_overwrite_frequency", None, "copy the averages into the variables every so many updates", "step"),
    Option(
        "gradient_accumulation_steps", None,
        "apply the mean gradient of that many calls, once per that many calls", "step",
    ),
    Option("loss_scale_factor", None, "divide every gradient by it (``scale_loss`` multiplies a loss by it)", "step"),
    Option(
        "exclude_layers", (),
        "regular expressions searched for in each variable's path; a match makes the rule's "
        "``excluded(var)`` 1 (only for rules that call it, such as Muon's)",
        "step",
    ),
    Option("exclude_embeddings", False, "``excluded(var)`` is also 1 for every path holding \"embedding\"", "step"),
)

_BY_NAME = {record.name: record for record in OPTIONS}


def option(name: str) -> Option:
    """The record of one option.

    Raises:
        OptionError: no option of that name.

    Example:
        >>> option("ema_momentum").default
        0.99
    """
    if name not in _BY_NAME:
        raise OptionError(f"unknown option {name!r}; options: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def _names(group: OptionGroup) -> tuple[str, ...]:
    return tuple(record.name for record in OPTIONS if record.group == group)


CLIPPING_OPTIONS = ("clipnorm", "global_clipnorm", "clipvalue")
#: The gradient options' names (:class:`GradientOptions`).
GRADIENT_OPTION_NAMES = _names("gradient")
#: The step options' names, in Keras's order (:class:`StepOptions`).
STEP_OPTION_NAMES = _names("step")
#: The options checked by the optimizer itself rather than by an options class.
RUNTIME_OPTION_NAMES = _names("runtime")
#: The options a spec's ``[options]`` table may set defaults for.
SPEC_OPTION_NAMES = tuple(record.name for record in OPTIONS if record.in_spec)
#: Every keyword an optimizer accepts besides its hyperparameters (none may name a hyperparameter).
ALL_OPTION_NAMES = frozenset(_BY_NAME)


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


def split_options(
    kwargs: Mapping[str, Any], names: Iterable[str] = ALL_OPTION_NAMES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer's keyword arguments into hyperparameters and options.

    Args:
        kwargs: keyword arguments, as an optimizer or a bench setting takes them.
        names: the keywords that count as options: by default every option
            (:data:`ALL_OPTION_NAMES`); a caller that takes fewer (the options a spec may set)
            or more (a wrapper's ``inner``) passes its own.

    Returns:
        ``(hyperparameters, options)``, each in the order ``kwargs`` gave them.

    Example:
        >>> split_options({"learning_rate": 0.1, "clipnorm": 1.0, "jit_compile": False})
        ({'learning_rate': 0.1}, {'clipnorm': 1.0, 'jit_compile': False})
        >>> split_options({"inner": "sgd", "sync_period": 5}, names={*SPEC_OPTION_NAMES, "inner"})
        ({'sync_period': 5}, {'inner': 'sgd'})
    """
    chosen = set(names)
    hyperparameters = {key: value for key, value in kwargs.items() if key not in chosen}
    options = {key: value for key, value in kwargs.items() if key in chosen}
    return hyperparameters, options


def _literal(value: Any) -> str:
    """A default as a reader writes it: a string in double quotes, a tuple as a list.

    Example:
        >>> _literal("auto"), _literal(()), _literal(None)
        ('"auto"', '[]', 'None')
    """
    if isinstance(value, str):
        return f'"{value}"'
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def option_table_markdown() -> str:
    """The options as a markdown table (for ``docs/options.md``): name, default, group,
    whether a spec's ``[options]`` may set it, and what it does.

    Example:
        >>> print(option_table_markdown().splitlines()[0])
        | option | default | group | in a spec's `[options]` | what it does |
        >>> print(option_table_markdown().splitlines()[2])
        | `clipnorm` | `None` | gradient | yes | rescale each gradient tensor to at most this L2 norm |
        >>> len(option_table_markdown().splitlines()) == len(OPTIONS) + 2
        True
    """
    lines = [
        "| option | default | group | in a spec's `[options]` | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in OPTIONS:
        doc = record.doc.replace("``", "`").replace("|", "\\|")
        spec = "yes" if record.in_spec else "no"
        lines.append(f"| `{record.name}` | `{_literal(record.default)}` | {record.group} | {spec} | {doc} |")
    return "\n".join(lines) + "\n"


def options_docstring(indent: str = "        ", width: int = 100) -> str:
    """The options as ``Args:`` entries of an optimizer's docstring, written once and spliced
    into each (as Keras 3 does with its ``base_optimizer_keyword_args``).

    The first line has no indent and the others ``indent`` (continuations four spaces more),
    so the text replaces a placeholder standing where the first entry goes.

    Args:
        indent: the indent of the ``Args:`` entries in the docstring it goes into.
        width: the longest line, indent included.

    Example:
        >>> doc = '''Args:
        ...         {options}
        ... '''
        >>> print(doc.format(options=options_docstring()).splitlines()[1])
                clipnorm: rescale each gradient tensor to at most this L2 norm; default None.
    """
    entries = [
        textwrap.fill(
            f"{record.name}: {record.doc}; default {_literal(record.default)}.",
            width=width,
            initial_indent=indent,
            subsequent_indent=indent + "    ",
            break_on_hyphens=False,
            break_long_words=False,
        )
        for record in OPTIONS
    ]
    return "\n".join(entries)[len(indent):]
