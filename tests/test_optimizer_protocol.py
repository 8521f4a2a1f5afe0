"""The optimizer protocol, for every built-in: both calling forms, tf.function, reaching the
minimum, the first step, None gradients, a new learning rate without retracing, checkpoints.
(Split from tests/test_optimizers.py so that pytest-xdist, which gives each worker whole files,
can run the battery on both workers.)"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optreg
from tests.helpers import random_problem
from tests.optimizer_table import CASES
from tests.test_optimizers import BUILTIN, CASE_BY_NAME

# --- the protocol, for every registered optimizer -------------------------------------------
#
# Where a check is about the protocol and not the compile mode (the calling forms, the first
# step, checkpoints), it runs op by op (``OP_BY_OP``): an XLA compilation per optimizer costs
# more than the check, the XLA step's agreement with the op-by-op one is checked for every
# optimizer by test_optimizers.py's test_the_xla_step_and_the_op_by_op_step_agree, and compiled
# steps' checkpoints by test_checkpoint.py's resume test. The checks of tf.function and of None
# gradients keep the default (XLA) step.

#: The option that runs a step op by op.
OP_BY_OP = {"jit_compile": False}


@pytest.mark.parametrize("name", BUILTIN)
def test_both_calling_forms_agree(name, rng):
    start, grads = random_problem(rng, (3, 4), 5)
    pairs_var, lists_var = tf.Variable(start), tf.Variable(start)
    pairs_opt, lists_opt = optreg.registry.create(name, **OP_BY_OP), optreg.registry.create(name, **OP_BY_OP)
    for g in grads:
        pairs_opt.apply_gradients(zip([tf.constant(g)], [pairs_var]))
        lists_opt.apply_gradients([tf.constant(g)], [lists_var])
    np.testing.assert_array_equal(pairs_var.numpy(), lists_var.numpy())
    assert int(pairs_opt.iterations) == int(lists_opt.iterations) == 5


@pytest.mark.parametrize("name", BUILTIN)
def test_tf_function_gives_the_eager_values(name, rng):
    start, grads = random_problem(rng, (5,), 10)
    eager_var, graph_var = tf.Variable(start), tf.Variable(start)
    eager_opt, graph_opt = optreg.registry.create(name), optreg.registry.create(name)
    graph_step = tf.function(lambda g: graph_opt.apply_gradients([(g, graph_var)]))
    for g in grads:
        eager_opt.apply_gradients([(tf.constant(g), eager_var)])
        graph_step(tf.constant(g))
    np.testing.assert_array_equal(eager_var.numpy(), graph_var.numpy())


def _descend(name: str, problem, learning_rate, steps: int, **settings) -> float:
    """The problem's loss after ``steps`` steps from its start, the loop compiled as one graph
    (``learning_rate`` a number or a schedule, ``settings`` other hyperparameters). The steps
    run op by op inside that graph: an XLA compilation of each optimizer's step would double the
    test's cost, and the XLA step's agreement with this one is checked for every optimizer by
    ``test_the_xla_step_and_the_op_by_op_step_agree``."""
    var = tf.Variable(problem.start, dtype=tf.float32)
    opt = optreg.registry.create(name, learning_rate=learning_rate, jit_compile=False, **settings)

    def body(i):
        opt.minimize(lambda: problem.loss(var), [var])
        return (i + 1,)

    loop = tf.function(lambda: tf.while_loop(lambda i: i < steps, body, (tf.constant(0),)), autograph=False)
    loop()
    return float(problem.loss(var))


@pytest.mark.parametrize("problem_name", ["quadratic", "rosenbrock"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_reaches_the_minimum_from_the_standard_start(case, problem_name):
    """Every optimizer solves the ill-conditioned quadratic and Rosenbrock's valley with the
    learning rate and step count its row records."""
    problem = optreg.registry.problems.get(problem_name)
    learning_rate, steps = getattr(case, problem_name)
    loss = _descend(case.name, problem, learning_rate, steps, **case.descent_settings)
    assert problem.solved_by(loss), f"{case.name}: loss {loss:.3g} after {steps} steps at lr {learning_rate}"


@pytest.mark.parametrize("name", BUILTIN)
def test_the_first_step_moves_unless_declared_measuring(name):
    """An optimizer's first ``measuring_steps`` updates leave the variable where it is (ADOPT's
    records the squared gradient), and the next one moves it; the bench relies on this."""
    var = tf.Variable([1.0, -2.0])
    opt = optreg.registry.create(name, learning_rate=0.1, **OP_BY_OP)
    for _ in range(opt.measuring_steps):
        opt.apply_gradients([(tf.constant([0.5, -0.25]), var)])
        np.testing.assert_array_equal(var.numpy(), [1.0, -2.0])
    opt.apply_gradients([(tf.constant([0.5, -0.25]), var)])
    assert np.all(var.numpy() != [1.0, -2.0])


@pytest.mark.parametrize("name", BUILTIN)
def test_none_gradients_are_skipped(name):
    used, unused = tf.Variable([1.0, 2.0]), tf.Variable([3.0, 4.0])
    opt = optreg.registry.create(name, learning_rate=0.1)
    for _ in range(opt.measuring_steps + 1):
        opt.apply_gradients([(tf.constant([1.0, 1.0]), used), (None, unused)])
    np.testing.assert_array_equal(unused.numpy(), [3.0, 4.0])
    assert not np.array_equal(used.numpy(), [1.0, 2.0])
    with pytest.raises(KeyError):
        opt.slots_for(unused)


@pytest.mark.parametrize("name", BUILTIN)
def test_new_learning_rate_takes_effect_without_retracing(name):
    """The new rate gives exactly what an optimizer built with it gives, and (where the step is a
    power law of the rate) the step scales as the row says. float64, so that steps far below
    float32's resolution at 1.0 (Adadelta's first, about 1.4e-6 at lr 0.001) are measured."""
    var = tf.Variable([1.0], dtype=tf.float64)
    opt = optreg.registry.create(name, learning_rate=0.1)
    traces = []

    @tf.function
    def step():
        traces.append(1)
        opt.apply_gradients([(tf.constant([1.0], tf.float64), var)])

    step()  # the first call creates the slots, which makes tf.function trace it twice
    traced = len(traces)
    moved = []
    for learning_rate in (0.1, 0.001):
        var.assign([1.0])
        opt.reset()  # after the assignment: slots that start as a copy of the variable copy 1.0
        opt.learning_rate = learning_rate
        for _ in range(opt.measuring_steps + 1):
            step()
        moved.append(1.0 - float(var[0]))
    assert len(traces) == traced
    assert moved[0] != 0.0
    fresh, fresh_var = optreg.registry.create(name, learning_rate=0.001), tf.Variable([1.0], dtype=tf.float64)
    for _ in range(fresh.measuring_steps + 1):
        fresh.apply_gradients([(tf.constant([1.0], tf.float64), fresh_var)])
    assert moved[1] == pytest.approx(1.0 - float(fresh_var[0]), rel=1e-12, abs=1e-15)
    power = CASE_BY_NAME[name].learning_rate_power
    if power is not None:
        assert moved[1] == pytest.approx(moved[0] * 0.01**power, rel=1e-3)


@pytest.mark.parametrize("name", BUILTIN)
def test_checkpoint_restores_slots_and_iterations_into_a_new_instance(name, tmp_path, rng):
    start, grads = random_problem(rng, (4,), 10)
    var = tf.Variable(start)
    opt = optreg.registry.create(name, learning_rate=0.05, **OP_BY_OP)
    for g in grads[:5]:
        opt.apply_gradients([(tf.constant(g), var)])
    path = tf.train.Checkpoint(optimizer=opt, var=var).save(str(tmp_path / "ckpt"))
    for g in grads[5:]:
        opt.apply_gradients([(tf.constant(g), var)])

    restored_var = tf.Variable(np.zeros_like(start))
    restored = optreg.registry.create(name, learning_rate=0.05, **OP_BY_OP)
    restored.build([restored_var])
    tf.train.Checkpoint(optimizer=restored, var=restored_var).restore(path).assert_consumed()
    assert int(restored.iterations) == 5
    for g in grads[5:]:
        restored.apply_gradients([(tf.constant(g), restored_var)])
    np.testing.assert_array_equal(restored_var.numpy(), var.numpy())
    assert sorted(restored.slots_for(restored_var)) == sorted(opt.slots_for(var))
    for slot_name, slot in opt.slots_for(var).items():
        np.testing.assert_array_equal(restored.slots_for(restored_var)[slot_name].numpy(), slot.numpy())


@pytest.mark.parametrize("jit_compile", [False, True], ids=["op-by-op", "compiled"])
def test_a_host_counted_step_reads_the_hosts_count_and_leaves_iterations_as_counting_would(jit_compile):
    """Inside ``counting_from(calls)`` a traced step reads the host's count: steps at 0, 1, 2
    are the plain steps bit for bit and ``iterations`` reads 1, 2, 3; a count the optimizer's own
    counter does not hold (a probe of which one is read) gives that call's step exactly, not the
    step its own counter would give; and one
    optimizer stepped from two traces gets each trace's count (the compiled step takes it as an
    argument, never a tensor of an earlier trace)."""
    grad = tf.constant([0.5, -2.0])

    def optimizer_and_variable():
        return optreg.registry.create("adam", learning_rate=0.1, jit_compile=jit_compile), tf.Variable([1.0, 2.0])

    def counted_step(opt, var):
        return tf.function(lambda calls: _counted_step(opt, grad, var, calls), autograph=False)

    def plain_moves(opt, var, count):
        moves = []
        for _ in range(count):
            before = var.numpy()
            opt.apply_gradients([(grad, var)])
            moves.append(var.numpy() - before)
        return moves

    opt, var = optimizer_and_variable()
    step, moves, counts = counted_step(opt, var), [], []
    for calls in (0, 1, 2):
        before = var.numpy()
        step(tf.constant(calls, tf.int32))
        moves.append(var.numpy() - before)
        counts.append(int(opt.iterations.numpy()))
    assert counts == [1, 2, 3]
    reference, reference_var = optimizer_and_variable()
    np.testing.assert_array_equal(moves, plain_moves(reference, reference_var, 3))
    # another trace of the same optimizer, at a count its counter (3) does not hold: call 7's step
    before = var.numpy()
    counted_step(opt, var)(tf.constant(6, tf.int64))
    assert int(opt.iterations.numpy()) == 7
    # a plain optimizer with the same three steps' slots, its counter set to 6, makes the same move
    reference.iterations.assign(6)
    (reference_move,) = plain_moves(reference, reference_var, 1)
    np.testing.assert_array_equal(var.numpy() - before, reference_move)
    # and not the move its own counter would have given: a plain fourth step
    own_count, own_var = optimizer_and_variable()
    assert not np.array_equal(reference_move, plain_moves(own_count, own_var, 4)[-1])


def _counted_step(opt, grad, var, calls):
    with opt.counting_from(calls):
        opt.apply_gradients([(grad, var)])
    return calls
