"""Slots decided per variable: a variable keeps only the slots its branch of the rule reads.

The rule is specialised by what is known of a variable when its step is traced — its rank and
shape, ``excluded(var)`` — (``optreg.spec.variable_slots``), so Adafactor keeps row and column
statistics on a matrix and ``v`` only on the others, and Muon keeps ``v`` only on its AdamW
branch, as Keras's Muon does. The battery checks that the numbers are unchanged; here, which
slots exist, on optreg's optimizers and the Keras adapter, and that every built-in's state is its
algorithm's least (``benchmarks/state_memory.py``, at a small scale).
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.keras as optreg_keras
from optreg.lang.check import check_rule
from optreg.lang.parse import parse_assignment
from optreg.runtime.spec_optimizer import SpecOptimizer
from optreg.spec.conditions import deciding_values, fixed_values, specialize_spec
from optreg.spec.reader import load_spec, load_spec_text
from optreg.spec.variable_slots import plan_slots, slot_dims
from tests.helpers import REPO


def _benchmark():
    spec = importlib.util.spec_from_file_location("state_memory", REPO / "benchmarks" / "state_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STATE_MEMORY = _benchmark()
#: The benchmark's transformer block with every dimension divided by 128.
SMALL_BLOCK = STATE_MEMORY.scaled(STATE_MEMORY.BLOCK, 128)

#: name → shape: a model's variables of every kind (an embedding, matrices, a bias, a rank-3
#: kernel, a scalar).
MODEL = {
    "token_embedding": (6, 4),
    "hidden_kernel": (4, 5),
    "head_kernel": (5, 2),
    "hidden_bias": (5,),
    "conv_kernel": (2, 3, 4),
    "temperature": (),
}


def _spec_plan(name, shape, excluded=None):
    """The slots a built-in spec keeps on a variable, decided without TensorFlow."""
    spec = load_spec(REPO / "specs" / f"{name}.toml")
    rule, slots = specialize_spec(spec, {**fixed_values(spec, {}), **deciding_values(spec, {})})
    return plan_slots(rule, {slot.name: slot.shape for slot in slots}, shape, excluded).slots


@pytest.mark.parametrize(
    ("shape", "kept"), [((4, 3), {"r", "c"}), ((2, 3, 4), {"r", "c"}), ((5,), {"v"}), ((), {"v"})]
)
def test_adafactor_keeps_row_and_column_statistics_on_matrices_and_v_on_the_rest(shape, kept):
    assert _spec_plan("adafactor", shape) == kept


@pytest.mark.parametrize(
    ("shape", "excluded", "kept"),
    [
        ((4, 3), False, {"m"}),
        ((4, 3), True, {"m", "v"}),
        ((5,), False, {"m", "v"}),
        ((2, 3, 4), False, {"m", "v"}),
        ((4, 3), None, {"m", "v"}),  # excluded(var) not known: both branches' slots
    ],
)
def test_muon_keeps_v_only_on_its_adamw_branch(shape, excluded, kept):
    assert _spec_plan("muon", shape, excluded) == kept


def test_a_slot_its_branch_only_writes_or_only_feeds_itself_is_not_kept():
    lines = [
        "a = where(rank(var) >= 2, a, a + grad)",  # feeds only itself on a matrix
        "w = where(rank(var) >= 2, square(grad), w)",  # only written on a matrix
        "d = where(rank(var) >= 2, grad, a + w)",
        "var = var - d",
    ]
    rule = check_rule([parse_assignment(line) for line in lines], [], ["a", "w"])
    kinds = {"a": "var", "w": "var"}
    matrix, vector = plan_slots(rule, kinds, (3, 2)), plan_slots(rule, kinds, (3,))
    assert (matrix.slots, matrix.lines) == (frozenset(), frozenset({2, 3}))
    assert (vector.slots, vector.lines) == (frozenset({"a", "w"}), frozenset({0, 1, 2, 3}))
    assert plan_slots(rule, kinds, None).slots == {"a", "w"}  # shape unknown: every branch's slots


def test_a_slot_no_line_reads_whatever_the_facts_is_kept_as_written():
    lines = ["b = b + grad", "m = where(rank(var) >= 2, m, m + grad)", "var = var - where(rank(var) >= 2, grad, m)"]
    rule = check_rule([parse_assignment(line) for line in lines], [], ["b", "m"])
    kinds = {"b": "var", "m": "var"}
    assert plan_slots(rule, kinds, (3, 2)).slots == {"b"}
    assert plan_slots(rule, kinds, (3,)).slots == {"b", "m"}


def test_a_known_local_the_compiler_branches_on_is_kept():
    lines = ["on = where(rank(var) == 2, 1, 0)", "m = m + grad", "var = where(on, var - m, var - grad)"]
    rule = check_rule([parse_assignment(line) for line in lines], [], ["m"])
    matrix = plan_slots(rule, {"m": "var"}, (3, 2))
    assert matrix.slots == {"m"} and matrix.lines == {0, 1, 2}
    vector = plan_slots(rule, {"m": "var"}, (3,))
    assert vector.slots == set() and vector.lines == {0, 2}


def test_slot_dims_are_the_runtimes_slot_shapes():
    from optreg.runtime.variables import slot_shape

    for kind in ("var", "scalar", "rows", "columns"):
        for shape in [(), (5,), (4, 3), (2, 3, 4)]:
            assert slot_dims(kind, shape) == slot_shape(kind, tf.TensorShape(shape))


def _tf_variables():
    return [tf.Variable(np.ones(shape, np.float32), name=name) for name, shape in MODEL.items()]


def _slot_shapes(opt, variables):
    return {var.name.split(":")[0]: {n: s.shape.as_list() for n, s in opt.slots_for(var).items()} for var in variables}


def test_adafactor_builds_row_and_column_statistics_for_matrices_and_v_for_the_rest():
    variables = _tf_variables()
    opt = optreg.registry.create("adafactor")
    opt.build(variables)
    assert _slot_shapes(opt, variables) == {
        "token_embedding": {"r": [6, 1], "c": [1, 4]},
        "hidden_kernel": {"r": [4, 1], "c": [1, 5]},
        "head_kernel": {"r": [5, 1], "c": [1, 2]},
        "hidden_bias": {"v": [5]},
        "conv_kernel": {"r": [2, 3, 1], "c": [2, 1, 4]},
        "temperature": {"v": []},
    }
    with pytest.raises(KeyError):
        opt.get_slot(variables[1], "v")
    assert opt.get_slot_names() == ["r", "c", "v"]  # every slot some variable may keep


def test_muon_keeps_as_many_variables_as_keras_muon_on_the_same_ones():
    """Per variable: Keras's Muon has a velocity exactly where optreg's muon keeps v, in its own
    optimizers and in the Keras adapter, and the three hold the same number of variables."""
    variables = [keras.Variable(np.ones(shape, np.float32), name=name) for name, shape in MODEL.items()]
    theirs = keras.optimizers.Muon()
    theirs.build(variables)
    ours = optreg.registry.create("muon")
    ours.build(variables)
    adapter = optreg_keras.optimizer("muon")
    adapter.build(variables)
    for index, var in enumerate(variables):
        keeps_v = theirs.adam_velocities[index] is not None
        assert sorted(ours.slots_for(var)) == (["m", "v"] if keeps_v else ["m"]), var.path
        assert (adapter._slot_lists["v"][index] is not None) == keeps_v, var.path
    assert [theirs.adam_velocities[i] is None for i in range(len(MODEL))] == [False, True, True, False, False, False]
    keras_state = [v for v in theirs.variables if v.path.split("/")[-1] not in ("iteration", "learning_rate")]
    adapter_state = [v for v in adapter.variables if v.path.split("/")[-1] not in ("iteration", "learning_rate")]
    assert sum(len(ours.slots_for(var)) for var in variables) == len(keras_state) == len(adapter_state) == 10


@pytest.fixture(scope="module")
def small_block():
    return STATE_MEMORY.keras_variables(SMALL_BLOCK)


@pytest.mark.parametrize("name", sorted(STATE_MEMORY.MINIMUM))
def test_every_builtin_keeps_its_algorithms_least_state(name, small_block):
    ours = STATE_MEMORY.optreg_bytes(name, small_block)
    least = STATE_MEMORY.least_bytes(name, SMALL_BLOCK)
    assert least <= ours <= STATE_MEMORY.TOLERANCE * least or ours == least == 0


def test_the_benchmark_covers_every_builtin():
    assert set(STATE_MEMORY.MINIMUM) == set(optreg.registry.names())


@pytest.mark.parametrize("name", ["adafactor", "muon"])
def test_adafactor_and_muon_keep_no_more_than_keras(name, small_block):
    assert STATE_MEMORY.optreg_bytes(name, small_block) <= STATE_MEMORY.keras_bytes(name, small_block)


def test_adafactor_on_the_transformer_block_keeps_its_factored_statistics_only():
    """At full size, counted from the plan without allocating (checked against building above):
    0.28 MB where a full-size slot is 255 MB."""
    floats = 0
    spec = load_spec(REPO / "specs" / "adafactor.toml")
    kinds = {slot.name: slot.shape for slot in spec.slots}
    for shape in STATE_MEMORY.BLOCK.values():
        kept = _spec_plan("adafactor", shape)
        floats += sum(int(np.prod(slot_dims(kinds[name], shape))) for name in kept)
    assert floats * 4 == STATE_MEMORY.least_bytes("adafactor", STATE_MEMORY.BLOCK) == 281_920


def _dense_model():
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1, name="head")]
    )


@pytest.mark.parametrize("name", ["adafactor", "muon"])
def test_the_adapter_keeps_per_variable_slots_through_fit_save_and_reload(name, tmp_path):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 5)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = _dense_model()
    model.compile(optimizer=optreg_keras.optimizer(name, learning_rate=0.01), loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    kept = {slot: [s is not None for s in lists] for slot, lists in model.optimizer._slot_lists.items()}
    expected = {"adafactor": {"r": [True, False] * 2, "c": [True, False] * 2, "v": [False, True] * 2},
                "muon": {"m": [True] * 4, "v": [False, True] * 2}}[name]
    assert kept == expected
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert len(reloaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    reloaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_checkpoint_restores_each_variables_own_slots_into_a_new_optimizer(tmp_path):
    """Saved by one muon, restored into another before any step; the variables bound in the
    other order, so each slot must follow its variable, and none is missing or extra."""
    variables = _tf_variables()
    opt = optreg.registry.create("muon", learning_rate=0.01, jit_compile=False)
    for step in range(3):
        opt.apply_gradients([(tf.fill(v.shape, 0.1 * (step + 1)), v) for v in variables])
    path = tf.train.Checkpoint(optimizer=opt, variables=variables).save(str(tmp_path / "ckpt"))
    again = [tf.Variable(np.zeros(shape, np.float32), name=name) for name, shape in MODEL.items()]
    restored = optreg.registry.create("muon", learning_rate=0.01)
    restored.build(again[::-1])
    tf.train.Checkpoint(optimizer=restored, variables=again).restore(path).assert_consumed()
    for var, mine in zip(variables, again):
        assert sorted(restored.slots_for(mine)) == sorted(opt.slots_for(var))
        for slot, value in opt.slots_for(var).items():
            np.testing.assert_array_equal(restored.slots_for(mine)[slot].numpy(), value.numpy())


def _docs_example():
    """The factored example of docs/spec-language.md's "Slots per variable", as a whole spec."""
    text = (REPO / "docs" / "spec-language.md").read_text(encoding="utf-8")
    section = text.split("## Slots per variable", 1)[1]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    header = '[optimizer]\nname = "factored"\nsummary = "the docs example"\n\n'
    return load_spec_text(header + '[hyperparameters]\nlearning_rate = { default = 0.1 }\n\n' + toml)


def test_the_docs_example_keeps_what_the_docs_say():
    opt = SpecOptimizer(_docs_example(), jit_compile=False)
    kernel, bias = tf.Variable(tf.ones([8, 3])), tf.Variable(tf.ones([3]))
    opt.apply_gradients([(tf.fill([8, 3], 0.5), kernel), (tf.fill([3], 0.5), bias)])
    assert _slot_shapes(opt, [kernel, bias]) == {kernel.name.split(":")[0]: {"r": [8, 1], "c": [1, 3]},
                                                 bias.name.split(":")[0]: {"v": [3]}}
    np.testing.assert_allclose(bias.numpy(), 1 - 0.1 * 0.5 / np.sqrt(0.1 * 0.25), rtol=1e-6)


def test_a_checkpoint_with_a_slot_a_variable_no_longer_keeps_restores_the_rest(tmp_path, monkeypatch):
    """As one written when every variable kept every slot: ``assert_consumed`` names the extra
    ``v``, and ``expect_partial`` restores the rest."""
    kernel = tf.Variable(np.ones((4, 3), np.float32))
    opt = optreg.registry.create("adafactor", jit_compile=False)
    opt.apply_gradients([(tf.fill([4, 3], 0.5), kernel)])
    with monkeypatch.context() as patched:
        patched.setattr(type(opt), "variable_slot_specs", lambda self, var: self.slot_specs)
        old = optreg.registry.create("adafactor")
        old.build([kernel])
    for name, slot in opt.slots_for(kernel).items():
        old.get_slot(kernel, name).assign(slot)
    assert sorted(old.slots_for(kernel)) == ["c", "r", "v"]
    path = tf.train.Checkpoint(optimizer=old, variables=[kernel]).save(str(tmp_path / "ckpt"))
    restored = optreg.registry.create("adafactor")
    with pytest.raises(AssertionError, match="Unresolved object"):
        tf.train.Checkpoint(optimizer=restored, variables=[kernel]).restore(path).assert_consumed()
    restored = optreg.registry.create("adafactor")
    tf.train.Checkpoint(optimizer=restored, variables=[kernel]).restore(path).expect_partial()
    assert sorted(restored.slots_for(kernel)) == ["c", "r"]
    for name in ("r", "c"):
        np.testing.assert_array_equal(restored.get_slot(kernel, name).numpy(), opt.get_slot(kernel, name).numpy())


def test_the_state_table_in_the_docs_is_every_builtin_with_the_benchmarks_least():
    """docs/speed.md's table: a row per built-in, its least state in MB and in words as the
    benchmark computes them on the full block (the optreg and Keras columns are measured)."""
    text = (REPO / "docs" / "speed.md").read_text(encoding="utf-8")
    section = text.split("## Optimizer state", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    table = {cells[0].strip(): [cell.strip() for cell in cells] for cells in rows[1:]}
    assert set(table) == set(STATE_MEMORY.MINIMUM)
    for name, cells in table.items():
        assert cells[2] == STATE_MEMORY._megabytes(STATE_MEMORY.least_bytes(name, STATE_MEMORY.BLOCK)), name
        assert cells[6] == STATE_MEMORY.MINIMUM[name].what, name
        assert float(cells[3].rstrip("×")) <= STATE_MEMORY.TOLERANCE, name


def test_lookahead_around_adafactor_keeps_the_inner_per_variable_slots():
    variables = _tf_variables()[1:4]  # two matrices and a bias
    opt = optreg.registry.create("lookahead", inner="adafactor", jit_compile=False)
    opt.apply_gradients([(tf.fill(v.shape, 0.5), v) for v in variables])
    assert [sorted(opt.inner.slots_for(v)) for v in variables] == [["c", "r"], ["c", "r"], ["v"]]
    assert all(sorted(opt.slots_for(v)) == ["slow"] for v in variables)
    assert all(np.all(v.numpy() < 1) for v in variables)
