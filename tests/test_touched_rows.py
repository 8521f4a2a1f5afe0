"""Rules with reductions on a sparse gradient's touched rows: which variables qualify (decided
from the rule and the variable's shape), the evaluator against the dense update for every
reduction, Adafactor and SM3 against their dense updates in optreg's own step (eager, traced,
XLA) and in the Keras adapter's ``model.fit``, and a NumPy Adafactor."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras
from optreg.lang.check import check_rule
from optreg.lang.parse import parse_assignment
from optreg.runtime import compile as compile_module
from optreg.runtime.compile import CompiledRule
from optreg.runtime.rule_rows import Rows
from optreg.runtime.sparse import summed_rows
from optreg.spec.conditions import deciding_values, fixed_values, specialize_spec
from optreg.spec.touched_rows import TABLE_SHAPE, rule_sparse_support, touched_rows_blocker

#: Row 3 three times, row 17 twice, and rows never touched.
INDICES = [3, 17, 3, 0, 17, 3, 25]
ROWS = 40


def catalogue_rule(name, **given):
    """A registered spec's rule specialised as created with ``given``, and its slot kinds."""
    spec = optreg.registry.get(name).spec
    rule, slots = specialize_spec(spec, {**fixed_values(spec, given), **deciding_values(spec, given)})
    return rule, {slot.name: slot.shape for slot in slots}


# --- the decision ---------------------------------------------------------------------------------


def test_the_built_ins_on_touched_rows_are_the_exact_ones_and_the_factored_ones():
    touched = {
        entry.name for entry in optreg.registry
        if entry.spec and rule_sparse_support(*catalogue_rule(entry.name)).touched_rows
    }
    # shampoo's table takes its diagonal Adagrad branch (a side above max_preconditioner_dim)
    assert touched == {"sgd", "gradient_descent", "adagrad", "signsgd", "adafactor", "sm3", "shampoo"}
    rule, kinds = catalogue_rule("adafactor")
    assert touched_rows_blocker(rule, kinds, (500, 64)) == ""
    assert touched_rows_blocker(rule, kinds, (500,)) == "slot 'v' changes"  # a vector's v decays on every row
    assert touched_rows_blocker(*catalogue_rule("shampoo"), (64, 64)).startswith("calls matmul")
    assert touched_rows_blocker(*catalogue_rule("adam"), TABLE_SHAPE) == "slot 'm' changes"
    assert touched_rows_blocker(*catalogue_rule("lion"), TABLE_SHAPE) == "var changes"


@pytest.mark.parametrize(
    ("line", "blocker"),
    [
        ("var = var - lr * grad * size(grad + 1)", "calls size of an expression (only of a name)"),
        ("var = var - lr * normal_like(grad)", "calls normal_like (a random function)"),
        ("var = var - lr * (grad + 0.01 * var)", "var changes"),
        ("var = var - lr * grad * rows(var) / norm(grad)", ""),
    ],
)
def test_what_keeps_a_rule_off_the_touched_rows(line, blocker):
    rule = check_rule([parse_assignment(line)], ["lr"], [])
    assert touched_rows_blocker(rule, {}, (ROWS, 3)) == blocker


def test_optreg_show_says_adafactor_runs_on_touched_rows():
    from optreg.catalog.show import show_text

    assert "sparse gradients: touched rows (only a table's touched rows change" in show_text(
        optreg.registry.get("adafactor")
    )


# --- the evaluator, reduction by reduction --------------------------------------------------------

#: Rules over a table with a row statistic r, a column statistic c and an accumulator a: each
#: combines a kind of reduction with the touched rows (the untouched value zero, a constant, or
#: varying along the rows), and ``kept`` says whether var's untouched rows keep their values.
RULES = {
    "norm": (["var = var - lr * grad / maximum(1, norm(grad))"], True),
    "mean and max_abs": (["var = var - lr * grad * rsqrt(mean(square(grad)) + 1e-3) / (max_abs(grad) + 1)"], True),
    "row and column statistics": (
        ["r = 0.9 * r + row_mean(square(grad) + 1)", "c = 0.5 * c + col_mean(square(grad) + 0.1)",
         "var = var - lr * grad * rsqrt(r / col_mean(r)) * rsqrt(c)"], True),
    "row and column maxima": (["var = var - lr * grad / (row_max(abs(grad)) + col_max(abs(grad)) + 1)"], True),
    "sums with the variable": (["a = a + square(grad)", "var = var - lr * sum(grad * var) * grad / sqrt(a + 1)"], True),
    "varying untouched values": (
        ["u = grad + 0.1 * var", "var = var - lr * grad * (col_max(u) + col_mean(u) + norm(u) + mean(row_max(u)))"],
        True),
    "a select on the gradient": (["var = where(grad > 0, var - lr * grad, var + lr * square(grad))"], False),
    "a moving variable": (["var = var - lr * (grad + 0.01 * var) * sum(grad)"], False),
}


def dense_and_touched(lines, shape, indices=INDICES):
    """One update of a table by a rule, from its densified sparse gradient and on its touched rows."""
    rng = np.random.default_rng(4)
    slot_kinds = {"r": "rows", "c": "columns", "a": "var"}
    rule = CompiledRule(check_rule([parse_assignment(t) for t in lines], ["lr"], list(slot_kinds)), ["lr"], slot_kinds)
    var = tf.constant(rng.normal(size=shape).astype("float32"))
    slot_dims = {"r": [*shape[:-1], 1], "c": [*shape[:-2], 1, shape[-1]], "a": list(shape)}
    slots = {name: tf.constant(rng.uniform(1, 2, size=dims).astype("float32")) for name, dims in slot_dims.items()}
    values = rng.normal(size=(len(indices), *shape[1:])).astype("float32")
    grad = summed_rows(tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant(shape)))
    scalars = rule.step_scalars({"lr": tf.constant(0.1, tf.float64)}, tf.constant(1.0, tf.float64))
    dense = rule.update(tf.convert_to_tensor(grad), var, slots, scalars)
    touched = rule.update_touched_rows(grad, var, slots, scalars)
    return dense, touched, {"var": var, **slots}, grad.indices


@pytest.mark.parametrize("shape", [(ROWS, 3), (ROWS, 4, 5)], ids=["matrix", "rank-3"])
@pytest.mark.parametrize("name", sorted(RULES))
def test_a_rule_on_touched_rows_gives_the_dense_update(name, shape):
    lines, kept = RULES[name]
    dense, touched, before, indices = dense_and_touched(lines, shape)
    assert set(touched) == set(dense)
    assert isinstance(touched["var"], Rows) == kept
    for target, value in touched.items():
        if isinstance(value, Rows):
            value = tf.tensor_scatter_nd_update(before[target], indices[:, None], value.values)
        np.testing.assert_allclose(value.numpy(), dense[target].numpy(), rtol=2e-6, atol=1e-7, err_msg=target)


def test_a_channel_statistic_of_a_kernel_on_touched_rows():
    lines = ["var = var - lr * grad * channel_mean(square(grad) + 2) / "
             "(channel_sum(abs(grad)) + channel_max(grad + 1) + channel_norm(grad) + 1)"]
    dense, touched, before, indices = dense_and_touched(lines, (ROWS, 2, 3, 4))
    new = tf.tensor_scatter_nd_update(before["var"], indices[:, None], touched["var"].values)
    np.testing.assert_allclose(new.numpy(), dense["var"].numpy(), rtol=2e-6, atol=1e-7)


def test_every_row_touched_leaves_no_untouched_value_counted():
    lines = ["var = var - lr * grad / (row_max(abs(grad)) + col_max(grad - 5) + mean(grad + 1))"]
    dense, touched, before, indices = dense_and_touched(lines, (4, 3), indices=[2, 0, 1, 3, 2])
    new = tf.tensor_scatter_nd_update(before["var"], indices[:, None], touched["var"].values)
    np.testing.assert_allclose(new.numpy(), dense["var"].numpy(), rtol=2e-6)


# --- the built-ins, in optreg's own step -----------------------------------------------------------


def adafactor_reference(start, grads, steps, learning_rate=0.1, epsilon_1=1e-30, epsilon_2=1e-3):
    """Adafactor (Shazeer & Stern 2018, as keras.optimizers.Adafactor) on a matrix, in NumPy float64."""
    var = start.astype("float64")
    r, c = np.zeros((var.shape[0], 1)), np.zeros((1, var.shape[1]))
    for step in range(1, steps + 1):
        grad = grads[step - 1]
        rho = min(learning_rate, 1 / np.sqrt(step))
        alpha = max(epsilon_2, np.sqrt(np.mean(var ** 2))) * rho
        beta = 1 - step ** -0.8
        regulated = grad ** 2 + epsilon_1
        r = beta * r + (1 - beta) * regulated.mean(axis=1, keepdims=True)
        c = beta * c + (1 - beta) * regulated.mean(axis=0, keepdims=True)
        u = grad / np.sqrt(r / r.mean() * c)
        var = var - alpha * u / max(1.0, np.sqrt(np.mean(u ** 2)))
    return var


def sparse_gradient(seed, cols):
    values = np.random.default_rng(seed).normal(size=(len(INDICES), cols)).astype("float32")
    return tf.IndexedSlices(tf.constant(values), tf.constant(INDICES), tf.constant([ROWS, cols]))


def trained(name, sparse_updates, how, cols=8, steps=3, **options):
    """A table after ``steps`` sparse steps of a registered optimizer, eagerly or traced."""
    table = tf.Variable(np.random.default_rng(1).normal(size=(ROWS, cols)).astype("float32"))
    opt = optreg.registry.create(name, learning_rate=0.1, sparse_updates=sparse_updates,
                                 jit_compile=how == "xla", **options)
    apply = lambda g: opt.apply_gradients([(g, table)])  # noqa: E731
    apply = tf.function(apply, jit_compile=True) if how == "whole-step xla" else apply
    for step in range(steps):
        apply(sparse_gradient(step, cols))
    return table.numpy(), {n: s.numpy() for n, s in opt.slots_for(table).items()}, opt


@pytest.mark.parametrize("how", ["op by op", "xla", "whole-step xla"])
@pytest.mark.parametrize("name", ["adafactor", "sm3"])
def test_the_built_ins_on_touched_rows_give_their_dense_update(name, how, monkeypatch):
    calls = []
    original = compile_module.CompiledRule.update_touched_rows
    monkeypatch.setattr(compile_module.CompiledRule, "update_touched_rows",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    start = np.random.default_rng(1).normal(size=(ROWS, 8)).astype("float32")
    rows, rows_slots, opt = trained(name, "exact", how)
    assert calls and opt.takes_sparse_gradients and not opt.sparse_support.exact
    dense, dense_slots, _ = trained(name, "dense", how)
    np.testing.assert_allclose(rows, dense, rtol=1e-6, atol=1e-7)
    for slot in dense_slots:
        np.testing.assert_allclose(rows_slots[slot], dense_slots[slot], rtol=1e-6, atol=1e-30, err_msg=slot)
    untouched = sorted(set(range(ROWS)) - set(INDICES))
    np.testing.assert_array_equal(rows[untouched], start[untouched])


def test_adafactor_on_touched_rows_follows_the_numpy_reference():
    start = np.random.default_rng(1).normal(size=(ROWS, 8)).astype("float32")
    grads = [tf.convert_to_tensor(sparse_gradient(step, 8)).numpy().astype("float64") for step in range(3)]
    rows, _, _ = trained("adafactor", "exact", "op by op")
    np.testing.assert_allclose(rows, adafactor_reference(start, grads, 3), rtol=1e-5, atol=1e-6)


def test_a_vector_densifies_and_a_table_does_not_in_the_same_step():
    """Adafactor's vectors keep a full v that decays everywhere: their sparse gradient is densified."""
    table = tf.Variable(tf.ones([ROWS, 8]))
    vector = tf.Variable(tf.ones([ROWS]))
    opt = optreg.registry.create("adafactor", learning_rate=0.1, jit_compile=False)
    vector_grad = tf.IndexedSlices(tf.constant([1.0, 2.0]), tf.constant([1, 5]), tf.constant([ROWS]))
    opt.apply_gradients([(sparse_gradient(0, 8), table), (vector_grad, vector)])
    dense = optreg.registry.create("adafactor", learning_rate=0.1, jit_compile=False, sparse_updates="dense")
    table2, vector2 = tf.Variable(tf.ones([ROWS, 8])), tf.Variable(tf.ones([ROWS]))
    dense.apply_gradients([(sparse_gradient(0, 8), table2), (vector_grad, vector2)])
    np.testing.assert_allclose(table.numpy(), table2.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(vector.numpy(), vector2.numpy())


# --- the Keras adapter in model.fit ----------------------------------------------------------------


def embedding_fit(sparse_updates, epochs=2):
    """An embedding model fitted by the adapter's Adafactor; its weights after."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 200, size=(64, 5))
    targets = rng.normal(size=(64, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(200, 8),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    model.compile(optimizer=optreg.keras.optimizer("adafactor", learning_rate=0.05, sparse_updates=sparse_updates),
                  loss="mse")
    model.fit(ids, targets, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return [w.numpy() for w in model.weights], ids


def test_the_adapter_runs_adafactor_on_touched_rows_in_model_fit(monkeypatch):
    calls = []
    original = compile_module.CompiledRule.update_touched_rows
    monkeypatch.setattr(compile_module.CompiledRule, "update_touched_rows",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    rows, ids = embedding_fit("exact")
    assert calls
    dense, _ = embedding_fit("dense")
    for got, want in zip(rows, dense):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    start, _ = embedding_fit("exact", epochs=0)
    never = sorted(set(range(200)) - set(ids.ravel()))
    np.testing.assert_array_equal(rows[0][never], start[0][never])
