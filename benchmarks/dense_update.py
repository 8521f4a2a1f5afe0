"""The update alone on a dense model's variables: optreg's Keras adapter, Keras's optimizer, and
the algorithm's minimum, in one process.

The variables are those of ``benchmarks/keras_fit.py``'s MLP (1.86M parameters) or conv net
(1.2M), the gradients random and fixed. Three sides apply one step's update, each called from a
plain ``tf.function``, as ``model.fit`` calls an optimizer on a CPU:

* ``optreg``: ``optreg.keras.optimizer(name).apply_gradients`` (the adapter runs optreg's own
  XLA-compiled step);
* ``keras``: ``keras.optimizers.X.apply_gradients``;
* ``minimum``: the algorithm's arithmetic and nothing else (no step count, no bias-correction
  powers kept, no options), written by hand as one XLA computation over the same variables and
  slots: each tensor the algorithm must read is read once and each it must write is written
  once, so no implementation of the same update can move less memory.

Sides alternate within each round; each figure is the median over ``--rounds`` rounds of
``--calls`` calls. Together with ``benchmarks/keras_fit.py``'s "1.1x leaves" figure (the time a
step at 1.1× Keras's speed leaves for its update) this says whether 1.1× is within any
optimizer's reach. Run from the repository root::

    python benchmarks/dense_update.py [--models mlp conv] [--pairs sgd momentum adam] [--rounds 15]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
import tensorflow as tf
from keras_fit import PAIRS, conv, mlp

LEARNING_RATE = 1e-3  # keras_fit.py's pairs: sgd, momentum and adam all use 1e-3


def _sgd(variables: list[tf.Variable]) -> Callable[[list[tf.Tensor]], None]:
    def update(grads: list[tf.Tensor]) -> None:
        for var, g in zip(variables, grads):
            var.assign_sub(LEARNING_RATE * g)

    return update


def _momentum(variables: list[tf.Variable]) -> Callable[[list[tf.Tensor]], None]:
    velocities = [tf.Variable(tf.zeros_like(v)) for v in variables]

    def update(grads: list[tf.Tensor]) -> None:
        for var, m, g in zip(variables, velocities, grads):
            new = 0.9 * m - LEARNING_RATE * g
            m.assign(new)
            var.assign_add(new)

    return update


def _adam(variables: list[tf.Variable]) -> Callable[[list[tf.Tensor]], None]:
    firsts = [tf.Variable(tf.zeros_like(v)) for v in variables]
    seconds = [tf.Variable(tf.zeros_like(v)) for v in variables]
    step_size = LEARNING_RATE * (1 - 0.999) ** 0.5 / (1 - 0.9)  # its value at step 1, kept constant

    def update(grads: list[tf.Tensor]) -> None:
        for var, m, v, g in zip(variables, firsts, seconds, grads):
            new_m = m + (g - m) * 0.1
            new_v = v + (g * g - v) * 0.001
            m.assign(new_m)
            v.assign(new_v)
            var.assign_sub(step_size * new_m / (tf.sqrt(new_v) + 1e-7))

    return update


#: pair name → the algorithm's minimum update over given variables.
MINIMUM = {"sgd": _sgd, "momentum": _momentum, "adam": _adam}
MODELS = {"mlp": mlp, "conv": conv}


def sides(model_name: str, pair: str) -> dict[str, Callable[[], None]]:
    """Each side's update as a no-argument call, warmed up (traced, compiled, slots built)."""
    shapes = [tuple(v.shape) for v in MODELS[model_name]().trainable_variables]
    rng = np.random.default_rng(0)
    starts = [rng.normal(size=s).astype("float32") for s in shapes]
    grads = [tf.constant(rng.normal(size=s).astype("float32") * 1e-3) for s in shapes]
    calls: dict[str, Callable[[], None]] = {}
    for side, optimizer in zip(("optreg", "keras"), (PAIRS[pair][0](), PAIRS[pair][1]())):
        variables = [tf.Variable(s) for s in starts]
        optimizer.build(variables)
        calls[side] = tf.function(lambda o=optimizer, vs=variables: o.apply_gradients(zip(grads, vs)))
    minimum = tf.function(MINIMUM[pair]([tf.Variable(s) for s in starts]), jit_compile=True)
    calls["minimum"] = lambda: minimum(grads)
    for call in calls.values():
        for _ in range(5):
            call()
    return calls


def measure(model_name: str, pair: str, rounds: int, calls: int) -> dict[str, float]:
    """Each side's median milliseconds per update."""
    updates = sides(model_name, pair)
    names = list(updates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            for _ in range(calls):
                updates[name]()
            times[name].append((time.perf_counter() - started) / calls)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--pairs", nargs="+", default=list(MINIMUM), choices=list(MINIMUM))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="updates per timed run of a side")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(
        f"# {platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; medians of {args.rounds} rounds of "
        f"{args.calls} updates, sides' order rotating; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for model_name in args.models:
        for pair in args.pairs:
            ms = measure(model_name, pair, args.rounds, args.calls)
            print(
                f"{model_name:5s} {pair:9s} update ms: optreg {ms['optreg']:6.3f}  keras {ms['keras']:6.3f}  "
                f"minimum {ms['minimum']:6.3f}   optreg/minimum {ms['optreg'] / ms['minimum']:5.2f}x  "
                f"keras/minimum {ms['keras'] / ms['minimum']:5.2f}x  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
