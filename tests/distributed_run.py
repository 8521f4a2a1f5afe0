"""Run in a fresh process (logical devices must be set before TensorFlow starts): train each
named optimizer under MirroredStrategy over 2 logical CPUs and on one device, print every
result as one JSON object keyed by name (one process for all of them: starting TensorFlow is
the expensive part). The mode is ``compiled`` (a ``tf.function`` step, on Keras 3 variables, as
``model.trainable_variables`` holds) or ``eager`` (on ``tf.Variable``s). An optional fourth
argument ``no-reference`` leaves out the single-device runs (the same in every process, so a
caller running both modes computes them in one of the two)."""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import optreg  # noqa: E402

NAMES, OPTIONS, COMPILED = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] == "compiled"
RNG = np.random.default_rng(3)
X = RNG.normal(size=(16, 4)).astype("float32")
Y = RNG.normal(size=(16, 2)).astype("float32")
START = [RNG.normal(size=(4, 2)).astype("float32"), RNG.normal(size=(2,)).astype("float32")]


def loss(variables, x, y):
    """A summed squared error, so the replicas' gradients add up to the full batch's."""
    weights, bias = variables
    return tf.reduce_sum(tf.square(x @ weights + bias - y))


#: One strategy for every optimizer in this process (each gets its own variables and step).
STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
#: The dataset's one batch of 16, split over the replicas once: every step of every optimizer
#: takes these very values (a distributed iterator costs about 0.4 s to create, against a few
#: milliseconds for a step, and iterating the dataset anew each step gave the same values).
BATCHES = list(STRATEGY.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)))
#: Whether the single-device reference is computed here (the test needs it from one process).
REFERENCE = len(sys.argv) < 5 or sys.argv[4] != "no-reference"


def distributed(name, steps):
    strategy = STRATEGY
    with strategy.scope():
        variables = [keras.Variable(v) if COMPILED else tf.Variable(v) for v in START]
        opt = optreg.registry.create(name, learning_rate=0.05, **OPTIONS)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            value = loss(variables, x, y)
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))

    def step(x, y):
        strategy.run(replica_step, args=(x, y))

    step = tf.function(step) if COMPILED else step
    for _ in range(steps):
        for x, y in BATCHES:
            step(x, y)
    if OPTIONS.get("skip_nonfinite"):  # one poisoned step, which every replica must skip
        before = [v.numpy().tolist() for v in variables]
        poisoned = tf.data.Dataset.from_tensor_slices((X * np.float32("nan"), Y)).batch(16)
        for x, y in strategy.experimental_distribute_dataset(poisoned):
            step(x, y)
        assert [v.numpy().tolist() for v in variables] == before and int(opt.skipped_steps.numpy()) == 1
    copies = [[c.numpy().tolist() for c in optreg.runtime.variables.tf_variable(v).values] for v in variables]
    slots = [[c.numpy().tolist() for c in s.values] for v in variables for s in opt.slots_for(v).values()]
    return copies, slots, int(opt.iterations.numpy())


def single(name, steps):
    """The same steps on one device, op by op, as the strategy's replicas update their copies
    (a distributed step is never XLA-compiled)."""
    variables = [tf.Variable(v) for v in START]
    opt = optreg.registry.create(name, learning_rate=0.05, jit_compile=False, **OPTIONS)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss(variables, X, Y)
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))
    return [v.numpy().tolist() for v in variables], int(opt.iterations.numpy())


def both(name):
    """Both runs of one optimizer (the single-device one unless told ``no-reference``), as a
    JSON-ready dict."""
    copies, slots, iterations = distributed(name, 10)
    result = {"copies": copies, "slots": slots, "iterations": iterations}
    if REFERENCE:
        result["single"], result["single_iterations"] = single(name, 10)
    return result


if __name__ == "__main__":
    print(json.dumps({name: both(name) for name in NAMES}))
