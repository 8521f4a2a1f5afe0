"""The ``optreg`` command: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from optreg.bench.figure_files import MAX_SIDE, MIN_SIDE
from optreg.bench.runner import MAX_ITERATIONS
from optreg.errors import OptionError, OptregError
from optreg.model.options import SPEC_OPTION_NAMES
from optreg.settings import check_environment, debug_requested

if TYPE_CHECKING:
    from optreg.catalog.registry import Registry

#: The exit status of a bench stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_STATUS = 130
#: ``bench --set``'s help: the option names come from the options record (optreg.model.options).
SET_HELP = (
    "A hyperparameter's or option's value(s) or ranges; repeatable. The options: "
    + ", ".join(SPEC_OPTION_NAMES)
    + "."
)


def stop_interrupted(message: str) -> NoReturn:
    """Say on stderr why the command stopped and exit with :data:`INTERRUPTED_STATUS` (Ctrl-C).

    Example:
        >>> stop_interrupted("interrupted while making the report; no outputs written")  # doctest: +SKIP
    """
    click.echo(f"optreg: {message}", err=True)
    sys.exit(INTERRUPTED_STATUS)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an OptregError into one line on stderr and its exit status (traceback with OPTREG_DEBUG=1)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_environment()
            return command(*args, **kwargs)
        except OptregError as error:
            if debug_requested():
                raise
            for each in getattr(error, "errors", (error,)):  # a spec's errors, one line each
                click.echo(f"optreg: error: {each}", err=True)
            sys.exit(error.exit_code)

    return wrapper


def spec_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the repeatable ``--spec PATH`` every command takes."""
    return click.option(
        "--spec",
        "spec_paths",
        multiple=True,
        type=click.Path(),
        help="A spec file or folder of specs to add (repeatable; also OPTREG_SPEC_PATH).",
    )(command)


def load_registry(spec_paths: Sequence[str]) -> Registry:
    """The registry with the given extra specs, discovered now, its plugin warnings on stderr.

    A spec file the user named with ``--spec`` must be valid: its error is the command's error
    (exit 1). In a folder named with ``--spec``, an invalid file is a warning and the others
    load, like an invalid spec of a plugin (``OPTREG_STRICT_PLUGINS=1`` makes it an error).
    """
    from optreg import Registry, registry
    from optreg.catalog.registry import PluginWarning
    from optreg.spec.reader import spec_files
    from optreg.spec.validate import validate_paths

    named_files = [path for path in spec_paths if not Path(path).is_dir()]
    empty_folders = [path for path in spec_paths if Path(path).is_dir() and not spec_files(Path(path))]
    for _, error in validate_paths([*named_files, *empty_folders]):
        if error is not None:
            raise error
    chosen = Registry(spec_paths=spec_paths) if spec_paths else registry
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        _ = chosen.discovery  # discovering now, so its warnings are caught here
    for warning in caught:
        if issubclass(warning.category, PluginWarning):
            click.echo(f"optreg: warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return chosen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optreg")
def main() -> None:
    """optreg: TensorFlow optimizers written as TOML specs or plugins, listed and benchmarked."""


@main.command("list")
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Aligned text, or JSON for programs.")
@spec_option
@reports_errors
def list_command(pattern: str | None, fmt: str, spec_paths: tuple[str, ...]) -> None:
    """List every registered optimizer with its source and summary.

    PATTERN, a shell-style wildcard such as 'adam*', lists only the optimizers whose name
    (short or qualified) it matches.
    """
    from optreg.catalog import show
    from optreg.catalog.names import matches

    entries = [
        entry
        for entry in load_registry(spec_paths)
        if pattern is None or matches(pattern, entry.qualified_name)
    ]
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    click.echo(show.list_json(entries) if fmt == "json" else show.list_table(entries, width), nl=False)


@main.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text for reading, or JSON for programs.")
@spec_option
@reports_errors
def show_command(name: str, fmt: str, spec_paths: tuple[str, ...]) -> None:
    """Show one optimizer: hyperparameters, slots, update rule and source file."""
    from optreg.catalog import show

    entry = load_registry(spec_paths).get(name)
    if fmt == "json":
        text = json.dumps(show.entry_record(entry, detailed=True), indent=2) + "\n"
    else:
        text = show.show_text(entry)
    click.echo(text, nl=False)


@main.command("problems")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Aligned text, or JSON for programs.")
@spec_option
@reports_errors
def problems_command(fmt: str, spec_paths: tuple[str, ...]) -> None:
    """List every registered loss problem: source, start point, known minimum."""
    from optreg.catalog import show

    problems = list(load_registry(spec_paths).problems)
    click.echo(show.problems_json(problems) if fmt == "json" else show.problems_table(problems), nl=False)


@main.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Aligned text, or JSON for programs.")
@spec_option
@reports_errors
def plugins_command(fmt: str, spec_paths: tuple[str, ...]) -> None:
    """List every plugin: distribution, version, hooks, what it registered, and its errors."""
    from optreg.catalog import show

    reports = load_registry(spec_paths).discovery.plugins
    if fmt == "json":
        text = json.dumps([r.as_record() for r in reports], indent=2) + "\n"
    else:
        text = show.plugins_text(reports)
    click.echo(text, nl=False)


@main.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@spec_option
@reports_errors
def validate_command(paths: tuple[str, ...], spec_paths: tuple[str, ...]) -> None:
    """Load and check each spec file (or folder of specs) without running it.

    Prints "PATH: ok", or every error of the file, one line each with file, line and key;
    exits 1 when any spec is invalid.
    """
    from optreg.spec.validate import validate_paths

    load_registry(spec_paths)
    results = validate_paths(paths)
    for path, error in results:
        if error is None:
            click.echo(f"{path}: ok")
        for each in error.errors if error is not None else ():
            click.echo(f"{each}", err=True)
    if any(error is not None for _, error in results):
        sys.exit(1)


@main.command("bench")
@click.argument("optimizers", nargs=-1, required=True)
@click.option("--problem", "problems", multiple=True, default=["quartic"], show_default=True,
              help="A problem to run on; repeat for several, or 'all'.")
@click.option("--lr", "learning_rates", multiple=True, metavar="V[,V...]",
              help="Learning rates: values, logspace:START:STOP:N / linspace:START:STOP:N ranges and "
                   "lograndom:LOW:HIGH:N[:SEED] / random:LOW:HIGH:N[:SEED] samples, comma-separated; repeatable.")
@click.option("--set", "settings", multiple=True, metavar="NAME=V[,V...]",
              help=SET_HELP)
@click.option("--problem-set", "problem_settings", multiple=True, metavar="NAME=V",
              help="A problem option, e.g. dimension=50.")
@click.option("--seed", "seed", type=int, multiple=True, metavar="N",
              help="One seed: the start point (a perturbed one on analytic problems, 0: the problem's own) "
                   "and minibatch order. Given once; for several use --seeds.")
@click.option("--seeds", default=None, metavar="A-B|a,b,c|N",
              help="Run every setting on every seed, side by side: a range 0-9, a list 0,3,7, or a count N "
                   "(seeds 0 to N-1). Tables then show mean ± std and a 95% interval per setting.")
@click.option("--batch-size", type=click.IntRange(min=0), default=None,
              help="Minibatch size for problems with data (0: full batch).")
@click.option("--max-iters", type=click.IntRange(min=1, max=MAX_ITERATIONS), default=2000, show_default=True,
              help=f"The iteration limit of every run (status 'exceeded' when reached; at most {MAX_ITERATIONS}).")
@click.option("--stop-at-tolerance", is_flag=True,
              help="Stop each run once it is within its problem's tolerance ('reached').")
@click.option("--history-every", type=click.IntRange(min=0), default=0,
              help="Record loss and parameters every N iterations.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="How results print: an aligned table in the tutorial's words, JSON records, or CSV rows.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write results.json, results.csv, figures (and a ranking) into this folder.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the main figure into this file: PNG, SVG or PDF by its suffix.")
@click.option("--plot-profile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the performance profile (Dolan-Moré) into this file: PNG, SVG or PDF by its suffix.")
@click.option("--plot-size", metavar="WIDTHxHEIGHT", default=None,
              help=f"Every figure's size in pixels, e.g. 1200x800 (each side {MIN_SIDE} to {MAX_SIDE}).")
@click.option("--halving", type=click.IntRange(min=2), default=None, metavar="ETA",
              help="Successive halving on one problem: run every setting briefly, keep the best 1/ETA, "
                   "run those ETA times longer, until the last rung runs for --max-iters.")
@click.option("--jit/--no-jit", default=True, show_default=True, help="Compile each loop with XLA.")
@spec_option
@reports_errors
def bench_command(
    optimizers: tuple[str, ...], problems: tuple[str, ...], fmt: str, jit: bool, spec_paths: tuple[str, ...],
    **request: Any,
) -> None:
    """Run OPTIMIZERS on problems with every combination of the given hyperparameters.

    Each run is the TensorFlow Core tutorial's convergence test: converged when a step meant to
    move the parameters leaves them unchanged (stuck when it ends there outside the problem's
    tolerance, or no better than its baseline), exploded when the gradient turns NaN, exceeded
    after --max-iters iterations (reached: within the problem's tolerance, with
    --stop-at-tolerance). Rankings judge each run by where it ends. The runs of every optimizer
    whose updates are elementwise, on every seed, train side by side in one compiled loop per
    problem.
    """
    seed = request.pop("seed")  # Click keeps every --seed: one is allowed, not the last of several
    if len(seed) > 1:
        raise OptionError(f"--seed takes one seed, given {len(seed)} times; for several, use --seeds "
                          f"{','.join(str(s) for s in seed)}")
    from optreg.bench.figure_files import parse_figure_size

    if request["plot_size"] is not None:
        request["plot_size"] = parse_figure_size(request["plot_size"])
    from optreg.runtime.quiet_tensorflow import import_tensorflow

    import_tensorflow()  # before any plugin or bench module imports it
    from optreg.bench.execute import BenchInterrupted, run_bench
    from optreg.bench.halving import HalvingSearch
    from optreg.bench.ranking import ranking_text
    from optreg.bench.report import render
    from optreg.bench.session import (
        BenchRequest,
        check_outputs,
        compares,
        plan_request,
        progress_reporter,
        write_outputs,
    )

    bench = BenchRequest(optimizers=optimizers, problems=problems, jit_compile=jit, seed=seed[0] if seed else None,
                         **request)
    plan = plan_request(load_registry(spec_paths), bench)
    check_outputs(bench)  # before the computing, not after it
    search = HalvingSearch(plan, bench.halving) if bench.halving else None
    advance, finish = progress_reporter(search.run_count if search else plan.run_count)
    interrupted, finished = False, 0
    try:
        make_runs = functools.partial(run_bench, jit_compile=jit, progress=advance)
        results = search.run(make_runs) if search else make_runs(plan)
    except BenchInterrupted as stop:
        results, interrupted, finished = stop.results, True, len(stop.results)
        if search and search.finished:  # one problem, so its rung made nothing: the last rung that did
            results, finished = search.finished[-1], search.finished_runs
    finally:
        finish()
    try:  # the records are made here, as the report reads them
        text = render(results, fmt, with_history=bench.history_every > 0) if results else ""
        if fmt == "table" and compares(plan) and not interrupted:
            text += "\n" + ranking_text(results)
        if fmt == "table" and search and not interrupted:
            text += "\n" + search.text()
    except KeyboardInterrupt:
        stop_interrupted("interrupted while making the report; no outputs written")
    click.echo(text, nl=False)
    if interrupted:  # what finished is printed; nothing is written
        total = search.run_count if search else plan.run_count
        stop_interrupted(f"interrupted: {finished} of {total} runs finished; no outputs written")
    try:
        write_outputs(results, plan, bench)
    except KeyboardInterrupt:  # each output is staged and renamed into place whole
        stop_interrupted("interrupted while writing the outputs; each is written whole or left as it was")
