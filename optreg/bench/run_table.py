"""A bench's runs as a table: each loop call's outcome kept as its NumPy columns came back, and a
run's :class:`~optreg.bench.runner.RunResult` made only when it is first read.

A sweep of 10,000 settings makes one loop call and 10,000 runs. Making every run's record at
once takes about as long as some of the loops themselves (5–10 µs a record, mostly dicts and
tuples for its settings and parameters). The caller that wants all the records reads them, at
the same cost as before. A caller that only wants statuses or numbers (a research script, the
peers benchmark) reads them as columns (:meth:`RunTable.statuses`, :meth:`RunTable.column`) and
never pays for the records. Either way a record, once made, is kept by its loop call. (A
problem whose seed orders its minibatches runs each seed apart; its records are made when the
seeds' runs are interleaved.)

Example:
    >>> table = run_bench(plan)  # doctest: +SKIP
    >>> table.statuses()[:2], table.column("iterations")[:2], table[0].final_loss  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, overload

import attrs
import numpy as np

from optreg.bench.gc_pause import collector_paused
from optreg.bench.loop_records import LoopOutcome
from optreg.bench.loop_timing import LoopTiming
from optreg.bench.run_status import STATUSES
from optreg.bench.runner import RunResult, judged_status
from optreg.catalog.entries import OptimizerEntry
from optreg.problems import Problem

#: The columns :meth:`RunTable.column` gives: the loop's per-run numbers, as the records hold
#: them (``reached_at``, ``stalled_at`` and ``settled_at`` are -1 where a record has None).
NUMBER_COLUMNS = ("iterations", "final_loss", "reached_at", "stalled_at", "settled_at")


class RunGroup(Protocol):
    """What a table needs of a group of runs (:class:`optreg.bench.groups.Group`)."""

    @property
    def entry(self) -> OptimizerEntry:
        """The optimizer."""

    @property
    def indices(self) -> tuple[int, ...]:
        """The settings' places in the optimizer's (seed-expanded) list of settings."""

    @property
    def settings(self) -> tuple[dict[str, Any], ...]:
        """The settings, as given."""

    @property
    def columns(self) -> Mapping[str, list[Any]]:
        """Every hyperparameter's value in each setting."""


class RowSource(Protocol):
    """Where a table's rows come from: one loop call, or records already made."""

    def record(self, row: int) -> RunResult:
        """The run in this row, as a record."""

    def statuses(self) -> list[str]:
        """Every row's status, in row order."""

    def column(self, name: str) -> np.ndarray:
        """Every row's value of one of :data:`NUMBER_COLUMNS`, in row order."""


@attrs.frozen
class Span:
    """A run of consecutive rows of a loop call: ``count`` settings of ``group``, from its ``start``-th."""

    group: RunGroup
    start: int
    count: int


class LoopCall:
    """One loop call's outcome, and which (optimizer, setting, seed) each of its rows ran.

    Args:
        problem: the problem the loop ran.
        outcome: its outcome, one row per run.
        timing: the call's timing, shared by its runs.
        spans: the rows, span after span, in the loop's row order.
        seeds: the plan's seeds, ``(None,)`` without seeds; setting ``k`` of a group ran with
            ``seeds[group.indices[k] % len(seeds)]``.
    """

    def __init__(
        self,
        problem: Problem,
        outcome: LoopOutcome,
        timing: LoopTiming,
        spans: Sequence[Span],
        seeds: Sequence[int | None],
    ):
        self.problem, self.outcome, self.timing = problem, outcome, timing
        self.spans, self.seeds = tuple(spans), tuple(seeds)
        self._ends = list(itertools.accumulate(span.count for span in self.spans))
        self._listed: _Listed | None = None
        self._records: dict[int, RunResult] = {}

    def record(self, row: int) -> RunResult:
        """The run in ``row``, as a record (:func:`run_result`), made once."""
        made = self._records.get(row)
        if made is None:
            made = self._records[row] = self._make(row)
        return made

    def _make(self, row: int) -> RunResult:
        """A new record of the run in ``row``."""
        place = bisect.bisect_right(self._ends, row)
        span = self.spans[place]
        k = span.start + row - (self._ends[place] - span.count)
        group = span.group
        values = {name: column[k] for name, column in group.columns.items()}
        if self._listed is None:
            self._listed = _listed(self.outcome)
        seed = self.seeds[group.indices[k] % len(self.seeds)]
        return run_result(group.entry.name, self.problem, group.settings[k], values, self._listed, row, self.timing,
                          seed)

    def statuses(self) -> list[str]:
        """Every row's status, as its record has it, without making the records (unless the
        problem has a baseline, which judges each run by its metrics)."""
        if self.problem.baseline is not None:
            return [self.record(row).status for row in range(len(self.outcome.status))]
        has_minimum = self.problem.minimum_loss is not None
        return [
            judged_status(STATUSES[code], settled >= 0, has_minimum, None)
            for code, settled in zip(self.outcome.status.tolist(), self.outcome.settled_at.tolist())
        ]

    def column(self, name: str) -> np.ndarray:
        """Every row's value of one of :data:`NUMBER_COLUMNS`."""
        return np.asarray(getattr(self.outcome, name))


class Records:
    """Rows from records already made (a bench run per seed, then interleaved)."""

    def __init__(self, records: Sequence[RunResult]):
        self.records = tuple(records)

    def record(self, row: int) -> RunResult:
        """The record in ``row``."""
        return self.records[row]

    def statuses(self) -> list[str]:
        """Every record's status."""
        return [record.status for record in self.records]

    def column(self, name: str) -> np.ndarray:
        """Every record's value of one of :data:`NUMBER_COLUMNS` (-1 for None)."""
        return np.asarray([-1 if (value := getattr(record, name)) is None else value for record in self.records])


class RunTable(Sequence[RunResult]):
    """A bench's runs, in plan order: a sequence of :class:`~optreg.bench.runner.RunResult`
    whose records are made when first read, with the columns readable without them.

    Args:
        sources: where the rows come from.
        source_of: for each run in plan order, the index of its source.
        row_of: for each run, its row in that source.

    Example:
        >>> table = RunTable.of([record_a, record_b])  # doctest: +SKIP
        >>> len(table), table[1] is record_b, table.statuses()  # doctest: +SKIP
        (2, True, ['converged', 'exploded'])
    """

    __slots__ = ("_sources", "_source_of", "_row_of")

    def __init__(self, sources: Sequence[RowSource], source_of: np.ndarray, row_of: np.ndarray):
        if len(source_of) != len(row_of):
            raise ValueError(f"{len(source_of)} sources for {len(row_of)} rows")
        self._sources = tuple(sources)
        self._source_of, self._row_of = np.asarray(source_of, np.int64), np.asarray(row_of, np.int64)

    @classmethod
    def of(cls, records: Sequence[RunResult]) -> RunTable:
        """A table of records already made, in their order."""
        count = len(records)
        return cls([Records(records)], np.zeros(count, np.int64), np.arange(count))

    @classmethod
    def joined(cls, tables: Sequence[RunTable]) -> RunTable:
        """The tables' runs one table after another (a bench's problems, in plan order)."""
        if len(tables) == 1:
            return tables[0]
        sources: list[RowSource] = []
        source_of, row_of = [], []
        for table in tables:
            source_of.append(table._source_of + len(sources))
            row_of.append(table._row_of)
            sources.extend(table._sources)
        empty = np.zeros(0, np.int64)
        return cls(sources, np.concatenate(source_of or [empty]), np.concatenate(row_of or [empty]))

    def __len__(self) -> int:
        return len(self._row_of)

    @overload
    def __getitem__(self, index: int) -> RunResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[RunResult]: ...

    def __getitem__(self, index: int | slice) -> RunResult | list[RunResult]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"run {index} of a table of {count}")
        index %= count  # each source keeps the records it made
        source: RowSource = self._sources[int(self._source_of[index])]
        return source.record(int(self._row_of[index]))

    def __iter__(self) -> Iterator[RunResult]:
        """Every run's record: those not yet made are made first, all at once, with the
        garbage collector held off (they are many small objects, none of them cyclic)."""
        sources = self._sources
        with collector_paused():
            records = [sources[s].record(r) for s, r in zip(self._source_of.tolist(), self._row_of.tolist())]
        return iter(records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        # as lists compare: a record is equal to itself, even one holding a NaN loss
        return len(self) == len(other) and all(a is b or a == b for a, b in zip(self, other))

    def __add__(self, other: Sequence[RunResult]) -> list[RunResult]:
        """The runs of both, as a list (a table joined with a list, as two lists join)."""
        return [*self, *other]

    def __radd__(self, other: Sequence[RunResult]) -> list[RunResult]:
        return [*other, *self]

    __hash__ = None  # type: ignore[assignment]  # a sequence compared by content, like a list

    def __repr__(self) -> str:
        return f"RunTable({len(self)} runs)"

    def statuses(self) -> list[str]:
        """Every run's status, in plan order, as its record has it; the records are not made,
        except for a problem with a baseline, whose runs are judged by their records' metrics.

        Example:
            >>> run_bench(plan).statuses()  # doctest: +SKIP
            ['converged', 'exploded', 'reached']
        """
        by_source = [source.statuses() for source in self._sources]
        return [by_source[source][row] for source, row in zip(self._source_of.tolist(), self._row_of.tolist())]

    def column(self, name: str) -> np.ndarray:
        """Every run's value of a number column, in plan order; the records are not made.

        Args:
            name: one of :data:`NUMBER_COLUMNS`.

        Returns:
            A NumPy array, one value per run (-1 where the record holds None).

        Raises:
            KeyError: an unknown column.
        """
        if name not in NUMBER_COLUMNS:
            raise KeyError(f"no column {name!r}; the columns are {', '.join(NUMBER_COLUMNS)}")
        if not len(self):
            return np.zeros(0)
        by_source = [source.column(name) for source in self._sources]
        firsts = np.cumsum([0] + [len(column) for column in by_source[:-1]])  # each source's first row
        return np.concatenate(by_source)[firsts[self._source_of] + self._row_of]


@attrs.frozen
class _Listed:
    """A loop's outcome with its per-run columns as Python lists, converted once for all its
    records (the same numbers: a float32 becomes the float that holds it exactly)."""

    outcome: LoopOutcome
    status: list[int]
    iterations: list[int]
    reached_at: list[int]
    stalled_at: list[int]
    settled_at: list[int]
    final_loss: list[float]
    final_params: list[list[float]]


def _listed(outcome: LoopOutcome) -> _Listed:
    """The outcome's columns as lists (see :class:`_Listed`)."""
    columns = ("status", "iterations", "reached_at", "stalled_at", "settled_at", "final_loss", "final_params")
    return _Listed(outcome, *(np.asarray(getattr(outcome, name)).tolist() for name in columns))


def run_result(
    optimizer: str,
    problem: Problem,
    setting: Mapping[str, Any],
    values: Mapping[str, Any],
    listed: _Listed,
    row: int,
    timing: LoopTiming,
    seed: int | None = None,
) -> RunResult:
    """One run's record from its row of a loop's outcome.

    Args:
        optimizer: the optimizer's name.
        problem: the problem.
        setting: the run's setting, as given.
        values: every hyperparameter's value in the run.
        listed: the loop's outcome, as lists.
        row: the run's row in the loop.
        timing: the loop call's timing.
        seed: the run's seed, or None.
    """
    outcome = listed.outcome
    metrics = problem.metrics(outcome.final_params[row : row + 1]) if problem.metrics else {}
    figures = {name: float(np.asarray(column)[0]) for name, column in metrics.items()}
    reached, stalled, settled = listed.reached_at[row], listed.stalled_at[row], listed.settled_at[row]
    history = _history(outcome, row) if len(outcome.history_iterations) else None
    final_loss = listed.final_loss[row]
    judged = figures[problem.judged_by] if problem.judged_by is not None else final_loss
    baseline = figures[problem.baseline] if problem.baseline is not None else None
    # NaN is no better than the baseline: the comparison is False
    beats = None if baseline is None else bool(judged < baseline)
    has_minimum = problem.minimum_loss is not None
    status = judged_status(STATUSES[listed.status[row]], settled >= 0, has_minimum, beats)
    return RunResult(
        optimizer=optimizer,
        problem=problem.name,
        hyperparameters=dict(values),
        settings=dict(setting),
        status=status,
        iterations=listed.iterations[row],
        final_loss=final_loss,
        final_params=tuple(listed.final_params[row]),
        seconds_share=timing.seconds_share,
        reached_at=reached if reached >= 0 else None,
        stalled_at=stalled if stalled >= 0 else None,
        metrics=figures,
        history=history,
        problem_options=_run_options(problem, seed),
        has_minimum=has_minimum,
        settled_at=settled if settled >= 0 else None,
        seed=seed,
        judged_by=problem.judged_by,
        baseline=baseline,
        loop=timing,
        target=None if problem.target is None else str(problem.target),
    )


def _run_options(problem: Problem, seed: int | None) -> dict[str, Any]:
    """The problem's options as a run saw them: its own ``seed`` option is the run's seed."""
    if seed is not None and "seed" in problem.options:
        return {**problem.options, "seed": seed}
    return dict(problem.options)


def _history(outcome: LoopOutcome, row: int) -> dict[str, list[Any]]:
    """One run's recorded points, ending with its final state (the loop records each point
    before that iteration's step, so a run's last step shows only in its final values)."""
    end = int(outcome.iterations[row])
    kept = outcome.history_iterations < end
    iterations = outcome.history_iterations[kept].tolist()
    loss = outcome.history_loss[kept, row].tolist()
    params = outcome.history_params[kept, row].tolist()
    if not iterations or iterations[-1] < end:
        iterations.append(end)
        loss.append(float(outcome.final_loss[row]))
        params.append(outcome.final_params[row].tolist())
    return {"iterations": iterations, "loss": loss, "params": params}
