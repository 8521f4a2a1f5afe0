"""The registered problems: their minima, batched losses, options and the regression data."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.problems.regression import glorot_start, load_data, parameter_count, predict

ANALYTIC = ["quartic", "quadratic", "rosenbrock", "beale", "booth", "himmelblau", "rastrigin"]


@pytest.mark.parametrize("name", ANALYTIC)
def test_the_stated_minimum_is_a_stationary_point_of_the_stated_loss(name):
    problem = optreg.registry.problems.get(name)
    point = tf.Variable(np.array(problem.minimum, np.float64))
    with tf.GradientTape() as tape:
        loss = problem.loss(point)
    np.testing.assert_allclose(float(loss), problem.minimum_loss, atol=1e-12)
    np.testing.assert_allclose(tape.gradient(loss, point).numpy(), 0.0, atol=1e-9)
    assert not problem.solved_by(float(problem.loss(np.array([problem.start], np.float64))[0]))


@pytest.mark.parametrize("name", ANALYTIC + ["mlp-regression"])
def test_a_batch_of_points_gives_one_loss_each(name, rng):
    problem = optreg.registry.problems.get(name)
    points = np.asarray(problem.start, np.float32) + rng.normal(size=(5, problem.dimension)).astype(np.float32) * 0.1
    batched = problem.loss(tf.constant(points)).numpy()
    one_by_one = [float(problem.loss(tf.constant(p))) for p in points]
    assert batched.shape == (5,)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)


def test_himmelblau_has_four_minima_of_loss_zero():
    problem = optreg.registry.problems.get("himmelblau")
    minima = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
    np.testing.assert_allclose(problem.loss(np.array(minima)), 0.0, atol=1e-9)


def test_quadratic_options_set_dimension_and_condition():
    problem = optreg.registry.problems.get("quadratic").with_options(dimension=3, condition=100.0)
    assert problem.start == (1.0, 1.0, 1.0)
    # curvatures 1, 10, 100: the loss of each unit vector is half its curvature
    np.testing.assert_allclose(problem.loss(np.eye(3)), [0.5, 5.0, 50.0], rtol=1e-12)
    with pytest.raises(optreg.OptionError, match="has no option 'size'"):
        problem.with_options(size=3)
    with pytest.raises(optreg.OptionError, match="1 <= dimension <= 1000000"):
        problem.with_options(dimension=0)


def test_the_regression_data_ships_with_its_split_and_licence():
    x_train, y_train, x_test, y_test = load_data()
    assert x_train.shape == (354, 10) and x_test.shape == (88, 10)
    assert y_train.dtype == np.float32 and 25 <= y_train.min() and y_train.max() <= 346
    readme = (optreg.problems.regression.DATA_FILE.parent / "README.md").read_text(encoding="utf-8")
    assert "Angle Regression" in readme and "BSD 3-Clause" in readme


def test_the_network_matches_a_numpy_forward_pass(rng):
    x_train, y_train, _, _ = load_data()
    params = rng.normal(size=parameter_count(10, 4)).astype(np.float64)
    first, bias, second, out_bias = params[:40].reshape(10, 4), params[40:44], params[44:48], params[48]
    expected = np.maximum(x_train @ first + bias, 0) @ second + out_bias
    np.testing.assert_allclose(predict(tf.constant(params), x_train.astype(np.float64), 4), expected, rtol=1e-10)
    problem = optreg.registry.problems.get("mlp-regression")
    np.testing.assert_allclose(float(problem.loss(tf.constant(params))), np.mean((expected - y_train) ** 2), rtol=1e-10)


def test_the_start_point_depends_on_the_seed_only():
    assert glorot_start(10, 4, seed=1) == glorot_start(10, 4, seed=1)
    assert glorot_start(10, 4, seed=1) != glorot_start(10, 4, seed=2)
    problem = optreg.registry.problems.get("mlp-regression")
    assert problem.with_options(seed=5).start == glorot_start(10, 4, seed=5)


def test_minibatches_cover_each_epoch_once():
    """Per epoch, the minibatch losses average to the full-batch loss at a fixed point when the
    batches partition the data (354 = 6 × 59)."""
    problem = optreg.registry.problems.get("mlp-regression").with_options(batch_size=59)
    point = tf.constant(np.asarray(problem.start, np.float64))
    losses = [float(problem.training_loss(point, tf.constant(i))) for i in range(6)]
    assert len(set(losses)) == 6
    np.testing.assert_allclose(np.mean(losses), float(problem.loss(point)), rtol=1e-9)
    next_epoch = [float(problem.training_loss(point, tf.constant(i))) for i in range(6, 12)]
    assert sorted(next_epoch) != sorted(losses)  # reshuffled, not repeated
