"""Python's cyclic garbage collector held off while a bench builds its run records.

A sweep of 10,000 runs makes 10,000 records of a few dicts each in a few tens of milliseconds,
and the allocations alone set off the collector's full passes over every object the process
holds (TensorFlow's included): one such pass took longer than the records themselves
(``benchmarks/sweep_peers.py``). The records hold no reference cycles, so nothing is left for
the collector to find that it would not find at its next run after the pause.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector inside the block; afterwards it is enabled again if
    it was enabled before (a caller that disabled it keeps it disabled).

    Example:
        >>> with collector_paused():
        ...     gc.isenabled()
        False
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
