"""``model.fit`` with optreg's Keras adapter against Keras's own optimizers, in one process.

Three models, each trained with ``model.fit`` on a repeating ``tf.data`` pipeline of random
batches made once (so input costs the same on every side):

* ``mlp``: Dense 784-1024-1024-10, batch 128, softmax cross-entropy (1.86M parameters);
* ``conv``: Conv 3×3×32, Conv 3×3×64, max pooling, Dense 128, Dense 10 on 28×28×1, batch 64;
* ``embedding``: Embedding(500k × 64), mean over 4 ids, Dense(1), batch 1024, squared error (the
  embedding's gradient is a ``tf.IndexedSlices`` touching about 4k rows).

For each model and each pair (``optreg.keras.optimizer(name, ...)`` / ``keras.optimizers.X(...)``,
same hyperparameters), and two more sides that bound what any optimizer could gain:

* ``no update``: an optimizer whose step reads one element of each gradient and changes nothing
  (the gradients are still computed: TensorFlow prunes a gradient nobody reads), so the step is
  forward, backward and the framework's overhead: the fastest any optimizer could train;
* the pair's Keras side, which the ratios are taken against.

Each line also gives what each side's update adds to a step (its median time per step less the
no-update side's) and what a step at 1.1× Keras's speed would leave for the update: where that is
below the update's own minimum (``benchmarks/dense_update.py``), no optimizer can reach 1.1×.

After a warm-up fit (tracing, building the slots), each round fits ``--steps`` steps on every side,
the sides' order rotating from round to round. A round's time per step is taken inside the fit,
by a callback stamping the end of every batch: the time from the end of batch ``--skip`` to the end
of the last, over the batches between, so the fit's own start and end (making the data iterator,
the callbacks, the epoch's end: a fixed cost per ``fit`` call, not per step, which once capped
every fast side at the same figure) are not counted. TensorFlow runs each batch's function call
to its end before the callback, so a stamp falls after the batch's work. The figures are medians
over ``--rounds`` rounds, and each ratio is the median of the round-by-round ratios (Keras's time
over the side's), so the machine's load falls on every side alike. Run from the repository root::

    python benchmarks/keras_fit.py [--models mlp conv embedding] [--pairs adam sgd ...] [--rounds 7]

**Memory** (``--memory-rows 500000 5000000``, for ``--memory-pairs``): what the first steps of
``model.fit`` on the embedding model hold beyond the model and the optimizer's state, in a fresh
process per (pair, side, rows): the model and the optimizer are built (every slot allocated),
then the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs``) over a ``model.fit`` of 3 steps, tracing and compiling included
(TensorFlow's ``get_memory_info`` does not work on CPU, and TensorFlow keeps what a step freed for
the next, so the first steps' peak is what a step holds at once).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
import tensorflow as tf
from peak_memory import peak_growth_mb

import optreg.keras

#: pair name → (optreg adapter, Keras optimizer), each made fresh.
PAIRS: dict[str, tuple[Callable[[], keras.optimizers.Optimizer], Callable[[], keras.optimizers.Optimizer]]] = {
    "adam": (lambda: optreg.keras.optimizer("adam", learning_rate=1e-3), lambda: keras.optimizers.Adam(1e-3)),
    "adamw": (lambda: optreg.keras.optimizer("adamw", learning_rate=1e-3), lambda: keras.optimizers.AdamW(1e-3)),
    # LazyAdam's algorithm, not Adam's (see docs/keras-and-distribution.md): for the memory figures
    "adam_lazy": (
        lambda: optreg.keras.optimizer("adam", learning_rate=1e-3, sparse_updates="lazy"),
        lambda: keras.optimizers.Adam(1e-3),
    ),
    "sgd": (lambda: optreg.keras.optimizer("sgd", learning_rate=1e-3), lambda: keras.optimizers.SGD(1e-3)),
    "momentum": (
        lambda: optreg.keras.optimizer("sgd", learning_rate=1e-3, momentum=0.9),
        lambda: keras.optimizers.SGD(1e-3, momentum=0.9),
    ),
    "rmsprop": (lambda: optreg.keras.optimizer("rmsprop", learning_rate=1e-3), lambda: keras.optimizers.RMSprop(1e-3)),
    "adagrad": (lambda: optreg.keras.optimizer("adagrad", learning_rate=1e-3), lambda: keras.optimizers.Adagrad(1e-3)),
    "adamax": (lambda: optreg.keras.optimizer("adamax", learning_rate=1e-3), lambda: keras.optimizers.Adamax(1e-3)),
    "nadam": (lambda: optreg.keras.optimizer("nadam", learning_rate=1e-3), lambda: keras.optimizers.Nadam(1e-3)),
    "lion": (lambda: optreg.keras.optimizer("lion", learning_rate=1e-4), lambda: keras.optimizers.Lion(1e-4)),
    "adadelta": (lambda: optreg.keras.optimizer("adadelta", learning_rate=1.0), lambda: keras.optimizers.Adadelta(1.0)),
    "lamb": (lambda: optreg.keras.optimizer("lamb", learning_rate=1e-3), lambda: keras.optimizers.Lamb(1e-3)),
    "ftrl": (lambda: optreg.keras.optimizer("ftrl", learning_rate=1e-3), lambda: keras.optimizers.Ftrl(1e-3)),
    "adafactor": (
        lambda: optreg.keras.optimizer("adafactor", learning_rate=1e-3),
        lambda: keras.optimizers.Adafactor(1e-3),
    ),
    "amsgrad": (
        lambda: optreg.keras.optimizer("amsgrad", learning_rate=1e-3),
        lambda: keras.optimizers.Adam(1e-3, amsgrad=True),
    ),
    "gradient_descent": (
        lambda: optreg.keras.optimizer("gradient_descent", learning_rate=1e-3),
        lambda: keras.optimizers.SGD(1e-3),
    ),
    "nesterov": (
        lambda: optreg.keras.optimizer("nesterov", learning_rate=1e-3, momentum=0.9),
        lambda: keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True),
    ),
    "muon": (lambda: optreg.keras.optimizer("muon", learning_rate=1e-3), lambda: keras.optimizers.Muon(1e-3)),
    "schedule_free_adamw": (
        lambda: optreg.keras.optimizer("schedule_free_adamw", learning_rate=1e-3),
        lambda: keras.optimizers.ScheduleFreeAdamW(1e-3),
    ),
}


class NoUpdate(keras.optimizers.Optimizer):
    """Reads one element of every gradient into one number and changes no weight: a step with
    this optimizer is the fastest any optimizer's could be."""

    def __init__(self) -> None:
        super().__init__(learning_rate=0.0, name="no_update")

    def build(self, variables: list) -> None:
        super().build(variables)
        self._sink = self.add_variable(shape=(), initializer="zeros", name="sink")

    def update_step(self, gradient, variable, learning_rate) -> None:
        values = gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient
        self._sink.assign_add(tf.reshape(values, [-1])[0])


def mlp() -> keras.Model:
    layers = [keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(1024, activation="relu")]
    return keras.Sequential([keras.Input((784,)), *layers, keras.layers.Dense(10)])


def conv() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def embedding() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(500_000, 64),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )


#: model name → (make the model, batch size, example inputs, targets, loss).
def problem(name: str) -> tuple[Callable[[], keras.Model], int, np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(0)
    classes = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "mlp":
        return mlp, 128, rng.normal(size=(1024, 784)).astype("float32"), rng.integers(0, 10, 1024), classes
    if name == "conv":
        return conv, 64, rng.normal(size=(512, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 512), classes
    ids = rng.integers(0, 500_000, size=(8192, 4)).astype("int32")
    return embedding, 1024, ids, rng.normal(size=(8192, 1)).astype("float32"), "mse"


class BatchClock(keras.callbacks.Callback):
    """Stamps the end of every training batch of a fit (``time.perf_counter``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.stamps.append(time.perf_counter())

    def seconds_per_step(self, skip: int) -> float:
        """Seconds per step from the end of batch ``skip`` to the end of the last."""
        if len(self.stamps) < skip + 2:
            raise ValueError(f"{len(self.stamps)} batches timed; --steps must be at least --skip + 2")
        return (self.stamps[-1] - self.stamps[skip]) / (len(self.stamps) - 1 - skip)


def fitter(model_name: str, optimizer: keras.optimizers.Optimizer, skip: int) -> Callable[[int], float]:
    """``fit(steps)`` for a fresh model compiled with ``optimizer``, warmed up (traced, built),
    returning the fit's seconds per step after its first ``skip`` + 1 batches."""
    make, batch, x, y, loss = problem(model_name)
    model = make()
    model.compile(optimizer=optimizer, loss=loss)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).repeat().prefetch(4)

    def fit(steps: int) -> float:
        clock = BatchClock()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
        return clock.seconds_per_step(min(skip, steps - 2))

    fit(3)
    return fit


def measure(model_name: str, pair: str, steps: int, rounds: int, skip: int = 2) -> dict[str, float]:
    """One pair on one model: each side's median steps per second, and the median ratios of
    Keras's time per step over optreg's and over the no-update step's."""
    ours, theirs = PAIRS[pair]
    sides = {"keras": fitter(model_name, theirs(), skip), "optreg": fitter(model_name, ours(), skip)}
    sides["no update"] = fitter(model_name, NoUpdate(), skip)
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(sides[name](steps))
    result = {f"{name} steps/s": 1 / statistics.median(times[name]) for name in names}
    for name in ("optreg", "no update"):
        result[f"{name} / keras"] = statistics.median(k / t for k, t in zip(times["keras"], times[name]))
    # what each side's update adds to a step, and what 1.1x Keras would leave for it (negative:
    # not even a step that updates nothing reaches 1.1x)
    rest = statistics.median(times["no update"])
    for name in ("optreg", "keras"):
        result[f"{name} update ms"] = (statistics.median(times[name]) - rest) * 1e3
    result["1.1x leaves ms"] = (statistics.median(times["keras"]) / 1.1 - rest) * 1e3
    return result



def fit_memory(pair: str, side: str, rows: int) -> float:
    """Megabytes the first 3 steps of ``model.fit`` hold beyond the built model and optimizer
    (run in a fresh process)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,), dtype="int32"), keras.layers.Embedding(rows, 64),
         keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)]
    )
    optimizer = PAIRS[pair][0 if side == "optreg" else 1]()
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, rows, size=(3 * 1024, 4)).astype("int32"), rng.normal(size=(3 * 1024, 1)).astype("float32")
    return peak_growth_mb(lambda: model.fit(x, y, batch_size=1024, epochs=1, shuffle=False, verbose=0))


def memory_in_fresh_process(pair: str, side: str, rows: int) -> float:
    """:func:`fit_memory` in a new interpreter, so no other model's memory is counted."""
    command = [sys.executable, __file__, "--memory-child", json.dumps([pair, side, rows])]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["mlp", "conv", "embedding"])
    parser.add_argument("--pairs", nargs="+", default=[p for p in PAIRS if p != "adam_lazy"], choices=[*PAIRS, "all"],
                        help="pair names, or 'all' (every pair but adam_lazy: every built-in with a Keras counterpart)")
    parser.add_argument("--steps", type=int, default=30, help="steps per timed fit")
    parser.add_argument("--skip", type=int, default=2,
                        help="timing starts at the end of batch SKIP (counted from 0): SKIP + 1 batches go untimed")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[])
    parser.add_argument("--memory-pairs", nargs="*", default=["sgd", "adagrad", "adam"], choices=list(PAIRS))
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.memory_child:
        print(fit_memory(*json.loads(args.memory_child)))
        return
    print(
        f"# {platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; medians of {args.rounds} rounds of "
        f"{args.steps}-step fits timed after their batch {args.skip}, sides' order rotating; load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if "all" in args.pairs and args.pairs != ["all"]:
        parser.error("--pairs: give 'all' alone or pair names, not both")
    pairs = [p for p in PAIRS if p != "adam_lazy"] if args.pairs == ["all"] else args.pairs
    for model_name in args.models:
        for pair in pairs:
            result = measure(model_name, pair, args.steps, args.rounds, args.skip)
            print(
                f"{model_name:9s} {pair:9s} steps/s: optreg {result['optreg steps/s']:7.1f}  keras "
                f"{result['keras steps/s']:7.1f}  optreg/keras {result['optreg / keras']:5.2f}x   "
                f"(no update: {result['no update steps/s']:7.1f} steps/s, {result['no update / keras']:5.2f}x)  "
                f"update: optreg {result['optreg update ms']:6.2f} ms  keras {result['keras update ms']:6.2f} ms  "
                f"1.1x leaves {result['1.1x leaves ms']:6.2f} ms  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    for rows in args.memory_rows:
        for pair in args.memory_pairs:
            mb = {side: memory_in_fresh_process(pair, side, rows) for side in ("optreg", "keras")}
            print(f"memory {rows:>8d} rows {pair:9s} model.fit's first 3 steps hold: optreg {mb['optreg']:7.1f} MB  "
                  f"keras {mb['keras']:7.1f} MB", flush=True)


if __name__ == "__main__":
    main()
