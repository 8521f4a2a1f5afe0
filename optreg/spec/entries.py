"""The [hyperparameters] and [slots] tables of a spec, each entry read and checked on its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from optreg.errors import HyperparameterError
from optreg.model.definitions import SLOT_DTYPES, SLOT_INITS, SLOT_SHAPES, Slot
from optreg.model.hyperparameters import HYPERPARAMETER_TYPES, Hyperparameter, show_value
from optreg.model.option_checks import is_finite_number
from optreg.spec.conditions import condition_hyperparameter
from optreg.spec.reading import ReaderBase


class EntryReading(ReaderBase):
    """Reading the hyperparameter and slot tables (a part of :class:`~optreg.spec.document.SpecReader`).

    Example:
        >>> reader = EntryReading("", "<string>")
        >>> [h.name for h in reader.read_hyperparameters({"lr": {"default": 0.1}})]
        ['lr']
    """

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
        optional = {"type", "min", "max", "doc", "fixed", "none", "inf"}
        if not self.table_keys(key, entry, required={"default"}, optional=optional):
            return None
        default = entry["default"]
        kind = entry.get("type", _type_of(default))
        if kind not in HYPERPARAMETER_TYPES:
            raise self.fail(key, f"type must be one of {', '.join(HYPERPARAMETER_TYPES)}, got {show_value(kind)}")
        allows = {flag: entry.get(flag, False) for flag in ("none", "inf")}
        for flag, value in allows.items():
            if not isinstance(value, bool):
                raise self.fail(key, f"{flag} must be true or false, got {show_value(value)}")
            if value and kind != "float":
                raise self.fail(key, f"only a float hyperparameter can be {flag}")
        if default == "none" and allows["none"]:
            default = None  # TOML has no null: the word stands for Python's None
        bounds = {bound: self.bound(key, bound, entry.get(bound), kind) for bound in ("min", "max")}
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise self.fail(key, f"min ({bounds['min']}) is greater than max ({bounds['max']})")
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise self.fail(key, f"doc must be a string, got {show_value(doc)}")
        fixed = entry.get("fixed", False)
        if not isinstance(fixed, bool):
            raise self.fail(key, f"fixed must be true or false, got {show_value(fixed)}")
        if fixed and allows["none"]:
            raise self.fail(key, "a fixed hyperparameter is folded into the rule, so it cannot also be none")
        hyper = Hyperparameter(
            name, default, kind, bounds["min"], bounds["max"], doc.strip(), fixed, allows["none"], allows["inf"]
        )
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
        named = isinstance(init, str) and (
            init in hypers and hypers[init].type != "bool" or init in self.unread_hyperparameters
        )
        if init not in SLOT_INITS and not numeric and not named:
            raise self.fail(
                key,
                f"init must be {', '.join(SLOT_INITS)}, a finite number or a number hyperparameter's name, "
                f"got {show_value(init)}",
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
        return Slot(
            name, float(init) if numeric else init, dtype, doc.strip(), self.slot_condition(key, entry, hypers), shape
        )

    def slot_condition(self, key: str, entry: Mapping[str, Any], hypers: Mapping[str, Hyperparameter]) -> str | None:
        """A slot's ``when``: absent, the name of a fixed bool hyperparameter, or a comparison of
        a number hyperparameter with a literal."""
        when = entry.get("when")
        if when is None:
            return None
        hyper = hypers.get(when) if isinstance(when, str) else None
        if isinstance(when, str) and hyper is not None and hyper.type == "bool" and hyper.fixed:
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


def _type_of(default: Any) -> str:
    """The hyperparameter type a default implies (``"none"`` is a float's)."""
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    return "float"
