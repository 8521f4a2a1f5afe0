"""Rankings that judge runs by where they end, settings shown in full, mlp problems judged on
held-out loss against their baseline, and seeds as a stacked axis (issue 18).

Each misleading ranking the issue saw is built here from real runs and checked not to recur:
a run that touches the tolerance and leaves again, one that reaches it and explodes, sgd
"converged" at the constant prediction, and "best settings: defaults"."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics

import numpy as np
import pytest
from click.testing import CliRunner

import optreg
from optreg.bench.loop_cache import LoopCache
from optreg.bench.loop_timing import LoopTiming
from optreg.bench.ranking import full_settings_text, profile, ranking_text, standings
from optreg.bench.report import render
from optreg.bench.runner import RunResult, outcome, plan_bench
from optreg.bench.seed_stats import parse_seeds, spread, t_quantile_975
from optreg.cli import main
from optreg.problems import START_NOISE
from tests.helpers import run_bench

#: Gradient descent whose step grows 8% an iteration: it reaches the tolerance of booth, then
#: its step passes the stability limit and it explodes (as the issue's beale run did).
GROWING_GD = """
[optimizer]
name = "growing_gd"
summary = "gradient descent with a step growing 8% an iteration"

[hyperparameters]
learning_rate = { default = 0.01, min = 0.0 }

[update]
rule = ["var = var - learning_rate * 1.08 ** step * grad"]
"""


def bench(names, problem, settings, max_iters, registry=optreg.registry, jit_compile=True, loops=None, **options):
    plan = plan_bench(registry, names, problem, settings, max_iters, **options)
    return run_bench(plan, jit_compile=jit_compile, loops=loops)


def test_a_run_that_touches_the_tolerance_and_leaves_does_not_win():
    """Momentum 0.95 swings through booth's minimum: within tolerance at iteration 140, out
    again, back for good only from 252. Plain gradient descent comes in at 246 and stays.
    Ranked by the first touch, momentum won; judged by where runs end, it does not."""
    swinging = bench(["momentum"], "booth", [{"learning_rate": 0.002, "momentum": 0.95}], 230)
    steady = bench(["gradient_descent"], "booth", [{"learning_rate": 0.01}], 230)
    (swing,), (plain,) = swinging, steady
    assert swing.reached_at == 140 and swing.settled_at is None and not swing.solved
    assert plain.reached_at is None and plain.final_loss < swing.final_loss
    places = standings(swinging + steady)["booth"]
    assert [p.result.optimizer for p in places] == ["gradient_descent", "momentum"]
    assert "never (left after iteration 140)" in ranking_text(swinging + steady)
    # given long enough, both end within tolerance: the time to target is when each stayed
    both = bench(["momentum"], "booth", [{"learning_rate": 0.002, "momentum": 0.95}], 255) + bench(
        ["gradient_descent"], "booth", [{"learning_rate": 0.01}], 255
    )
    assert [(r.reached_at, r.settled_at) for r in both] == [(140, 252), (246, 246)]
    places = standings(both)["booth"]
    assert [(p.result.optimizer, p.solved_in) for p in places] == [("gradient_descent", 246), ("momentum", 252)]
    assert profile(both, taus=(1.0, 1.1))["momentum"] == [0.0, 1.0]


def test_a_run_that_reaches_the_tolerance_then_explodes_has_not_solved_it(tmp_path):
    (tmp_path / "growing_gd.toml").write_text(GROWING_GD, encoding="utf-8")
    registry = optreg.Registry(spec_paths=[str(tmp_path)])
    (growing,) = bench(["growing_gd"], "booth", [{"learning_rate": 0.01}], 300, registry=registry)
    (plain,) = bench(["gradient_descent"], "booth", [{"learning_rate": 0.002}], 300, registry=registry)
    assert growing.status == "exploded" and growing.reached_at is not None and growing.settled_at is None
    assert growing.reached_at < growing.iterations
    assert plain.settled_at is None and plain.status == "exceeded"  # slower, but it never left
    places = standings([growing, plain])["booth"]
    assert [p.result.optimizer for p in places] == ["gradient_descent", "growing_gd"]


def test_a_convergence_outside_tolerance_is_stuck_not_converged():
    """Momentum on rastrigin comes to rest in a local minimum (loss 7.96): the tutorial's test
    of convergence holds, but the run has not solved the problem."""
    (run,) = bench(["momentum"], "rastrigin", [{"learning_rate": 0.001}], 200)
    assert run.status == "stuck" and run.settled_at is None and run.final_loss > 7
    assert outcome(run) == f"Stuck after {run.iterations} iterations, outside tolerance"
    assert "Converged" not in render([run], "table")


@pytest.fixture(scope="module")
def mlp_runs():
    """sgd at its default learning rate, and adam, 1200 full-batch epochs of mlp-regression."""
    return bench(["sgd", "adam"], "mlp-regression", [{}, {"learning_rate": 0.01}], 1200)


def test_sgd_at_the_constant_prediction_is_stuck_and_judged_on_test_loss(mlp_runs):
    sgd = mlp_runs[0]
    assert sgd.settings == {} and sgd.judged_by == "test_loss"
    assert sgd.judged_loss == sgd.metrics["test_loss"] == pytest.approx(sgd.baseline, rel=1e-5)
    assert sgd.baseline == sgd.metrics["baseline_test_loss"]
    # the loop's test of convergence held at iteration 1114, at the baseline: no convergence
    assert (sgd.status, sgd.iterations) == ("stuck", 1114)
    assert outcome(sgd) == "Stuck after 1114 iterations, no better than the baseline"
    table = render(mlp_runs, "table")
    assert "Converged" not in table.splitlines()[1]


def test_mlp_rankings_use_the_held_out_loss(mlp_runs):
    """The ranking orders by test loss (the loss the sweep figure draws), prints it, and says so."""
    places = standings(mlp_runs)["mlp-regression"]
    best = min(mlp_runs, key=lambda r: r.metrics["test_loss"])
    assert places[0].result is best and best.metrics["test_loss"] < best.baseline
    text = ranking_text(mlp_runs)
    assert f"{best.metrics['test_loss']:.6g}" in text and f"{best.final_loss:.6g}" not in text
    assert "judged by test_loss (held out)" in text and f"{best.baseline:.6g}" in text
    assert "no known minimum" in text and "never" not in text
    record = json.loads(render(mlp_runs[:1], "json"))[0]
    assert record["judged_by"] == "test_loss" and record["judged_loss"] == record["metrics"]["test_loss"]
    rows = list(csv.DictReader(io.StringIO(render(mlp_runs, "csv"))))
    assert [float(row["judged_loss"]) for row in rows] == [r.metrics["test_loss"] for r in mlp_runs]


def test_settings_are_shown_in_full_not_as_defaults(mlp_runs):
    """sgd's default learning rate is 10× adam's: a comparison must say so."""
    text = render(mlp_runs, "table") + ranking_text(mlp_runs)
    assert "defaults" not in text
    assert "learning_rate=0.01 momentum=0 nesterov=False" in text
    assert "learning_rate=0.001 beta_1=0.9 beta_2=0.999 epsilon=1e-07 amsgrad=False" in text
    assert full_settings_text(mlp_runs[3]).startswith("learning_rate=0.01 beta_1=0.9")


# --- seeds --------------------------------------------------------------------------------


def test_seeds_run_in_the_shared_loop_each_run_as_its_seed_alone():
    cache = LoopCache()
    settings = [{"learning_rate": 0.01}, {"learning_rate": 0.02}]
    together = bench(["momentum", "adam"], "booth", settings, 60, seeds=(0, 1, 2), loops=cache)
    (loops,) = cache.values()
    assert loops.shared.runs == 12 and not loops.alone  # 2 optimizers × 2 settings × 3 seeds, one loop
    assert [(r.optimizer, r.settings["learning_rate"], r.seed) for r in together[:4]] == [
        ("momentum", 0.01, 0), ("momentum", 0.01, 1), ("momentum", 0.01, 2), ("momentum", 0.02, 0)]
    assert len({r.final_params for r in together}) == 12
    for result in together:
        (alone,) = bench([result.optimizer], "booth", [result.settings], 60, seeds=(result.seed,))
        ends = (result.status, result.iterations, result.settled_at)
        assert ends == (alone.status, alone.iterations, alone.settled_at)
        np.testing.assert_allclose(result.final_params, alone.final_params, rtol=1e-6, atol=1e-7)
    # seed 0 is the problem's own start: the same runs as a bench without seeds
    unseeded = bench(["momentum", "adam"], "booth", settings, 60)
    for plain, seeded in zip(unseeded, [r for r in together if r.seed == 0]):
        assert plain.seed is None and (plain.status, plain.iterations) == (seeded.status, seeded.iterations)
        np.testing.assert_allclose(plain.final_params, seeded.final_params, rtol=1e-6, atol=1e-7)


def test_seeded_starts_are_the_documented_perturbation():
    quadratic = optreg.registry.problems.get("quadratic").with_options(dimension=4000)
    assert quadratic.seeded_start(0) == quadratic.start
    offsets = np.asarray(quadratic.seeded_start(5)) - 1.0
    assert abs(offsets.mean()) < 0.01 and np.std(offsets) == pytest.approx(START_NOISE, rel=0.05)
    assert quadratic.seeded_start(5) == quadratic.seeded_start(5) != quadratic.seeded_start(6)
    mlp = optreg.registry.problems.get("mlp-regression")
    assert mlp.seeded_start(3) == mlp.with_options(seed=3).start != mlp.start


def test_minibatch_seeds_each_equal_the_problem_made_with_that_seed():
    """With minibatches the seed orders the batches too: each seed's run is the run of the
    problem made with that seed."""
    together = bench(["adam"], "mlp-regression", [{"learning_rate": 0.01}], 12, jit_compile=False,
                     problem_options={"batch_size": 32}, seeds=(0, 4))
    assert [r.problem_options["seed"] for r in together] == [r.seed for r in together] == [0, 4]
    assert [(r.loop.loop_id, r.loop.runs) for r in together] == [(0, 1), (1, 1)]  # a loop call per seed
    (alone,) = bench(["adam"], "mlp-regression", [{"learning_rate": 0.01}], 12, jit_compile=False,
                     problem_options={"batch_size": 32, "seed": 4})
    np.testing.assert_allclose(together[1].final_params, alone.final_params, rtol=1e-6, atol=1e-6)
    assert together[0].final_params != together[1].final_params


def test_the_seed_table_shows_mean_std_and_an_interval_and_json_keeps_every_run():
    args = ["bench", "adam", "momentum", "--problem", "booth", "--lr", "0.02", "--max-iters", "300", "--seeds", "0-3"]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:5] == ["optimizer", "settings", "problem", "seeds", "results"]
    assert "95% interval" in lines[0] and len([line for line in lines[1:3] if "0,1,2,3" in line]) == 2
    assert "±" in lines[1] and "4/4 seeds" in table.output
    records = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    assert [(r["optimizer"], r["seed"]) for r in records] == [(o, s) for o in ("adam", "momentum") for s in range(4)]
    losses = [r["final_loss"] for r in records[:4]]
    expected = f"{statistics.mean(losses):.4g} ± {statistics.stdev(losses):.4g}"
    assert expected in lines[1]
    # time to target in iterations and in wall seconds, then each optimizer's wall time
    assert lines[0].endswith("within tolerance from  seconds to target  seconds")
    assert "wall time: 1 loop call, compiling" in table.output
    assert [line.split()[:2] for line in lines if line.startswith(("adam ", "momentum "))][2:4] == [
        ["adam", "4"], ["momentum", "4"]]
    for record in records:
        if record["settled_at"] is None:
            assert record["seconds_to_target"] is None
        else:
            assert 0 < record["seconds_to_target"] <= record["loop_seconds"]


def test_the_seed_table_gives_the_time_to_target_in_seconds_and_each_optimizers_share():
    """Made by hand: a loop call of 4 runs, 100 iterations in 2 s (0.02 s each), compiled in 1 s."""
    timing = LoopTiming(loop_id=0, runs=4, iterations=100, compile_seconds=1.0, run_seconds=2.0)

    def run(optimizer, seed, settled_at):
        return RunResult(optimizer, "booth", {}, {"learning_rate": 0.1}, "exceeded", 100, 0.5, (0.0, 0.0),
                         timing.seconds_share, settled_at=settled_at, seed=seed, loop=timing)

    runs = [run("adam", 0, 10), run("adam", 1, 30), run("sgd", 0, None), run("sgd", 1, 50)]
    lines = render(runs, "table").splitlines()
    # the last three cells: iterations to target, seconds to target, the setting's seconds
    assert [re.split(r"\s{2,}", line)[-3:] for line in lines[1:3]] == [
        ["20 ± 14.14 (2/2)", "0.4 ± 0.283", "1"],  # settled at 10 and 30: 0.2 and 0.6 s
        ["50 ± 0 (1/2)", "1 ± 0", "1"]]
    assert lines[-3:] == ["optimizer  runs  running s  compiling s", "adam       2     1          0.5",
                          "sgd        2     1          0.5"]
    assert "wall time: 1 loop call, compiling 1 s and running 2 s" in lines[-4]


def test_seed_given_twice_or_with_seeds_is_refused():
    twice = CliRunner().invoke(main, ["bench", "adam", "--seed", "0", "--seed", "1"])
    assert twice.exit_code == 2 and "--seed takes one seed, given 2 times" in twice.output
    both = CliRunner().invoke(main, ["bench", "adam", "--seed", "0", "--seeds", "0-3"])
    assert both.exit_code == 2 and "not both" in both.output
    bad = CliRunner().invoke(main, ["bench", "adam", "--seeds", "3-1"])
    assert bad.exit_code == 2 and "ends before it starts" in bad.output


def test_seed_is_no_longer_ignored_on_analytic_problems():
    (one,) = bench(["adam"], "booth", [{}], 5, seeds=(7,))
    (plain,) = bench(["adam"], "booth", [{}], 5)
    assert one.seed == 7 and one.final_params != plain.final_params


def test_seeds_parse_as_ranges_lists_and_counts():
    assert parse_seeds("0-9") == tuple(range(10))
    assert parse_seeds("0,3,7") == (0, 3, 7)
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("-2-1") == (-2, -1, 0, 1)
    for bad in ("", "a", "1,1", "0", "2-1", "1-2-3"):
        with pytest.raises(optreg.OptionError):
            parse_seeds(bad)


def test_the_spread_is_the_sample_mean_std_and_t_interval():
    values = [3.0, 1.0, 4.0, 1.0, 5.0]
    s = spread([*values, math.nan, math.inf])
    assert (s.count, s.left_out) == (5, 2)
    assert s.mean == pytest.approx(statistics.mean(values)) and s.std == pytest.approx(statistics.stdev(values))
    half = 2.776 * statistics.stdev(values) / math.sqrt(5)  # t(0.975, 4 degrees of freedom)
    assert (s.low, s.high) == pytest.approx((s.mean - half, s.mean + half))
    assert t_quantile_975(30) == 2.042 and t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert spread([2.0]).text() == "2 ± 0" and spread([math.nan]).text() == "none"


def test_a_run_stopped_at_the_tolerance_has_settled_where_it_stopped():
    """With --stop-at-tolerance a run ends at the first iteration within tolerance: solved
    there, judged by the loop's own check (never by the loss recomputed after it)."""
    settings = [{"learning_rate": float(lr)} for lr in np.geomspace(1e-3, 0.3, 12)]
    runs = bench(["adam"], "booth", settings, 300, stop_at_tolerance=True)
    reached = [r for r in runs if r.status == "reached"]
    assert len(reached) >= 3
    assert all(r.settled_at == r.reached_at == r.iterations for r in reached)
    assert all(r.settled_at is None for r in runs if r.status != "reached")
