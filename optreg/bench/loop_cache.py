"""The compiled loops a bench keeps for reuse, bounded: a :class:`LoopCache` is an object its
owner passes in (a session, a benchmark, a test), not a module global, so two benches share
loops only when they are given the same cache, and no cache grows without bound."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["DEFAULT_MAX_LOOPS", "LoopCache"]

#: How many problems' loops a cache holds unless told otherwise.
DEFAULT_MAX_LOOPS = 64

T = TypeVar("T")


class LoopCache(Generic[T]):
    """Built loops by everything that shapes their traces, at most ``max_loops`` of them; the
    least recently used is dropped first.

    Args:
        max_loops: the most entries it holds (at least 1).

    Example:
        >>> cache = LoopCache(max_loops=2)
        >>> [cache.get_or_build(key, lambda: key * 10) for key in (1, 2, 1, 3)]
        [10, 20, 10, 30]
        >>> cache.keys()
        [1, 3]
    """

    def __init__(self, max_loops: int = DEFAULT_MAX_LOOPS) -> None:
        if isinstance(max_loops, bool) or not isinstance(max_loops, int) or max_loops < 1:
            raise ValueError(f"max_loops must be a whole number >= 1, got {max_loops!r}")
        self.max_loops = max_loops
        self._entries: OrderedDict[Hashable, T] = OrderedDict()

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry for ``key``, built by ``build()`` on first use (dropping the least recently
        used entry when the cache is full).

        Args:
            key: everything that shapes the entry.
            build: makes the entry.

        Returns:
            The entry.
        """
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        entry = build()
        self._entries[key] = entry
        while len(self._entries) > self.max_loops:
            self._entries.popitem(last=False)
        return entry

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first."""
        return list(self._entries)

    def values(self) -> list[T]:
        """The entries held, least recently used first."""
        return list(self._entries.values())

    def clear(self) -> None:
        """Forget every entry (the next bench given this cache traces and compiles afresh)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
