"""One ``optreg bench`` invocation: plan, run with progress, and write every requested output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from optreg.bench.figure_files import FigureSize, check_figure_options
from optreg.bench.grid import parse_setting, settings_grid
from optreg.bench.profile_figure import check_profile_problems
from optreg.bench.runner import BenchPlan, RunResult, plan_bench
from optreg.catalog.registry import Registry
from optreg.errors import OptionError

#: How many recorded points a plot's history aims for when the user set no interval.
_PLOT_POINTS = 2000


@attrs.frozen
class BenchRequest:
    """Everything the ``bench`` command was asked for.

    Attributes:
        optimizers: optimizer names.
        problems: problem names, or ``("all",)``.
        learning_rates: ``--lr`` values or ranges.
        settings: ``--set NAME=V[,V…]`` texts.
        problem_settings: ``--problem-set NAME=V`` texts (problem options).
        seed: ``--seed``: one seed (the same as ``--seeds N-N``).
        seeds: ``--seeds``: a range ``A-B``, a list ``a,b,c`` or a count ``N`` (see
            :func:`~optreg.bench.seed_stats.parse_seeds`); every setting runs on every seed.
        batch_size: ``--batch-size``, for problems that train on minibatches.
        max_iters: the iteration limit.
        stop_at_tolerance: stop runs that reach their problem's tolerance.
        history_every: record history every this many iterations (0: only if a plot needs it).
        out: a folder for results and figures, or None.
        plot: a PNG, SVG or PDF file for the main figure, or None.
        jit_compile: compile loops with XLA.
        plot_size: every figure's size in pixels (``--plot-size``), or None for their own.
        plot_profile: a PNG, SVG or PDF file for the performance profile, or None.
        halving: ``--halving``: successive halving's factor (:mod:`optreg.bench.halving`), or None.
    """

    optimizers: tuple[str, ...]
    problems: tuple[str, ...] = ("quartic",)
    learning_rates: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    problem_settings: tuple[str, ...] = ()
    seed: int | None = None
    seeds: str | None = None
    batch_size: int | None = None
    max_iters: int = 2000
    stop_at_tolerance: bool = False
    history_every: int = 0
    out: Path | None = None
    plot: Path | None = None
    jit_compile: bool = True
    plot_size: FigureSize | None = None
    plot_profile: Path | None = None
    halving: int | None = None

    @property
    def wants_figures(self) -> bool:
        """Whether a plot or an output folder was asked for."""
        return self.out is not None or self.plot is not None


def plan_request(registry: Registry, request: BenchRequest) -> BenchPlan:
    """Check the request and plan its runs (no TensorFlow).

    Example:
        >>> request = BenchRequest(("adam",), learning_rates=("logspace:1e-4:1e-1:5",))
        >>> plan_request(registry, request).run_count  # doctest: +SKIP
        5
    """
    check_figure_options(request.plot, request.plot_profile, request.plot_size, request.out)
    history_every = request.history_every
    if history_every == 0 and request.wants_figures:
        history_every = max(1, request.max_iters // _PLOT_POINTS)
    plan = plan_bench(
        registry,
        request.optimizers,
        request.problems,
        settings_grid(request.learning_rates, request.settings),
        request.max_iters,
        problem_options=problem_options(request),
        stop_at_tolerance=request.stop_at_tolerance,
        history_every=history_every,
        seeds=request_seeds(request),
    )
    if request.plot_profile is not None:
        check_profile_problems(plan.problems)
    return plan


def request_seeds(request: BenchRequest) -> tuple[int, ...]:
    """The seeds asked for: ``--seeds``, or ``--seed`` as a single one, or none.

    Raises:
        OptionError: both were given, or ``--seeds`` is malformed.

    Example:
        >>> request_seeds(BenchRequest(("adam",), seeds="0-2")), request_seeds(BenchRequest(("adam",), seed=7))
        ((0, 1, 2), (7,))
    """
    from optreg.bench.seed_stats import parse_seeds

    if request.seed is not None and request.seeds is not None:
        raise OptionError("give --seed N (one seed) or --seeds (several), not both")
    if request.seeds is not None:
        return parse_seeds(request.seeds)
    return () if request.seed is None else (request.seed,)


def problem_options(request: BenchRequest) -> dict[str, Any]:
    """The problem options of ``--problem-set`` and ``--batch-size`` (seeds are an axis of the
    plan, :func:`request_seeds`).

    Example:
        >>> problem_options(BenchRequest(("adam",), problem_settings=("dimension=3",), batch_size=32))
        {'dimension': 3, 'batch_size': 32}
    """
    options: dict[str, Any] = {}
    for text in request.problem_settings:
        name, values = parse_setting(text)
        if len(values) != 1:
            raise OptionError(f"--problem-set takes one value, got {text!r}")
        options[name] = values[0]
    if request.batch_size is not None:
        options["batch_size"] = request.batch_size
    return options


def check_outputs(request: BenchRequest) -> None:
    """Check, before any computing, that ``--plot`` and ``--out`` can be written.

    Raises:
        OutputError: one of them cannot (see :mod:`optreg.bench.output_files`).

    Example:
        >>> check_outputs(BenchRequest(("adam",)))  # nothing asked for, nothing to check
    """
    from optreg.bench.output_files import check_output_file, check_output_folder

    for path in (request.plot, request.plot_profile):
        if path is not None:
            check_output_file(path)
    if request.out is not None:
        check_output_folder(request.out)


def write_outputs(results: Sequence[RunResult], plan: BenchPlan, request: BenchRequest,
                  say: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``--plot``, ``--plot-profile`` and the ``--out`` folder (results.json, results.csv, figures, ranking).

    The folder is written whole and renamed into place (see :mod:`optreg.bench.output_files`);
    replacing an earlier bench's folder is said in one line.

    Args:
        results: the bench's results.
        plan: its plan.
        request: what was asked for.
        say: where the line about a replaced folder goes (default: stderr).

    Returns:
        The files written.

    Example:
        >>> write_outputs(results, plan, request)  # doctest: +SKIP
    """
    from optreg.bench import figure_sets, plot_style
    from optreg.bench.output_files import write_folder

    say = say or (lambda text: print(text, file=sys.stderr))
    written = []
    if request.plot is not None:
        mine = [r for r in results if r.problem == plan.problems[0].name]
        plot_style.save_figure(figure_sets.main_figure(mine, plan.problems[0]), request.plot, request.plot_size)
        written.append(request.plot)
    if request.plot_profile is not None:
        from optreg.bench.profile_figure import profile_figure

        plot_style.save_figure(profile_figure(results), request.plot_profile, request.plot_size)
        written.append(request.plot_profile)
    if request.out is not None:
        files, replaced = write_folder(request.out, lambda folder: folder_contents(results, plan, request, folder))
        if replaced:
            say(f"optreg: replaced the earlier bench's results in {str(request.out)!r}")
        written += files
    return written


def folder_contents(results: Sequence[RunResult], plan: BenchPlan, request: BenchRequest, folder: Path) -> list[Path]:
    """Write the ``--out`` files into ``folder``: results.json, results.csv, ranking, figures.

    Returns:
        The files written.

    Example:
        >>> folder_contents(results, plan, request, Path("staging"))  # doctest: +SKIP
    """
    from optreg.bench import figure_sets, report
    from optreg.bench.ranking import ranking_text

    # history recorded only for the figures stays out of results.json
    as_json = report.as_json(results, with_history=request.history_every > 0)
    texts = {"results.json": as_json, "results.csv": report.as_csv(results)}
    if compares(plan):
        texts.update({"ranking.txt": ranking_text(results), "ranking.json": summary_json(results)})
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / name for name in texts] + figure_sets.write_figures(
        results, plan.problems, folder, request.plot_size, profile=compares(plan)
    )


def compares(plan: BenchPlan) -> bool:
    """Whether the plan compares optimizers (several of them, or one across several problems)."""
    return len(plan.runs) > 1 or len(plan.problems) > 1


def progress_reporter(total: int, stream: TextIO | None = None) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar on stderr for ``total`` runs when stderr is a terminal and there is more
    than one run; otherwise callbacks that do nothing.

    Returns:
        ``(advance(runs), finish())``.

    Example:
        >>> advance, finish = progress_reporter(10)
    """
    import click

    stream = stream if stream is not None else sys.stderr
    if total <= 1 or not stream.isatty():
        return (lambda runs: None), (lambda: None)
    bar = click.progressbar(length=total, label="bench", file=stream, show_pos=True)
    bar.__enter__()
    return bar.update, lambda: bar.__exit__(None, None, None)


def summary_json(results: Sequence[RunResult]) -> str:
    """The ranking and the performance profile as JSON.

    Example:
        >>> import json
        >>> json.loads(summary_json([]))
        {'standings': {}, 'profile': {}}
    """
    from optreg.bench.ranking import profile, standings
    from optreg.bench.result_schema import json_text, strict

    table = {
        problem: [{"rank": s.rank, "optimizer": s.result.optimizer, "settings": dict(s.result.settings),
                   "hyperparameters": dict(s.result.hyperparameters),
                   "seeds": [run.seed for run in s.setting.runs], "solved": s.setting.solved,
                   "statuses": [run.status for run in s.setting.runs], "settled_at": s.solved_in,
                   "judged_by": s.result.judged_by or "final_loss",
                   "judged_loss": s.setting.judged.as_record()}
                  for s in places]
        for problem, places in standings(results).items()
    }
    return json_text(strict({"standings": table, "profile": profile(results)}, "ranking", []))
