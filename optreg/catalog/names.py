"""Name tables: entries of one kind, found by short name or by qualified ``SOURCE:NAME``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

import attrs

from optreg.errors import AmbiguousNameError, UnknownNameError

Entry = TypeVar("Entry")


@attrs.frozen
class NameTable(Generic[Entry]):
    """Entries by qualified name ``SOURCE:NAME``; short names resolve when only one source uses them.

    Example:
        >>> table = NameTable({"builtin:adam": "A", "optreg-x:adam": "B", "builtin:sgd": "S"})
        >>> table.names()
        ['builtin:adam', 'optreg-x:adam', 'sgd']
    """

    by_qualified: Mapping[str, Entry]

    def short_names(self) -> dict[str, list[str]]:
        """Short name → the qualified names that use it."""
        table: dict[str, list[str]] = {}
        for qualified in sorted(self.by_qualified):
            table.setdefault(qualified.split(":", 1)[1], []).append(qualified)
        return table

    def names(self) -> list[str]:
        """Sorted short names, with qualified names in place of ambiguous short ones."""
        names: list[str] = []
        for short, qualified in self.short_names().items():
            names.extend([short] if len(qualified) == 1 else qualified)
        return sorted(names)

    def resolve(self, kind: str, name: str) -> Entry:
        """The entry for a short or qualified name.

        Raises:
            UnknownNameError: no such name (with close matches).
            AmbiguousNameError: a short name several sources define.
        """
        if name in self.by_qualified:
            return self.by_qualified[name]
        candidates = self.short_names().get(name, [])
        if len(candidates) == 1:
            return self.by_qualified[candidates[0]]
        if candidates:
            raise AmbiguousNameError(kind, name, [q.split(":", 1)[0] for q in candidates])
        raise UnknownNameError(kind, name, [*self.names(), *self.by_qualified])


def matches(pattern: str, name: str) -> bool:
    """Whether a shell-style wildcard matches a name, or the short part of a qualified name.

    Example:
        >>> matches("adam*", "builtin:adamw"), matches("sg?", "sgd"), matches("s*", "adam")
        (True, True, False)
    """
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name.split(":", 1)[-1], pattern)


class Catalog(Generic[Entry]):
    """A lazily loaded name table with lookup by name.

    Args:
        kind: what the entries are, for messages (``"optimizer"``, ``"problem"``).
        load: returns the name table; called on first use.
    """

    def __init__(self, kind: str, load: Callable[[], NameTable[Entry]]):
        self.kind = kind
        self._load = load

    def names(self, pattern: str | None = None) -> list[str]:
        """Every registered name, sorted; an ambiguous short name appears qualified, once per source.

        Args:
            pattern: a shell-style wildcard (``*``, ``?``, ``[abc]``); only names it matches
                are listed. A qualified name matches when its short name does.

        Example:
            >>> from optreg import registry
            >>> "adam" in registry.names()
            True
            >>> registry.names("adam?x")
            ['adamax']
        """
        return [name for name in self._load().names() if pattern is None or matches(pattern, name)]

    def get(self, name: str) -> Entry:
        """The entry registered under a short name or a qualified ``SOURCE:NAME``.

        Raises:
            UnknownNameError: no such name; the message suggests close matches.
            AmbiguousNameError: several sources define the short name; the message names them.
        """
        return self._load().resolve(self.kind, name)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except (UnknownNameError, AmbiguousNameError):
            return False
        return True

    def __iter__(self) -> Iterator[Entry]:
        table = self._load().by_qualified
        return iter([table[q] for q in sorted(table, key=lambda q: (q.split(":", 1)[1], q))])

    def __len__(self) -> int:
        return len(self._load().by_qualified)
