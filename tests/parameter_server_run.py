"""Run in a fresh process by tests/test_multiworker.py: an in-process ParameterServerStrategy
cluster on 127.0.0.1 (one worker and one parameter server, ``tf.distribute.Server`` instances,
as TensorFlow's guide builds one), and what optreg's own sgd does under it, created under the
strategy's scope or outside it, then applied in :data:`STEPS` steps a ``ClusterCoordinator``
schedules. Prints one JSON object: for each case, the error raised (its class and message), or
the variable after the steps (from 1.0, each step moving it by 0.1) when none was; and what
Keras's ``model.fit`` does under the strategy with Keras's SGD and with optreg's adapter.

The process ends with ``os._exit``: the servers have no shutdown, and the test kills the
process if it outlives its timeout.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf
from multiworker_run import free_ports

import optreg
import optreg.keras

#: Steps scheduled when nothing refuses them, each moving the variable by the learning rate.
STEPS, LEARNING_RATE = 5, 0.1
#: Inter-op threads per worker server: the guide's rule (at least workers + 1) for small machines,
#: without which a worker's server can wait forever for a thread.
WORKER_THREADS = 2


def in_process_strategy():
    """A ParameterServerStrategy over one worker and one parameter server in this process."""
    worker, ps = free_ports(2)
    cluster = tf.train.ClusterSpec({"worker": [f"127.0.0.1:{worker}"], "ps": [f"127.0.0.1:{ps}"]})
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=WORKER_THREADS)
    tf.distribute.Server(cluster, job_name="worker", task_index=0, protocol="grpc", config=config, start=True)
    tf.distribute.Server(cluster, job_name="ps", task_index=0, protocol="grpc", start=True)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")
    return tf.distribute.experimental.ParameterServerStrategy(resolver)


def outcome(action):
    """What ``action()`` does: ``{"result": ...}``, or the error it raises as ``{"type", "message"}``."""
    try:
        return {"result": action()}
    except Exception as error:  # the test tells optreg's refusal from anything else
        return {"type": type(error).__name__, "message": str(error)}


def scheduled_steps(strategy, create_under_scope):
    """Create sgd (under the strategy's scope or outside it), apply it in STEPS steps a
    ClusterCoordinator schedules, and return the variable after."""
    coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
    if create_under_scope:
        with strategy.scope():
            opt = optreg.registry.create("sgd", learning_rate=LEARNING_RATE)
    else:
        opt = optreg.registry.create("sgd", learning_rate=LEARNING_RATE)
    with strategy.scope():
        var = tf.Variable(1.0)

    @tf.function
    def step():
        strategy.run(lambda: opt.apply_gradients([(tf.constant(1.0), var)]))

    for _ in range(STEPS):
        coordinator.schedule(step)
    coordinator.join()
    return float(var.numpy())


def ones_dataset():
    """Eight examples of ones, in batches of four."""
    return tf.data.Dataset.from_tensor_slices((np.ones((8, 2), "float32"), np.ones((8, 1), "float32"))).batch(4)


def keras_fit(strategy, optimizer, per_worker=False):
    """Fit a Keras model compiled under the strategy for one epoch of a ``tf.data`` dataset, or
    of the per-worker dataset a ClusterCoordinator makes of it."""
    with strategy.scope():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=optimizer(), loss="mse")
    if per_worker:
        coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        data = coordinator.create_per_worker_dataset(ones_dataset)
        model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    else:
        model.fit(ones_dataset(), epochs=1, verbose=0)


def main():
    """Every case, printed as JSON; then end at once (the servers never shut down)."""
    strategy = in_process_strategy()
    cases = {
        "created": outcome(lambda: scheduled_steps(strategy, create_under_scope=True)),
        "applied": outcome(lambda: scheduled_steps(strategy, create_under_scope=False)),
        "keras_fit": outcome(lambda: keras_fit(strategy, lambda: keras.optimizers.SGD(LEARNING_RATE))),
        "adapter_fit": outcome(
            lambda: keras_fit(strategy, lambda: optreg.keras.optimizer("sgd", learning_rate=LEARNING_RATE))
        ),
        "keras_fit_per_worker": outcome(
            lambda: keras_fit(strategy, lambda: keras.optimizers.SGD(LEARNING_RATE), per_worker=True)
        ),
    }
    print(json.dumps(cases), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
