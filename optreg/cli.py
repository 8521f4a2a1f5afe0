"""The ``optreg`` command: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings

import click

from optreg.errors import OptregError


def reports_errors(command):
    """Turn an OptregError into one line on stderr and its exit status (traceback with OPTREG_DEBUG=1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OptregError as error:
            if os.environ.get("OPTREG_DEBUG") == "1":
                raise
            click.echo(f"optreg: error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper


def spec_option(command):
    """Add the repeatable ``--spec PATH`` every command takes."""
    return click.option(
        "--spec",
        "spec_paths",
        multiple=True,
        type=click.Path(),
        help="A spec file or folder of specs to add (repeatable; also OPTREG_SPEC_PATH).",
    )(command)


def load_registry(spec_paths):
    """The registry with the given extra specs, discovered now, its plugin warnings on stderr.

    A ``--spec`` the user named must be valid: its error is the command's error (exit 1).
    """
    from optreg import Registry, registry
    from optreg.registry import PluginWarning

    from optreg.validate import validate_paths

    for _, error in validate_paths(spec_paths):
        if error is not None:
            raise error
    chosen = Registry(spec_paths=spec_paths) if spec_paths else registry
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        chosen.discovery
    for warning in caught:
        if issubclass(warning.category, PluginWarning):
            click.echo(f"optreg: warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return chosen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optreg")
def main():
    """optreg: TensorFlow optimizers written as TOML specs or plugins, listed and benchmarked."""


@main.command("list")
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@spec_option
@reports_errors
def list_command(pattern, fmt, spec_paths):
    """List every registered optimizer with its source and summary.

    PATTERN, a shell-style wildcard such as 'adam*', lists only the optimizers whose name
    (short or qualified) it matches.
    """
    from optreg import show
    from optreg.catalog import matches

    entries = [
        entry
        for entry in load_registry(spec_paths)
        if pattern is None or matches(pattern, entry.name) or matches(pattern, entry.qualified_name)
    ]
    click.echo(show.list_json(entries) if fmt == "json" else show.list_table(entries), nl=False)


@main.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@spec_option
@reports_errors
def show_command(name, fmt, spec_paths):
    """Show one optimizer: hyperparameters, slots, update rule and source file."""
    from optreg import show

    entry = load_registry(spec_paths).get(name)
    text = json.dumps(show.entry_record(entry, detailed=True), indent=2) + "\n" if fmt == "json" else show.show_text(entry)
    click.echo(text, nl=False)


@main.command("problems")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@spec_option
@reports_errors
def problems_command(fmt, spec_paths):
    """List every registered loss problem: source, start point, known minimum."""
    from optreg import show

    problems = list(load_registry(spec_paths).problems)
    click.echo(show.problems_json(problems) if fmt == "json" else show.problems_table(problems), nl=False)


@main.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@spec_option
@reports_errors
def plugins_command(fmt, spec_paths):
    """List every plugin: distribution, version, hooks, what it registered, and its errors."""
    from optreg import show

    reports = load_registry(spec_paths).discovery.plugins
    text = json.dumps([r.as_record() for r in reports], indent=2) + "\n" if fmt == "json" else show.plugins_text(reports)
    click.echo(text, nl=False)


@main.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@spec_option
@reports_errors
def validate_command(paths, spec_paths):
    """Load and check each spec file (or folder of specs) without running it.

    Prints "PATH: ok" or the error with file and key; exits 1 when any spec is invalid.
    """
    from optreg.validate import validate_paths

    load_registry(spec_paths)
    results = validate_paths(paths)
    for path, error in results:
        click.echo(f"{path}: ok" if error is None else f"{error}", err=error is not None)
    if any(error is not None for _, error in results):
        sys.exit(1)


@main.command("bench")
@click.argument("optimizers", nargs=-1, required=True)
@click.option("--problem", default="quartic", show_default=True, help="The loss problem to run on.")
@click.option("--lr", "learning_rates", type=float, multiple=True, help="A learning rate; repeat for several.")
@click.option("--set", "settings", multiple=True, metavar="NAME=V[,V...]", help="A hyperparameter's value(s); repeatable.")
@click.option("--max-iters", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--jit/--no-jit", default=True, show_default=True, help="Compile each run's loop with XLA.")
@spec_option
@reports_errors
def bench_command(optimizers, problem, learning_rates, settings, max_iters, fmt, jit, spec_paths):
    """Run OPTIMIZERS on a problem with every combination of the given hyperparameters.

    Each run is the TensorFlow Core tutorial's convergence test, compiled into one loop:
    converged when a step leaves the parameters unchanged, exploded when the gradient turns
    NaN, exceeded after --max-iters steps.
    """
    from optreg.bench.grid import settings_grid
    from optreg.bench.report import render
    from optreg.bench.runner import plan_bench, run_bench

    grid = settings_grid(learning_rates, settings)
    plan = plan_bench(load_registry(spec_paths), optimizers, problem, grid, max_iters)
    click.echo(render(run_bench(plan, jit_compile=jit), fmt), nl=False)
