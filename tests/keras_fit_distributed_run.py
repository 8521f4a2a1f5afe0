"""Run in a fresh process (logical devices must be set before TensorFlow starts): fit a small
Keras model with each named spec optimizer through the Keras adapter, under MirroredStrategy
over 2 logical CPUs and on one device, and print the loss per epoch and the slots of each as one
JSON object keyed by name."""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

import optreg.keras  # noqa: E402

NAMES, SETTINGS = json.loads(sys.argv[1]), json.loads(sys.argv[2])
RNG = np.random.default_rng(5)
X = RNG.normal(size=(64, 5)).astype("float32")
Y = (X @ RNG.normal(size=(5, 1))).astype("float32")


def fit(name, strategy):
    """Loss per epoch and every slot's value after 3 epochs of ``model.fit`` (batch 16)."""
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        opt = optreg.keras.optimizer(name, **SETTINGS.get(name, {}))
        model.compile(optimizer=opt, loss="mse")
    losses = model.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    slots = {slot: [np.asarray(v).tolist() for v in variables] for slot, variables in opt._slot_lists.items()}
    return {"losses": losses, "slots": slots}


if __name__ == "__main__":
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.get_strategy()  # the default strategy: one device
    print(json.dumps({name: {"mirrored": fit(name, mirrored), "single": fit(name, single)} for name in NAMES}))
