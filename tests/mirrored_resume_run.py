"""Run in a fresh process by tests/test_multiworker.py (logical devices must be set before
TensorFlow starts): resume, under MirroredStrategy over 2 logical CPUs, every checkpoint the
two-worker cluster wrote, ``multiworker_run.py``'s settings and batch, and train the rest of its
steps in a ``tf.function`` step under ``strategy.run``. Prints one JSON object keyed by name:
the variables, each variable's own slots and the iterations after (the first replica's; the
copies must agree).
"""

from __future__ import annotations

import json
import os
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

from multiworker_run import BATCH, CHECKPOINT_STEP, STEPS, loss, single_device_start  # noqa: E402

import optreg  # noqa: E402


def resume(strategy, name, settings, path, batches):
    """Restore one optimizer and its variables under the strategy, train to STEPS on the
    distributed ``batches``, report."""
    _, _, start = single_device_start()
    with strategy.scope():
        variables = [tf.Variable(tf.zeros_like(v)) for v in start]  # the checkpoint fills them
        opt = optreg.registry.create(name, **settings)
    tf.train.Checkpoint(optimizer=opt, variables=variables).read(path).assert_existing_objects_matched()

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            value = loss(variables, x, y)
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))

    step = tf.function(lambda x, y: strategy.run(replica_step, args=(x, y)))
    for _ in range(STEPS - CHECKPOINT_STEP):
        for features, targets in batches:
            step(features, targets)
    for var in variables:
        first, *others = (copy.numpy().tolist() for copy in var.values)
        assert all(other == first for other in others), f"{name}: the replicas' copies differ"
    # every variable's own slots: an optimizer may keep different slots per variable (adafactor, muon)
    slots = [{slot: value.values[0].numpy().tolist() for slot, value in opt.slots_for(v).items()} for v in variables]
    return {
        "variables": [v.values[0].numpy().tolist() for v in variables],
        "slots": slots,
        "iterations": int(opt.iterations.numpy()),
    }


def main(settings, folder):
    """Resume every named optimizer from folder/name/ckpt; print the results as JSON."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # the one batch, split over the replicas once for every step of every optimizer (a
    # distributed iterator costs far more than a step, and each gave these same values)
    x, y, _ = single_device_start()
    batches = list(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)))
    results = {
        name: resume(strategy, name, options, os.path.join(folder, name, "ckpt"), batches)
        for name, options in settings.items()
    }
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2])
