"""The growth of this process's peak resident set over a piece of work, for the benchmarks'
memory figures (TensorFlow's ``get_memory_info`` does not work on CPU)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_growth_mb(work: Callable[[], object]) -> float:
    """Megabytes by which the peak resident set rose above the resident set of the moment
    ``work()`` started: the peak is reset first, through ``/proc/self/clear_refs``."""
    before = status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak resident set starts again from here
    work()
    return (status_bytes("VmHWM") - before) / 1e6
