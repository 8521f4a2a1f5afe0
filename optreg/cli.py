"""The ``optreg`` command: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import functools
import os
import sys

import click

from optreg.errors import OptregError

FORMAT = click.Choice(["table", "json"])


def _registry():
    from optreg import registry

    return registry


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optreg")
def main():
    """optreg: TensorFlow optimizers written as TOML specs or plugins, listed and benchmarked."""


@main.command("list")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@reports_errors
def list_command(fmt):
    """List every registered optimizer with its source and summary."""
    from optreg import show

    entries = list(_registry())
    click.echo(show.list_json(entries) if fmt == "json" else show.list_table(entries), nl=False)


@main.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def show_command(name, fmt):
    """Show one optimizer: hyperparameters, slots, update rule and source file."""
    import json

    from optreg import show

    entry = _registry().get(name)
    text = json.dumps(show.entry_record(entry, detailed=True), indent=2) + "\n" if fmt == "json" else show.show_text(entry)
    click.echo(text, nl=False)


@main.command("bench")
@click.argument("optimizers", nargs=-1, required=True)
@click.option("--problem", default="quartic", show_default=True, help="The loss problem to run on.")
@click.option("--lr", "learning_rates", type=float, multiple=True, help="A learning rate; repeat for several.")
@click.option("--set", "settings", multiple=True, metavar="NAME=V[,V...]", help="A hyperparameter's value(s); repeatable.")
@click.option("--max-iters", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--jit/--no-jit", default=True, show_default=True, help="Compile each run's loop with XLA.")
@reports_errors
def bench_command(optimizers, problem, learning_rates, settings, max_iters, fmt, jit):
    """Run OPTIMIZERS on a problem with every combination of the given hyperparameters.

    Each run is the TensorFlow Core tutorial's convergence test, compiled into one loop:
    converged when a step leaves the parameters unchanged, exploded when the gradient turns
    NaN, exceeded after --max-iters steps.
    """
    from optreg.bench.grid import settings_grid
    from optreg.bench.runner import plan_bench

    plan = plan_bench(_registry(), optimizers, problem, settings_grid(learning_rates, settings), max_iters)
    from optreg.bench.report import render
    from optreg.bench.runner import run_bench

    click.echo(render(run_bench(plan, jit_compile=jit), fmt), nl=False)
