"""Loading specs: ``load_spec`` and ``load_spec_text`` read a spec's TOML into the records of
:mod:`optreg.model.definitions`, key by key, reporting every error with its file, line and key. Like the
rest of loading, it never imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from optreg.lang import parse
from optreg.lang import tree
from optreg.lang import check as expr_check
from optreg.lang import ranks as expr_ranks
from optreg.errors import ExpressionError, HyperparameterError, OptionError, SpecError, SpecErrors
from optreg.model.options import check_spec_options, is_finite_number
from optreg.spec.locations import find_line, rule_line_needle
from optreg.model.hyperparameters import HYPERPARAMETER_TYPES, NAME_PATTERN, Hyperparameter, show_value
from optreg.model.definitions import MAX_SLOT_CONDITIONS, OPTIMIZER_NAME_PATTERN, RESERVED_NAMES, SLOT_DTYPES, SLOT_INITS, SLOT_SHAPES, OptimizerSpec, Slot
from optreg.spec.conditions import condition_hyperparameter
from optreg.spec.slot_check import describe_setting, slot_condition_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: The largest spec file (and spec text) read, in bytes: 1 MiB, about 200 times the largest
#: built-in spec (``specs/muon.toml``, 5.3 KB). A larger file is refused before it is read.
MAX_SPEC_BYTES = 1 << 20


def read_spec_text(text: str, source: str = "<string>") -> OptimizerSpec:
    """Parse and validate spec text (what :func:`load_spec_text` does).

    Raises:
        SpecError: the TOML does not parse, or the spec is invalid (every error, in file order).

    Example:
        >>> try:
        ...     read_spec_text("[optimizer]\\nname = 'x'")
        ... except SpecError as error:
        ...     print(*error.errors, sep="\\n")
        <string>: [update] missing required key 'update'
        <string>: [optimizer.summary] missing required key 'summary'
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(source, "", f"TOML syntax error: {error}", line=_toml_error_line(error, text)) from None
    except (RecursionError, ValueError) as error:
        raise SpecError(source, "", f"TOML cannot be read: {type(error).__name__}") from None
    return SpecReader(text, source).read(document)


class SpecReader:
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
        return SpecError(self.source, key, message, line=find_line(self.text, key, needle, occurrence))

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
            raise self.fail(key, f"must be a table, got {show_value(table)}")

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
        if not OPTIMIZER_NAME_PATTERN.match(name):
            raise self.fail("optimizer.name", f"must be lower-case letters, digits, '_', '.' or '-', got {name!r}")
        return name

    def references(self, references: Any) -> tuple[str, ...]:
        """``[optimizer] references``: a list of non-empty strings."""
        if not isinstance(references, list):
            raise self.fail("optimizer.references", f"must be a list of strings, got {show_value(references)}")
        for index, reference in enumerate(references):
            self.collect(self.string, f"optimizer.references[{index}]", reference)
        return tuple(references)

    def string(self, key: str, value: Any) -> str:
        """Require a non-empty single-line string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {show_value(value)}")
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
            raise self.fail(key, f"type must be one of {', '.join(HYPERPARAMETER_TYPES)}, got {show_value(kind)}")
        bounds = {bound: self.bound(key, bound, entry.get(bound), kind) for bound in ("min", "max")}
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise self.fail(key, f"min ({bounds['min']}) is greater than max ({bounds['max']})")
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise self.fail(key, f"doc must be a string, got {show_value(doc)}")
        fixed = entry.get("fixed", False)
        if not isinstance(fixed, bool):
            raise self.fail(key, f"fixed must be true or false, got {show_value(fixed)}")
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
            raise self.fail(key, f"{bound} must be a finite number, got {show_value(value)}")
        return float(value)

    def check_name(self, key: str, name: str) -> None:
        """Hyperparameter and slot names: lower-case identifiers, not reserved."""
        if not NAME_PATTERN.match(name):
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
                key, f"init must be {', '.join(SLOT_INITS)}, a finite number or a number hyperparameter's name, got {show_value(init)}"
            )
        dtype = entry.get("dtype")
        if dtype is not None and dtype not in SLOT_DTYPES:
            raise self.fail(key, f"dtype must be one of {', '.join(SLOT_DTYPES)}, got {show_value(dtype)}")
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise self.fail(key, f"doc must be a string, got {show_value(doc)}")
        shape = entry.get("shape", "var")
        if shape not in SLOT_SHAPES:
            raise self.fail(key, f"shape must be one of {', '.join(SLOT_SHAPES)}, got {show_value(shape)}")
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
                f"with a literal (such as 'momentum > 0'), got {show_value(when)}",
            )
        return " ".join(when.split())

    def check_slot_conditions(self, rule: expr_check.CheckedRule, hyperparameters, slots) -> None:
        """Check the rule under every combination of the conditions that decide slots that some
        hyperparameter values can produce (in one pass: see :mod:`optreg.spec.slot_check`)."""
        conditions = sorted({slot.when for slot in slots if slot.when})
        if len(conditions) > MAX_SLOT_CONDITIONS:
            raise self.fail("slots", f"at most {MAX_SLOT_CONDITIONS} conditions may decide slots")
        try:
            failures = slot_condition_errors(rule, hyperparameters, slots, conditions)
        except ExpressionError as error:
            raise self.rule_error(error, error.message) from None
        for error, truths in failures:
            self.errors.append(self.rule_error(error, f"{error.message} (with {describe_setting(truths)})"))

    def rule_error(self, error: ExpressionError, message: str) -> SpecError:
        """A SpecError for an ExpressionError raised while checking the rule."""
        index = error.line_index
        key = "update.rule" if index is None else f"update.rule[{index}]"
        needle = None if index is None else rule_line_needle(self.raw_lines[index])
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
            raise self.fail("update.measuring_steps", f"must be a whole number >= 0, got {show_value(steps)}")
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
            raise self.fail("update.rule", f"must be a non-empty list of assignments, got {show_value(lines)}")
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
        unparsed = [parse.assignment_target(line) for line, assignment in zip(lines, parsed) if assignment is None]
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

    def parse_line(self, index: int, line: Any) -> tree.Assignment:
        """Rule line ``index`` parsed, or its SpecError."""
        try:
            return parse.parse_assignment(line)
        except ExpressionError as error:
            raise self.fail(f"update.rule[{index}]", error.message, rule_line_needle(line), self.raw_lines[:index].count(line)) from None


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
        _check_spec_file(path)
        # non-blocking, in case the path became a FIFO since its stat; a file grown since is cut off
        with open(path, "rb", opener=_open_nonblocking) as handle:
            _check_spec_file(path, os.fstat(handle.fileno()))
            data = handle.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(str(path), "", _too_large(len(data), "file"))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), "", f"cannot read the spec: {error}") from None
    return load_spec_text(text, source=str(path))


def _check_spec_file(path: Path, status: os.stat_result | None = None) -> None:
    """Refuse, from ``os.stat`` alone (so nothing blocks), a path that is not a regular file
    (a FIFO, a device, a folder) or is larger than :data:`MAX_SPEC_BYTES`.

    Args:
        path: the spec's path.
        status: its ``os.stat`` (or ``os.fstat`` once opened); taken when not given.

    Raises:
        SpecError: naming the path and what it is; OSError when it cannot be stat'ed.

    Example:
        >>> _check_spec_file(Path("/dev/zero"))
        Traceback (most recent call last):
        ...
        optreg.errors.SpecError: /dev/zero: a spec must be a regular file, got a character device
    """
    status = os.stat(path) if status is None else status
    if not stat.S_ISREG(status.st_mode):
        raise SpecError(str(path), "", f"a spec must be a regular file, got {_file_kind(status.st_mode)}")
    if status.st_size > MAX_SPEC_BYTES:
        raise SpecError(str(path), "", _too_large(status.st_size, "file"))


def _open_nonblocking(path: str, flags: int) -> int:
    """``open``'s opener for spec files: ``os.open`` with ``O_NONBLOCK`` (where it exists), so
    opening something that is not a regular file never waits.

    Example:
        >>> with open("README.md", "rb", opener=_open_nonblocking) as handle:  # doctest: +SKIP
        ...     handle.read(1)
    """
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words, e.g. ``"a FIFO"`` for ``stat.S_IFIFO``."""
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _too_large(size: int, what: str) -> str:
    """The message for a spec beyond :data:`MAX_SPEC_BYTES`.

    Example:
        >>> _too_large(2_000_000, "file")
        'spec file is 2000000 bytes, more than the limit of 1048576 (1 MiB)'
    """
    return f"spec {what} is {size} bytes, more than the limit of {MAX_SPEC_BYTES} (1 MiB)"


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
        SpecError: as :func:`load_spec`; text longer than :data:`MAX_SPEC_BYTES` in UTF-8.
    """
    if not isinstance(text, str):
        raise SpecError(source, "", f"spec text must be a string, got {type(text).__name__}")
    size = len(text) if len(text) > MAX_SPEC_BYTES else len(text.encode("utf-8", "surrogatepass"))  # at least a byte a character
    if size > MAX_SPEC_BYTES:
        raise SpecError(source, "", _too_large(size, "text"))
    return read_spec_text(text, source)
