"""Make every run of a plan on one problem, in as few compiled loops as possible.

The settings of one optimizer are grouped by what cannot differ inside one loop: its options,
its fixed hyperparameters and which of its slots exist. Every group whose optimizer's updates
are elementwise becomes one member of a single loop for the whole problem, its runs stacked
side by side, so a bench of several optimizers traces and compiles once. An optimizer whose
updates are not elementwise gets a loop of its own, called once per setting (the traced loop
is reused, since hyperparameters are variables), compiled with XLA unless an optimizer's update
must not be (an eigendecomposition, as Shampoo's and SOAP's, which XLA computes inaccurately, or a
class declaring ``xla_compatible = False``). The loops are kept in the
:class:`~optreg.bench.loop_cache.LoopCache` the caller passes, so a repeated bench given the same
cache only assigns new values.

Seeds are one more stacked axis: each setting becomes one run per seed, each from its seed's
start point (:meth:`~optreg.problems.Problem.seeded_start`), side by side in the same loop. Only
a problem whose seed changes its training loss (the minibatch order) runs each seed's problem
in loops of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from optreg.bench.loop import StackedLoop
from optreg.bench.loop_cache import LoopCache
from optreg.bench.loop_records import LoopMember, LoopOutcome, loop_options
from optreg.bench.loop_timing import LoopTiming
from optreg.bench.run_table import LoopCall, RunTable, Span
from optreg.bench.runner import BenchPlan
from optreg.bench.setting_columns import SettingBlock, setting_blocks, split_setting
from optreg.catalog.entries import OptimizerEntry
from optreg.lang import parse, tree
from optreg.problems import Problem
from optreg.runtime.hyperparameter_state import same_bits
from optreg.spec.conditions import condition_holds, slot_deciding_hyperparameters


@attrs.frozen
class Group:
    """Settings of one optimizer that share a loop.

    Attributes:
        entry: the optimizer.
        position: the optimizer's place in the plan.
        indices: the settings' places in the optimizer's list of settings.
        settings: the settings, as given.
        columns: hyperparameter name → its value in each setting (every hyperparameter).
        options: the options, fixed hyperparameters and slot-deciding values the loop is built with.
        shared: the hyperparameters with one value (the same bits) in every setting: the loop
            holds each once for all the runs, so its per-step arithmetic is done once.
    """

    entry: OptimizerEntry
    position: int
    indices: tuple[int, ...]
    settings: tuple[dict[str, Any], ...]
    columns: Mapping[str, list[Any]]
    options: Mapping[str, Any]
    shared: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str, str, int, tuple[str, ...]]:
        """Everything about the group that shapes a loop's trace: its spec's text too, so a spec
        edited and benched again in the same process is traced anew, not run as it was."""
        spec_text = self.entry.spec.text if self.entry.spec is not None else ""
        options = repr(sorted(self.options.items()))
        return self.entry.qualified_name, spec_text, options, len(self.settings), tuple(sorted(self.shared))


@attrs.frozen
class ProblemLoops:
    """The loops of one plan on one problem: one shared by the groups that stack, and one per
    group that does not (by its place in the list of groups)."""

    shared: StackedLoop | None
    stacked: tuple[int, ...]
    alone: Mapping[int, StackedLoop]


def run_problem(
    problem: Problem,
    plan: BenchPlan,
    jit_compile: bool,
    progress: Callable[[int], None] | None = None,
    loops: LoopCache[ProblemLoops] | None = None,
    loop_ids: Iterator[int] | None = None,
) -> RunTable:
    """Make every run of a plan on one problem.

    Args:
        problem: the problem.
        plan: the plan (optimizers and settings, iteration limit, tolerance stopping, history).
        jit_compile: compile the loops with XLA.
        progress: called with the number of runs finished: after the shared loop, and after
            each group that has a loop of its own.
        loops: the cache the loops are kept in and reused from; None: built for this call only.
        loop_ids: numbers each loop call's :class:`~optreg.bench.loop_timing.LoopTiming`
            (a bench passes one counter to all its problems); None: from 0.

    Returns:
        One run per (optimizer, setting, seed), in plan order, seed after seed
        within each setting.

    Example:
        >>> run_problem(plan.problems[0], plan, jit_compile=True, loops=LoopCache())  # doctest: +SKIP
    """
    loops_cache: LoopCache[ProblemLoops] = LoopCache() if loops is None else loops
    loop_ids = itertools.count() if loop_ids is None else loop_ids
    if plan.seeds and problem.seed_shapes_loss:
        return _run_per_seed(problem, plan, jit_compile, progress, loops_cache, loop_ids)
    seeds: tuple[int | None, ...] = plan.seeds or (None,)
    starts = {seed: problem.start if seed is None else problem.seeded_start(seed) for seed in seeds}
    # every setting once per seed, seed after seed: the seeds are one more stacked axis
    expanded = [tuple(setting for setting in settings for _ in seeds) for _, settings in plan.runs]
    groups = [
        group
        for position, (entry, _) in enumerate(plan.runs)
        for group in plan_groups(entry, position, expanded[position])
    ]
    built = _loops(loops_cache, problem, groups, plan, jit_compile)

    def start_of(index: int) -> tuple[float, ...]:
        return starts[seeds[index % len(seeds)]]

    # each run's place in plan order: the optimizers one after another, each setting's seeds together
    firsts = np.cumsum([0] + [len(settings) for settings in expanded])
    calls: list[LoopCall] = []
    call_of, row_of = np.full(firsts[-1], -1, np.int64), np.full(firsts[-1], -1, np.int64)

    def place(group: Group, indices: Sequence[int], rows: np.ndarray) -> None:
        """Note that the next call's ``rows`` ran the group's settings at ``indices``."""
        runs = firsts[group.position] + np.asarray(indices, np.int64)
        call_of[runs], row_of[runs] = len(calls), rows

    if built.shared is not None:
        stacked = [groups[index] for index in built.stacked]
        # the loop's rows are the members' runs, member after member
        row_starts = None
        if plan.seeds:
            row_starts = np.array([start_of(index) for group in stacked for index in group.indices], np.float32)
        outcome = _run_shared(built.shared, stacked, row_starts)
        spans, runs = [], 0
        for group in stacked:
            place(group, group.indices, np.arange(runs, runs + len(group.settings)))
            spans.append(Span(group, 0, len(group.settings)))
            runs += len(group.settings)
        calls.append(LoopCall(problem, outcome, _timing(outcome, next(loop_ids), runs), spans, seeds))
        _report(progress, runs)
    for group_index, loop in built.alone.items():
        group = groups[group_index]
        for k, index in enumerate(group.indices):
            for name, column in group.columns.items():
                loop.optimizers[0].set_hyperparameter(name, column[k])
            start = np.array([start_of(index)], np.float32) if plan.seeds else None
            outcome = loop.run(start)
            place(group, [index], np.zeros(1, np.int64))
            calls.append(LoopCall(problem, outcome, _timing(outcome, next(loop_ids), 1), [Span(group, k, 1)], seeds))
        _report(progress, len(group.settings))
    if (call_of < 0).any():
        raise AssertionError(f"{int((call_of < 0).sum())} runs of {problem.name} were placed in no loop call")
    return RunTable(calls, call_of, row_of)


def _run_shared(loop: StackedLoop, stacked: Sequence[Group], starts: np.ndarray | None) -> LoopOutcome:
    """Give every member of the shared loop its runs' hyperparameters, run it from ``starts``
    (None: the problem's start); returns its outcome."""
    for member, group in zip(loop.members, stacked):
        assert member.hyperparameters is not None  # every member of the shared loop stacks its runs
        member.hyperparameters.assign_runs(group.columns)
    return loop.run(starts)


def _timing(outcome: LoopOutcome, loop_id: int, runs: int) -> LoopTiming:
    """The timing of one loop call, from its outcome, shared by its ``runs`` runs."""
    return LoopTiming(loop_id, runs, outcome.loop_iterations, outcome.compile_seconds, outcome.run_seconds)


def _run_per_seed(
    problem: Problem,
    plan: BenchPlan,
    jit_compile: bool,
    progress: Callable[[int], None] | None,
    loops: LoopCache[ProblemLoops],
    loop_ids: Iterator[int],
) -> RunTable:
    """A problem whose seed orders its minibatches: the problem made with each seed, its runs
    made as a plan without seeds, then interleaved as a seeded plan orders them."""
    unseeded = attrs.evolve(plan, seeds=())
    by_seed = [
        run_problem(problem.with_options(seed=seed), unseeded, jit_compile, progress, loops, loop_ids)
        for seed in plan.seeds
    ]
    return RunTable.of(
        [attrs.evolve(result, seed=seed) for runs in zip(*by_seed) for seed, result in zip(plan.seeds, runs)]
    )


def plan_groups(entry: OptimizerEntry, position: int, settings: Sequence[dict[str, Any]]) -> list[Group]:
    """Group the settings of one optimizer that can share a loop: same options, same fixed
    hyperparameters, and the same slots (``when = "momentum > 0"`` holds for all or for none).

    The settings are taken in blocks that set the same keys
    (:func:`~optreg.bench.setting_columns.setting_blocks`): only the columns that can split a
    block (options, fixed hyperparameters, those a slot's condition reads) are looked at setting
    by setting, and a slot's condition is decided once per distinct value.

    Args:
        entry: the optimizer.
        position: its place in the plan.
        settings: its settings, checked by :func:`~optreg.bench.runner.plan_bench`.

    Returns:
        The groups, in the order of their first setting.
    """
    accepted = entry.accepted_hyperparameters
    fixed = {h.name for h in accepted if getattr(h, "fixed", False)}
    defaults = {h.name: h.default for h in accepted}
    # each slot condition with the names it reads, parsed once for every block
    whens = [slot.when for slot in entry.slots if slot.when]
    conditions = [(when, sorted(tree.names_in(parse.parse_expression(when)))) for when in whens]
    parts: dict[tuple[Any, ...], list[tuple[SettingBlock, list[int]]]] = {}
    for block in setting_blocks(entry, settings):
        for key, rows in _split_block(block, fixed, defaults, conditions).items():
            parts.setdefault(key, []).append((block, rows))
    groups = [_group(entry, position, settings, chosen, fixed) for chosen in parts.values()]
    return sorted(groups, key=lambda group: group.indices[0])


def _split_block(
    block: SettingBlock,
    fixed: set[str],
    defaults: Mapping[str, Any],
    conditions: Sequence[tuple[str, Sequence[str]]],
) -> dict[tuple[Any, ...], list[int]]:
    """A block's rows by what must be equal within a loop: the options' and fixed
    hyperparameters' values as given, and whether each slot condition (given with the names it
    reads) holds."""
    named = sorted(key for key in block.keys if key in block.options or key in fixed)
    columns: list[list[Any]] = [[repr(value) for value in block.given[key]] for key in named]
    static: list[bool | None] = []  # the conditions that read nothing the block sets
    varying: list[int] = []
    for place, (when, read) in enumerate(conditions):
        if any(name in block.given for name in read):
            varying.append(place)
            columns.append(_condition_column(when, read, block, defaults))
        else:
            static.append(condition_holds(when, {name: defaults[name] for name in read if name in defaults}))
    count = len(block.indices)
    if not columns:
        return {((), tuple(static)): list(range(count))}
    rows: dict[tuple[Any, ...], list[int]] = {}
    for row, part in enumerate(zip(*columns)):
        rows.setdefault(part, []).append(row)
    split = {}
    for part, chosen in rows.items():
        holds = list(static)
        for place, value in zip(varying, part[len(named) :]):
            holds.insert(place, value)
        split[tuple(zip(named, part[: len(named)])), tuple(holds)] = chosen
    return split


def _condition_column(when: str, read: Sequence[str], block: SettingBlock, defaults: Mapping[str, Any]) -> list[Any]:
    """Whether ``when`` holds in each of the block's settings (given values over the defaults),
    decided once per distinct set of the values it reads."""
    count = len(block.indices)
    names = [name for name in read if name in block.given or name in defaults]
    sources = [block.given[name] if name in block.given else [defaults[name]] * count for name in names]
    decided: dict[tuple[Any, ...], bool | None] = {}
    column = []
    for values in zip(*sources):
        # 1, 1.0 and True are equal keys in a dict; a value's type keeps them apart
        key = tuple((type(value), value) for value in values)
        try:
            holds = decided[key]
        except KeyError:
            holds = decided[key] = condition_holds(when, dict(zip(names, values)))
        except TypeError:  # an unhashable value: decided on its own
            holds = condition_holds(when, dict(zip(names, values)))
        column.append(holds)
    return column


def _group(
    entry: OptimizerEntry,
    position: int,
    settings: Sequence[dict[str, Any]],
    parts: Sequence[tuple[SettingBlock, list[int]]],
    fixed: set[str],
) -> Group:
    """One group from its rows of one or more blocks, in the order of the settings; ``fixed``
    names the optimizer's fixed hyperparameters."""
    if len(parts) == 1 and len(parts[0][1]) == len(parts[0][0].indices):
        block = parts[0][0]
        indices, columns = block.indices, dict(block.values)
    else:
        places = sorted(((block.indices[row], block, row) for block, rows in parts for row in rows), key=lambda p: p[0])
        indices = tuple(index for index, _, _ in places)
        columns = {name: [block.values[name][row] for _, block, row in places] for name in parts[0][0].values}
    options = split_setting(settings[indices[0]], entry)[1]
    # the first setting's fixed and slot-deciding values stand for the whole group
    options.update({name: columns[name][0] for name in fixed})
    options.update({name: columns[name][0] for name in slot_deciding_hyperparameters(entry.slots)})
    shared = frozenset(name for name, column in columns.items() if same_bits(np.asarray(column, np.float64)))
    return Group(entry, position, indices, tuple(settings[i] for i in indices), columns, options, shared)


def _loops(
    cache: LoopCache[ProblemLoops], problem: Problem, groups: Sequence[Group], plan: BenchPlan, jit_compile: bool
) -> ProblemLoops:
    """The loops for these groups on this problem, from the cache, built on first use."""
    shape = (plan.max_iters, plan.stop_at_tolerance, plan.history_every, jit_compile)
    key = (problem.name, repr(sorted(problem.options.items())), tuple(group.key for group in groups), shape)
    return cache.get_or_build(key, lambda: _build_loops(problem, groups, plan, jit_compile))


def _build_loops(problem: Problem, groups: Sequence[Group], plan: BenchPlan, jit_compile: bool) -> ProblemLoops:
    """One shared loop for the groups whose optimizers stack runs; one loop each for the rest."""
    loop_args = (problem, plan.max_iters, jit_compile, plan.stop_at_tolerance, plan.history_every)
    # inside a loop XLA compiles whole, an optimizer's own compiled step would only be traced twice
    step_options = {"jit_compile": False} if jit_compile else {}
    members, stacked, alone = [], [], {}
    for index, group in enumerate(groups):
        # the loop applies the non-finite policy to each run itself; the optimizer clips, with
        # stacked hyperparameters each run on its own
        skip_nonfinite, optimizer_options = loop_options(group.options)
        optimizer = group.entry.build(**optimizer_options, **step_options)
        # one that must not be XLA-compiled gets a loop of its own, so the shared loop stays compiled
        if optimizer.supports_stacked_runs and optimizer.compiles_with_xla:
            runs = optimizer.hyperparameter_state.stacked(
                group.columns, variable_rank=2, shared=group.shared, runs_last=True
            )
            members.append(LoopMember(optimizer, len(group.settings), skip_nonfinite, runs))
            stacked.append(index)
        else:
            alone[index] = StackedLoop([LoopMember(optimizer, 1, skip_nonfinite)], *loop_args)
    shared = StackedLoop(members, *loop_args) if members else None
    return ProblemLoops(shared, tuple(stacked), alone)


def _report(progress: Callable[[int], None] | None, runs: int) -> None:
    """Tell the progress callback, if any, that ``runs`` more runs are finished."""
    if progress is not None:
        progress(runs)
