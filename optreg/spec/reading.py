"""What every part of the spec reader shares: the errors found so far, and the checks of tables,
keys, strings and names that report an error with its file, line and key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optreg.errors import SpecError
from optreg.model.definitions import RESERVED_NAMES
from optreg.model.hyperparameters import NAME_PATTERN, show_value
from optreg.spec.locations import find_line


class ReaderBase:
    """The state and checks the table readers share.

    It reads past what it can: each part is checked on its own, and every error found is
    recorded; an entry at fault still counts as defined, so the rule is not blamed for reading it.

    Example:
        >>> reader = ReaderBase("[optimizer]\\nname = 3\\n", "<string>")
        >>> reader.collect(reader.string, "optimizer.name", 3) is None, str(reader.errors[0])
        (True, '<string>:2: [optimizer.name] must be a non-empty string, got 3')
    """

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source
        self.errors: list[SpecError] = []
        #: Names of the hyperparameter and slot entries at fault.
        self.unread_hyperparameters: list[str] = []
        self.unread_slots: list[str] = []
        #: The rule lines as written (set when [update] is read).
        self.raw_lines: list[Any] = []

    def collect(self, read: Callable[..., Any], *args: Any, default: Any = None) -> Any:
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
                self.errors.append(
                    self.fail(_join(key, name), f"unknown key {name!r}; allowed: {allowed}", needle=name)
                )
        missing = sorted(required - set(table))
        for name in missing:
            self.errors.append(self.fail(_join(key, name) if key else name, f"missing required key {name!r}"))
        return not missing

    def string(self, key: str, value: Any) -> str:
        """Require a non-empty single-line string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {show_value(value)}")
        return value.strip()

    def check_name(self, key: str, name: str) -> None:
        """Hyperparameter and slot names: lower-case identifiers, not reserved."""
        if not NAME_PATTERN.match(name):
            raise self.fail(key, f"name must be a lower-case identifier, got {name!r}", needle=name)
        if name in RESERVED_NAMES:
            raise self.fail(key, f"{name!r} is reserved", needle=name)


def _join(prefix: str, name: str) -> str:
    """A dotted key."""
    return f"{prefix}.{name}" if prefix else name
