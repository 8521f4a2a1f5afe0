"""Sparse gradients: exact-sparse rules decided from the rule, their row updates identical to
the dense update, lazy updates against a NumPy LazyAdam, the options around them, and
MirroredStrategy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.lang.parse import parse_assignment
from optreg.lang.sparsity import sparse_support
from optreg.spec.conditions import deciding_values, fixed_values, specialize_spec
from tests.helpers import REPO

ROWS, COLS = 40, 3
#: Row 3 three times and row 17 twice: duplicates the update must sum first.
INDICES = [3, 17, 3, 0, 17, 3, 25]


def catalogue_support(name, **given):
    """The sparse support of a registered spec created with ``given`` (no TensorFlow)."""
    spec = optreg.registry.get(name).spec
    rule, slots = specialize_spec(spec, {**fixed_values(spec, given), **deciding_values(spec, given)})
    return sparse_support(rule.assignments, {slot.name: slot.shape for slot in slots})


# --- the decision, from the rule ------------------------------------------------------------------


def test_the_exact_sparse_built_ins_are_those_a_zero_gradient_leaves_alone():
    exact = {entry.name for entry in optreg.registry if entry.spec and catalogue_support(entry.name).exact}
    assert exact == {"sgd", "gradient_descent", "adagrad", "signsgd"}
    assert not catalogue_support("sgd", momentum=0.9).exact  # the velocity decays
    assert catalogue_support("adam").blocker == "slot 'm' changes"
    assert catalogue_support("ftrl").blocker == "slot 'linear' changes"  # the shrinkage term and var's closed form
    assert catalogue_support("lion").blocker == "var changes"  # sign(beta * m) moves a zero-gradient row
    assert not catalogue_support("lars").row_local and "norm" in catalogue_support("lars").blocker
    assert not catalogue_support("nadam").row_local and "'scalar'" in catalogue_support("nadam").blocker


@pytest.mark.parametrize(
    ("lines", "exact"),
    [
        (["var = var - lr * grad / (sqrt(acc) + eps)", "acc = acc + square(grad)"], True),
        (["d = lr * grad", "var = var - d * step"], True),  # step times a zero step is zero
        (["var = var - lr * (grad + wd * var)"], False),  # coupled weight decay moves every row
        (["var = var - lr * grad - lr * weight_decay * var"], False),
        (["acc = acc * 0.5 + square(grad)", "var = var - grad"], False),
        (["var = var * (1 - lr * 0)"], True),
        (["var = var - lr * sign(grad + step)"], False),
    ],
)
def test_the_zero_gradient_fold(lines, exact):
    support = sparse_support([parse_assignment(line) for line in lines], {"acc": "var"})
    assert support.row_local and support.exact == exact


def test_reductions_and_non_elementwise_slots_are_not_row_local():
    for line, blocker in [("var = var - lr * grad / norm(grad)", "norm"), ("var = var - row_mean(grad)", "row_mean"),
                          ("var = var - lr * grad * rows(var)", "rows"), ("var = var - matmul(grad, var)", "matmul")]:
        support = sparse_support([parse_assignment(line)], {})
        assert not support.row_local and blocker in support.blocker
    assert not sparse_support([parse_assignment("var = var - grad")], {"r": "rows"}).row_local


# --- exact: the rows' update is the dense update ---------------------------------------------------


def sparse_gradient(seed, indices=INDICES):
    values = np.random.default_rng(seed).normal(size=(len(indices), COLS)).astype("float32")
    return tf.IndexedSlices(tf.constant(values), tf.constant(indices, tf.int32), tf.constant([ROWS, COLS]))


def trained(name, sparse_updates, steps=3, function=False, **options):
    """A table after ``steps`` sparse steps, with its slots; the path's gradient kind asserted."""
    table = tf.Variable(np.random.default_rng(1).normal(size=(ROWS, COLS)).astype("float32"))
    opt = optreg.registry.create(name, sparse_updates=sparse_updates, **options)
    def apply(g):
        return opt.apply_gradients([(g, table)])

    apply = tf.function(apply) if function else apply
    for step in range(steps):
        apply(sparse_gradient(step))
    return table.numpy(), {n: s.numpy() for n, s in opt.slots_for(table).items()}, opt


EXACT = ["sgd", "gradient_descent", "adagrad", "signsgd"]


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("name", EXACT)
def test_an_exact_sparse_update_is_bit_identical_to_the_dense_one(name, jit_compile):
    """Bit-identical as the same ops run on the rows; under XLA, whose vectorised code rounds a
    [rows, 3] and a [40, 3] tensor's divisions and roots apart (its dense update is not the
    plain one's bit for bit either), within an ulp."""
    start = np.random.default_rng(1).normal(size=(ROWS, COLS)).astype("float32")
    rows, rows_slots, opt = trained(name, "exact", jit_compile=jit_compile, learning_rate=0.1)
    dense, dense_slots, _ = trained(name, "dense", jit_compile=jit_compile, learning_rate=0.1)
    assert opt.takes_sparse_gradients and opt.sparse_support.exact
    same = np.testing.assert_array_equal if not jit_compile else lambda a, b: np.testing.assert_array_max_ulp(a, b, 1)
    same(rows, dense)
    for slot in dense_slots:
        same(rows_slots[slot], dense_slots[slot])
    untouched = sorted(set(range(ROWS)) - set(INDICES))
    np.testing.assert_array_equal(rows[untouched], start[untouched])
    assert not np.array_equal(rows[INDICES], start[INDICES])


def test_an_exact_step_inside_tf_function_scatters_rows_and_never_densifies():
    table = tf.Variable(tf.zeros([ROWS, COLS]))
    opt = optreg.registry.create("adagrad", jit_compile=False)
    step = tf.function(lambda g: opt.apply_gradients([(g, table)]))
    graph = step.get_concrete_function(sparse_gradient(0)).graph
    kinds = {op.type for op in graph.get_operations()}
    assert "ResourceScatterUpdate" in kinds and "Unique" in kinds
    # a dense conversion would sum the rows into all ROWS segments at once
    segment_sums = [op for op in graph.get_operations() if op.type == "UnsortedSegmentSum"]
    assert all(tf.get_static_value(op.inputs[2]) != ROWS for op in segment_sums)
    dense = optreg.registry.create("adagrad", jit_compile=False, sparse_updates="dense")
    graph = tf.function(lambda g: dense.apply_gradients([(g, table)])).get_concrete_function(sparse_gradient(0)).graph
    assert "ResourceScatterUpdate" not in {op.type for op in graph.get_operations()}
    np.testing.assert_array_equal(
        trained("adagrad", "exact", function=True)[0], trained("adagrad", "dense", function=True)[0]
    )


@pytest.mark.parametrize(
    "options",
    [
        {"clipnorm": 0.5},
        {"global_clipnorm": 0.5},
        {"clipvalue": 0.2},
        {"loss_scale_factor": 4.0},
        {"weight_decay": 0.1},  # decoupled: the whole table decays, as Keras does for sparse gradients
        {"skip_nonfinite": True},
        {"use_ema": True},
    ],
    ids=lambda options: next(iter(options)),
)
def test_the_options_around_a_sparse_step_agree_with_the_dense_step(options):
    rows, rows_slots, opt = trained("adagrad", "exact", learning_rate=0.1, **options)
    dense, dense_slots, _ = trained("adagrad", "dense", learning_rate=0.1, **options)
    assert opt.takes_sparse_gradients
    np.testing.assert_allclose(rows, dense, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows_slots["accumulator"], dense_slots["accumulator"], rtol=1e-6, atol=1e-7)


def test_clipping_measures_the_summed_rows():
    """clipnorm limits the norm of the dense gradient (duplicates summed), not of the raw rows."""
    table = tf.Variable(tf.zeros([4, 1]))
    opt = optreg.registry.create("sgd", learning_rate=1.0, clipnorm=1.0)
    opt.apply_gradients(
        [(tf.IndexedSlices(tf.constant([[3.0], [-3.0]]), tf.constant([1, 1]), tf.constant([4, 1])), table)]
    )
    np.testing.assert_array_equal(table.numpy()[:, 0], [0.0, 0.0, 0.0, 0.0])  # the rows cancel: nothing to clip


def test_skip_nonfinite_looks_at_the_rows():
    table = tf.Variable(tf.ones([4, 2]))
    opt = optreg.registry.create("sgd", skip_nonfinite=True)
    opt.apply_gradients(
        [(tf.IndexedSlices(tf.constant([[np.nan, 1.0]]), tf.constant([2]), tf.constant([4, 2])), table)]
    )
    assert int(opt.skipped_steps) == 1
    np.testing.assert_array_equal(table.numpy(), np.ones([4, 2]))


def test_gradient_accumulation_densifies():
    opt = optreg.registry.create("sgd", gradient_accumulation_steps=2)
    assert not opt.takes_sparse_gradients
    rows, _, _ = trained("sgd", "exact", steps=4, gradient_accumulation_steps=2)
    np.testing.assert_array_equal(rows, trained("sgd", "dense", steps=4, gradient_accumulation_steps=2)[0])


def test_a_keras_embedding_in_a_custom_loop():
    import keras

    def run(sparse_updates):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(ROWS, COLS),
                                  keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
        # not XLA-compiled, so bit-identical (see the test above)
        opt = optreg.registry.create("adagrad", learning_rate=0.1, sparse_updates=sparse_updates, jit_compile=False)

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            assert isinstance(grads[0], tf.IndexedSlices)
            opt.apply_gradients(zip(grads, model.trainable_variables))

        x = np.random.default_rng(2).integers(0, ROWS // 2, size=(8, 4)).astype("int32")
        for _ in range(3):
            step(x, np.ones((8, 1), "float32"))
        return [v.numpy() for v in model.trainable_variables]

    for ours, dense in zip(run("exact"), run("dense")):
        np.testing.assert_array_equal(ours, dense)


# --- lazy: only the touched rows and their slots ---------------------------------------------------


def lazy_reference(name, start, grads, learning_rate, momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """LazyAdam (TensorFlow Addons) and lazy momentum SGD in NumPy, float64: the duplicate rows
    summed, then only the touched rows of the variable and its slots change; Adam's bias
    corrections use the global step."""
    var = start.astype(np.float64)
    first, second = np.zeros_like(var), np.zeros_like(var)
    for step, grad in enumerate(grads, start=1):
        rows = np.unique(grad.indices.numpy())
        summed = np.zeros_like(var)
        np.add.at(summed, grad.indices.numpy(), grad.values.numpy().astype(np.float64))
        g = summed[rows]
        if name == "adam":
            first[rows] = beta_1 * first[rows] + (1 - beta_1) * g
            second[rows] = beta_2 * second[rows] + (1 - beta_2) * g * g
            rate = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
            var[rows] -= rate * first[rows] / (np.sqrt(second[rows]) + epsilon)
        else:  # Keras's SGD momentum: velocity = momentum * velocity - lr * grad; var += velocity
            first[rows] = momentum * first[rows] - learning_rate * g
            var[rows] += first[rows]
    return var


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize(("name", "options"), [("adam", {}), ("sgd", {"momentum": 0.9})], ids=["adam", "momentum"])
def test_lazy_updates_follow_the_numpy_lazy_reference(name, options, jit_compile):
    start = np.random.default_rng(1).normal(size=(ROWS, COLS)).astype("float32")
    grads = [sparse_gradient(step, indices) for step, indices in enumerate([INDICES, [1, 3, 1], [3, 30]])]
    table = tf.Variable(start)
    opt = optreg.registry.create(name, learning_rate=0.1, sparse_updates="lazy", jit_compile=jit_compile, **options)
    for grad in grads:
        opt.apply_gradients([(grad, table)])
    expected = lazy_reference(name, start, grads, 0.1)
    np.testing.assert_allclose(table.numpy(), expected, rtol=2e-6, atol=2e-6)
    never = sorted(set(range(ROWS)) - {1, 3, 30, *INDICES})
    np.testing.assert_array_equal(table.numpy()[never], start[never])
    # the lazy algorithm is not the dense one: row 0, touched once, keeps moving under the dense update
    dense = tf.Variable(start)
    dense_opt = optreg.registry.create(name, learning_rate=0.1, sparse_updates="dense", **options)
    for grad in grads:
        dense_opt.apply_gradients([(grad, dense)])
    assert not np.allclose(dense.numpy()[0], table.numpy()[0])


def test_lazy_is_refused_for_a_rule_with_a_reduction_with_one_clear_error():
    with pytest.raises(optreg.OptionError, match=r"the rule of 'lars' calls norm \(a reduction over the whole"):
        optreg.registry.create("lars", sparse_updates="lazy")
    with pytest.raises(optreg.OptionError, match="the rule of 'nadam' keeps slot 'u_product' of shape 'scalar'"):
        optreg.registry.create("nadam", sparse_updates="lazy")
    with pytest.raises(optreg.OptionError, match="'lookahead' has no update rule"):
        optreg.registry.create("lookahead", sparse_updates="lazy")
    with pytest.raises(optreg.OptionError, match="sparse_updates must be one of 'exact', 'lazy', 'dense'"):
        optreg.registry.create("sgd", sparse_updates="rows")


def test_the_option_is_kept_in_the_config_and_densifies_by_default_where_not_exact():
    opt = optreg.registry.create("adam", sparse_updates="lazy")
    assert optreg.Optimizer.from_config(opt.get_config()).sparse_updates == "lazy"
    assert "sparse_updates" not in optreg.registry.create("adam").get_config()["options"]
    assert not optreg.registry.create("adam").takes_sparse_gradients
    assert not optreg.registry.create("lookahead", inner="sgd").takes_sparse_gradients


def test_optreg_show_says_whether_an_optimizer_is_exact_sparse():
    from optreg.catalog.show import entry_record, show_text

    assert "sparse gradients: exact" in show_text(optreg.registry.get("adagrad"))
    assert "sparse gradients: lazy only (slot 'm' changes" in show_text(optreg.registry.get("adam"))
    assert "sparse gradients: dense (the rule calls norm" in show_text(optreg.registry.get("lars"))
    assert entry_record(optreg.registry.get("sgd"), detailed=True)["sparse_gradients"].startswith("exact")


# --- MirroredStrategy -----------------------------------------------------------------------------


def test_sparse_updates_under_mirrored_strategy_match_a_single_device():
    """One fresh process (2 logical CPUs must be set before TensorFlow starts): exact, lazy and
    touched-rows (Adafactor) sparse steps under the strategy, compiled and eager, equal one
    device's; for optreg's own optimizers and for the Keras adapter's (Keras's per-replica path
    against its XLA one)."""
    cases = ["sgd:exact", "adagrad:exact", "adam:lazy", "adam:dense", "adafactor:exact", "keras-adagrad:exact",
             "keras-adam:lazy", "keras-adafactor:exact"]
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "sparse_distributed_run.py"), json.dumps(cases)],
        capture_output=True, text=True, check=True,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for key, result in results.items():
        first, second = (np.array(c) for c in result["copies"])
        np.testing.assert_array_equal(first, second, err_msg=key)
        np.testing.assert_allclose(first, np.array(result["single"]), rtol=1e-6, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(first[9:], np.array(result["start"])[9:], err_msg=key)  # never touched
        assert (result["touched_rows"] > 0) == ("adafactor" in key), key
        for name, copies in result["slots"].items():
            np.testing.assert_allclose(copies[0], result["single_slots"][name], rtol=1e-6, atol=1e-6, err_msg=key)
    lazy, dense = results["adam:lazy:compiled"]["single"], results["adam:dense:compiled"]["single"]
    assert not np.allclose(lazy, dense)


def test_the_compiled_step_is_traced_once_whatever_the_number_of_distinct_rows():
    """The summed gradient keeps the input's length, so XLA compiles one program, not one per count."""
    table = tf.Variable(tf.zeros([ROWS, COLS]))
    opt = optreg.registry.create("adagrad", jit_compile=True)
    for indices in ([1, 2, 3, 4], [5, 5, 5, 6], [7, 7, 7, 7]):
        opt.apply_gradients([(sparse_gradient(0, indices), table)])
    (compiled,) = opt._runtime.compiled.values()
    assert compiled.experimental_get_tracing_count() == 1
    assert np.count_nonzero(table.numpy().any(axis=1)) == 7


def test_a_sparse_step_inside_a_whole_step_xla_function():
    """Forward, backward and update in one tf.function(jit_compile=True): XLA bounds tf.unique's
    rows, and the summed gradient still has the input's length."""
    tables = {}
    for mode in ("exact", "dense"):
        table = tf.Variable(np.random.default_rng(1).normal(size=(ROWS, COLS)).astype("float32"))
        opt = optreg.registry.create("adagrad", learning_rate=0.1, sparse_updates=mode)
        step = tf.function(lambda g, opt=opt, table=table: opt.apply_gradients([(g, table)]), jit_compile=True)
        for seed in range(3):
            step(sparse_gradient(seed))
        tables[mode] = table.numpy()
    np.testing.assert_array_max_ulp(tables["exact"], tables["dense"], 1)


#: Index patterns for the rows summed inside XLA: the battery's, a batch drawn from a large table,
#: a few rows many times, one row only, rows a multiple of 2^16 apart (which agree in their low
#: bits), and int64 indices beyond 2^32 that agree in their low 32 bits.
INDEX_PATTERNS = {
    "battery": np.array(INDICES),
    "large table": np.random.default_rng(3).integers(0, 500_000, 4096),
    "few rows": np.random.default_rng(4).integers(0, 5, 600),
    "one row": np.full(50, 9),
    "strided": np.arange(300) % 40 * 65536,
    "beyond 2^32": (np.arange(200) % 7) * (1 << 32) + 5,
}


@pytest.mark.parametrize("rounds", [8, 1, 0], ids=["hashing", "hashing then sorting", "sorting"])
@pytest.mark.parametrize("pattern", list(INDEX_PATTERNS))
def test_rows_summed_inside_xla_are_those_tf_unique_sums(pattern, rounds, monkeypatch):
    """Under XLA the rows are summed without XLA's slow Unique, by hashing, the entries still open
    after HASH_ROUNDS rounds by sorting: each row's sum at its first entry, added in the entries'
    order onto zero as the dense conversion adds them (so bit for bit the eager sums, -0 included),
    the other entries zero rows at the first row's index, as update_rows expects."""
    from optreg.runtime import xla_rows
    from optreg.runtime.sparse import summed_rows
    from optreg.runtime.xla import in_xla_context

    monkeypatch.setattr(xla_rows, "HASH_ROUNDS", rounds)
    indices = INDEX_PATTERNS[pattern]
    values = np.random.default_rng(2).normal(size=(len(indices), 4)).astype("float32")
    values[::3] = -0.0  # a row of negative zeros sums to +0, as in the dense conversion
    dtype = tf.int64 if indices.max() >= 1 << 31 else tf.int32
    shape = tf.constant([int(indices.max()) + 1, 4], tf.int64)
    grad = tf.IndexedSlices(tf.constant(values), tf.constant(indices, dtype), shape)

    def summed_inside(values, indices):
        return summed_rows(tf.IndexedSlices(values, indices, shape)), in_xla_context()

    compiled, was_in_xla = tf.function(summed_inside, jit_compile=True)(grad.values, grad.indices)
    eager = summed_rows(grad)
    assert bool(was_in_xla) and not tf.function(in_xla_context)()
    first_of = {}
    for k, i in enumerate(indices):
        first_of.setdefault(i, k)
    firsts = np.array([first_of[i] == k for k, i in enumerate(indices)])
    np.testing.assert_array_equal(compiled.indices.numpy(), np.where(firsts, indices, indices[0]))
    eager_sums = dict(zip(eager.indices.numpy()[: len(first_of)], eager.values.numpy()))
    expected = np.array([eager_sums[i] if firsts[k] else np.zeros(4, "float32") for k, i in enumerate(indices)])
    np.testing.assert_array_equal(compiled.values.numpy().view(np.int32), expected.view(np.int32))  # sign bits too


def test_rows_summed_inside_xla_with_a_length_known_only_when_run():
    """An XLA trace whose gradient's length is not static sorts (the hash table is sized by it)."""
    from optreg.runtime.sparse import summed_rows

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, 2]), tf.TensorSpec([None], tf.int32)])
    def summed_inside(values, indices):
        summed = summed_rows(tf.IndexedSlices(values, indices, tf.constant([10, 2])))
        return summed.values, summed.indices

    values, indices = summed_inside(tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), tf.constant([4, 1, 4]))
    np.testing.assert_array_equal(values.numpy(), [[6.0, 8.0], [3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(indices.numpy(), [4, 1, 4])
