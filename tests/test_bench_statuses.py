"""Statuses that mean what they say: a run that stands still away from a stationary point is not
"converged", the table and the ranking speak one vocabulary, and history is kept only when asked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import optreg
from optreg.bench.ranking import ranking_text
from optreg.bench.runner import plan_bench
from optreg.cli import main
from tests.helpers import run_bench

#: Adam whose step is masked off on steps 2 to 4 (as a cautious optimizer's mask can be), then
#: moving again: it stands still three times far from the minimum.
MASKED_ADAM = """
[optimizer]
name = "masked_adam"
summary = "adam whose step is masked off on steps 2 to 4"

[hyperparameters]
learning_rate = { default = 0.01, min = 0.0 }

[slots]
m = { init = "zeros" }
v = { init = "zeros" }

[update]
rule = [
  "m = 0.9 * m + 0.1 * grad",
  "v = 0.999 * v + 0.001 * grad * grad",
  "mask = where(step >= 2, where(step <= 4, 0, 1), 1)",
  "var = var - mask * learning_rate * (m / (1 - 0.9 ** step)) / (sqrt(v / (1 - 0.999 ** step)) + 1e-7)",
]
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    (folder / "masked_adam.toml").write_text(MASKED_ADAM, encoding="utf-8")
    return optreg.Registry(spec_paths=[str(folder)])


def bench(registry, names, problem, settings, max_iters):
    return run_bench(plan_bench(registry, names, problem, settings, max_iters))


def test_a_masked_step_is_not_convergence_and_the_run_goes_on(registry):
    (result,) = bench(registry, ["masked_adam"], "rosenbrock", [{"learning_rate": 0.01}], 3000)
    assert result.status == "exceeded" and result.iterations == 3000
    assert result.final_loss < 0.1  # it moved on once the mask lifted


def test_steps_below_float32_resolution_are_stalled_not_converged(registry):
    """At learning rate 1e-30 no step moves the Rosenbrock start, where the gradient is large."""
    results = bench(registry, ["gradient_descent", "masked_adam"], "rosenbrock", [{"learning_rate": 1e-30}], 50)
    for result in results:
        assert (result.status, result.stalled_at, result.iterations) == ("stalled", 1, 50)
    from optreg.bench.report import render

    assert "Stalled from iteration 1, gradient not near zero" in render(results, "table")
    assert json.loads(render(results, "json"))[0]["stalled_at"] == 1


def test_a_stall_that_ends_is_forgotten(registry):
    """masked_adam stands still on steps 2–4 with a large gradient, then moves: not stalled."""
    (result,) = bench(registry, ["masked_adam"], "rosenbrock", [{"learning_rate": 0.01}], 10)
    assert (result.status, result.stalled_at) == ("exceeded", None)


def test_the_ranking_uses_the_tables_words():
    results = bench(optreg.registry, ["momentum", "adam"], "quartic", [{"learning_rate": 0.01}], 2000)
    text = ranking_text(results)
    assert "Converged in 80 iterations" in text and "within tolerance from" in text
    # momentum first came within tolerance at iteration 34, left, and stayed from 41 on
    assert results[0].reached_at == 34 and "solved at" not in text and "iteration 41" in text


def test_history_is_written_only_when_asked(tmp_path):
    def records(*extra):
        out = tmp_path / ("with" if extra else "without")
        result = CliRunner().invoke(
            main, ["bench", "adam", "--lr", "0.1", "--max-iters", "50", "--out", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        return json.loads((out / "results.json").read_text())

    assert all(r["history"] is None for r in records())  # the figures still get theirs
    assert records("--history-every", "10")[0]["history"]["iterations"] == [0, 10, 20, 30, 40, 50]


def test_a_bench_over_every_problem_traces_each_loop_once_without_tensorflows_retracing_warning(caplog):
    """Seven problems make seven loops, each traced once: TensorFlow counts traces by function,
    and warned of retracing when the loops shared one."""
    import logging

    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        results = run_bench(plan_bench(optreg.registry, ["adam", "sgd"], "all", [{}], 5), jit_compile=False)
    assert len(results) == 2 * len(optreg.registry.problems)
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]
