"""Per-step time of optreg's optimizers against Keras's, in one process.

For each optimizer (adam, sgd with momentum, rmsprop, adagrad) and each size (1M and 20M float32
parameters spread over 50 variables), this times one ``apply_gradients`` step in three modes:

* eager: ``apply_gradients`` called from Python;
* tf.function: the step inside ``tf.function``;
* XLA: the step inside ``tf.function(jit_compile=True)``.

Each figure is the median over ``--steps`` timed steps after warm-up; Keras's XLA time is the
yardstick every ratio is taken against. Run it from the repository root::

    python benchmarks/update_step.py [--sizes 1000000 20000000] [--steps 20]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
import tensorflow as tf

import optreg

VARIABLES = 50
CASES = {
    "adam": (lambda: keras.optimizers.Adam(1e-3), lambda: optreg.registry.create("adam", learning_rate=1e-3)),
    "sgd+momentum": (
        lambda: keras.optimizers.SGD(1e-3, momentum=0.9),
        lambda: optreg.registry.create("sgd", learning_rate=1e-3, momentum=0.9),
    ),
    "rmsprop": (lambda: keras.optimizers.RMSprop(1e-3), lambda: optreg.registry.create("rmsprop", learning_rate=1e-3)),
    "adagrad": (lambda: keras.optimizers.Adagrad(1e-3), lambda: optreg.registry.create("adagrad", learning_rate=1e-3)),
}
MODES = ("eager", "tf.function", "XLA")


def make_problem(size: int):
    """50 variables holding ``size`` parameters in all, and a gradient for each."""
    rng = np.random.default_rng(0)
    shapes = [(size // VARIABLES,)] * VARIABLES
    variables = [tf.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
    grads = [tf.constant(rng.normal(size=s).astype(np.float32)) for s in shapes]
    return variables, grads


def stepper(optimizer, variables, grads, mode):
    """A no-argument callable taking one step in the given mode."""

    def step():
        optimizer.apply_gradients(zip(grads, variables))

    if mode == "eager":
        return step
    return tf.function(step, jit_compile=(mode == "XLA"))


def median_step_seconds(step, variables, steps: int) -> float:
    """Median wall time of one step, each synchronised by reading a variable back."""
    for _ in range(3):
        step()
    _ = variables[-1].numpy()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        _ = variables[-1][:1].numpy()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, size: int, steps: int) -> dict:
    """{(library, mode): seconds} for one optimizer and size."""
    figures = {}
    for library, factory in zip(("keras", "optreg"), CASES[name]):
        for mode in MODES:
            variables, grads = make_problem(size)
            optimizer = factory()
            figures[library, mode] = median_step_seconds(stepper(optimizer, variables, grads, mode), variables, steps)
    return figures


def main(argv=None) -> None:
    """Measure every case and print a table of milliseconds and ratios to Keras under XLA."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 20_000_000])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--optimizers", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args(argv)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, tensorflow {tf.__version__}, "
          f"keras {keras.__version__}")
    columns = [f"{lib + ' ' + mode:>18}" for lib in ("keras", "optreg") for mode in MODES]
    header = f"{'optimizer':<13}{'params':>9}  " + "  ".join(columns)
    print(header + "   optreg/keras-XLA: eager  tf.function  XLA")
    for name in args.optimizers:
        if name.split("+")[0] not in optreg.registry:
            print(f"{name:<13}skipped: optreg has no {name.split('+')[0]} optimizer registered")
            continue
        for size in args.sizes:
            figures = measure(name, size, args.steps)
            yardstick = figures["keras", "XLA"]
            cells = "  ".join(f"{figures[lib, mode] * 1e3:16.2f}ms" for lib in ("keras", "optreg") for mode in MODES)
            ratios = "  ".join(f"{figures['optreg', mode] / yardstick:5.2f}x" for mode in MODES)
            print(f"{name:<13}{size:>9}  {cells}   {ratios}")


if __name__ == "__main__":
    main()
