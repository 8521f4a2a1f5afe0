"""Optimizer specs: the attrs records and the TOML loader that validates into them.

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

Loading never imports TensorFlow. Every problem raises :class:`~optreg.errors.SpecError`
naming the file, the key and, where it can be found, the line.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from optreg import expr, expr_check, expr_ranks
from optreg.errors import ExpressionError, HyperparameterError, OptionError, RuleError, SpecError, SpecErrors
from optreg.options import ALL_OPTION_NAMES, check_spec_options, is_finite_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_OPTIMIZER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]*$")


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
        raise HyperparameterError(f"{hyper.name} must be a number, got {_show(value)}")
    if not is_finite_number(value):
        raise HyperparameterError(f"{hyper.name} must be finite, got {_show(value)}")
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
        RuleLocation(spec.source, index + 1, _find_line(spec.text, f"update.rule[{index}]", text, texts[:index].count(text)), text)
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
    if not isinstance(value, str) or not _OPTIMIZER_NAME_PATTERN.match(value):
        raise ValueError(f"name must be lower-case letters, digits, '_', '.' or '-', got {value!r}")


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

    Example:
        >>> PythonOptimizer("sam", "Sharpness-aware minimization", "optreg_sam.optimizer:SAM").factory
        'optreg_sam.optimizer:SAM'
    """

    name: str = attrs.field(validator=_check_optimizer_name)
    summary: str
    factory: str = attrs.field(validator=_check_factory)
    hyperparameters: tuple[Hyperparameter, ...] = attrs.field(default=(), converter=tuple)
    references: tuple[str, ...] = attrs.field(default=(), converter=tuple)


# --- loading ----------------------------------------------------------------------------


def load_spec(path: str | Path) -> OptimizerSpec:
    """Load and validate one spec file.

    Args:
        path: the TOML file.

    Returns:
        The validated :class:`OptimizerSpec`.

    Raises:
        SpecError: the file cannot be read or is not a valid spec; the message names the
            file, the key and, where it can be found, the line.

    Example:
        >>> load_spec("specs/adam.toml").name  # doctest: +SKIP
        'adam'
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), "", f"cannot read the spec: {error}") from None
    return load_spec_text(text, source=str(path))


def spec_files(path: str | Path) -> list[Path]:
    """The spec files a path names: a folder's ``*.toml`` files in name order, or the path itself.

    Example:
        >>> [p.name for p in spec_files("specs")][:2]  # doctest: +SKIP
        ['adam.toml', 'gradient_descent.toml']
    """
    path = Path(path)
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]


def load_spec_text(text: str, source: str = "<string>") -> OptimizerSpec:
    """Validate spec text (the contents of a TOML file).

    Args:
        text: the TOML text.
        source: what to call it in error messages.

    Returns:
        The validated :class:`OptimizerSpec`.

    Raises:
        SpecError: as :func:`load_spec`.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(source, "", f"TOML syntax error: {error}", line=_toml_error_line(error, text)) from None
    except (RecursionError, ValueError) as error:
        raise SpecError(source, "", f"TOML cannot be read: {type(error).__name__}") from None
    return _SpecReader(text, source).read(document)


class _SpecReader:
    """Turns a parsed TOML document into an :class:`OptimizerSpec`, key by key.

    It reads past what it can: each hyperparameter, slot, rule line and option is checked on
    its own, and every error found is reported (the first one raised holds them all). An
    entry at fault still counts as defined, so the rule is not blamed for reading it.
    """

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.errors: list[SpecError] = []
        #: Names of the hyperparameter and slot entries at fault.
        self.unread_hyperparameters: list[str] = []
        self.unread_slots: list[str] = []

    def collect(self, read, *args, default=None):
        """Run one part of the reading that stands on its own, e.g. ``collect(self.read_slots,
        table, hyperparameters)``: its SpecError is recorded, and ``default`` returned in place
        of its result, so the reading goes on with the next part."""
        try:
            return read(*args)
        except SpecError as error:
            self.errors.append(error)
            return default

    def fail(self, key: str, message: str, needle: str | None = None, occurrence: int = 0) -> SpecError:
        """A SpecError for this file and key, with the key's line when it can be found.

        ``needle`` is text to look for instead of the key; ``occurrence`` picks which of
        several identical lines (0 for the first).
        """
        return SpecError(self.source, key, message, line=_find_line(self.text, key, needle, occurrence))

    def read(self, document: Mapping[str, Any]) -> OptimizerSpec:
        """Validate the whole document.

        Raises:
            SpecError: the error found; when there are several, a
                :class:`~optreg.errors.SpecErrors` holding every one, in file order.
        """
        self.collect(self.table_keys, "", document, {"optimizer", "update"}, {"hyperparameters", "slots", "options"})
        header = self.collect(self.read_header, document["optimizer"]) if "optimizer" in document else None
        before = len(self.errors)
        hyperparameters = self.collect(self.read_hyperparameters, document.get("hyperparameters", {}))
        slots = self.collect(self.read_slots, document.get("slots", {}), hyperparameters or ())
        update = document.get("update")
        rule = None
        if update is not None:
            rule = self.collect(self.read_rule, update, hyperparameters or (), slots or (), None not in (hyperparameters, slots))
        if rule is not None and len(self.errors) == before:
            self.collect(self.check_slot_conditions, rule, hyperparameters, slots)
        options = self.collect(self.read_options, document.get("options", {}))
        measuring_steps = self.collect(self.read_measuring_steps, update) if isinstance(update, dict) else 0
        if self.errors:
            errors = sorted(self.errors, key=lambda error: error.line or 0)  # in file order; whole-file errors first
            raise errors[0] if len(errors) == 1 else SpecErrors(errors)
        return OptimizerSpec(
            name=header["name"],
            summary=header["summary"],
            references=header["references"],
            hyperparameters=hyperparameters,
            slots=slots,
            rule=rule,
            source=self.source,
            text=self.text,
            options=options,
            measuring_steps=measuring_steps,
        )

    def require_table(self, key: str, table: Any) -> None:
        """Require a TOML table."""
        if not isinstance(table, dict):
            raise self.fail(key, f"must be a table, got {_show(table)}")

    def table_keys(self, key: str, table: Any, required: set[str], optional: set[str]) -> bool:
        """Require a table with exactly the allowed keys: each unknown or missing key is
        recorded; True when every required key is there (so the table can be read)."""
        self.require_table(key, table)
        for name in table:
            if name not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                self.errors.append(self.fail(_join(key, name), f"unknown key {name!r}; allowed: {allowed}", needle=name))
        missing = sorted(required - set(table))
        for name in missing:
            self.errors.append(self.fail(_join(key, name) if key else name, f"missing required key {name!r}"))
        return not missing

    def read_header(self, table: Any) -> dict[str, Any]:
        """The [optimizer] table: name, summary, references (each field checked on its own)."""
        self.table_keys("optimizer", table, required={"name", "summary"}, optional={"references"})
        name = self.collect(self.optimizer_name, table["name"]) if "name" in table else None
        references = self.collect(self.references, table.get("references", []))
        summary = self.collect(self.string, "optimizer.summary", table["summary"]) if "summary" in table else None
        return {"name": name, "summary": summary, "references": references}

    def optimizer_name(self, value: Any) -> str:
        """``[optimizer] name``: lower-case letters, digits, '_', '.' or '-'."""
        name = self.string("optimizer.name", value)
        if not _OPTIMIZER_NAME_PATTERN.match(name):
            raise self.fail("optimizer.name", f"must be lower-case letters, digits, '_', '.' or '-', got {name!r}")
        return name

    def references(self, references: Any) -> tuple[str, ...]:
        """``[optimizer] references``: a list of non-empty strings."""
        if not isinstance(references, list):
            raise self.fail("optimizer.references", f"must be a list of strings, got {_show(references)}")
        for index, reference in enumerate(references):
            self.collect(self.string, f"optimizer.references[{index}]", reference)
        return tuple(references)

    def string(self, key: str, value: Any) -> str:
        """Require a non-empty single-line string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {_show(value)}")
        return value.strip()

    def read_hyperparameters(self, table: Any) -> tuple[Hyperparameter, ...]:
        """The [hyperparameters] table: the entries read, each on its own; the names of those at
        fault go to :attr:`unread_hyperparameters`."""
        self.require_table("hyperparameters", table)
        read = []
        for name, entry in table.items():
            hyper = self.collect(self.read_hyperparameter, name, entry)
            if hyper is None:
                self.unread_hyperparameters.append(name)
            else:
                read.append(hyper)
        return tuple(read)

    def read_hyperparameter(self, name: str, entry: Any) -> Hyperparameter | None:
        """One hyperparameter: default (required), type, min, max, doc; None without a default."""
        key = f"hyperparameters.{name}"
        self.check_name(key, name)
        if not self.table_keys(key, entry, required={"default"}, optional={"type", "min", "max", "doc", "fixed"}):
            return None
        default = entry["default"]
        kind = entry.get("type", _type_of(default))
        if kind not in HYPERPARAMETER_TYPES:
            raise self.fail(key, f"type must be one of {', '.join(HYPERPARAMETER_TYPES)}, got {_show(kind)}")
        bounds = {bound: self.bound(key, bound, entry.get(bound), kind) for bound in ("min", "max")}
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise self.fail(key, f"min ({bounds['min']}) is greater than max ({bounds['max']})")
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise self.fail(key, f"doc must be a string, got {_show(doc)}")
        fixed = entry.get("fixed", False)
        if not isinstance(fixed, bool):
            raise self.fail(key, f"fixed must be true or false, got {_show(fixed)}")
        if fixed and kind == "float":
            raise self.fail(key, "only a bool or int hyperparameter can be fixed")
        hyper = Hyperparameter(name, default, kind, bounds["min"], bounds["max"], doc.strip(), fixed)
        try:
            return attrs.evolve(hyper, default=hyper.check(default))
        except HyperparameterError as error:
            raise self.fail(key, f"default: {error}") from None

    def bound(self, key: str, bound: str, value: Any, kind: str) -> float | None:
        """A min or max: absent, or a finite number (never on a bool)."""
        if value is None:
            return None
        if kind == "bool":
            raise self.fail(key, f"a bool hyperparameter has no {bound}")
        if not is_finite_number(value):
            raise self.fail(key, f"{bound} must be a finite number, got {_show(value)}")
        return float(value)

    def check_name(self, key: str, name: str) -> None:
        """Hyperparameter and slot names: lower-case identifiers, not reserved."""
        if not _NAME_PATTERN.match(name):
            raise self.fail(key, f"name must be a lower-case identifier, got {name!r}", needle=name)
        if name in RESERVED_NAMES:
            raise self.fail(key, f"{name!r} is reserved", needle=name)

    def read_slots(self, table: Any, hyperparameters: Sequence[Hyperparameter]) -> tuple[Slot, ...]:
        """The [slots] table: the entries read, each on its own; the names of those at fault go
        to :attr:`unread_slots`."""
        self.require_table("slots", table)
        hypers = {h.name: h for h in hyperparameters}
        read = []
        for name, entry in table.items():
            slot = self.collect(self.read_slot, name, entry, hypers)
            if slot is None:
                self.unread_slots.append(name)
            else:
                read.append(slot)
        return tuple(read)

    def read_slot(self, name: str, entry: Any, hypers: Mapping[str, Hyperparameter]) -> Slot:
        """One slot: init, dtype, doc, when and shape."""
        key = f"slots.{name}"
        self.check_name(key, name)
        if name in hypers or name in self.unread_hyperparameters:
            raise self.fail(key, f"{name!r} is already a hyperparameter")
        self.table_keys(key, entry, required=set(), optional={"init", "dtype", "doc", "when", "shape"})
        init = entry.get("init", "zeros")
        numeric = is_finite_number(init)
        named = isinstance(init, str) and (init in hypers and hypers[init].type != "bool" or init in self.unread_hyperparameters)
        if init not in SLOT_INITS and not numeric and not named:
            raise self.fail(
                key, f"init must be {', '.join(SLOT_INITS)}, a finite number or a number hyperparameter's name, got {_show(init)}"
            )
        dtype = entry.get("dtype")
        if dtype is not None and dtype not in SLOT_DTYPES:
            raise self.fail(key, f"dtype must be one of {', '.join(SLOT_DTYPES)}, got {_show(dtype)}")
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise self.fail(key, f"doc must be a string, got {_show(doc)}")
        shape = entry.get("shape", "var")
        if shape not in SLOT_SHAPES:
            raise self.fail(key, f"shape must be one of {', '.join(SLOT_SHAPES)}, got {_show(shape)}")
        if init == "var" and shape != "var":
            raise self.fail(key, f"init 'var' needs shape 'var', got {shape!r}")
        return Slot(name, float(init) if numeric else init, dtype, doc.strip(), self.slot_condition(key, entry, hypers), shape)

    def slot_condition(self, key: str, entry: Mapping[str, Any], hypers: Mapping[str, Hyperparameter]) -> str | None:
        """A slot's ``when``: absent, the name of a fixed bool hyperparameter, or a comparison of
        a number hyperparameter with a literal."""
        when = entry.get("when")
        if when is None:
            return None
        hyper = hypers.get(when) if isinstance(when, str) else None
        if hyper is not None and hyper.type == "bool" and hyper.fixed:
            return when
        deciding = condition_hyperparameter(when) if isinstance(when, str) else None
        if when in self.unread_hyperparameters or deciding in self.unread_hyperparameters:
            return " ".join(when.split())  # its hyperparameter is at fault, and reported
        if deciding is None or deciding not in hypers or hypers[deciding].type == "bool":
            raise self.fail(
                key,
                "when must name a fixed bool hyperparameter or compare a number hyperparameter "
                f"with a literal (such as 'momentum > 0'), got {_show(when)}",
            )
        return " ".join(when.split())

    def check_slot_conditions(self, rule: expr_check.CheckedRule, hyperparameters, slots) -> None:
        """Check the rule under every combination of the conditions that decide slots that some
        hyperparameter values can produce."""
        conditions = sorted({slot.when for slot in slots if slot.when})
        if len(conditions) > MAX_SLOT_CONDITIONS:
            raise self.fail("slots", f"at most {MAX_SLOT_CONDITIONS} conditions may decide slots")
        faulty_lines = set()
        for truths in _possible_truths(conditions, hyperparameters):
            fold = {name: bit for name, bit in truths.items() if name in {h.name for h in hyperparameters}}
            try:
                specialize_rule(rule, hyperparameters, slots, fold, truths)
            except ExpressionError as error:
                if error.line_index not in faulty_lines:  # each line once, with the first setting it fails in
                    faulty_lines.add(error.line_index)
                    setting = ", ".join(_describe_condition(name, value) for name, value in truths.items())
                    self.errors.append(self.rule_error(error, f"{error.message} (with {setting})"))

    def rule_error(self, error: ExpressionError, message: str) -> SpecError:
        """A SpecError for an ExpressionError raised while checking the rule."""
        index = error.line_index
        key = "update.rule" if index is None else f"update.rule[{index}]"
        needle = None if index is None else _needle(self.raw_lines[index])
        occurrence = 0 if index is None else self.raw_lines[:index].count(self.raw_lines[index])
        return self.fail(key, message, needle, occurrence)

    def read_options(self, table: Any) -> tuple[tuple[str, Any], ...]:
        """The [options] table: defaults for the optimizer options, each checked."""
        self.require_table("options", table)
        before = len(self.errors)
        for name, value in table.items():
            try:
                check_spec_options({name: value})
            except OptionError as error:
                self.errors.append(self.fail(f"options.{name}", str(error)))
        if len(self.errors) > before:
            return ()
        try:
            return tuple(sorted(check_spec_options(table).items()))
        except OptionError as error:  # options that conflict, such as two clipping options
            raise self.fail("options", str(error)) from None

    def read_measuring_steps(self, table: Mapping[str, Any]) -> int:
        """``[update] measuring_steps``: a whole number of first updates that leave the variables
        where they are (0 when absent)."""
        steps = table.get("measuring_steps", 0)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise self.fail("update.measuring_steps", f"must be a whole number >= 0, got {_show(steps)}")
        return steps

    def read_rule(self, table: Any, hyperparameters, slots, names_known: bool = True) -> expr_check.CheckedRule | None:
        """The [update] table: an ordered, non-empty list of assignments, each line parsed and
        checked on its own. None when any line is at fault (each is recorded); ``names_known``
        False (the hyperparameter or slot table is not a table) checks only the parsing."""
        if not self.table_keys("update", table, required={"rule"}, optional={"measuring_steps"}):
            return None
        lines = table["rule"]
        self.raw_lines = lines
        if not isinstance(lines, list) or not lines:
            raise self.fail("update.rule", f"must be a non-empty list of assignments, got {_show(lines)}")
        parsed, faults = [], {}  # faults: line index (len(lines) for the whole rule) → its errors
        for index, line in enumerate(lines):
            try:
                parsed.append(self.parse_line(index, line))
            except SpecError as error:
                parsed.append(None)
                faults[index] = [error]
        if names_known:
            self.check_lines(lines, parsed, hyperparameters, slots, faults)
        self.errors.extend(error for index in sorted(faults) for error in faults[index])  # in line order
        return None if faults or not names_known else expr_check.check_rule(parsed, *self.rule_names(hyperparameters, slots))

    def check_lines(self, lines: list, parsed: list, hyperparameters, slots, faults: dict) -> None:
        """Check the parsed rule lines (None for those that did not parse): names and assignments,
        then the shape errors certain for every variable rank (on the lines without a fault yet).
        Each error goes into ``faults`` by line index."""
        unparsed = [expr.assignment_target(line) for line, assignment in zip(lines, parsed) if assignment is None]
        errors = expr_check.rule_errors(parsed, *self.rule_names(hyperparameters, slots), assumed=[t for t in unparsed if t])
        for error in errors:
            # a line that does not parse may be the one assigning var: say nothing of the whole rule then
            if error.line_index is not None or not unparsed:
                faults.setdefault(len(lines) if error.line_index is None else error.line_index, []).append(
                    self.rule_error(error, error.message)
                )
        unfaulted = [None if index in faults else assignment for index, assignment in enumerate(parsed)]
        hyperparameter_names = [h.name for h in hyperparameters] + self.unread_hyperparameters
        for error in expr_ranks.rank_errors(unfaulted, hyperparameter_names, {s.name: s.shape for s in slots}):
            faults.setdefault(error.line_index, []).append(self.rule_error(error, error.message))

    def rule_names(self, hyperparameters, slots) -> tuple[list[str], list[str], list[str]]:
        """The names the rule checker needs: hyperparameters and slots (those at fault included,
        so reading them is no error of the rule) and the scalar slots."""
        return (
            [h.name for h in hyperparameters] + self.unread_hyperparameters,
            [s.name for s in slots] + self.unread_slots,
            [s.name for s in slots if s.shape == "scalar"],
        )

    def parse_line(self, index: int, line: Any) -> expr.Assignment:
        """Rule line ``index`` parsed, or its SpecError."""
        try:
            return expr.parse_assignment(line)
        except ExpressionError as error:
            raise self.fail(f"update.rule[{index}]", error.message, _needle(line), self.raw_lines[:index].count(line)) from None


def _possible_truths(conditions: Sequence[str], hyperparameters: Sequence[Hyperparameter]) -> list[dict[str, bool]]:
    """Every combination of the slot conditions that values within the bounds can produce: a
    fixed bool is either, and the comparisons of one hyperparameter are tried at each literal
    and on either side of it (so ``momentum > 0`` and ``momentum <= 0`` never both hold)."""
    bounds = {h.name: h for h in hyperparameters}
    by_name: dict[str, list[str]] = {}
    for when in conditions:
        by_name.setdefault(condition_hyperparameter(when) or when, []).append(when)
    choices = []
    for name, whens in by_name.items():
        if whens == [name]:  # a fixed bool
            choices.append([{name: False}, {name: True}])
            continue
        literals = [expr.parse_expression(when).right.value for when in whens]
        candidates = {v + step for v in literals for step in (-max(1.0, abs(v)) * 1e-6, 0.0, max(1.0, abs(v)) * 1e-6)}
        hyper = bounds[name]
        inside = [v for v in candidates if (hyper.min is None or v >= hyper.min) and (hyper.max is None or v <= hyper.max)]
        outcomes = {tuple(condition_holds(when, {name: v}) for when in whens) for v in inside or candidates}
        choices.append([dict(zip(whens, outcome)) for outcome in sorted(outcomes)])
    return [dict(kv for part in combination for kv in part.items()) for combination in itertools.product(*choices)]


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


def _describe_condition(when: str, holds: bool) -> str:
    """``centered = true`` for a bool's value, ``(momentum > 0) is false`` for a comparison."""
    return f"{when} = {str(holds).lower()}" if condition_hyperparameter(when) is None else f"({when}) is {str(holds).lower()}"


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
        reader = _SpecReader(spec.text, spec.source)
        reader.raw_lines = [a.text for a in spec.rule.assignments]
        setting = ", ".join(f"{name} = {value!r}" for name, value in values.items())
        raise reader.rule_error(error, f"{error.message} (with {setting})") from None
    present = tuple(slot for slot in spec.slots if not slot.when or truths[slot.when] is not False)
    return rule, present


def _toml_error_line(error: Exception, text: str) -> int | None:
    """The line a TOML syntax error is on: from ``lineno`` (Python 3.14) or the message's
    "(at line N, column M)"; an error "at end of document" (an array, table or string left
    open) is on the last line.

    Example:
        >>> _toml_error_line(ValueError("Invalid value (at line 3, column 11)"), "")
        3
        >>> _toml_error_line(ValueError("Unclosed array (at end of document)"), "rule = [")
        1
    """
    line = getattr(error, "lineno", None)
    if line is None:
        found = re.search(r"at line (\d+)", str(error))
        line = int(found.group(1)) if found else None
    if line is None and "at end of document" in str(error):
        line = max(1, len(text.splitlines()))
    return line


def _type_of(default: Any) -> str:
    """The hyperparameter type a default implies."""
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    return "float"


def _join(prefix: str, name: str) -> str:
    """A dotted key."""
    return f"{prefix}.{name}" if prefix else name


def _show(value: Any) -> str:
    """A short rendering of a bad value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _needle(line: Any) -> str | None:
    """A rule line's text to find it in the file."""
    return line.strip() if isinstance(line, str) and line.strip() else None


def _find_line(text: str, key: str, needle: str | None, occurrence: int = 0) -> int | None:
    """The 1-based line where a key (or the ``occurrence``-th copy of a piece of text) appears."""
    target = needle if needle is not None else key.split(".")[-1].split("[")[0]
    if not target:
        return None
    lines = text.splitlines()
    header = "[" + key.rsplit(".", 1)[0] + "]" if "." in key else None
    start = next((i for i, line in enumerate(lines) if header and line.strip() == header), 0)
    pattern = re.compile(r"^\s*\[?\s*" + re.escape(target) + r"\s*[\]=]") if needle is None else None
    spellings = {target, json.dumps(target)[1:-1]}  # as written, or escaped in a basic string
    matches = [
        number
        for number, line in enumerate(lines[start:], start=start + 1)
        if (pattern.search(line) if pattern else any(spelling in line for spelling in spellings))
    ]
    return matches[min(occurrence, len(matches) - 1)] if matches else None
