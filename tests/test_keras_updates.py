"""How the Keras adapter runs its rule: a step's dense updates as one XLA computation, a sparse
gradient's touched rows (exact and lazy), and Keras's op-by-op path kept for ``jit_compile=False``."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras as optreg_keras
from optreg.keras.updates import CompiledUpdates
from tests.test_sparse import COLS, INDICES, ROWS, lazy_reference, sparse_gradient


def embedding_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(ROWS, COLS),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )


def dense_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])


def fitted(optimizer, make_model=embedding_model) -> list[np.ndarray]:
    """A model's variables after 3 steps of ``model.fit`` with ``optimizer``."""
    model = make_model()
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(2).integers(0, ROWS // 2, size=(24, 4)).astype("int32")
    y = np.random.default_rng(3).normal(size=(24, 1)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return [v.numpy() for v in model.trainable_variables]


@pytest.mark.parametrize("jit_compile", [False, "auto"])
@pytest.mark.parametrize("name", ["sgd", "adagrad"])
def test_model_fit_updates_an_exact_rules_embedding_rows_as_the_dense_update(name, jit_compile):
    """The rows path and the densified path give the same bits op by op; under XLA, which rounds
    a division or a root of a few rows and of the whole table apart (an ulp a step, carried into
    the next steps' gradients through the forward pass), within 1e-6 (1e-8 absolute, a few ulps of
    the table's entries, where a value cancels towards 0). The rows path is the one
    taken (see the graph test below)."""
    rows = optreg_keras.optimizer(name, learning_rate=0.1, jit_compile=jit_compile)
    assert rows.takes_sparse_gradients
    dense = optreg_keras.optimizer(name, learning_rate=0.1, sparse_updates="dense", jit_compile=jit_compile)
    assert not dense.takes_sparse_gradients
    close = functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-8)
    same = np.testing.assert_array_equal if not jit_compile else close
    for ours, reference in zip(fitted(rows), fitted(dense)):
        same(ours, reference)


def op_types(function, *args) -> set[str]:
    """The op types of a ``tf.function``'s graph for ``args`` and of every function it calls."""
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    return {node.op for node in graph.node} | {
        node.op for inner in graph.library.function for node in inner.node_def
    }


@pytest.mark.parametrize("jit_compile", [False, "auto"])
def test_an_exact_step_scatters_the_touched_rows_and_never_densifies(jit_compile):
    """Op by op and inside the XLA computation; no dense [ROWS] sum of the rows either way."""
    table = keras.Variable(np.zeros((ROWS, COLS), "float32"))
    opt = optreg_keras.optimizer("adagrad", learning_rate=0.1, jit_compile=jit_compile)
    step = tf.function(lambda g: opt.apply([g], [table]))
    kinds = op_types(step, sparse_gradient(0))
    assert {"ResourceScatterUpdate", "Unique"} <= kinds
    graph = step.get_concrete_function(sparse_gradient(0)).graph
    segment_sums = [op for op in graph.get_operations() if op.type == "UnsortedSegmentSum"]
    assert segment_sums and all(tf.get_static_value(op.inputs[2]) != ROWS for op in segment_sums)
    dense = optreg_keras.optimizer("adagrad", learning_rate=0.1, sparse_updates="dense", jit_compile=jit_compile)
    assert "ResourceScatterUpdate" not in op_types(tf.function(lambda g: dense.apply([g], [table])), sparse_gradient(0))


@pytest.mark.parametrize(("name", "options"), [("adam", {}), ("sgd", {"momentum": 0.9})], ids=["adam", "momentum"])
def test_lazy_updates_in_the_adapter_follow_the_numpy_lazy_reference(name, options):
    start = np.random.default_rng(1).normal(size=(ROWS, COLS)).astype("float32")
    grads = [sparse_gradient(step, indices) for step, indices in enumerate([INDICES, [1, 3, 1], [3, 30]])]
    table = keras.Variable(start)
    opt = optreg_keras.optimizer(name, learning_rate=0.1, sparse_updates="lazy", **options)
    for grad in grads:
        opt.apply([grad], [table])
    np.testing.assert_allclose(table.numpy(), lazy_reference(name, start, grads, 0.1), rtol=2e-6, atol=2e-6)
    never = sorted(set(range(ROWS)) - {1, 3, 30, *INDICES})
    np.testing.assert_array_equal(table.numpy()[never], start[never])


def test_the_dense_updates_of_a_step_run_as_one_xla_computation_and_agree_with_keras():
    """One compiled function for the model's variables; the op-by-op path (``jit_compile=False``)
    compiles none; both follow Keras's Adam. (On an embedding they would not: Keras's Adam squares
    a sparse gradient's rows before it sums a repeated row's, so its second moment of such a row is
    the sum of squares; optreg sums the rows first, the dense algorithm.)"""
    betas = {"beta_1": 0.875, "beta_2": 1 - 2**-10}  # float32 holds them: Keras's bias corrections are exact
    fused = optreg_keras.optimizer("adam", learning_rate=0.01, **betas)
    op_by_op = optreg_keras.optimizer("adam", learning_rate=0.01, jit_compile=False, **betas)
    keras_adam = keras.optimizers.Adam(0.01, **betas)
    results = [fitted(opt, dense_model) for opt in (fused, op_by_op, keras_adam)]
    assert len(fused._compiled) == 1 and len(op_by_op._compiled) == 0
    for ours, by_ops, reference in zip(*results):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(by_ops, reference, rtol=1e-6, atol=1e-7)


def test_an_eigendecomposition_rule_is_never_compiled_by_the_adapter():
    """Shampoo's inverse roots run op by op, as in optreg's own optimizer (XLA's eigendecomposition is
    far less accurate): no compiled function, and the same numbers as ``jit_compile=False``."""
    auto = optreg_keras.optimizer("shampoo", learning_rate=0.01)
    by_ops = optreg_keras.optimizer("shampoo", learning_rate=0.01, jit_compile=False)
    for ours, reference in zip(fitted(auto, dense_model), fitted(by_ops, dense_model)):
        np.testing.assert_array_equal(ours, reference)
    assert len(auto._compiled) == 0


def test_the_options_are_kept_in_the_config_and_checked():
    opt = optreg_keras.optimizer("adam", jit_compile=False, sparse_updates="lazy")
    rebuilt = optreg_keras.SpecOptimizer.from_config(opt.get_config())
    assert (rebuilt.jit_compile, rebuilt.sparse_updates) == (False, "lazy")
    with pytest.raises(optreg.OptionError, match="jit_compile must be True, False or 'auto', got 'yes'"):
        optreg_keras.optimizer("adam", jit_compile="yes")
    with pytest.raises(optreg.OptionError, match=r"the rule of 'lars' calls norm \(a reduction"):
        optreg_keras.optimizer("lars", sparse_updates="lazy")
    with pytest.raises(optreg.OptionError, match="jit_compile=True: shampoo's update calls an eigendecomposition"):
        optreg_keras.optimizer("shampoo", jit_compile=True)
    for option, value in (("skip_nonfinite", True), ("slot_dtype", "float32")):
        with pytest.raises(optreg.OptionError, match=f"{option} is an option of optreg's own optimizers"):
            optreg_keras.optimizer("adam", **{option: value})


def test_the_compiled_functions_kept_are_bounded():
    made = []
    functions = CompiledUpdates(limit=2)
    for key in ("a", "b", "a", "c"):
        functions.get(key, lambda key=key: made.append(key) or key)
    assert len(functions) == 2 and made == ["a", "b", "c"]
    functions.get("a", lambda: made.append("a again"))  # kept: used after "b"
    functions.get("b", lambda: made.append("b again"))  # dropped when "c" came
    assert made == ["a", "b", "c", "b again"]


def test_the_op_by_op_step_runs_the_step_program_once_for_all_its_variables():
    """Keras's op-by-op step calls ``update_step`` once per variable; the step program (bias
    corrections and the like) runs once per step, and each step reads its own: a learning rate
    changed between steps is the next step's. A bare ``update_step`` runs it itself."""
    adapter = optreg_keras.optimizer("adam", learning_rate=0.1, jit_compile=False)
    variables = [keras.Variable(np.ones(shape, np.float32)) for shape in [(3,), (2, 2), (), (4,)]]
    grads = [tf.fill(v.shape, 0.5) for v in variables]
    runs = []
    step_scalars = adapter._rule.step_scalars
    adapter._rule.step_scalars = lambda *args: runs.append(args) or step_scalars(*args)
    adapter.apply(grads, variables)
    assert len(runs) == 1
    adapter.learning_rate = 0.2
    adapter.apply(grads, variables)
    assert len(runs) == 2 and float(runs[1][0]["learning_rate"]) == pytest.approx(0.2)
    reference = keras.optimizers.Adam(learning_rate=0.1)
    theirs = [keras.Variable(np.ones(shape, np.float32)) for shape in [(3,), (2, 2), (), (4,)]]
    reference.apply(grads, theirs)
    reference.learning_rate = 0.2
    reference.apply(grads, theirs)
    for ours, want in zip(variables, theirs):  # Keras rounds its bias corrections to float32
        np.testing.assert_allclose(ours.numpy(), want.numpy(), rtol=1e-5)
    adapter.update_step(grads[0], variables[0], tf.constant(0.2))
    assert len(runs) == 3
