"""One worker of a two-process MultiWorkerMirroredStrategy cluster on 127.0.0.1 (CPU).

Run by tests/test_multiworker.py, once per worker: ``multiworker_run.py TASK PORTS SETTINGS
FOLDER``, ``TF_CONFIG`` set from the ports before the strategy is created. Each worker feeds
its own half of the batch; the loss is a sum of squared errors, so the gradients all-reduced over the
workers add up to the full batch's, which a single-device run takes in one piece (see
:func:`single_device_start`, shared with the test).

For every optimizer named in SETTINGS (name → keyword arguments), in one ``tf.function`` step
under ``strategy.run``: train :data:`CHECKPOINT_STEP` steps, write a ``tf.train.Checkpoint`` of
the optimizer and the variables (the chief into FOLDER/name, the other worker into a temporary
directory it removes, as TensorFlow's multi-worker rule asks), train on to :data:`STEPS`. Then
the Keras adapter trains a Keras model built under ``strategy.scope()`` in a custom loop. The
worker prints one JSON object: its task, every optimizer's variables, slots and iterations, and
the Keras model's weights.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from contextlib import ExitStack

import keras
import numpy as np
import tensorflow as tf

import optreg
import optreg.keras

#: Steps each optimizer trains; the checkpoint is written after CHECKPOINT_STEP of them.
STEPS, CHECKPOINT_STEP = 10, 5
#: The full batch's shape; each worker takes an equal share of its rows (:func:`local_rows`).
BATCH, FEATURES, OUTPUTS = 16, 4, 2
#: The Keras adapter's optimizer and settings in the custom loop.
KERAS_OPTIMIZER, KERAS_SETTINGS = "adam", {"learning_rate": 0.05}


def free_ports(count):
    """Ports free on 127.0.0.1 now: each bound to port 0, all held until every one is chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def single_device_start():
    """The full batch and the start of the variables, the same in every process."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(BATCH, FEATURES)).astype("float32")
    y = rng.normal(size=(BATCH, OUTPUTS)).astype("float32")
    start = [rng.normal(size=(FEATURES, OUTPUTS)).astype("float32"), rng.normal(size=(OUTPUTS,)).astype("float32")]
    return x, y, start


def loss(variables, x, y):
    """A summed squared error, so the workers' gradients add up to the full batch's."""
    weights, bias = variables
    return tf.reduce_sum(tf.square(x @ weights + bias - y))


def local_rows(array, task, workers):
    """One worker's rows of the full batch."""
    rows = len(array) // workers
    return tf.constant(array[task * rows:(task + 1) * rows])


def checkpoint_folder(strategy, folder, name):
    """Where this worker writes a checkpoint, and whether to remove it after: folder/name on the
    chief, a temporary directory elsewhere (every worker must write, since writing may take part
    in collectives)."""
    task = strategy.cluster_resolver.task_id
    if task == 0:
        return os.path.join(folder, name), False
    return tempfile.mkdtemp(prefix=f"worker{task}-{name}-"), True


def train_optimizer(strategy, name, settings, x, y, folder):
    """One optimizer's distributed run: variables, each variable's slots (by name) and
    iterations after STEPS steps."""
    _, _, start = single_device_start()
    with strategy.scope():
        variables = [keras.Variable(v) for v in start]
        opt = optreg.registry.create(name, **settings)

    def replica_step():
        with tf.GradientTape() as tape:
            value = loss(variables, x, y)
        opt.apply_gradients(zip(tape.gradient(value, variables), variables))

    step = tf.function(lambda: strategy.run(replica_step))
    held = [optreg.runtime.variables.tf_variable(v) for v in variables]
    for number in range(STEPS):
        if number == CHECKPOINT_STEP:
            target, temporary = checkpoint_folder(strategy, folder, name)
            tf.train.Checkpoint(optimizer=opt, variables=held).write(os.path.join(target, "ckpt"))
            if temporary:
                shutil.rmtree(target, ignore_errors=True)
        step()
    # every variable's own slots: an optimizer may keep different slots per variable (adafactor, muon)
    slots = [{slot: value.numpy().tolist() for slot, value in opt.slots_for(var).items()} for var in held]
    return {"variables": [v.numpy().tolist() for v in held], "slots": slots, "iterations": int(opt.iterations.numpy())}


def keras_model(start):
    """A one-layer Keras model holding the start weights."""
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(OUTPUTS)])
    model.set_weights(start)
    return model


def train_keras_adapter(strategy, x, y):
    """The Keras adapter in a custom loop under the strategy: the model's weights after STEPS."""
    _, _, start = single_device_start()
    with strategy.scope():
        model = keras_model(start)
        opt = optreg.keras.optimizer(KERAS_OPTIMIZER, **KERAS_SETTINGS)

    def replica_step():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(tf.square(model(x, training=True) - y))
        opt.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    step = tf.function(lambda: strategy.run(replica_step))
    for _ in range(STEPS):
        step()
    return [np.asarray(w).tolist() for w in model.get_weights()]


def cluster_config(task, ports):
    """The TF_CONFIG of one worker of a cluster on 127.0.0.1."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": task}})


def main(task, ports, settings, folder):
    """Join the cluster, run every optimizer and the Keras adapter, print the JSON result."""
    os.environ["TF_CONFIG"] = cluster_config(task, ports)  # read when the strategy is created
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)
    full_x, full_y, _ = single_device_start()
    x, y = local_rows(full_x, task, len(ports)), local_rows(full_y, task, len(ports))
    results = {name: train_optimizer(strategy, name, options, x, y, folder) for name, options in settings.items()}
    print(json.dumps({"task": task, "optimizers": results, "keras": train_keras_adapter(strategy, x, y)}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4])
