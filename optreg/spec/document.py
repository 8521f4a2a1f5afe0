"""A parsed TOML document → :class:`~optreg.model.definitions.OptimizerSpec`, key by key: the
[optimizer] header and the [options] table here, the other tables in :mod:`optreg.spec.entries`
and :mod:`optreg.spec.rules`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optreg.errors import OptionError, SpecErrors
from optreg.model.definitions import OPTIMIZER_NAME_PATTERN, OptimizerSpec
from optreg.model.hyperparameters import show_value
from optreg.model.option_values import check_spec_options
from optreg.spec.entries import EntryReading
from optreg.spec.rules import RuleReading


class SpecReader(EntryReading, RuleReading):
    """Turns a parsed TOML document into an :class:`OptimizerSpec`, key by key.

    It reads past what it can: each hyperparameter, slot, rule line and option is checked on
    its own, and every error found is reported (the first one raised holds them all). An
    entry at fault still counts as defined, so the rule is not blamed for reading it.

    Example:
        >>> document = {"optimizer": {"name": "x", "summary": "y"}, "update": {"rule": ["var = var - grad"]}}
        >>> SpecReader("", "<string>").read(document).name
        'x'
    """

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
            rule = self.collect(
                self.read_rule, update, hyperparameters or (), slots or (), None not in (hyperparameters, slots)
            )
        if rule is not None and len(self.errors) == before:
            self.collect(self.check_slot_conditions, rule, hyperparameters, slots)
        options = self.collect(self.read_options, document.get("options", {}))
        measuring_steps = self.collect(self.read_measuring_steps, update) if isinstance(update, dict) else 0
        if self.errors:
            errors = sorted(self.errors, key=lambda error: error.line or 0)  # in file order; whole-file errors first
            raise errors[0] if len(errors) == 1 else SpecErrors(errors)
        # without an error, every part was read
        assert header is not None and hyperparameters is not None and slots is not None and rule is not None
        return OptimizerSpec(
            name=header["name"],
            summary=header["summary"],
            references=header["references"],
            notes=header["notes"],
            hyperparameters=hyperparameters,
            slots=slots,
            rule=rule,
            source=self.source,
            text=self.text,
            options=options,
            measuring_steps=measuring_steps,
        )

    def read_header(self, table: Any) -> dict[str, Any]:
        """The [optimizer] table: name, summary, references, notes (each field checked on its own)."""
        self.table_keys("optimizer", table, required={"name", "summary"}, optional={"references", "notes"})
        name = self.collect(self.optimizer_name, table["name"]) if "name" in table else None
        references = self.collect(self.string_list, "optimizer.references", table.get("references", []))
        notes = self.collect(self.string_list, "optimizer.notes", table.get("notes", []))
        summary = self.collect(self.string, "optimizer.summary", table["summary"]) if "summary" in table else None
        return {"name": name, "summary": summary, "references": references, "notes": notes}

    def optimizer_name(self, value: Any) -> str:
        """``[optimizer] name``: lower-case letters, digits, '_', '.' or '-'."""
        name = self.string("optimizer.name", value)
        if not OPTIMIZER_NAME_PATTERN.match(name):
            raise self.fail("optimizer.name", f"must be lower-case letters, digits, '_', '.' or '-', got {name!r}")
        return name

    def string_list(self, key: str, values: Any) -> tuple[str, ...]:
        """``[optimizer] references`` or ``notes``: a list of non-empty strings, each error naming
        its index (``optimizer.notes[1]``)."""
        if not isinstance(values, list):
            raise self.fail(key, f"must be a list of strings, got {show_value(values)}")
        for index, value in enumerate(values):
            self.collect(self.string, f"{key}[{index}]", value)
        return tuple(values)

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
