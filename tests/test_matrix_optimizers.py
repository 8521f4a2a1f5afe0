"""Shampoo, SOAP and what the language grew for them: Gram-matrix slots, ``eye_like``,
``inverse_root`` and ``eigvecs``, and the rule that a step calling an eigendecomposition never
runs with XLA.

The battery (``table_matrix.py``) compares both optimizers with NumPy on the battery's shapes;
here the eigendecomposition functions are compared with ``numpy.linalg.eigh`` in float32, the
matrix branches are driven to the minimum of a matrix problem, and the limits and refusals are
checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.runtime.linalg import eigvecs, eye_like, inverse_root
from optreg.spec.variable_slots import slot_dims
from tests.optimizer_table import decaying

SPEC = """
[optimizer]
name = "probe"
summary = "a probe"

[hyperparameters]
lr = {{ default = 0.1 }}

[slots]
l = {{ init = "zeros", shape = "row_gram" }}
r = {{ init = "zeros", shape = "col_gram" }}
v = {{ init = "zeros" }}

[update]
rule = {rule}
"""


def _spec(*lines):
    return optreg.load_spec_text(SPEC.format(rule=json.dumps(list(lines))), source="probe.toml")


def _spd(rng, n, dtype=np.float32):
    a = rng.normal(size=(n, n + 2))
    return (a @ a.T / n + 0.1 * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("n", [3, 8])
def test_inverse_root_and_eigvecs_match_numpy_eigh_in_float32(n, rng):
    """Op by op, as the rules run them: the root to float32 rounding of NumPy's float64 one, and
    the eigenbasis column by column up to each column's sign (with eigenvalues well apart)."""
    matrix = _spd(rng, n)
    values, vectors = np.linalg.eigh(matrix.astype(np.float64))
    for p in (2.0, 4.0):
        exact = (vectors * values ** (-1 / p)) @ vectors.T
        ours = inverse_root(tf.constant(matrix), tf.constant(p)).numpy()
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, exact, rtol=0, atol=2e-6 * np.abs(exact).max())
    basis = eigvecs(tf.constant(matrix)).numpy()
    signs = np.sign(np.sum(basis * vectors, axis=0))
    np.testing.assert_allclose(basis * signs, vectors, atol=1e-5)
    np.testing.assert_allclose(basis.T @ basis, np.eye(n), atol=1e-6)


def test_the_functions_batch_floor_and_take_half_precision(rng):
    batch = np.stack([_spd(rng, 3), _spd(rng, 3)])
    roots = inverse_root(tf.constant(batch), tf.constant(4.0)).numpy()
    for matrix, root in zip(batch, roots):
        np.testing.assert_allclose(root, inverse_root(tf.constant(matrix), tf.constant(4.0)).numpy(), rtol=1e-6)
    # a zero matrix: every eigenvalue floored at 1e-30, so the root is 1e30 ** (1/4) times I
    np.testing.assert_allclose(inverse_root(tf.zeros([2, 2]), tf.constant(4.0)).numpy(), 10**7.5 * np.eye(2), rtol=1e-5)
    half = inverse_root(tf.constant(batch[0], tf.float16), tf.constant(2.0, tf.float16))
    assert half.dtype == tf.float16
    exact = inverse_root(tf.constant(batch[0]), tf.constant(2.0)).numpy()
    np.testing.assert_allclose(half.numpy().astype(np.float32), exact, rtol=5e-3, atol=5e-3)
    assert eye_like(tf.zeros([2, 3, 3])).numpy().tolist() == [np.eye(3).tolist()] * 2
    # a diverged run's statistics: NaN results for that matrix only, where eigh alone would raise
    broken = np.stack([batch[0], np.full((3, 3), np.inf, np.float32)])
    roots = inverse_root(tf.constant(broken), tf.constant(4.0)).numpy()
    assert np.all(np.isfinite(roots[0])) and np.all(np.isnan(roots[1]))
    assert np.all(np.isnan(eigvecs(tf.constant(broken)).numpy()[1]))


def test_gram_slots_are_shaped_from_rank_2_and_bounded():
    assert slot_dims("row_gram", [5, 3]) == [5, 5] and slot_dims("col_gram", [2, 5, 3]) == [2, 3, 3]
    assert slot_dims("row_gram", [7]) == slot_dims("col_gram", []) == []
    with pytest.raises(optreg.OptionError, match=r"'col_gram' slot of a variable of shape \[2, 20000\]"):
        slot_dims("col_gram", [2, 20000])


def test_a_matrix_keeps_its_gram_slots_and_a_vector_its_diagonal():
    spec = _spec(
        "l = where(rank(var) >= 2, l + matmul(grad, transpose(grad)), l)",
        "r = where(rank(var) >= 2, r + matmul(transpose(grad), grad), r)",
        "v = where(rank(var) >= 2, v, v + square(grad))",
        "var = var - lr * where(rank(var) >= 2, "
        "matmul(matmul(inverse_root(l + eye_like(l), 4), grad), inverse_root(r + eye_like(r), 4)), grad / sqrt(v + 1))",
    )
    opt = optreg.SpecOptimizer(spec)
    kernel, bias = tf.Variable(tf.ones([3, 2])), tf.Variable(tf.ones([2]))
    opt.apply_gradients([(tf.ones([3, 2]), kernel), (tf.ones([2]), bias)])
    assert {name: slot.shape.as_list() for name, slot in opt.slots_for(kernel).items()} == {"l": [3, 3], "r": [2, 2]}
    assert sorted(opt.slots_for(bias)) == ["v"]
    assert opt.runs_without_xla and not opt.supports_stacked_runs
    # L = 1·1ᵀ (3 × 3 of 2s) + I, R = 1ᵀ1 (2 × 2 of 3s) + I
    left = inverse_root(tf.constant(np.full((3, 3), 2.0) + np.eye(3), tf.float32), tf.constant(4.0)).numpy()
    right = inverse_root(tf.constant(np.full((2, 2), 3.0) + np.eye(2), tf.float32), tf.constant(4.0)).numpy()
    np.testing.assert_allclose(kernel.numpy(), 1 - 0.1 * left @ np.ones((3, 2)) @ right, rtol=1e-6)


@pytest.mark.parametrize(
    "line, fragment",
    [
        (
            "var = var - inverse_root(sum(grad), 4)",
            "inverse_root needs arguments of rank >= 2, but sum(grad) has rank 0",
        ),
        ("var = var - eigvecs(norm(grad))", "eigvecs needs arguments of rank >= 2"),
        ("var = var - eye_like(mean(var))", "eye_like needs arguments of rank >= 2"),
        (
            "var = where(rank(var) >= 2, var - inverse_root(grad, grad), var)",
            "inverse_root needs a number as argument 2",
        ),
    ],
)
def test_rank_errors_are_found_at_load(line, fragment):
    with pytest.raises(optreg.SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _spec(line)


@pytest.mark.parametrize("name", ["shampoo", "soap"])
def test_xla_is_refused_and_never_used(name):
    with pytest.raises(optreg.OptionError, match=f"jit_compile=True: {name}'s update calls an eigendecomposition"):
        optreg.registry.create(name, jit_compile=True)
    wrapped = optreg.registry.create("lookahead", inner=name)
    assert wrapped.runs_without_xla and not optreg.registry.create("adam").runs_without_xla
    with pytest.raises(optreg.OptionError, match="eigendecomposition"):
        optreg.registry.create("lookahead", inner=name, jit_compile=True)
    kernel = tf.Variable(tf.ones([3, 2]))
    wrapped.apply_gradients([(tf.ones([3, 2]), kernel)])
    assert not wrapped._runtime.compiled and np.all(np.isfinite(kernel.numpy()))


@pytest.mark.parametrize("name, learning_rate, steps", [("shampoo", 2.0, 600), ("soap", (0.1, 0.99), 600)])
def test_the_matrix_branch_reaches_the_minimum_of_a_matrix_least_squares_problem(name, learning_rate, steps, rng):
    """min ½‖AW − B‖² over a 6 × 4 matrix W, its Hessian ill-conditioned along the rows; each
    optimizer keeps Gram slots for W and reaches the minimum in float32 (SOAP's Adam steps with a
    decaying rate, as Adam's own need one to settle). Shampoo at this rate needs the eigenvalue
    floor relative to the largest: with an absolute one, float32 rounding noise below
    epsilon = 1e-6 is raised to the -1/4 and the run turns NaN."""
    if isinstance(learning_rate, tuple):
        learning_rate = decaying(*learning_rate)
    a = tf.constant((rng.normal(size=(10, 6)) * np.geomspace(1, 10, 6)).astype(np.float32))
    target = rng.normal(size=(6, 4)).astype(np.float32)
    b = a @ target
    w = tf.Variable(tf.zeros((6, 4)), name="kernel")
    opt = optreg.registry.create(name, learning_rate=learning_rate, weight_decay=None)

    def body(i):
        opt.minimize(lambda: 0.5 * tf.reduce_sum(tf.square(a @ w - b)), [w])
        return (i + 1,)

    tf.function(lambda: tf.while_loop(lambda i: i < steps, body, (tf.constant(0),)), autograph=False)()
    assert {"l", "r"} <= set(opt.slots_for(w)) and ("v" in opt.slots_for(w)) == (name == "soap")
    np.testing.assert_allclose(w.numpy(), target, atol=1e-4)


@pytest.mark.parametrize(
    "dtype, epsilon, moves", [(np.float32, 1e-8, True), (np.float64, 1e-8, False), (np.float32, 1e-4, False)]
)
def test_soap_moves_rows_no_gradient_touched_in_float32_at_its_default_epsilon(dtype, epsilon, moves, rng):
    """An embedding table whose rows 0 and 2 never get a gradient: their rotated coordinates are 0
    in exact arithmetic and rounding noise (about 1e-7 of the gradient in float32) after the
    eigendecomposition; above epsilon = 1e-8 Adam's normalisation makes that noise steps of the
    learning rate's size. In float64, or with a larger epsilon, the rows stay (within 1e-3)."""
    table = rng.normal(size=(10, 4))
    weights = [rng.normal(size=(5, 4)) for _ in range(20)]
    var = tf.Variable(table.astype(dtype))
    opt = optreg.registry.create("soap", learning_rate=0.05, epsilon=epsilon, weight_decay=None)
    for w in weights:
        grad = np.zeros_like(table)
        np.add.at(grad, [1, 3, 1, 7, 1], w)
        opt.apply_gradients([(tf.constant(grad.astype(dtype)), var)])
    moved = np.abs(var.numpy()[[0, 2]] - table[[0, 2]]).max()
    assert (moved > 0.05) if moves else (moved < 1e-3), moved


def test_the_bench_runs_their_loops_without_xla_and_the_others_with_it():
    """optreg bench compiles each problem's loops with XLA, but a loop of its own, without it, for
    an optimizer whose rule calls an eigendecomposition (its runs never stack: it is not
    elementwise); the runs end as the same optimizer's steps taken one by one end."""
    from optreg.bench.execute import run_bench
    from optreg.bench.groups import _build_loops, plan_groups
    from optreg.bench.runner import plan_bench

    plan = plan_bench(optreg.registry, ["shampoo", "adam"], "booth", [{"learning_rate": 0.1}], max_iters=30)
    problem = plan.problems[0]
    groups = [
        group
        for position, (entry, settings) in enumerate(plan.runs)
        for group in plan_groups(entry, position, settings)
    ]
    loops = _build_loops(problem, groups, plan, jit_compile=True)
    assert [loop._chunk._jit_compile for loop in loops.alone.values()] == [False]
    assert loops.shared is not None and loops.shared._chunk._jit_compile is True
    result = next(r for r in run_bench(plan) if r.optimizer == "shampoo")
    var = tf.Variable(np.asarray(problem.start, np.float32))
    opt = optreg.registry.create("shampoo", learning_rate=0.1)
    for _ in range(result.iterations):
        opt.minimize(lambda: problem.loss(var[None])[0], [var])
    np.testing.assert_allclose(result.final_params, var.numpy(), rtol=1e-5, atol=1e-6)
