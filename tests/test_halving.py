"""Successive halving (``optreg bench --halving``): rung budgets, each rung keeping the best of the
last by the loss its runs end at, the exploded worst, seeds averaged, one problem only."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

import optreg
from optreg.bench.execute import run_bench
from optreg.bench.halving import HalvingSearch, rung_budgets, successive_halving
from optreg.bench.runner import plan_bench
from optreg.cli import main

#: Nine learning rates for gradient descent on quartic; 30 explodes.
RATES = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 30.0]


@pytest.mark.parametrize(
    ("candidates", "max_iters", "eta", "budgets"),
    [
        (27, 2700, 3, [(27, 100), (9, 300), (3, 900), (1, 2700)]),
        (10, 100, 2, [(10, 12), (5, 25), (2, 50), (1, 100)]),
        (1, 100, 3, [(1, 100)]),
        (8, 4, 2, [(8, 1), (4, 1), (2, 2), (1, 4)]),  # at least one iteration a rung
    ],
)
def test_rung_budgets(candidates, max_iters, eta, budgets):
    assert rung_budgets(candidates, max_iters, eta) == budgets


def test_each_rung_keeps_the_best_of_the_last_by_where_its_runs_end():
    plan = plan_bench(optreg.registry, ["gradient_descent"], "quartic", [{"learning_rate": lr} for lr in RATES], 90)
    rungs_seen = []

    def recorded(rung_plan):
        results = run_bench(rung_plan)
        rungs_seen.append((rung_plan, results))
        return results

    final, rungs = successive_halving(plan, recorded, 3)
    assert [(r.candidates, r.iterations) for r in rungs] == [(9, 10), (3, 30), (1, 90)]
    assert [r.kept for r in rungs] == [3, 1, 0]
    for (_, before), (after_plan, _) in zip(rungs_seen, rungs_seen[1:]):
        losses = {r.settings["learning_rate"]: r.final_loss if r.status != "exploded" else math.inf for r in before}
        best = sorted(losses, key=losses.get)[: len(after_plan.runs[0][1])]
        assert sorted(s["learning_rate"] for s in after_plan.runs[0][1]) == sorted(best)
    first = {r.settings["learning_rate"]: r for r in rungs_seen[0][1]}
    assert first[30.0].status == "exploded" and 30.0 not in [s["learning_rate"] for s in rungs_seen[1][0].runs[0][1]]
    assert all(r.iterations <= 10 for r in rungs_seen[0][1])
    (winner,) = final
    assert rungs_seen[-1][0].max_iters == 90 and winner.settings == rungs_seen[-1][0].runs[0][1][0]
    assert rungs[-1].best_loss == pytest.approx(winner.final_loss)


def test_seeds_are_averaged_and_the_search_needs_one_problem():
    settings = [{"learning_rate": lr} for lr in (0.001, 0.1)]
    plan = plan_bench(optreg.registry, ["sgd"], "quartic", settings, 20, seeds=[1, 2])
    search = HalvingSearch(plan, 2)
    assert search.run_count == (2 + 1) * 2
    results = search.run(run_bench)
    assert len(results) == 2 and {r.seed for r in results} == {1, 2}
    first = search.rungs[0]
    assert first.runs == 4 and first.kept == 1
    two = plan_bench(optreg.registry, ["sgd"], ["quartic", "booth"], settings, 20)
    with pytest.raises(optreg.OptionError, match=r"--halving compares losses, which needs one problem; given 2"):
        HalvingSearch(two, 2)


def test_the_bench_command_prints_the_rungs():
    result = CliRunner().invoke(main, ["bench", "adam", "momentum", "--lr", "0.001,0.01,0.1", "--halving", "3",
                                       "--max-iters", "30"])
    assert result.exit_code == 0, result.output
    assert "successive halving, factor 3:\n  rung 1: 6 candidates (6 runs) x 10 iterations, kept 2" in result.output
    assert "  rung 2: 2 candidates (2 runs) x 30 iterations, the last rung" in result.output
    refused = CliRunner().invoke(main, ["bench", "adam", "--halving", "1"])
    assert refused.exit_code == 2 and "--halving" in refused.output


def test_ctrl_c_in_a_later_rung_prints_the_last_rung_that_finished_and_counts_every_finished_run(monkeypatch):
    from optreg.bench import execute

    finished, calls = execute.run_problem, []

    def interrupted_in_rung_2(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return finished(*args)

    monkeypatch.setattr(execute, "run_problem", interrupted_in_rung_2)
    result = CliRunner().invoke(main, ["bench", "adam", "momentum", "--lr", "0.001,0.01,0.1", "--halving", "3",
                                       "--max-iters", "30", "--format", "csv"])
    assert result.exit_code == 130
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == 6 and {row.split(",")[1] for row in rows} == {"adam", "momentum"}  # rung 1's runs
    assert result.stderr == "optreg: interrupted: 6 of 8 runs finished; no outputs written\n"
