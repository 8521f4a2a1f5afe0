"""Sweeps: runs side by side in one compiled loop behave exactly like runs made one at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.bench.grid import parse_values, settings_grid
from optreg.bench.runner import plan_bench
from optreg.cli import main
from tests.helpers import run_bench
from tests.test_plugins import examples  # noqa: F401  (the fixture: a registry with the example plugins)


def _bench(optimizers, problem, settings, registry=optreg.registry, **kwargs):
    return run_bench(plan_bench(registry, optimizers, problem, settings, **kwargs))


def _key(result):
    return result.status, result.iterations, result.reached_at


@pytest.mark.parametrize("name, problem", [("adam", "quartic"), ("sgd", "rosenbrock"), ("momentum", "beale")])
def test_stacked_runs_equal_runs_made_alone(name, problem):
    settings = settings_grid(["logspace:1e-4:1e-1:7"], [])
    together = _bench([name], problem, settings, max_iters=600)
    for setting, stacked in zip(settings, together):
        (alone,) = _bench([name], problem, [setting], max_iters=600)
        assert _key(stacked) == _key(alone), setting
        np.testing.assert_allclose(stacked.final_params, alone.final_params, rtol=1e-6, atol=1e-6)


def test_a_sweep_of_several_hyperparameters_stacks_every_combination():
    settings = settings_grid(["0.01", "0.1"], ["beta_1=0.8,0.9"])
    results = _bench(["adam"], "booth", settings, max_iters=300)
    assert [(r.hyperparameters["learning_rate"], r.hyperparameters["beta_1"]) for r in results] == [
        (0.01, 0.8), (0.01, 0.9), (0.1, 0.8), (0.1, 0.9)
    ]
    assert len({r.final_params for r in results}) == 4


def test_options_split_runs_into_groups_and_clip_each_run_on_its_own():
    settings = [
        {"learning_rate": 0.01, "clipnorm": 0.5},
        {"learning_rate": 0.01},
        {"learning_rate": 0.02, "clipnorm": 0.5},
    ]
    results = _bench(["gradient_descent"], "rosenbrock", settings, max_iters=1)
    start = np.array([-1.2, 1.0])
    grad = np.array(
        [-2 * (1 - start[0]) - 400 * start[0] * (start[1] - start[0] ** 2), 200 * (start[1] - start[0] ** 2)]
    )
    clipped = grad * 0.5 / np.linalg.norm(grad)
    np.testing.assert_allclose(results[0].final_params, start - 0.01 * clipped, rtol=1e-6)
    np.testing.assert_allclose(results[1].final_params, start - 0.01 * grad, rtol=1e-6)
    np.testing.assert_allclose(results[2].final_params, start - 0.02 * clipped, rtol=1e-6)


CLIPPED = [
    {"clipnorm": 2.0},
    {"global_clipnorm": 3.0},
    {"clipvalue": 1.5},
    {"clipnorm": 2.0, "gradient_accumulation_steps": 2},
    {"global_clipnorm": 3.0, "loss_scale_factor": 4.0},
]


def test_the_benchs_clipped_runs_equal_the_optimizers_clipped_steps():
    """Every run of a stacked loop is clipped as optreg.Optimizer clips it, step for step: after
    the unscaling and the accumulation, each run's norm over its own rows only."""
    steps = 12
    settings = [{"learning_rate": lr, "momentum": 0.9, **option} for option in CLIPPED for lr in (1e-3, 3e-3)]
    results = _bench(["sgd"], "rosenbrock", settings, max_iters=steps)
    problem = optreg.registry.problems.get("rosenbrock")
    for setting, result in zip(settings, results):
        assert (result.status, result.iterations) == ("exceeded", steps), setting
        var = tf.Variable(np.asarray(problem.start, np.float32))
        opt = optreg.registry.create("sgd", jit_compile=False, **setting)
        for i in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(problem.training_loss(var[None], tf.constant(i)))
            opt.apply_gradients([(tape.gradient(loss, var), var)])
        np.testing.assert_allclose(result.final_params, var.numpy(), rtol=1e-6, atol=1e-7, err_msg=str(setting))
    # the clipping bites: unclipped, the same steps end elsewhere
    (free,) = _bench(["sgd"], "rosenbrock", [{"learning_rate": 1e-3, "momentum": 0.9}], max_iters=steps)
    assert not np.allclose(free.final_params, results[0].final_params, rtol=1e-3)


def test_an_optimizer_that_cannot_stack_runs_one_loop_call_per_setting(examples):  # noqa: F811
    settings = [{"learning_rate": lr} for lr in (0.001, 0.01, 0.1)]
    together = _bench(["sam"], "quartic", settings, registry=examples, max_iters=300)
    for setting, result in zip(settings, together):
        (alone,) = _bench(["sam"], "quartic", [setting], registry=examples, max_iters=300)
        assert _key(result) == _key(alone)
        np.testing.assert_array_equal(result.final_params, alone.final_params)


def test_reached_is_recorded_always_and_stops_runs_when_asked():
    setting = [{"learning_rate": 0.01}]
    free = _bench(["momentum"], "quartic", setting)[0]
    stopped = _bench(["momentum"], "quartic", setting, stop_at_tolerance=True)[0]
    assert (free.status, free.iterations) == ("converged", 80)
    assert free.reached_at is not None and free.reached_at < 80
    assert (stopped.status, stopped.iterations, stopped.reached_at) == ("reached", free.reached_at, free.reached_at)
    problem = optreg.registry.problems.get("quartic")
    assert problem.solved_by(stopped.final_loss)


def test_history_records_the_path_up_to_the_end():
    result = _bench(["momentum"], "quartic", [{"learning_rate": 0.01}], history_every=10)[0]
    history = result.history
    assert history["iterations"][:3] == [0, 10, 20] and history["iterations"][-1] == 80
    assert history["params"][0] == [2.0] and history["params"][-1] == list(result.final_params)
    assert history["loss"][0] == pytest.approx(2 * 16 + 3 * 8 + 2)
    assert len(history["loss"]) == len(history["params"]) == len(history["iterations"])


def test_the_mlp_experiment_reproduces_the_chapters_findings():
    """Clipped gradient descent at 1e-3 beats the constant baseline's test loss; unclipped it
    blows up; Adam gets lower than gradient descent in the same number of epochs."""
    settings = [{"learning_rate": 1e-3, "clipnorm": 2.0}, {"learning_rate": 1e-3}]
    clipped, unclipped = _bench(["gradient_descent"], "mlp-regression", settings, max_iters=1000)
    (adam,) = _bench(["adam"], "mlp-regression", settings[:1], max_iters=1000)
    baseline = clipped.metrics["baseline_test_loss"]
    assert clipped.metrics["test_loss"] < baseline
    assert not unclipped.metrics["test_loss"] < baseline
    assert adam.metrics["test_loss"] < clipped.metrics["test_loss"]
    assert set(clipped.metrics) == {"train_loss", "test_loss", "baseline_train_loss", "baseline_test_loss"}


def test_the_same_seed_gives_identical_results_and_another_seed_does_not():
    def minibatch_run(seed):
        return _bench(["adam"], "mlp-regression", [{"learning_rate": 1e-2}], max_iters=50,
                      problem_options={"batch_size": 32, "seed": seed})[0]

    first, again, other = minibatch_run(1), minibatch_run(1), minibatch_run(2)
    assert first.final_params == again.final_params and first.metrics == again.metrics
    assert first.final_params != other.final_params


def test_seed_is_ignored_by_problems_without_randomness():
    plan = plan_bench(optreg.registry, ["adam"], ["quartic", "mlp-regression"], [{}], problem_options={"seed": 3})
    assert [p.options.get("seed") for p in plan.problems] == [None, 3]
    with pytest.raises(optreg.OptionError, match="'quartic' has no option 'batch_size'"):
        plan_bench(optreg.registry, ["adam"], "quartic", [{}], problem_options={"batch_size": 3})


def test_problem_all_runs_every_registered_problem():
    plan = plan_bench(optreg.registry, ["adam", "sgd"], "all", [{}, {"learning_rate": 0.1}])
    assert [p.name for p in plan.problems] == optreg.registry.problems.names()
    assert plan.run_count == 2 * 2 * len(plan.problems)


@pytest.mark.parametrize(
    "text, values",
    [("logspace:1e-4:1e-1:4", [1e-4, 1e-3, 1e-2, 1e-1]), ("linspace:0.5:0.9:5", [0.5, 0.6, 0.7, 0.8, 0.9]),
     ("linspace:2:3:1", [2.0]), ("0.3", [0.3])],
)
def test_ranges_expand(text, values):
    assert parse_values(text) == pytest.approx(values)


def test_a_qualified_optimizer_name_is_a_value_not_a_range():
    """``--set inner=builtin:radam`` names lookahead's inner optimizer by its qualified name."""
    assert parse_values("builtin:radam") == ["builtin:radam"]
    assert settings_grid([], ["inner=radam,builtin:adam"]) == [{"inner": "radam"}, {"inner": "builtin:adam"}]


def test_random_samples_are_seeded_sorted_and_inside_their_bounds():
    drawn = parse_values("lograndom:1e-5:1:2000")
    assert drawn == parse_values("lograndom:1e-5:1:2000:0") == sorted(drawn)
    assert parse_values("lograndom:1e-5:1:2000:1") != drawn
    assert 1e-5 <= min(drawn) and max(drawn) <= 1
    # uniform on a log scale: a fifth of the draws in each decade (a linear draw puts 90% in the last)
    decades = np.histogram(np.log10(drawn), bins=5, range=(-5, 0))[0] / len(drawn)
    np.testing.assert_allclose(decades, 0.2, atol=0.04)
    linear = parse_values("random:0.8:0.99:2000:3")
    assert 0.8 <= min(linear) and max(linear) <= 0.99
    assert np.mean(linear) == pytest.approx(0.895, abs=0.005)
    assert parse_values("random:0.5:0.5:2") == [0.5, 0.5]
    grid = settings_grid(["lograndom:1e-3:1e-1:3"], ["beta_1=random:0.8:0.9:2"])
    assert len(grid) == 6 and {g["learning_rate"] for g in grid} == set(parse_values("lograndom:1e-3:1e-1:3"))


@pytest.mark.parametrize(
    "text, message",
    [("logspace:0:1:3", "positive ends"), ("linspace:1:2", "expected linspace:START:STOP:N"),
     ("linspace:1:2:0", "N must be between"), ("gridspace:1:2:3", "a range is"), ("linspace:a:2:3", "expected"),
     ("lograndom:0:1:3", "lograndom needs positive ends"), ("random:1:0:3", "LOW must not be above HIGH"),
     ("random:0:1:3:x", r"expected random:LOW:HIGH:N\[:SEED\]"), ("random:0:1:100001", "N must be between"),
     ("linspace:0:inf:3", "finite numbers"), ("logspace:1:2:3:4", "expected logspace:START:STOP:N")],
)
def test_malformed_ranges_say_what_is_wrong(text, message):
    with pytest.raises(optreg.HyperparameterError, match=message):
        parse_values(text)


def test_lr_takes_commas_like_set():
    """``--lr 0.1,0.01`` means what ``--lr 0.1 --lr 0.01`` and ``--set learning_rate=0.1,0.01`` mean."""
    by_commas = settings_grid(["0.1,logspace:1e-3:1e-2:2"], [])
    assert by_commas == settings_grid(["0.1", "logspace:1e-3:1e-2:2"], [])
    assert by_commas == settings_grid([], ["learning_rate=0.1,logspace:1e-3:1e-2:2"])
    assert [s["learning_rate"] for s in by_commas] == pytest.approx([0.1, 1e-3, 1e-2])
    with pytest.raises(optreg.HyperparameterError, match="'fast'"):
        settings_grid(["0.1,fast"], [])


def test_a_thousand_run_sweep_returns_a_thousand_records():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["bench", "adam", "--lr", "logspace:1e-4:1e-1:1000", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert len(records) == 1000
    assert {r["status"] for r in records} <= {"converged", "stuck", "exceeded", "exploded"}
    # a run the loop found converged is "converged" only where it ended within tolerance
    assert all(r["settled_at"] is not None for r in records if r["status"] == "converged")
    assert all(r["settled_at"] is None for r in records if r["status"] == "stuck")
    assert records[0]["hyperparameters"]["learning_rate"] == pytest.approx(1e-4)
    assert records[-1]["hyperparameters"]["learning_rate"] == pytest.approx(1e-1)
    # the sweep's slice of the tutorial: lr 0.1 converges in 1156 iterations, as the tutorial's run
    assert (records[-1]["status"], records[-1]["iterations"]) == ("converged", 1156)


def test_keras_options_sweep_like_hyperparameters():
    settings = settings_grid(["0.05", "0.1"], ["weight_decay=0,0.01", "use_ema=true"])
    together = _bench(["adam"], "booth", settings, max_iters=200)
    for setting, stacked in zip(settings, together):
        (alone,) = _bench(["adam"], "booth", [setting], max_iters=200)
        assert _key(stacked) == _key(alone), setting
        np.testing.assert_allclose(stacked.final_params, alone.final_params, rtol=1e-6, atol=1e-6)
    assert together[0].final_params != together[1].final_params  # the decay moved the run
    with pytest.raises(optreg.OptionError, match="weight_decay must be"):
        plan_bench(optreg.registry, ["adam"], "booth", [{"weight_decay": -1.0}])


def test_fixed_hyperparameters_split_runs_into_groups_built_with_them():
    settings = settings_grid(["0.05", "0.1"], ["amsgrad=true,false"])
    together = _bench(["adam"], "rosenbrock", settings, max_iters=300)
    for setting, stacked in zip(settings, together):
        (alone,) = _bench(["adam"], "rosenbrock", [setting], max_iters=300)
        assert _key(stacked) == _key(alone), setting
        np.testing.assert_allclose(stacked.final_params, alone.final_params, rtol=1e-6, atol=1e-6)
    assert together[0].hyperparameters["amsgrad"] is True
    assert together[0].final_params != together[1].final_params  # amsgrad changed the run
