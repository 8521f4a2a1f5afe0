"""Sparse embedding gradients: optreg's own optimizers against Keras's, in a custom loop.

The model is Embedding(rows × 64) → mean over the tokens → Dense(1), a batch of 1024 examples of
``--tokens`` ids each, trained with a squared error in a ``tf.function`` step (forward, backward,
``apply_gradients``). The embedding's gradient is a ``tf.IndexedSlices``. Pairs:

every built-in with a Keras counterpart (``--pairs all``; ``state_memory.KERAS`` names them),
optreg's optimizer against ``keras.optimizers.X`` at the same learning rate, among them

* ``sgd``: optreg's sgd (exact-sparse: only the touched rows change) / ``keras.optimizers.SGD``;
* ``adagrad``: optreg's adagrad (exact-sparse) / ``keras.optimizers.Adagrad``;
* ``adam``: optreg's adam (not exact: the densified gradient) / ``keras.optimizers.Adam``;

and ``adam lazy``: optreg's adam with ``sparse_updates="lazy"`` (LazyAdam's algorithm, not Adam's)
/ ``keras.optimizers.Adam``. The default runs sgd, adagrad, adam and adam lazy.

**Speed**, in one process: four sides, optreg and Keras each in a plain ``tf.function`` step
(optreg then compiles its own update with XLA inside it) and in a ``tf.function(jit_compile=True)``
step (forward, backward and update one XLA computation, as ``model.fit`` compiles by default).
After warm-up, each round times ``--steps`` steps of each side, the order rotating from round to
round; the figures are medians over ``--rounds`` rounds, the ratios optreg's steps per second
over Keras's in the same mode, round by round.

**Memory**: a step's transient memory, measured in a fresh process per (side, rows) as the growth
of the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) over the
first three steps, once the model's variables and the optimizer's slots exist and the step is
traced. TensorFlow's ``get_memory_info`` does not work on CPU, and TensorFlow keeps the memory a
step freed for the next, so later steps show no growth: the first steps' peak is the largest a
step holds at once. It includes XLA compiling optreg's update, which does not grow with the
table; the column "without XLA" is optreg with ``jit_compile=False``.
Run from the repository root::

    python benchmarks/sparse_embedding.py [--pairs all] [--rows 500000] [--memory-rows 500000 5000000] [--summing]

``--summing`` also times the ways of summing one batch's repeated rows inside an XLA computation
(XLA's ``Unique``, a sort, a buffer of one index per table row, the hashing ``summed_rows`` uses)
beside Keras's whole SGD row update.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
import tensorflow as tf
from peak_memory import peak_growth_mb
from state_memory import KERAS

import optreg

DIM, BATCH = 64, 1024
#: The learning rate of each side of a pair (1e-3 for the others).
LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.01, "gradient_descent": 0.01, "momentum": 0.01, "nesterov": 0.01}


def make_pair(name: str, keras_class: str, arguments: dict, **options) -> tuple:
    """(optreg's optimizer, Keras's), each made fresh, at the same learning rate."""
    rate = LEARNING_RATES.get(name, 1e-3)
    return (
        lambda: optreg.registry.create(name, learning_rate=rate, **options),
        lambda: getattr(keras.optimizers, keras_class)(learning_rate=rate, **arguments),
    )


#: pair name → (optreg's optimizer, Keras's): every built-in with a Keras counterpart (``--pairs
#: all``), and adam with ``sparse_updates="lazy"`` against Keras's Adam (not the same algorithm).
PAIRS = {name: make_pair(name, keras_class, arguments) for name, (keras_class, arguments) in KERAS.items()}
PAIRS["adam lazy"] = make_pair("adam", "Adam", {}, sparse_updates="lazy")
#: The pairs run when ``--pairs`` is not given.
DEFAULT_PAIRS = ["sgd", "adagrad", "adam", "adam lazy"]


def make_model(rows: int) -> keras.Model:
    """Embedding(rows × 64) → mean pooling → Dense(1)."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(rows, DIM),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )


def make_batches(rows: int, tokens: int, count: int = 8) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """``count`` batches of uniformly drawn ids and targets."""
    rng = np.random.default_rng(0)
    return [
        (
            tf.constant(rng.integers(0, rows, size=(BATCH, tokens)).astype("int32")),
            tf.constant(rng.normal(size=(BATCH, 1)).astype("float32")),
        )
        for _ in range(count)
    ]


def make_step(model: keras.Model, optimizer, jit_compile: bool = False) -> tf.types.experimental.PolymorphicFunction:
    """One training step in ``tf.function`` (the whole step XLA-compiled with ``jit_compile``)."""

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def timed(step, batches, steps: int) -> float:
    """Seconds for ``steps`` steps (the last loss read, so the work is done)."""
    start = time.perf_counter()
    loss = None
    for k in range(steps):
        loss = step(*batches[k % len(batches)])
    float(loss)
    return time.perf_counter() - start


def speed(pair: str, rows: int, tokens: int, steps: int, rounds: int) -> dict:
    """Median steps per second of each side (optreg; Keras in ``tf.function``; Keras with the whole
    step XLA-compiled, as ``model.fit`` compiles it by default), and the median ratios, the sides'
    order rotating from round to round. A side whose step fails (Keras's Adadelta cannot be
    XLA-compiled on a sparse gradient) is left out, its error's first line kept under
    ``<side>_error``, and the ratios it takes part in are None."""
    batches = make_batches(rows, tokens)
    ours, theirs = PAIRS[pair]
    makers = {
        "optreg": (ours, False), "keras": (theirs, False), "optreg_xla": (ours, True), "keras_xla": (theirs, True)
    }
    sides, result = {}, {"pair": pair}
    for side, (make, jit_compile) in makers.items():
        step = make_step(make_model(rows), make(), jit_compile)
        try:
            timed(step, batches, 3)  # trace, compile, make the slots
        except (tf.errors.OpError, ValueError, TypeError) as error:
            result[f"{side}_error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
            continue
        sides[side] = step
    times: dict[str, list[float]] = {side: [] for side in sides}
    names = list(sides)
    for round_ in range(rounds):
        for side in names[round_ % len(names) :] + names[: round_ % len(names)]:
            times[side].append(timed(sides[side], batches, steps))
    result.update({f"{side}_steps_per_s": steps / statistics.median(times[side]) for side in sides})
    for mode in ("", "_xla"):
        if f"optreg{mode}" not in sides or f"keras{mode}" not in sides:
            result[f"ratio{mode}"] = None
            continue
        pairs = zip(times[f"optreg{mode}"], times[f"keras{mode}"])
        result[f"ratio{mode}"] = statistics.median(keras_time / optreg_time for optreg_time, keras_time in pairs)
    return result


def describe(result: dict, mode: str) -> str:
    """``optreg <steps/s> keras <steps/s> = <ratio>x`` for one mode (``""`` or ``"_xla"``), a side
    that failed shown as such."""
    figures = []
    for side in ("optreg", "keras"):
        rate = result.get(f"{side}{mode}_steps_per_s")
        figures.append(f"{side} {rate:6.1f}" if rate is not None else f"{side} fails")
    ratio = result[f"ratio{mode}"]
    return " ".join(figures) + (f" = {ratio:.2f}x" if ratio is not None else "")


def summing(rows: int, tokens: int, rounds: int = 7, calls: int = 100) -> dict[str, float]:
    """Milliseconds to sum one batch's repeated rows inside an XLA computation, each way: XLA's
    own ``Unique``, a stable sort, a buffer of one index per table row (what ``summed_rows`` ran
    there before the hashing), the hashing it runs now (:mod:`optreg.runtime.xla_rows`), and, for
    scale, Keras's whole SGD row update of the same gradient (a scatter of the raw rows, duplicates
    unsummed). Each way runs ``calls`` times in one XLA loop, on the batch's ids shifted by the
    iteration (so nothing is computed once for all), which leaves out the cost of a call; "the
    loop alone" is that loop making its gradients and nothing else. Medians of ``rounds`` rounds,
    the ways' order rotating."""
    from optreg.runtime import xla_rows

    ids, _ = make_batches(rows, tokens, count=1)[0]
    indices = tf.reshape(ids, [-1])
    values = tf.random.normal([indices.shape[0], DIM])
    length = indices.shape[0]
    table = tf.Variable(tf.zeros([rows, DIM]))

    def summed_at(firsts: tf.Tensor, g: tf.IndexedSlices) -> tf.Tensor:
        return tf.math.unsorted_segment_sum(g.values, firsts, length)

    def by_unique(g):
        _, positions = tf.unique(g.indices)
        return summed_at(positions, g)

    def by_buffer(g):
        unset = tf.fill([rows], length)
        return summed_at(tf.gather(tf.tensor_scatter_nd_min(unset, g.indices[:, None], tf.range(length)), g.indices), g)

    def by_scatter(g):
        table.scatter_sub(tf.IndexedSlices(0.01 * g.values, g.indices))
        return g.values[:1]

    ways = {
        "the loop alone": lambda g: g.values,
        "xla unique": by_unique,
        "sort": lambda g: summed_at(xla_rows._first_entries_by_sorting(g.indices, length), g),
        "buffer": by_buffer,
        "hashing": lambda g: xla_rows.summed_in_xla(g, length).values,
        "keras's sgd row update": by_scatter,
    }
    compiled = {name: _looped(way, calls, rows) for name, way in ways.items()}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for function in compiled.values():
        function(values, indices).numpy()  # compiled
    names = list(ways)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            compiled[name](values, indices).numpy()
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def _looped(way, calls: int, rows: int):
    """``way`` run ``calls`` times in one XLA computation, on ids shifted by the iteration."""

    @tf.function(jit_compile=True)
    def loop(values, indices):
        def body(k, total):
            grad = tf.IndexedSlices(values + tf.cast(k, tf.float32), (indices + k) % rows, tf.constant([rows, DIM]))
            return k + 1, total + tf.reduce_sum(way(grad)[:1])

        return tf.while_loop(lambda k, _: k < calls, body, (0, tf.constant(0.0)))[1]

    return loop


def step_memory(pair: str, side: str, rows: int, tokens: int) -> dict:
    """The peak resident set's growth over the first steps, the model and the optimizer's slots
    already made (run in a fresh process)."""
    batches = make_batches(rows, tokens, count=2)
    make = PAIRS[pair][1 if side == "keras" else 0]
    model, optimizer = make_model(rows), make()
    if side == "optreg_plain":  # optreg's update without its own XLA compilation
        optimizer.jit_compile = False
    model(batches[0][0])
    optimizer.build(model.trainable_variables)
    step = make_step(model, optimizer)
    step.get_concrete_function(*batches[0])  # traced
    transient = peak_growth_mb(lambda: timed(step, batches, 3))
    return {"pair": pair, "side": side, "rows": rows, "transient_mb": transient}


def memory_in_fresh_process(pair: str, side: str, rows: int, tokens: int) -> dict:
    """:func:`step_memory` in a new interpreter, so no other model's memory is counted."""
    command = [sys.executable, __file__, "--memory-child", json.dumps([pair, side, rows, tokens])]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--tokens", type=int, default=4, help="ids per example")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pairs", nargs="*", default=DEFAULT_PAIRS, help="pair names, or 'all' (every pair)")
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[500_000, 5_000_000])
    parser.add_argument("--memory-pairs", nargs="*", default=["sgd", "adam lazy", "adam"])
    parser.add_argument("--summing", action="store_true", help="time the ways of summing repeated rows under XLA")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(step_memory(*json.loads(args.memory_child))))
        return
    print(f"# {platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"# Embedding({args.rows} x {DIM}) + mean pooling + Dense(1), batch {BATCH} x {args.tokens} ids, "
          f"median of {args.rounds} rounds of {args.steps} steps, sides' order rotating")
    if args.summing:
        figures = ", ".join(f"{name} {ms:.3f} ms" for name, ms in summing(args.rows, args.tokens).items())
        print(f"summing {BATCH * args.tokens} ids' rows inside XLA: {figures}  (load {os.getloadavg()[0]:.2f})")
    pairs = list(PAIRS) if args.pairs == ["all"] else args.pairs
    for name in pairs:
        support = PAIRS[name][0]().sparse_support.describe()
        result = speed(name, args.rows, args.tokens, args.steps, args.rounds)
        print(f"{name:19s} steps/s, tf.function: {describe(result, '')};  whole step XLA: {describe(result, '_xla')}"
              f"   (optreg: {support.split(' (')[0]}; load {os.getloadavg()[0]:.2f})", flush=True)
        for key in sorted(key for key in result if key.endswith("_error")):
            print(f"    {key[: -len('_error')]} fails: {result[key]}", flush=True)
    for rows in args.memory_rows:
        for pair in args.memory_pairs:
            sides = ("optreg", "optreg_plain", "keras")
            mb = {side: memory_in_fresh_process(pair, side, rows, args.tokens)["transient_mb"] for side in sides}
            print(f"memory {rows:>8d} rows {pair:10s} first steps' transient: optreg {mb['optreg']:7.1f} MB "
                  f"(without XLA {mb['optreg_plain']:7.1f} MB)  keras {mb['keras']:7.1f} MB", flush=True)


if __name__ == "__main__":
    main()
