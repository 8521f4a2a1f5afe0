"""Run in a fresh process (logical devices must be set before TensorFlow starts): train an
embedding table, whose gradients are ``tf.IndexedSlices``, under MirroredStrategy over 2 logical
CPUs and on one device, for each ``name:sparse_updates`` given, in both modes (a ``tf.function``
step and an eager one); print the results as one JSON object keyed by ``name:mode:step``, each
with how many variable programs were built on touched rows under the strategy. A name
``keras-NAME`` is the Keras adapter's NAME, on a Keras variable (one device: its compiled path;
under the strategy: Keras's per-replica one)."""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

import optreg  # noqa: E402
import optreg.keras  # noqa: E402
from optreg.runtime.compile import CompiledRule  # noqa: E402

#: How many variable programs were built on touched rows (a rule with reductions, as Adafactor's).
TOUCHED = []
_on_touched_rows = CompiledRule.update_touched_rows
CompiledRule.update_touched_rows = lambda *a, **k: TOUCHED.append(1) or _on_touched_rows(*a, **k)

CASES = json.loads(sys.argv[1])
RNG = np.random.default_rng(5)
START = RNG.normal(size=(12, 3)).astype("float32")
# two batches: rows 2 and 7 are touched by both replicas' halves of the first, rows 1, 4, 6 and
# 8 only by the second (so lazy and dense updates part), rows 9 to 11 never
IDS = np.array([2, 7, 2, 0, 7, 5, 2, 3, 1, 4, 6, 8, 1, 4, 6, 8], dtype="int32")
TARGET = RNG.normal(size=(16, 3)).astype("float32")
STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
STEPS = 4


def loss(table, ids, target):
    """A summed squared error of the looked-up rows: its gradient is sparse."""
    return tf.reduce_sum(tf.square(tf.gather(table, ids) - target))


def made(name, sparse_updates):
    """The table and the optimizer: optreg's own on a ``tf.Variable``, or the Keras adapter's on a
    Keras variable."""
    if name.startswith("keras-"):
        opt = optreg.keras.optimizer(name[len("keras-"):], learning_rate=0.1, sparse_updates=sparse_updates)
        table = keras.Variable(START)
        # built before the first traced step: under a strategy a Keras optimizer (Keras's own
        # Adagrad too) cannot create its variables inside a replica's traced step
        opt.build([table])
        return table, opt
    return tf.Variable(START), optreg.registry.create(name, learning_rate=0.1, sparse_updates=sparse_updates)


def applied(opt, grad, table):
    """One step of ``opt`` on ``table``."""
    if isinstance(opt, keras.optimizers.Optimizer):
        opt.apply([grad], [table])
    else:
        opt.apply_gradients([(grad, table)])


def slots_of(opt, table):
    """Slot name → slot variable of ``table``."""
    if isinstance(opt, keras.optimizers.Optimizer):
        return {n: slots[0] for n, slots in opt._slot_lists.items() if slots[0] is not None}
    return opt.slots_for(table)


def copies_of(variable):
    """Every replica's copy of a distributed (tf or Keras) variable."""
    variable = variable.value if isinstance(variable, keras.Variable) else variable
    return [c.numpy().tolist() for c in variable.values]


def distributed(name, sparse_updates, compiled):
    with STRATEGY.scope():
        table, opt = made(name, sparse_updates)

    def replica_step(ids, target):
        with tf.GradientTape() as tape:
            value = loss(table, ids, target)
        grad = tape.gradient(value, table)
        assert isinstance(grad, tf.IndexedSlices)
        applied(opt, grad, table)

    def step(ids, target):
        STRATEGY.run(replica_step, args=(ids, target))

    step = tf.function(step) if compiled else step
    batches = STRATEGY.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((IDS, TARGET)).batch(8))
    for _ in range(STEPS):
        for ids, target in batches:
            step(ids, target)
    return copies_of(table), {n: copies_of(s) for n, s in slots_of(opt, table).items()}


def single(name, sparse_updates):
    table, opt = made(name, sparse_updates)
    for _ in range(STEPS):
        for batch in (slice(0, 8), slice(8, 16)):
            with tf.GradientTape() as tape:
                value = loss(table, IDS[batch], TARGET[batch])
            applied(opt, tape.gradient(value, table), table)
    return table.numpy().tolist(), {n: s.numpy().tolist() for n, s in slots_of(opt, table).items()}


if __name__ == "__main__":
    results = {}
    for case in CASES:
        name, sparse_updates = case.split(":")
        reference, reference_slots = single(name, sparse_updates)
        for compiled in (True, False):
            TOUCHED.clear()
            copies, slots = distributed(name, sparse_updates, compiled)
            results[f"{case}:{'compiled' if compiled else 'eager'}"] = {
                "copies": copies, "slots": slots, "single": reference, "single_slots": reference_slots,
                "start": START.tolist(), "touched_rows": len(TOUCHED),
            }
    print(json.dumps(results))
