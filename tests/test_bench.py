"""The bench runner reproduces the TensorFlow Core tutorial's convergence table."""

from __future__ import annotations

import csv
import io
import json
import math

import attrs
import pytest

import optreg
from optreg.bench import tutorial
from optreg.bench.grid import parse_setting, settings_grid
from optreg.bench.loop_cache import LoopCache
from optreg.bench.report import outcome, render
from optreg.bench.runner import plan_bench
from tests.helpers import run_bench


@pytest.fixture(scope="module", params=[True, False], ids=["xla", "no-xla"])
def tutorial_results(request):
    plan = plan_bench(
        optreg.registry,
        tutorial.OPTIMIZERS,
        tutorial.PROBLEM,
        settings_grid(tutorial.LEARNING_RATES, []),
        tutorial.MAX_ITERS,
    )
    return run_bench(plan, jit_compile=request.param)


def test_reproduces_the_tutorials_table(tutorial_results):
    table = {(r.optimizer, r.settings["learning_rate"]): (r.status, r.iterations) for r in tutorial_results}
    assert table == tutorial.PUBLISHED


def test_converged_runs_end_at_the_minimum(tutorial_results):
    converged = [r for r in tutorial_results if r.status == "converged"]
    assert len(converged) == 2
    for result in converged:
        assert result.final_params[0] == pytest.approx(-1.125, abs=1e-3)
        assert result.final_loss == pytest.approx(2 * 1.125**4 - 3 * 1.125**3 + 2, abs=1e-5)


def test_records_hold_every_hyperparameter(tutorial_results):
    momentum = next(r for r in tutorial_results if r.optimizer == "momentum")
    assert momentum.hyperparameters == {"learning_rate": 1e-3, "momentum": 0.7}
    assert momentum.seconds_share > 0


def test_the_runs_of_one_loop_share_its_timing_and_their_shares_sum_to_its_run_time(tutorial_results):
    (timing,) = {r.loop for r in tutorial_results}  # the tutorial's 9 runs: one call of one loop
    assert (timing.loop_id, timing.runs, timing.iterations) == (0, 9, 2000)
    assert timing.run_seconds > 0 and timing.compile_seconds >= 0  # 0 when an earlier test compiled the loop
    assert math.fsum(r.seconds_share for r in tutorial_results) == pytest.approx(timing.run_seconds, rel=1e-12)


def test_a_reused_loop_reports_no_compilation_and_the_same_runs():
    plan = plan_bench(optreg.registry, ["momentum"], "booth", [{"learning_rate": 0.01}], 3)
    cache = LoopCache()
    (first,) = run_bench(plan, jit_compile=False, loops=cache)
    (again,) = run_bench(plan, jit_compile=False, loops=cache)
    assert first.loop.compile_seconds > 0 and again.loop.compile_seconds == 0
    assert (first.loop.iterations, again.loop.iterations) == (3, 3) and first.final_params == again.final_params


def test_wall_time_to_target_is_the_loops_time_to_settled_at_and_none_for_runs_that_never_settle(tutorial_results):
    for run in tutorial_results:
        if run.settled_at is None:
            assert run.seconds_to_target is None
        else:  # momentum at 0.01 from iteration 41, adam at 0.1 from 1035, of the loop's 2000
            assert 0 < run.seconds_to_target <= run.loop.run_seconds
            assert run.seconds_to_target == pytest.approx(run.settled_at * run.loop.run_seconds / 2000)
    assert sorted(r.settled_at for r in tutorial_results if r.seconds_to_target is not None) == [41, 1035]


def test_json_and_csv_reports(tutorial_results):
    records = json.loads(render(tutorial_results, "json"))
    assert len(records) == 9
    assert set(records[0]) >= {
        "optimizer", "problem", "hyperparameters", "status", "iterations", "final_loss", "final_params",
        "seconds_share",
    }
    rows = list(csv.DictReader(io.StringIO(render(tutorial_results, "csv"))))
    assert [(r["optimizer"], r["status"], int(r["iterations"])) for r in rows] == [
        (r["optimizer"], r["status"], r["iterations"]) for r in records
    ]
    assert json.loads(rows[0]["hyperparameters"]) == {"learning_rate": 0.001} and rows[0]["reached_at"] == ""


def test_table_uses_the_tutorials_words(tutorial_results):
    text = render(tutorial_results, "table")
    assert "Converged in 80 iterations" in text
    assert "Converged in 1156 iterations" in text
    assert "Gradient exploded at iteration 6" in text
    assert "Exceeded maximum of 2000 iterations" in text
    assert len(text.strip().splitlines()) == 10


def test_runs_of_one_loop_do_not_leak_state():
    plan = plan_bench(optreg.registry, ["adam"], "quartic", [{"learning_rate": 0.1}, {"learning_rate": 0.1}])
    first, second = run_bench(plan)
    assert (first.status, first.iterations, first.final_params) == (
        second.status, second.iterations, second.final_params
    )


def test_optimizers_that_cannot_stack_runs_see_the_problems_own_vector():
    """Muon sends vectors to its AdamW branch and matrices to Newton-Schulz; the bench must
    hand it the problem's parameter vector, not a 1-row matrix of stacked runs, so a bench run
    equals the same steps taken by hand on a plain vector variable."""
    import numpy as np
    import tensorflow as tf

    problem = optreg.registry.problems.get("quadratic")
    (result,) = run_bench(plan_bench(optreg.registry, ["muon"], "quadratic", [{"learning_rate": 0.1}], max_iters=40))
    x = tf.Variable(np.asarray(problem.start, np.float32))
    opt = optreg.registry.create("muon", learning_rate=0.1)
    for _ in range(result.iterations):
        opt.minimize(lambda: problem.loss(x), [x])
    np.testing.assert_allclose(result.final_params, x.numpy(), rtol=1e-6, atol=1e-7)


def test_a_shared_loop_gives_every_optimizer_what_it_gets_alone():
    """A bench of several optimizers steps them all in one loop. Each run must still end where
    a bench of that optimizer and setting alone ends (the same status and iteration, parameters
    within float32 rounding, as XLA fuses the two loops differently): the runs that stop early
    stay frozen while the others go on, and per-run clipping and the non-finite policy apply
    to their own member's rows only (muon cannot stack, so it has a loop of its own)."""
    names = ["adam", "momentum", "rmsprop", "muon"]
    settings = [
        {"learning_rate": 0.05},
        {"learning_rate": 0.005, "clipnorm": 0.5},
        {"learning_rate": 0.3, "skip_nonfinite": True},
    ]
    cache = LoopCache()
    plan = plan_bench(optreg.registry, names, "booth", settings, max_iters=800, stop_at_tolerance=True)
    together = run_bench(plan, loops=cache)
    (loops,) = cache.values()
    stacked = ["adam"] * 3 + ["momentum"] * 3 + ["rmsprop"] * 3
    assert [m.optimizer.optimizer_name for m in loops.shared.members] == stacked
    assert len(loops.alone) == 3
    (shared,) = {r.loop for r in together if r.optimizer != "muon"}  # one call of the shared loop
    muon = [r.loop for r in together if r.optimizer == "muon"]  # a call of its own loop per setting
    assert (shared.loop_id, shared.runs) == (0, 9) and [(t.loop_id, t.runs) for t in muon] == [(1, 1), (2, 1), (3, 1)]
    assert all(t.compile_seconds > 0 for t in (shared, *muon))  # every loop new, compiled by its first call
    assert {r.status for r in together} == {"reached", "exceeded", "exploded"}
    assert len({r.iterations for r in together}) > 6  # runs stop at different iterations
    for result in together:
        plan = plan_bench(
            optreg.registry, [result.optimizer], "booth", [result.settings], max_iters=800, stop_at_tolerance=True
        )
        (alone,) = run_bench(plan)
        assert (result.status, result.iterations, result.reached_at) == (
            alone.status, alone.iterations, alone.reached_at
        ), result
        assert result.final_params == pytest.approx(alone.final_params, rel=1e-6, abs=1e-7), result


def test_a_first_step_that_only_measures_the_gradient_is_not_convergence():
    """ADOPT's first step records the squared gradient and leaves the variable where it is;
    the run has not converged, it has not started."""
    (result,) = run_bench(plan_bench(optreg.registry, ["adopt"], "quartic", [{"learning_rate": 0.01}], max_iters=50))
    assert result.status == "exceeded" and result.final_params[0] < 2.0


def test_calls_that_only_accumulate_are_not_convergence():
    """With gradient_accumulation_steps=4 the parameters move on every fourth call only; the
    calls between are not convergence, and 400 calls make the 100 updates of plain SGD (the
    four gradients of one update are taken at the same point, so their mean is the gradient).
    The accumulating run shares its loop with a plain one, which goes on unaffected."""
    accumulated, plain = {"learning_rate": 0.01, "gradient_accumulation_steps": 4}, {"learning_rate": 0.01}
    slow, fast = run_bench(plan_bench(optreg.registry, ["sgd"], "quartic", [accumulated, plain], max_iters=400))
    (hundred,) = run_bench(plan_bench(optreg.registry, ["sgd"], "quartic", [plain], max_iters=100))
    (four_hundred,) = run_bench(plan_bench(optreg.registry, ["sgd"], "quartic", [plain], max_iters=400))
    assert (slow.status, slow.iterations) == ("exceeded", 400)
    assert slow.final_params == pytest.approx(hundred.final_params, rel=1e-6)
    assert fast.final_params == pytest.approx(four_hundred.final_params, rel=1e-6)


def test_a_step_that_rounds_to_nothing_where_the_gradient_is_large_is_a_stall():
    """A learning rate so small that x = 2 cannot move in float32, where the gradient is 100: the
    tutorial's test alone would call that convergence at iteration 1; it is a stall, and the run
    goes on to the limit in case it moves again."""
    (result,) = run_bench(plan_bench(optreg.registry, ["gradient_descent"], "quartic", [{"learning_rate": 1e-12}]))
    assert (result.status, result.stalled_at, result.iterations) == ("stalled", 1, 2000)


def test_a_cached_loop_takes_new_values():
    """A second bench of the same shape given the same cache reuses the compiled loop, assigning
    the new values; it gives what a freshly built loop gives."""

    def bench(rates, loops):
        settings = [{"learning_rate": rate} for rate in rates]
        plan = plan_bench(optreg.registry, ["adam", "momentum"], "rosenbrock", settings, max_iters=200)
        return run_bench(plan, loops=loops)

    cache = LoopCache()
    first = bench([0.01, 0.02], cache)
    (built,) = cache.values()
    reused = bench([0.003, 0.005], cache)
    assert cache.values() == [built]  # the same loops, not a second build
    fresh = bench([0.003, 0.005], LoopCache())
    assert [(r.status, r.iterations, r.final_params) for r in reused] == [
        (r.status, r.iterations, r.final_params) for r in fresh
    ]
    assert [r.final_params for r in reused] != [r.final_params for r in first]


def test_a_loop_cache_is_bounded_and_drops_the_least_recently_used():
    """A cache holds at most max_loops problems' loops: a bench of a third problem given a cache
    of two drops the loops used longest ago, and a problem benched again is built again."""
    cache = LoopCache(max_loops=2)

    def bench(problem):
        return run_bench(
            plan_bench(optreg.registry, ["sgd"], problem, [{"learning_rate": 0.01}], max_iters=5), loops=cache
        )

    bench("quartic")
    bench("booth")
    (quartic, booth) = cache.values()
    bench("quartic")  # reused: now the most recently used
    bench("beale")
    kept = cache.values()
    assert len(kept) == 2 and kept[0] is quartic and all(loops is not booth for loops in kept)
    bench("booth")
    kept = cache.values()
    assert len(kept) == 2 and all(loops is not booth and loops is not quartic for loops in kept)
    with pytest.raises(ValueError, match="max_loops must be a whole number >= 1"):
        LoopCache(max_loops=0)


def test_settings_grid_is_every_combination():
    grid = settings_grid([0.1, 0.01], ["momentum=0.5,0.9", "nesterov=true"])
    assert grid == [
        {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True},
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        {"learning_rate": 0.01, "momentum": 0.5, "nesterov": True},
        {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
    ]
    assert settings_grid([], []) == [{}]


@pytest.mark.parametrize("text", ["momentum", "=0.5", "momentum=", "momentum=2fast", "mo mentum=1"])
def test_malformed_settings_are_refused(text):
    with pytest.raises(optreg.HyperparameterError):
        parse_setting(text)


def test_plan_checks_every_setting_before_running():
    with pytest.raises(optreg.HyperparameterError, match="gradient_descent"):
        plan_bench(optreg.registry, ["momentum", "gradient_descent"], "quartic", [{"momentum": 0.5}])
    with pytest.raises(optreg.UnknownNameError):
        plan_bench(optreg.registry, ["adam"], "nowhere", [{}])


def test_outcome_wording():
    result = run_bench(plan_bench(optreg.registry, ["momentum"], "quartic", [{"learning_rate": 0.01}], max_iters=10))[0]
    assert (result.status, result.iterations) == ("exceeded", 10)
    assert outcome(result) == "Exceeded maximum of 10 iterations"


def test_a_name_given_to_a_number_hyperparameter_is_refused_when_planned():
    """``--set momentum=fast`` parses (a value may name an optimizer, for lookahead's inner),
    and planning refuses it, naming the hyperparameter."""
    with pytest.raises(optreg.HyperparameterError, match="momentum must be a number, got 'fast'"):
        plan_bench(optreg.registry, ["momentum"], "quartic", settings_grid([], ["momentum=fast"]))


# --- the loop runs in chunks, so Ctrl-C is seen between them ---------------------------------


def _records(results):
    """Results as comparable text, NaN included (bit for bit through repr)."""
    return [repr({k: v for k, v in attrs.asdict(r).items() if k not in ("seconds_share", "loop")}) for r in results]


def _chunked_plan():
    settings = settings_grid(tutorial.LEARNING_RATES, [])
    return plan_bench(
        optreg.registry, tutorial.OPTIMIZERS, tutorial.PROBLEM, settings, tutorial.MAX_ITERS, history_every=3
    )


def test_a_loop_run_in_tiny_chunks_gives_the_same_results_bit_for_bit(monkeypatch):
    from optreg.bench import loop

    whole = run_bench(_chunked_plan(), loops=LoopCache())
    monkeypatch.setattr(loop, "FIRST_CHUNK_ITERATIONS", 7)
    monkeypatch.setattr(loop, "chunk_length", lambda advanced, elapsed, max_iters: 13)
    chunked = run_bench(_chunked_plan(), loops=LoopCache())  # a loop built afresh
    assert _records(chunked) == _records(whole)


def test_ctrl_c_between_chunks_stops_the_bench_and_the_loop_runs_again_from_the_start(monkeypatch):
    from optreg.bench import loop
    from optreg.bench.execute import BenchInterrupted

    expected = _records(run_bench(_chunked_plan()))
    calls = []

    def interrupt_once(advanced, elapsed, max_iters):
        calls.append(advanced)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return 50

    cache = LoopCache()
    monkeypatch.setattr(loop, "FIRST_CHUNK_ITERATIONS", 20)
    monkeypatch.setattr(loop, "chunk_length", interrupt_once)
    with pytest.raises(BenchInterrupted) as stopped:
        run_bench(_chunked_plan(), loops=cache)
    assert calls == [20] and stopped.value.results == []  # stopped after the first 20 iterations
    (interrupted,) = cache.values()
    assert _records(run_bench(_chunked_plan(), loops=cache)) == expected  # the same loop, started afresh
    assert cache.values() == [interrupted]
    # the loop counted its optimizers' calls (Optimizer.counting_from): each counter is where
    # counting would have put it, after a run interrupted, resumed in chunks and made again
    loop = interrupted.shared
    assert [int(opt.iterations.numpy()) for opt in loop.optimizers] == [tutorial.MAX_ITERS] * 3


def test_after_a_stacked_sweep_every_optimizer_keeps_plain_hyperparameters_and_a_config(monkeypatch):
    """The bench stacks a state of its own (one value per run), never the optimizer's: after a
    sweep, every optimizer it built still reports plain hyperparameters and rebuilds from its
    config, whether its runs were stacked or made one at a time."""
    from optreg.catalog.entries import OptimizerEntry

    made = []
    build = OptimizerEntry.build

    def recording_build(self, **kwargs):
        made.append(build(self, **kwargs))
        return made[-1]

    monkeypatch.setattr(OptimizerEntry, "build", recording_build)
    cache = LoopCache()
    settings = [{"learning_rate": 0.1}, {"learning_rate": 0.01}, {"learning_rate": 0.05, "clipnorm": 1.0}]
    plan = plan_bench(optreg.registry, ["adam", "momentum", "muon"], "quadratic", settings, max_iters=30)
    for _ in range(2):  # a second bench reuses the cached loops and assigns new values
        results = run_bench(plan, loops=cache)
    assert len(results) == 9
    assert any(opt.supports_stacked_runs for opt in made) and not all(opt.supports_stacked_runs for opt in made)
    for opt in made:
        values = opt.hyperparameters
        assert set(values) == {spec.name for spec in opt.hyperparameter_specs}
        assert all(isinstance(value, (bool, int, float)) for value in values.values()), values
        assert opt.get_config()["hyperparameters"] == values
        rebuilt = optreg.Optimizer.from_config(opt.get_config())
        assert rebuilt.hyperparameters == values


def test_the_collector_pause_restores_the_collectors_state_even_on_an_error():
    """A bench holds off the garbage collector while it builds its records; afterwards the
    collector is as the caller had it, enabled or not, also when the block raises."""
    import gc

    from optreg.bench.gc_pause import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="inside"):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
