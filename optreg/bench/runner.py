"""Plan bench runs (optimizers × problems × hyperparameter settings) and hold what they did.

Planning looks everything up and checks every setting without TensorFlow; :mod:`optreg.bench.execute`
makes the runs, and :class:`RunResult` records each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from optreg.bench.grid import check_run_count
from optreg.bench.loop_timing import LoopTiming
from optreg.bench.setting_columns import setting_blocks
from optreg.catalog.entries import OptimizerEntry
from optreg.catalog.registry import Registry
from optreg.errors import OptionError
from optreg.problems import Problem


@attrs.frozen
class RunResult:
    """What one run did.

    Attributes:
        optimizer: the optimizer's name.
        problem: the problem's name.
        hyperparameters: every hyperparameter's value in this run.
        settings: the hyperparameters and options set explicitly (the rest are defaults).
        status: ``converged``, ``exceeded``, ``exploded``, ``reached`` or ``stalled`` (see
            :mod:`optreg.bench.loop`), or ``stuck``: the loop's test of convergence held (a step
            left the parameters where they were, the gradient near zero) but the run ended
            outside the tolerance of the known minimum, or no better than the problem's
            baseline (:data:`STUCK`).
        iterations: the iteration the run ended at.
        final_loss: the loss at the final parameters.
        final_params: the final parameters.
        seconds_share: the run's even share of the wall time of the loop call it was made in
            (``loop.run_seconds / loop.runs``), compilation left out, so a sum over runs counts
            each call once (:mod:`optreg.bench.loop_timing`).
        reached_at: the first iteration whose loss was within the problem's tolerance of its
            minimum, or None.
        stalled_at: for a stalled run, the iteration from which its parameters stood still
            with the gradient not near zero; None otherwise.
        settled_at: the iteration from which the run's loss stayed within the tolerance to its
            end (its time to target; for a problem with a ``target``, from which it met the
            target to its end); None when it ended outside (or the problem has neither a known
            minimum nor a target). A run with a ``settled_at`` has solved the problem.
        seed: the seed of the run's start point (and minibatch order), or None when the bench
            was given no seeds (the problem's own start).
        metrics: the problem's extra figures for this run (e.g. test loss).
        history: ``{"iterations", "loss", "params"}`` lists when history was recorded.
        problem_options: the options the problem was made with.
        has_minimum: whether the problem states its minimum loss (so runs can solve it).
        judged_by: the metric that judges the run instead of its final (training) loss, such
            as ``test_loss`` for a problem with held-out data; None: the final loss.
        baseline: the judged loss of the problem's baseline (the constant prediction's), which a
            run must beat to count as converged; None when the problem has none.
        target: the target of a problem judged by one instead of a known minimum, as text
            (``test_accuracy ≥ 0.95``); None otherwise.
        loop: the timing of the loop call the run was made in, shared with every run in it;
            None for a record made by hand.
    """

    optimizer: str
    problem: str
    hyperparameters: Mapping[str, Any]
    settings: Mapping[str, Any]
    status: str
    iterations: int
    final_loss: float
    final_params: tuple[float, ...]
    seconds_share: float
    reached_at: int | None = None
    stalled_at: int | None = None
    metrics: Mapping[str, float] = attrs.field(factory=dict)
    history: Mapping[str, list[Any]] | None = None
    problem_options: Mapping[str, Any] = attrs.field(factory=dict)
    has_minimum: bool = True
    settled_at: int | None = None
    seed: int | None = None
    judged_by: str | None = None
    baseline: float | None = None
    loop: LoopTiming | None = None
    target: str | None = None

    @property
    def has_target(self) -> bool:
        """Whether the run could solve its problem: it has a known minimum or a target."""
        return self.has_minimum or self.target is not None

    @property
    def seconds_to_target(self) -> float | None:
        """The wall-clock time to target: the estimated seconds the run's loop took to reach
        ``settled_at`` (:meth:`~optreg.bench.loop_timing.LoopTiming.seconds_to`), compilation
        left out; None when the run did not settle, or has no loop timing."""
        return self.loop.seconds_to(self.settled_at) if self.loop is not None else None

    @property
    def judged_loss(self) -> float:
        """The loss the run is judged by: its ``judged_by`` metric, else its final loss."""
        return self.metrics[self.judged_by] if self.judged_by is not None else self.final_loss

    @property
    def solved(self) -> bool:
        """Whether the run ended within the tolerance of the known minimum, staying there
        from ``settled_at`` on."""
        return self.settled_at is not None


def outcome(result: RunResult) -> str:
    """The tutorial's words for how a run ended.

    Example:
        >>> outcome(RunResult("m", "q", {}, {}, "converged", 80, 0.0, (0.0,), 0.0))
        'Converged in 80 iterations'
    """
    if result.status == "converged":
        return f"Converged in {result.iterations} iterations"
    if result.status == "exploded":
        return f"Gradient exploded at iteration {result.iterations}"
    if result.status == "reached":
        return f"Reached {'tolerance' if result.target is None else 'the target'} in {result.iterations} iterations"
    if result.status == "stalled":
        return f"Stalled from iteration {result.stalled_at}, gradient not near zero"
    if result.status == STUCK:
        where = "outside tolerance" if result.baseline is None else "no better than the baseline"
        return f"Stuck after {result.iterations} iterations, {where}"
    return f"Exceeded maximum of {result.iterations} iterations"


#: The status of a run the loop found converged that ended outside the tolerance of the known
#: minimum, or no better than the problem's baseline: it stopped moving, but not at a solution.
STUCK = "stuck"


def judged_status(loop_status: str, result_solved: bool, has_minimum: bool, beats_baseline: bool | None) -> str:
    """A run's status from the loop's and where it ended: a convergence that is no solution is
    :data:`STUCK`.

    Args:
        loop_status: the loop's status (:data:`~optreg.bench.run_status.STATUSES`).
        result_solved: whether the run ended within tolerance (see ``settled_at``).
        has_minimum: whether the problem states its minimum.
        beats_baseline: whether the judged loss is below the problem's baseline (None: no baseline).

    Example:
        >>> judged_status("converged", False, True, None), judged_status("converged", True, True, None)
        ('stuck', 'converged')
    """
    if loop_status != "converged":
        return loop_status
    if (has_minimum and not result_solved) or beats_baseline is False:
        return STUCK
    return loop_status


#: The largest iteration limit: the loop counts iterations in int32, which must still hold the
#: limit itself (2**31 - 1 = 2,147,483,647).
MAX_ITERATIONS = 2**31 - 1
#: The most memory a problem's recorded history may take (``--history-every``): 1 GiB of
#: float32 losses and parameters, recorded points × runs × (dimension + 1) × 4 bytes.
MAX_HISTORY_BYTES = 1 << 30
#: The most memory a problem's parameters may take, runs × dimension × 4 bytes: 1 GiB (the
#: optimizers' slots come on top).
MAX_PARAMETER_BYTES = 1 << 30


@attrs.frozen
class BenchPlan:
    """The validated runs to make: each problem, each optimizer entry with its settings, each
    setting on every seed (no seeds: once, from the problem's own start)."""

    problems: tuple[Problem, ...]
    runs: tuple[tuple[OptimizerEntry, tuple[dict[str, Any], ...]], ...]
    max_iters: int
    stop_at_tolerance: bool = False
    history_every: int = 0
    seeds: tuple[int, ...] = ()

    @property
    def runs_per_problem(self) -> int:
        """How many runs the plan makes on each problem: settings × seeds."""
        return sum(len(settings) for _, settings in self.runs) * max(1, len(self.seeds))

    @property
    def run_count(self) -> int:
        """How many runs the plan makes."""
        return len(self.problems) * self.runs_per_problem


def plan_bench(
    registry: Registry,
    optimizers: Sequence[str],
    problems: str | Sequence[str],
    settings: Sequence[dict[str, Any]],
    max_iters: int = 2000,
    *,
    problem_options: Mapping[str, Any] | None = None,
    stop_at_tolerance: bool = False,
    history_every: int = 0,
    seeds: Sequence[int] = (),
) -> BenchPlan:
    """Look everything up and check every setting before anything runs (no TensorFlow).

    Args:
        registry: where the optimizers and problems are registered.
        optimizers: optimizer names.
        problems: a problem name, several, or ``"all"``.
        settings: one dict of explicitly set hyperparameters (and options) per run.
        max_iters: the iteration limit.
        problem_options: options for the problems (``seed`` goes to those that take one and
            is ignored by the rest; any other option must be accepted by every problem).
        stop_at_tolerance: stop each run once it is within its problem's tolerance.
        history_every: record loss and parameters every this many iterations (0: never).
        seeds: run every setting once per seed, side by side (see
            :meth:`~optreg.problems.Problem.seeded_start`); empty: once from the problem's start.

    Returns:
        A :class:`BenchPlan`.

    Raises:
        UnknownNameError: an unknown optimizer or problem.
        HyperparameterError: a setting an optimizer does not accept.
        OptionError: a bad iteration limit, history interval or problem option.

    Example:
        >>> from optreg import registry
        >>> plan = plan_bench(registry, ["momentum"], "quartic", [{"learning_rate": 0.01}])
        >>> plan.run_count
        1
    """
    if not 1 <= max_iters <= MAX_ITERATIONS:
        raise OptionError(
            f"max_iters must be between 1 and {MAX_ITERATIONS} (the loop's int32 counter), got {max_iters}"
        )
    if history_every < 0:
        raise OptionError(f"history_every must be 0 (off) or positive, got {history_every}")
    names = [problems] if isinstance(problems, str) else list(problems)
    if names == ["all"]:
        names = registry.problems.names()
    found = tuple(_configured(registry.problems.get(name), problem_options or {}) for name in names)
    runs = []
    for name in optimizers:
        for entry, chosen in _with_inner_optimizers(registry, registry.get(name), settings):
            # every setting checked, in bulk: the error is the first bad setting's, as checked alone
            setting_blocks(entry, chosen)
            runs.append((entry, tuple(chosen)))
    if len(set(seeds)) != len(seeds):
        raise OptionError(f"seeds must differ, got {list(seeds)}")
    for seed in seeds:
        check_seed(seed)
    plan = BenchPlan(found, tuple(runs), max_iters, stop_at_tolerance, history_every, tuple(seeds))
    check_plan_size(plan)
    return plan


def check_plan_size(plan: BenchPlan) -> None:
    """Refuse a plan too big to hold, before anything is built: more than
    :data:`~optreg.bench.grid.MAX_RUNS` runs, or a problem whose parameters or history would
    pass :data:`MAX_PARAMETER_BYTES` or :data:`MAX_HISTORY_BYTES`.

    Raises:
        OptionError: saying how big, and the limit.

    Example:
        >>> from optreg import registry
        >>> plan_bench(registry, ["adam"], "quartic", [{}], 10**9, history_every=1)  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: the history of quartic would take 8000000016 bytes (1000000002 recorded points
        × 1 runs × (dimension 1 + 1) × 4), more than the limit of 1073741824 (1 GiB); record less often
        (--history-every) or make fewer runs
    """
    check_run_count(plan.run_count, "the optimizers, problems and settings make")
    runs = plan.runs_per_problem
    for problem in plan.problems:
        parameter_bytes = runs * problem.dimension * 4
        if parameter_bytes > MAX_PARAMETER_BYTES:
            raise OptionError(
                f"the parameters of {problem.name} would take {parameter_bytes} bytes ({runs} runs × dimension "
                f"{problem.dimension} × 4), more than the limit of {MAX_PARAMETER_BYTES} (1 GiB)"
            )
        if plan.history_every:
            points = history_points(plan.max_iters, plan.history_every)
            history_bytes = points * runs * (problem.dimension + 1) * 4
            if history_bytes > MAX_HISTORY_BYTES:
                raise OptionError(
                    f"the history of {problem.name} would take {history_bytes} bytes ({points} recorded points "
                    f"× {runs} runs × (dimension {problem.dimension} + 1) × 4), more than the limit of "
                    f"{MAX_HISTORY_BYTES} (1 GiB); "
                    "record less often (--history-every) or make fewer runs"
                )


#: Seeds fit in int32, as the minibatch order's stateless random draws take them.
SEED_RANGE = (-(2**31), 2**31 - 1)


def check_seed(seed: int) -> int:
    """A seed checked to be a whole number that fits in int32.

    Raises:
        OptionError: it is not.

    Example:
        >>> check_seed(7)
        7
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise OptionError(f"a seed is a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]}, got {seed!r}")
    return seed


def history_points(max_iters: int, history_every: int) -> int:
    """How many points the loop's history holds: one every ``history_every`` iterations from
    the first, the last one's, and a spare row writes of the others go to.

    Example:
        >>> history_points(2000, 10)
        202
    """
    return max_iters // history_every + 2


def _with_inner_optimizers(
    registry: Registry, entry: OptimizerEntry, settings: Sequence[dict[str, Any]]
) -> list[tuple[OptimizerEntry, list[dict[str, Any]]]]:
    """The settings of one optimizer; for a wrapper (Lookahead), split by the inner optimizer
    each names (its default when none), each share with the wrapper bound to that inner one."""
    if entry.inner is None:
        return [(entry, list(settings))]
    by_inner: dict[str, list[dict[str, Any]]] = {}
    for setting in settings:
        inner = setting.get(entry.inner.keyword, entry.inner.default)
        if not isinstance(inner, str):
            raise OptionError(f"{entry.name}: {entry.inner.keyword} names an optimizer, got {inner!r}")
        by_inner.setdefault(inner, []).append(setting)
    return [(entry.wrapping(registry.get(inner)), chosen) for inner, chosen in by_inner.items()]


def _configured(problem: Problem, options: Mapping[str, Any]) -> Problem:
    """The problem with the options it takes; ``seed`` is skipped by problems without one."""
    chosen = {k: v for k, v in options.items() if k != "seed" or "seed" in problem.options}
    return problem.with_options(**chosen)
