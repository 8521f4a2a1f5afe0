"""Optimizer specs: the attrs records a spec file is read into (by :mod:`optreg.spec_reader`),
and what creating an optimizer decides from them.

A spec is one TOML file describing one optimizer::

    [optimizer]
    name = "momentum"
    summary = "Gradient descent with momentum"
    references = ["Polyak 1964"]

    [hyperparameters]
    learning_rate = { default = 1e-3, min = 0.0, doc = "step size" }
    momentum      = { default = 0.7, min = 0.0, max = 1.0, doc = "how much of the last step to keep" }

    [slots]
    delta = { init = "zeros" }

    [update]
    rule = [
      "delta = learning_rate * grad + momentum * delta",
      "var = var - delta",
    ]

Nothing here imports TensorFlow. Every problem raises :class:`~optreg.errors.SpecError`
naming the file, the key and, where it can be found, the line (:mod:`optreg.spec_lines`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import attrs

from optreg import expr, expr_check
from optreg.errors import ExpressionError, HyperparameterError, RuleError, SpecError
from optreg.options import ALL_OPTION_NAMES, is_finite_number
from optreg.spec_lines import find_line, rule_line_needle

#: Names a hyperparameter or slot may not take: the rule's builtins, the function table,
#: and the options every optimizer accepts.
RESERVED_NAMES = frozenset(expr.BUILTIN_NAMES) | frozenset(expr.FUNCTIONS) | frozenset(
    {"name", "iterations", "skipped_steps", *ALL_OPTION_NAMES}
)
SLOT_INITS = ("zeros", "ones", "var")
SLOT_DTYPES = ("float16", "bfloat16", "float32", "float64")
HYPERPARAMETER_TYPES = ("float", "int", "bool")
#: What a slot holds per variable: a tensor shaped like it, one number, or the row or column
#: statistics of its last two axes (kept as size-1 axes; one number for rank < 2).
SLOT_SHAPES = ("var", "scalar", "rows", "columns")
#: At most this many fixed bool hyperparameters may decide slots (each combination is checked).
MAX_SLOT_CONDITIONS = 8
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
OPTIMIZER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]*$")


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
    if not is_finite_number(value):
        raise HyperparameterError(f"{hyper.name} must be finite, got {show_value(value)}")
    if hyper.type == "int":
        if float(value) != int(value):
            raise HyperparameterError(f"{hyper.name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


@attrs.frozen
class Slot:
    """Per-variable state: how it starts and, optionally, its dtype.

    ``init`` is ``"zeros"``, ``"ones"``, ``"var"`` (a copy of the variable), a number to fill
    with, or the name of a number hyperparameter (its value when the slot is created or reset,
    as Keras's Adagrad starts from ``initial_accumulator_value``). ``dtype`` of None means the
    variable's own dtype. ``when`` names a fixed bool hyperparameter, or compares a number
    hyperparameter with a literal (``"momentum > 0"``, decided by the value the optimizer is
    created with): the slot exists only when it holds. ``shape`` is one of
    :data:`SLOT_SHAPES`.
    """

    name: str
    init: str | float = "zeros"
    dtype: str | None = None
    doc: str = ""
    when: str | None = None
    shape: str = "var"


@attrs.frozen
class OptimizerSpec:
    """A validated optimizer spec.

    Attributes:
        name: the short name, e.g. ``"adam"``.
        summary: one line saying what it is.
        references: papers or books, as free text.
        hyperparameters: in file order.
        slots: in file order.
        rule: the checked update rule.
        source: the file it came from, or ``"<string>"``.
        text: the TOML text it was loaded from.
        measuring_steps: how many first updates only measure the gradient and leave the
            variables where they are, by design (ADOPT: 1).
    """

    name: str
    summary: str
    references: tuple[str, ...]
    hyperparameters: tuple[Hyperparameter, ...]
    slots: tuple[Slot, ...]
    rule: expr_check.CheckedRule
    source: str = "<string>"
    #: The TOML text it was loaded from, so a saved optimizer can be rebuilt without the file.
    text: str = attrs.field(default="", repr=False, eq=False)
    #: Defaults for the optimizer options (``weight_decay``, ``clipnorm``, …) from ``[options]``,
    #: as sorted (name, value) pairs; what the caller passes overrides them.
    options: tuple[tuple[str, Any], ...] = ()
    measuring_steps: int = 0

    def option_defaults(self) -> dict[str, Any]:
        """The ``[options]`` table's defaults, by name.

        Example:
            >>> load_spec("specs/adamw.toml").option_defaults()  # doctest: +SKIP
            {'weight_decay': 0.004}
        """
        return dict(self.options)

    def defaults(self) -> dict[str, float | int | bool]:
        """Every hyperparameter's default, by name.

        Example:
            >>> from optreg.spec_reader import load_spec_text
            >>> load_spec_text('''
            ... [optimizer]
            ... name = "gd"
            ... summary = "plain steps"
            ... [hyperparameters]
            ... learning_rate = { default = 0.1 }
            ... [update]
            ... rule = ["var = var - learning_rate * grad"]
            ... ''').defaults()
            {'learning_rate': 0.1}
        """
        return {h.name: h.default for h in self.hyperparameters}


@attrs.frozen
class RuleLocation:
    """Where one line of a spec's rule is, to name it in errors raised when it is traced.

    Attributes:
        source: the spec file (or ``"<string>"``).
        rule_line: the line's 1-based position in the rule.
        file_line: its 1-based line in the file, where it can be found.
        text: the line as written.

    Example:
        >>> where = RuleLocation("x.toml", 2, 12, "var = var - matmul(grad, grad)")
        >>> str(where.error("grad has rank 1"))
        'x.toml:12: [update] rule line 2 "var = var - matmul(grad, grad)": grad has rank 1'
    """

    source: str
    rule_line: int
    file_line: int | None
    text: str

    def error(self, problem: str) -> RuleError:
        """The :class:`~optreg.errors.RuleError` for a problem of this line."""
        return RuleError(self.source, self.file_line, self.rule_line, self.text, problem)


def rule_locations(spec: "OptimizerSpec") -> tuple[RuleLocation, ...]:
    """Where each line of a spec's rule is, in rule order.

    Example:
        >>> [(w.rule_line, w.file_line) for w in rule_locations(load_spec("specs/momentum.toml"))]  # doctest: +SKIP
        [(1, 15), (2, 16)]
    """
    texts = [assignment.text for assignment in spec.rule.assignments]
    return tuple(
        RuleLocation(spec.source, index + 1, find_line(spec.text, f"update.rule[{index}]", text, texts[:index].count(text)), text)
        for index, text in enumerate(texts)
    )


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


def _check_factory(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: a ``"module:attribute"`` import path."""
    module, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not sep or not module.strip() or not name.strip():
        raise ValueError(f"factory must be 'module:attribute', got {value!r}")


def _check_optimizer_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: an optimizer name as specs allow it."""
    if not isinstance(value, str) or not OPTIMIZER_NAME_PATTERN.match(value):
        raise ValueError(f"name must be lower-case letters, digits, '_', '.' or '-', got {value!r}")


@attrs.frozen
class InnerOptimizer:
    """How a wrapper optimizer (Lookahead) takes the optimizer it wraps: by registered name,
    through one keyword, and every hyperparameter the wrapper lacks goes to the inner one.

    Attributes:
        keyword: the keyword argument naming the inner optimizer (``inner``).
        default: the registered name used when none is given.

    Example:
        >>> InnerOptimizer("inner", "adam").default
        'adam'
    """

    keyword: str
    default: str


@attrs.frozen
class PythonOptimizer:
    """An optimizer written in Python, as a plugin registers it.

    The class itself is named by import path and imported only when the optimizer is
    created, so discovering and listing plugins never imports TensorFlow.

    Attributes:
        name: the short name.
        summary: one line saying what it is.
        factory: ``"module:attribute"`` of an :class:`optreg.Optimizer` subclass.
        hyperparameters: what it accepts, with defaults and bounds (must match the class).
        references: papers or books, as free text.
        inner: for a wrapper of another optimizer, how it names that one; None otherwise.

    Example:
        >>> PythonOptimizer("sam", "Sharpness-aware minimization", "optreg_sam.optimizer:SAM").factory
        'optreg_sam.optimizer:SAM'
    """

    name: str = attrs.field(validator=_check_optimizer_name)
    summary: str
    factory: str = attrs.field(validator=_check_factory)
    hyperparameters: tuple[Hyperparameter, ...] = attrs.field(default=(), converter=tuple)
    references: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    inner: InnerOptimizer | None = None


# --- loading ----------------------------------------------------------------------------


def condition_hyperparameter(when: str) -> str | None:
    """The hyperparameter a comparison ``when`` reads (``"momentum > 0"`` → ``"momentum"``), or
    None when the text is not ``NAME OP NUMBER`` (a bool's name, or text that does not parse).

    Example:
        >>> condition_hyperparameter("momentum > 0"), condition_hyperparameter("centered")
        ('momentum', None)
    """
    try:
        node = expr.parse_expression(when)
    except ExpressionError:
        return None
    if isinstance(node, expr.Compare) and isinstance(node.left, expr.Ref) and isinstance(node.right, expr.Const):
        return node.left.name
    return None


def condition_holds(when: str, values: Mapping[str, Any]) -> bool | None:
    """Whether a slot's ``when`` holds for these hyperparameter values (None when the value it
    needs is not among them).

    Example:
        >>> condition_holds("momentum > 0", {"momentum": 0.0}), condition_holds("centered", {"centered": True})
        (False, True)
    """
    decided = expr.static_value(expr.fold(expr.parse_expression(when), values))
    return None if decided is None else bool(decided)


def specialize_rule(
    rule: expr_check.CheckedRule,
    hyperparameters: Sequence[Hyperparameter],
    slots: Sequence[Slot],
    values: Mapping[str, float | int | bool],
    truths: Mapping[str, bool],
) -> expr_check.CheckedRule:
    """The rule with fixed hyperparameter values folded in, the slots whose conditions fail
    pruned, and every ``has(slot)`` decided.

    Args:
        rule: the checked rule.
        hyperparameters: the spec's hyperparameters.
        slots: the spec's slots.
        values: fixed hyperparameter name → value, folded into the rule.
        truths: slot condition → whether it holds (a condition missing here keeps its slot).

    Raises:
        ExpressionError: a line that must run reads an absent slot (``line_index`` set).
    """
    absent = {
        slot.name: f"slot {slot.name!r} exists only when {slot.when!r} "
        + ("is true" if condition_hyperparameter(slot.when) is None else "holds")
        for slot in slots
        if slot.when and truths.get(slot.when) is False
    }
    scalar_slots = [s.name for s in slots if s.shape == "scalar"]
    return expr_check.specialize(rule, [h.name for h in hyperparameters], [s.name for s in slots], values, absent, scalar_slots)


def slot_deciding_hyperparameters(slots: Sequence[Slot]) -> set[str]:
    """The hyperparameters the slots' comparisons read (``momentum`` for ``when = "momentum > 0"``).

    Example:
        >>> slot_deciding_hyperparameters([Slot("velocity", when="momentum > 0"), Slot("h", when="centered")])
        {'momentum'}
    """
    return {condition_hyperparameter(slot.when) for slot in slots if slot.when} - {None}


def deciding_values(spec: "OptimizerSpec", given: Mapping[str, Any]) -> dict[str, float | int]:
    """The creation values of the hyperparameters that slot comparisons read (``momentum`` for
    ``when = "momentum > 0"``): given (and checked) or the defaults.

    Raises:
        HyperparameterError: such a hyperparameter given a schedule; which slots exist is decided
            once, so it takes a number.

    Example:
        >>> deciding_values(load_spec("specs/sgd.toml"), {"momentum": 0.9})  # doctest: +SKIP
        {'momentum': 0.9}
    """
    from optreg.schedules import is_schedule

    names = slot_deciding_hyperparameters(spec.slots)
    values = {}
    for hyper in spec.hyperparameters:
        if hyper.name not in names:
            continue
        value = given.get(hyper.name, hyper.default)
        if is_schedule(value):
            conditions = ", ".join(repr(s.when) for s in spec.slots if s.when and condition_hyperparameter(s.when) == hyper.name)
            raise HyperparameterError(
                f"{hyper.name} decides which slots {spec.name} keeps (when {conditions}), so it takes a number, not a schedule"
            )
        values[hyper.name] = hyper.check(value)
    return values


def fixed_values(spec: "OptimizerSpec", given: Mapping[str, Any]) -> dict[str, float | int | bool]:
    """The values of a spec's fixed hyperparameters: given (and checked) or the defaults.

    Example:
        >>> fixed_values(load_spec("specs/adam.toml"), {"amsgrad": True})  # doctest: +SKIP
        {'amsgrad': True}
    """
    return {h.name: h.check(given[h.name]) if h.name in given else h.default for h in spec.hyperparameters if h.fixed}


def specialize_spec(spec: "OptimizerSpec", values: Mapping[str, float | int | bool]) -> tuple[expr_check.CheckedRule, tuple[Slot, ...]]:
    """The rule and the present slots of a spec for given fixed hyperparameter values.

    Args:
        spec: the spec.
        values: every fixed hyperparameter's value (see :func:`fixed_values`), and the creation
            value of every hyperparameter a slot comparison reads (see :func:`deciding_values`).

    Returns:
        ``(rule, slots)``: the folded rule and the slots that exist.

    Raises:
        SpecError: a line that must run reads an absent slot; the message names the line.
    """
    fixed = {h.name for h in spec.hyperparameters if h.fixed}
    folded = {name: value for name, value in values.items() if name in fixed}
    truths = {slot.when: condition_holds(slot.when, values) for slot in spec.slots if slot.when}
    try:
        rule = specialize_rule(
            spec.rule, spec.hyperparameters, spec.slots, folded, {w: t for w, t in truths.items() if t is not None}
        )
    except ExpressionError as error:
        setting = ", ".join(f"{name} = {value!r}" for name, value in values.items())
        raise rule_line_error(spec, error, f"{error.message} (with {setting})") from None
    present = tuple(slot for slot in spec.slots if not slot.when or truths[slot.when] is not False)
    return rule, present


def rule_line_error(spec: "OptimizerSpec", error: ExpressionError, message: str) -> SpecError:
    """A SpecError naming the spec's file and the line of the rule an ExpressionError is about.

    Example:
        >>> rule_line_error(spec, error, "reads slot 'm', which does not exist")  # doctest: +SKIP
    """
    lines = [assignment.text for assignment in spec.rule.assignments]
    index = error.line_index
    if index is None:
        return SpecError(spec.source, "update.rule", message, line=find_line(spec.text, "update.rule", None))
    key = f"update.rule[{index}]"
    line = find_line(spec.text, key, rule_line_needle(lines[index]), lines[:index].count(lines[index]))
    return SpecError(spec.source, key, message, line=line)


def show_value(value: Any) -> str:
    """A short rendering of a bad value for messages.

    Example:
        >>> show_value("x" * 100)[-5:]
        'xx...'
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
