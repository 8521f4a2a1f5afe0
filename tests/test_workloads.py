"""The workload suite: shipped digits, generated data, losses against NumPy, targets reached."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import optreg
from optreg.bench.runner import plan_bench
from optreg.cli import main
from optreg.problems import Problem, digits_data, synthetic
from optreg.problems.autoencoder import pca_errors
from optreg.problems.char_lm import load_text, text_windows
from optreg.problems.digits import cnn_layout, cnn_logits, mlp_layout
from optreg.problems.digits_data import image_patches, load_digits
from optreg.problems.targets import Target
from tests.helpers import run_bench

WORKLOADS = ["digits-mlp", "digits-cnn", "logistic-regression", "noisy-quadratic", "autoencoder", "char-lm"]


def problem(name, **options):
    return optreg.registry.problems.get(name).with_options(**options)


def softmax_cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_chance = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.mean(log_chance[np.arange(len(labels)), labels])


def test_the_digits_ship_compressed_with_their_split_and_licence():
    assert digits_data.DATA_FILE.stat().st_size < 64_000
    x_train, y_train, x_test, y_test = load_digits()
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert x_train.dtype == np.float32 and x_train.min() == 0.0 and x_train.max() == 1.0
    # the file's rows cycle through the digits, so every fourth row gives every class its share
    assert np.bincount(y_test, minlength=10).min() >= 35 and np.bincount(y_train, minlength=10).min() >= 130
    readme = (digits_data.DATA_FILE.parent / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "Alpaydin" in readme and "Kaynak (1998)" in readme


def test_the_suite_is_registered_with_targets_in_its_summaries():
    for name in WORKLOADS:
        found = optreg.registry.problems.get(name)
        assert found.source == "builtin"
        assert "target" in found.summary or found.minimum_loss is not None, name
    assert [problem(name).dimension for name in WORKLOADS] == [2410, 810, 21, 10, 1096, 2163]


@pytest.mark.parametrize("name", WORKLOADS)
def test_a_batch_of_points_gives_one_loss_each_and_minibatches_the_same_shape(name, rng):
    found = problem(name, batch_size=64)
    points = np.asarray(found.start, np.float32) + rng.normal(size=(3, found.dimension)).astype(np.float32) * 0.1
    batched = found.loss(tf.constant(points)).numpy()
    one_by_one = [float(found.loss(tf.constant(p))) for p in points]
    np.testing.assert_allclose(batched, one_by_one, rtol=2e-5)
    assert found.training_loss(tf.constant(points), tf.constant(5)).shape == (3,)


def test_the_perceptron_loss_is_a_numpy_forward_pass(rng):
    x_train, y_train, _, _ = load_digits()
    params = rng.normal(size=mlp_layout(32).size) * 0.3
    cut = [64 * 32, 32, 32 * 10, 10]
    first, bias, second, out_bias = np.split(params, np.cumsum(cut)[:-1])
    hidden = np.maximum(x_train @ first.reshape(64, 32) + bias, 0)
    expected = softmax_cross_entropy(hidden @ second.reshape(32, 10) + out_bias, y_train)
    np.testing.assert_allclose(float(problem("digits-mlp").loss(tf.constant(params))), expected, rtol=1e-10)


def test_the_convolution_agrees_with_conv2d_and_max_pool(rng):
    """The patch-product convolution against TensorFlow's own conv2d and max_pool2d on one run."""
    layout = cnn_layout(8)
    params = rng.normal(size=(2, layout.size)) * 0.5
    x_train = load_digits()[0][:50].astype(np.float64)
    logits = cnn_logits(layout.unpack(tf.constant(params)), tf.constant(image_patches(x_train), tf.float64)).numpy()
    for run in range(2):
        conv_w, conv_b, out_w, out_b = np.split(params[run], np.cumsum([72, 8, 720])[:])
        maps = tf.nn.conv2d(x_train.reshape(-1, 8, 8, 1), conv_w.reshape(3, 3, 1, 8), strides=1, padding="VALID")
        pooled = tf.nn.max_pool2d(tf.nn.relu(maps + conv_b), 2, 2, "VALID").numpy().reshape(50, 72)
        np.testing.assert_allclose(logits[run], pooled @ out_w.reshape(72, 10) + out_b, rtol=1e-9, atol=1e-12)


def test_the_cnn_loss_is_the_cross_entropy_of_its_logits(rng):
    layout = cnn_layout(8)
    params = rng.normal(size=layout.size) * 0.5
    x_train, y_train, _, _ = load_digits()
    logits = cnn_logits(layout.unpack(tf.constant(params[None])), tf.constant(image_patches(x_train), tf.float64))
    expected = softmax_cross_entropy(logits.numpy()[0], y_train)
    np.testing.assert_allclose(float(problem("digits-cnn").loss(tf.constant(params))), expected, rtol=1e-10)


def test_minibatches_partition_each_epoch(rng):
    """1347 = 3 × 449: the three minibatch losses of an epoch average to the full loss."""
    found = problem("digits-mlp", hidden=4, batch_size=449)
    point = tf.constant(np.asarray(found.start, np.float64))
    losses = [float(found.training_loss(point, tf.constant(i))) for i in range(3)]
    assert len(set(losses)) == 3
    np.testing.assert_allclose(np.mean(losses), float(found.loss(point)), rtol=1e-9)


def test_the_autoencoder_loss_and_its_pca_reference(rng):
    x_train, _, x_test, _ = load_digits()
    found = problem("autoencoder", code=4)
    params = rng.normal(size=found.dimension) * 0.2
    enc_w, enc_b, dec_w, dec_b = np.split(params, np.cumsum([64 * 4, 4, 4 * 64]))
    recon = np.tanh(x_train @ enc_w.reshape(64, 4) + enc_b) @ dec_w.reshape(4, 64) + dec_b
    np.testing.assert_allclose(float(found.loss(tf.constant(params))), np.mean((recon - x_train) ** 2), rtol=1e-10)
    # PCA's training error is the discarded eigenvalues of the covariance, per pixel
    centred = x_train.astype(np.float64) - x_train.mean(axis=0)
    eigenvalues = np.sort(np.linalg.eigvalsh(centred.T @ centred / len(centred)))[::-1]
    train, test = pca_errors(4)
    np.testing.assert_allclose(train, eigenvalues[4:].sum() / 64, rtol=1e-8)
    assert train < test < float(np.mean((x_test - x_train.mean(axis=0)) ** 2))


def test_the_language_model_loss_is_a_numpy_forward_pass(rng):
    text, alphabet = load_text()
    assert text.startswith("four score and seven years ago") and text.endswith("shall not perish from the earth.")
    found = problem("char-lm", context=3, embedding=5, hidden=7)
    params = rng.normal(size=found.dimension) * 0.5
    table, first, bias, second, out_bias = np.split(params, np.cumsum([27 * 5, 15 * 7, 7, 7 * 27]))
    x_train, y_train, x_test, _ = text_windows(3)
    assert x_train.shape == (1176, 3) and len(x_test) == 294
    # the window before position i + 3 is the text's characters i, i + 1, i + 2
    assert "".join(alphabet[c] for c in x_train[10]) + alphabet[y_train[10]] == text[10:14]
    embedded = table.reshape(27, 5)[x_train].reshape(len(x_train), 15)
    logits = np.tanh(embedded @ first.reshape(15, 7) + bias) @ second.reshape(7, 27) + out_bias
    expected = softmax_cross_entropy(logits, y_train)
    np.testing.assert_allclose(float(found.loss(tf.constant(params))), expected, rtol=1e-10)


def test_the_logistic_optimum_is_the_one_newton_finds_and_is_stationary():
    point, loss = synthetic.solve_logistic()
    np.testing.assert_allclose(point, synthetic.LOGISTIC_OPTIMUM, rtol=0, atol=1e-12)
    np.testing.assert_allclose(loss, synthetic.LOGISTIC_OPTIMUM_LOSS, rtol=1e-14)
    found = problem("logistic-regression")
    optimum = tf.Variable(np.array(found.minimum))
    with tf.GradientTape() as tape:
        value = found.loss(optimum)
    np.testing.assert_allclose(float(value), found.minimum_loss, rtol=1e-14)
    np.testing.assert_allclose(tape.gradient(value, optimum).numpy(), 0.0, atol=1e-12)
    assert not found.solved_by(float(found.loss(np.array(found.start))))


def test_the_noisy_quadratic_gradient_is_unbiased_with_curvature_shaped_noise():
    found = problem("noisy-quadratic", dimension=3, condition=100.0, noise=0.5, batch_size=2, seed=7)
    point = tf.Variable(np.ones(3))

    @tf.function
    def gradient(i):
        with tf.GradientTape() as tape:
            value = found.training_loss(point, i)
        return tape.gradient(value, point)

    samples = np.array([gradient(tf.constant(i)).numpy() for i in range(400)])
    curvature = np.array([1.0, 10.0, 100.0])
    # mean H·x, variance noise·h / batch_size (Zhang et al. 2019)
    assert np.all(np.abs(samples.mean(axis=0) - curvature) <= 4 * np.sqrt(0.25 * curvature / 400))
    np.testing.assert_allclose(samples.var(axis=0), 0.25 * curvature, rtol=0.25)
    assert found.minimum_loss == 0.0 and float(found.loss(point)) == pytest.approx(55.5)
    assert problem("noisy-quadratic", batch_size=0).batch_loss is None


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("digits-mlp", {"hidden": 0}, "1 <= hidden"),
        ("digits-cnn", {"batch_size": 5000}, "batch_size <= 1347"),
        ("autoencoder", {"code": 10**6}, "1 <= code"),
        ("logistic-regression", {"seed": 2**40}, "fits in int32"),
        ("noisy-quadratic", {"noise": -1.0}, "noise >= 0"),
        ("char-lm", {"context": 16, "embedding": 256, "hidden": 256}, "more than 1000000"),
    ],
)
def test_bad_options_are_refused(name, options, message):
    with pytest.raises(optreg.OptionError, match=message):
        problem(name, **options)


def test_a_short_bench_reaches_the_stated_targets_through_the_command_line():
    """Adam through ``optreg bench``: 200 full-batch epochs classify the held-out digits at
    the target (accuracy at least 0.95), and the logistic regression reaches its tolerance."""
    result = CliRunner().invoke(
        main,
        ["bench", "adam", "--problem", "digits-mlp", "--problem", "logistic-regression",
         "--lr", "0.03", "--max-iters", "200", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    digits, logistic = ({**record, **record["metrics"]} for record in json.loads(result.output))
    assert digits["test_accuracy"] >= 0.95 and digits["target_met"] == 1.0
    assert digits["test_loss"] < digits["baseline_test_loss"] / 10
    assert logistic["reached_at"] is not None and logistic["distance_to_optimum"] < 0.05
    # the loop checks the target every iteration: the time to it, in iterations and in seconds
    assert digits["target"] == "test_accuracy ≥ 0.95" and 0 < digits["settled_at"] < 200
    assert 0 < digits["seconds_to_target"] <= digits["loop_seconds"]


def test_the_loop_finds_when_a_run_met_its_problems_target_and_stayed():
    """A bowl x² from x = 2 with the target x² ≤ 0.25 and no known minimum: gradient descent
    at lr 0.1 makes x_k = 2 · 0.8^k, outside at k = 6 (0.524), inside from k = 7 (0.419) on;
    at lr 0.001 it never gets there in 20 iterations."""
    bowl = Problem("bowl", "x²", (2.0,), lambda x: x[..., 0] ** 2, target=Target("x_squared", 0.25),
                   target_figure=lambda p: p[..., 0] ** 2)
    plan = plan_bench(optreg.registry, ["gradient_descent"], "quartic", [{"learning_rate": 0.1},
                                                                         {"learning_rate": 0.001}], 20)
    fast, slow = run_bench(attrs.evolve(plan, problems=(bowl,)), jit_compile=False)
    assert (fast.target, fast.has_minimum, fast.reached_at, fast.settled_at) == ("x_squared ≤ 0.25", False, 7, 7)
    assert 0 < fast.seconds_to_target <= fast.loop.run_seconds
    assert (slow.reached_at, slow.settled_at, slow.seconds_to_target) == (None, None, None)


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "autoencoder", "char-lm"])
def test_the_target_figure_the_loop_checks_is_the_metric_reported(name, rng):
    """The compiled loop checks a workload's target by ``target_figure``; the records report the
    metric. At the start and two random points they agree, and so do the verdicts."""
    made = problem(name)
    start = np.asarray(made.start, np.float32)
    points = np.stack([start, start + rng.normal(0, 0.1, start.shape), start + rng.normal(0, 0.3, start.shape)])
    points = points.astype(np.float32)
    reported = np.asarray(made.metrics(points)[made.target.metric])
    checked = made.target_figure(tf.constant(points)).numpy()
    np.testing.assert_allclose(checked, reported, rtol=1e-5)
    assert made.target.met(checked).tolist() == (made.metrics(points)["target_met"] == 1.0).tolist()
