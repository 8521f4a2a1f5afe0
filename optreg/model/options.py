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

The options are validated by :mod:`optreg.model.option_values` (:class:`GradientOptions`,
:class:`StepOptions`), with the checks of :mod:`optreg.model.option_checks`; neither needs
TensorFlow, so a spec's ``[options]`` table is checked when it is loaded.

Every option is described once, in :data:`OPTIONS` (one :class:`Option` record each: name,
default, one-line doc, group, whether a spec may set it). The name lists
(:data:`STEP_OPTION_NAMES`, :data:`GRADIENT_OPTION_NAMES`, :data:`SPEC_OPTION_NAMES`,
:data:`ALL_OPTION_NAMES`), the docs' table (:func:`option_table_markdown`), the paragraph
optimizer docstrings splice in (:func:`options_docstring`), ``optreg bench --help`` and the
split of an optimizer's keyword arguments (:func:`split_options`) are all derived from it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from optreg.errors import OptionError

__all__ = [
    "ALL_OPTION_NAMES",
    "CLIPPING_OPTIONS",
    "GRADIENT_OPTION_NAMES",
    "OPTIONS",
    "RUNTIME_OPTION_NAMES",
    "SPEC_OPTION_NAMES",
    "STEP_OPTION_NAMES",
    "Option",
    "OptionGroup",
    "option",
    "option_table_markdown",
    "options_docstring",
    "split_options",
]

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
