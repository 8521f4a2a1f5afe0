"""What a bench's runs cost in wall time, when many of them share one compiled loop.

One call of a compiled loop (:class:`~optreg.bench.loop.StackedLoop`) steps every run in it
side by side, often those of several optimizers, so no run has a wall time of its own. A
:class:`LoopTiming` records what one call measured, and every run made in that call carries
the same one:

* ``compile_seconds``: tracing and compiling the loop (XLA's compilation included), measured as
  the loop's first call, which advances no iteration; 0 when the call reused a loop compiled
  before (a cached loop, or a loop of its own called again for the next setting);
* ``run_seconds``: the compiled calls that ran the iterations, from the first one's start to the
  last one's return with its results read; the bench's bookkeeping around them (assigning the
  runs' values and starts, the final losses and metrics) is in neither;
* ``seconds_share``: ``run_seconds / runs``, the run's even share. Summed over the runs of one
  call it gives that call's ``run_seconds`` once, so a sum over a bench's records counts each
  call once (``seconds`` once repeated the call's whole time on every run, so summing it over
  rows overstated by the number of runs).

The share is even because a compiled loop cannot tell its runs' costs apart: XLA fuses every
optimizer's step into one program, and a run that has stopped is still stepped (frozen by a
mask), so every iteration costs the same for every run. An optimizer's wall time in a bench
(:func:`optimizer_seconds`) is the sum of its runs' shares; when it shared loops with other
optimizers this splits the loops' time by run count, not by the cost of its update — bench it
alone to measure that.

The wall-clock time to target (AlgoPerf's measure) of a run that reached its problem's target
and stayed (``settled_at``) is estimated as ``settled_at × run_seconds / iterations``: the time
its loop took to bring it there, at the call's mean time per iteration, with every other run of
the loop stepped alongside. Compilation is not folded in, and is reported beside it: it is paid
once per loop, shared by all of the loop's runs and optimizers (folding it into each run would
count it once per run again), and not at all by a bench that reuses the loop; a cold start's
figure is ``seconds_to_target + compile_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from optreg.text import aligned

__all__ = ["LoopTiming", "OptimizerSeconds", "optimizer_seconds", "optimizer_seconds_text"]


@attrs.frozen
class LoopTiming:
    """The wall time of one call of a compiled loop, shared by the runs made in it.

    Attributes:
        loop_id: the call's number in its bench (0, 1, … in the order the calls ran): runs with
            the same ``loop_id`` were stepped side by side by one call.
        runs: how many runs the call made.
        iterations: how many iterations it ran (the most any of its runs took).
        compile_seconds: tracing and compiling the loop before this call; 0 when it was
            compiled before.
        run_seconds: the compiled calls that ran the iterations.

    Example:
        >>> timing = LoopTiming(loop_id=0, runs=4, iterations=100, compile_seconds=1.5, run_seconds=0.2)
        >>> timing.seconds_share, timing.seconds_to(50)
        (0.05, 0.1)
    """

    loop_id: int
    runs: int
    iterations: int
    compile_seconds: float
    run_seconds: float

    @property
    def seconds_share(self) -> float:
        """One run's even share of :attr:`run_seconds`."""
        return self.run_seconds / self.runs

    def seconds_to(self, iteration: int | None) -> float | None:
        """The estimated wall time the call took to reach ``iteration``: that many iterations at
        the call's mean time per iteration; None for None.

        Example:
            >>> LoopTiming(0, 1, 0, 0.0, 0.0).seconds_to(0), LoopTiming(0, 1, 10, 0.0, 1.0).seconds_to(None)
            (0.0, None)
        """
        if iteration is None:
            return None
        return iteration * self.run_seconds / self.iterations if self.iterations else 0.0


@attrs.frozen
class OptimizerSeconds:
    """What one optimizer's runs cost in a bench.

    Attributes:
        optimizer: its name.
        runs: how many runs it made.
        loops: in how many loop calls.
        run_seconds: the sum of its runs' shares of their loops' run time.
        compile_seconds: the sum of its runs' even shares of their loops' compilation.
    """

    optimizer: str
    runs: int
    loops: int
    run_seconds: float
    compile_seconds: float


def optimizer_seconds(results: Sequence[Any]) -> list[OptimizerSeconds]:
    """Each optimizer's wall time: its runs' shares summed, in the order the optimizers first ran.

    Args:
        results: :class:`~optreg.bench.runner.RunResult` records (which hold a
            :class:`LoopTiming`, so this module cannot import theirs); those without a ``loop``
            (made by hand) are left out.

    Example:
        >>> optimizer_seconds([])
        []
    """
    runs: dict[str, list[LoopTiming]] = {}
    for result in results:
        if result.loop is not None:
            runs.setdefault(result.optimizer, []).append(result.loop)
    return [
        OptimizerSeconds(
            name,
            len(timings),
            len({timing.loop_id for timing in timings}),
            sum(timing.seconds_share for timing in timings),
            sum(timing.compile_seconds / timing.runs for timing in timings),
        )
        for name, timings in runs.items()
    ]


def optimizer_seconds_text(results: Sequence[Any]) -> str:
    """What the loop calls cost and each optimizer's share of it, as a line and an aligned
    table; empty when no run carries a loop's timing.

    Example:
        >>> optimizer_seconds_text([])
        ''
    """
    rows = optimizer_seconds(results)
    if not rows:
        return ""
    calls = {r.loop.loop_id: r.loop for r in results if r.loop is not None}
    compiled = sum(timing.compile_seconds for timing in calls.values())
    ran = sum(timing.run_seconds for timing in calls.values())
    plural = "s" if len(calls) != 1 else ""
    line = (f"wall time: {len(calls)} loop call{plural}, compiling {compiled:.3g} s and running {ran:.3g} s; "
            "each optimizer's runs' even shares of them:\n")
    table = [("optimizer", "runs", "running s", "compiling s")]
    table += [(row.optimizer, str(row.runs), f"{row.run_seconds:.3g}", f"{row.compile_seconds:.3g}") for row in rows]
    return line + aligned(table)
