"""The TensorFlow Core custom-optimizer tutorial's convergence table: its eager loop vs optreg.

The tutorial ("Optimizers with Core APIs") runs gradient descent, momentum (p=0.7) and Adam at
learning rates 1e-3, 1e-2 and 1e-1 on L(x) = 2x^4 + 3x^3 + 2 from x = 2, for at most 2000
iterations, calling ``apply_gradients`` eagerly from a Python loop. This script measures, in one
process and on the same machine:

* **eager**: a re-implementation of the tutorial's three ``tf.Module`` optimizers and its
  convergence test, making the 9 runs one eager step at a time;
* **optreg, cold**: the same 9 runs through ``plan_bench`` / ``run_bench`` — one XLA-compiled
  loop stepping the three optimizers, each with its three learning rates side by side — with the
  a new loop cache, so each repetition traces and compiles that loop from scratch;
* **optreg, warm**: the same, reusing the compiled loops of one cache kept across repetitions (a repeated bench or a
  sweep session: new hyperparameter values are assignments, not retraces);
* **bare XLA loop**: the least any TensorFlow implementation of the table pays cold — the three
  updates and the convergence test written by hand as one XLA-compiled while-loop over the 9
  runs (no hooks, no hyperparameter variables, no library), traced and compiled afresh each
  repetition. It bounds how fast a cold table can be here, whatever the library does.

TensorFlow is warmed up once, identically for both, before any timing (one eager op, one
tf.function call and one XLA compilation). Each side is timed with ``time.perf_counter`` over
``--repeats`` alternating repetitions (eager, cold, warm, eager, ...); the median is reported.
Both tables are printed and checked against each other and against the tutorial's published
results.

Run it from the repository root::

    python benchmarks/tutorial_table.py [--repeats N] [--split]

``--split`` also times each cold side's tracing apart from its first call (XLA's compilation;
the bare loop's first call also makes its 9 runs, a few milliseconds) and counts the ops it
traced.
"""

from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # quiet TensorFlow's C++ logs; must precede the import

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorflow as tf

# Every optreg repetition traces new loops by design; silence tf.function's retracing warning.
tf.get_logger().setLevel("ERROR")

# optreg is imported from this checkout, once sys.path holds it
from optreg import registry  # noqa: E402
from optreg.bench import tutorial  # noqa: E402
from optreg.bench.execute import run_bench  # noqa: E402
from optreg.bench.loop_cache import LoopCache  # noqa: E402
from optreg.bench.runner import plan_bench  # noqa: E402

LEARNING_RATES = tutorial.LEARNING_RATES
OPTIMIZERS = tutorial.OPTIMIZERS
MAX_ITERS = tutorial.MAX_ITERS
EXPECTED = tutorial.PUBLISHED
START = 2.0


# --- The tutorial's approach, re-implemented: tf.Module optimizers stepped eagerly. ---


class PlainDescent(tf.Module):
    """Gradient descent: move each variable against its gradient, scaled by the step size."""

    def __init__(self, learning_rate):
        super().__init__()
        self.step_size = learning_rate

    def apply_gradients(self, grads, variables):
        """Subtract step_size * gradient from every variable."""
        for g, v in zip(grads, variables):
            v.assign_sub(self.step_size * g)


class HeavyBall(tf.Module):
    """Momentum: delta <- lr * g + p * delta, then x <- x - delta."""

    def __init__(self, learning_rate, momentum=0.7):
        super().__init__()
        self.step_size = learning_rate
        self.carry = momentum
        self.delta = 0.0

    def apply_gradients(self, grads, variables):
        """Fold the gradient into the running delta and subtract it."""
        for g, v in zip(grads, variables):
            self.delta = self.step_size * g + self.carry * self.delta
            v.assign_sub(self.delta)


class AdamLike(tf.Module):
    """Adam with bias correction from Python-float powers and epsilon added to sqrt(v_hat)."""

    def __init__(self, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__()
        self.step_size = learning_rate
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.step = 1.0
        self.first, self.second = None, None

    def apply_gradients(self, grads, variables):
        """Update both moment estimates, bias-correct them and take one step."""
        if self.first is None:
            self.first = [tf.zeros(v.shape) for v in variables]
            self.second = [tf.zeros(v.shape) for v in variables]
        fix_1 = 1.0 - self.b1**self.step
        fix_2 = 1.0 - self.b2**self.step
        for i, (g, v) in enumerate(zip(grads, variables)):
            self.first[i] = self.b1 * self.first[i] + (1.0 - self.b1) * g
            self.second[i] = self.b2 * self.second[i] + (1.0 - self.b2) * tf.square(g)
            m_hat, v_hat = self.first[i] / fix_1, self.second[i] / fix_2
            v.assign_sub(self.step_size * (m_hat / (tf.sqrt(v_hat) + self.eps)))
        self.step += 1.0


EAGER_OPTIMIZERS = {"gradient_descent": PlainDescent, "momentum": HeavyBall, "adam": AdamLike}


def quartic(x):
    """The tutorial's loss: 2x^4 + 3x^3 + 2."""
    return 2 * x**4 + 3 * x**3 + 2


def eager_gradient(x):
    """dL/dx at x, taken with a GradientTape."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = quartic(x)
    return tape.gradient(loss, x)


def eager_run(optimizer):
    """One convergence test, step by step in Python; returns (status, iteration)."""
    x = tf.Variable(START)
    for iteration in range(1, MAX_ITERS + 1):
        g = eager_gradient(x)
        if tf.math.is_nan(g):
            return "exploded", iteration
        previous = x.numpy()
        optimizer.apply_gradients([g], [x])
        if x.numpy() == previous:
            return "converged", iteration
    return "exceeded", MAX_ITERS


def eager_table():
    """All 9 runs the tutorial's way: {(optimizer, lr): (status, iteration)}."""
    return {
        (name, lr): eager_run(EAGER_OPTIMIZERS[name](lr))
        for name in OPTIMIZERS
        for lr in LEARNING_RATES
    }


# --- optreg: the same table through the library API. ---


#: The warm side's loops, kept across its repetitions.
WARM_LOOPS = LoopCache()


def optreg_cold_table():
    """All 9 runs through plan_bench/run_bench, traced and compiled from scratch."""
    return optreg_table(LoopCache())


def optreg_table(loops=WARM_LOOPS):
    """All 9 runs through plan_bench/run_bench: {(optimizer, lr): (status, iteration)}."""
    plan = plan_bench(
        registry, list(OPTIMIZERS), "quartic", [{"learning_rate": lr} for lr in LEARNING_RATES], max_iters=MAX_ITERS
    )
    return {(r.optimizer, r.settings["learning_rate"]): (r.status, r.iterations) for r in run_bench(plan, loops=loops)}


# --- The floor: the same 9 runs as one bare, hand-written XLA loop. ---


def bare_xla_table():
    """All 9 runs as one hand-written XLA while-loop, traced and compiled from scratch."""
    rates = tf.constant([[lr] for lr in LEARNING_RATES])
    params = [tf.Variable(tf.fill([3, 1], START)) for _ in OPTIMIZERS]
    delta, first, second = (tf.Variable(tf.zeros([3, 1])) for _ in range(3))

    def body(i, status, iterations):
        with tf.GradientTape() as tape:
            before = tf.concat([p.read_value() for p in params], 0)
            total = tf.reduce_sum(quartic(before))
        grads = tape.gradient(total, params)
        running = tf.equal(status, -1)
        status = tf.where(running & tf.reduce_any(tf.math.is_nan(tf.concat(grads, 0)), -1), 2, status)
        params[0].assign_sub(rates * grads[0])
        params[1].assign_sub(delta.assign(rates * grads[1] + 0.7 * delta))
        step = tf.cast(i + 1, tf.float64)
        fix_1, fix_2 = (tf.cast(1.0 - tf.constant(b, tf.float64) ** step, tf.float32) for b in (0.9, 0.999))
        first.assign(0.9 * first + 0.1 * grads[2])
        second.assign(0.999 * second + 0.001 * tf.square(grads[2]))
        params[2].assign_sub(rates * (first / fix_1) / (tf.sqrt(second / fix_2) + 1e-7))
        after = tf.where(running[:, None], tf.concat([p.read_value() for p in params], 0), before)
        for k, p in enumerate(params):
            p.assign(after[3 * k : 3 * k + 3])
        status = tf.where(running & tf.reduce_all(tf.equal(after, before), -1), 0, status)
        return i + 1, status, iterations + tf.cast(running, tf.int32)

    def whole_run():
        def keep_going(i, status, _):
            return (i < MAX_ITERS) & tf.reduce_any(tf.equal(status, -1))

        return tf.while_loop(keep_going, body, (tf.constant(0), tf.fill([9], -1), tf.zeros([9], tf.int32)))

    _, status, iterations = tf.function(whole_run, jit_compile=True, autograph=False)()
    words = {-1: "exceeded", 0: "converged", 2: "exploded"}
    keys = [(name, lr) for name in OPTIMIZERS for lr in LEARNING_RATES]
    return {key: (words[int(s)], int(n)) for key, s, n in zip(keys, status.numpy(), iterations.numpy())}


# --- Timing and reporting. ---


def warm_up():
    """Pay TensorFlow's process-wide first-use costs once: one eager op, one tf.function call."""
    v = tf.Variable(1.0)
    v.assign_sub(tf.constant(0.5) * 2.0)
    tf.function(lambda t: t * 2.0 + 1.0)(tf.constant(1.0)).numpy()
    tf.function(lambda t: t * 3.0 + 1.0, jit_compile=True)(tf.constant(1.0)).numpy()


def timed(table_fn):
    """Run table_fn once; return (table, seconds)."""
    started = time.perf_counter()
    table = table_fn()
    return table, time.perf_counter() - started


def measure(repeats):
    """Alternate the four sides each repetition; return their tables and their lists of times."""
    tables, times = {}, {"eager": [], "cold": [], "warm": [], "bare": []}
    sides = (("eager", eager_table), ("cold", optreg_cold_table), ("warm", optreg_table), ("bare", bare_xla_table))
    for _ in range(repeats):
        for label, fn in sides:
            tables[label], seconds = timed(fn)
            times[label].append(seconds)
    return tables, times


class TracedApart:
    """While active, each ``tf.function`` made is traced (``get_concrete_function``) before its
    first call, the two timed apart and the traced graph's ops counted: a cold side's time split
    into TensorFlow's tracing and XLA's compilation (optreg's first call runs no iteration; the
    bare loop's makes its runs, a few milliseconds)."""

    def __init__(self):
        self.trace = self.first_call = 0.0
        self.ops = 0

    def __enter__(self):
        self._function = tf.function
        tf.function = self._make
        return self

    def __exit__(self, *exc):
        tf.function = self._function

    def _make(self, fn=None, **options):
        fn = options.pop("func", fn)
        if fn is None:
            return lambda f: self._make(f, **options)
        compiled, first = self._function(fn, **options), [True]

        def call(*args, **kwargs):
            if not first[0]:
                return compiled(*args, **kwargs)
            first[0] = False
            started = time.perf_counter()
            graph = compiled.get_concrete_function(*args, **kwargs).graph
            self.trace += time.perf_counter() - started
            self.ops += len(graph.get_operations()) + sum(
                len(f.graph.get_operations()) for f in graph._functions.values() if getattr(f, "graph", None)
            )
            started = time.perf_counter()
            result = compiled(*args, **kwargs)
            self.first_call += time.perf_counter() - started
            return result

        return call


def split_cold(repeats):
    """The two cold sides, alternately, each traced apart from its first call: side → medians
    of (trace seconds, first-call seconds, ops traced)."""
    parts = {"cold": [], "bare": []}
    for _ in range(repeats):
        for label, fn in (("cold", optreg_cold_table), ("bare", bare_xla_table)):
            with TracedApart() as apart:
                fn()
            parts[label].append((apart.trace, apart.first_call, apart.ops))
    return {label: tuple(statistics.median(column) for column in zip(*rows)) for label, rows in parts.items()}


def print_tables(eager, optreg):
    """Both tables side by side, one row per run."""
    print(f"{'optimizer':<17}{'lr':>6}   {'tutorial eager loop':<22}{'optreg':<22}")
    for key in EXPECTED:
        name, lr = key
        left, right = (f"{t[key][0]} @ {t[key][1]}" for t in (eager, optreg))
        print(f"{name:<17}{lr:>6g}   {left:<22}{right:<22}")


def check(eager, optreg):
    """Both tables agree with each other and with the tutorial's published results."""
    assert eager == optreg, f"tables differ:\n eager  {eager}\n optreg {optreg}"
    assert eager == EXPECTED, f"table differs from the tutorial's:\n got      {eager}\n expected {EXPECTED}"


def main(argv=None):
    """Parse arguments, measure both sides and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per side (median reported)")
    parser.add_argument("--split", action="store_true", help="also time each cold side's tracing and XLA apart")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"tensorflow {tf.__version__}")
    warm_up()
    tables, times = measure(args.repeats)
    print()
    print_tables(tables["eager"], tables["cold"])
    check(tables["eager"], tables["cold"])
    check(tables["eager"], tables["warm"])
    check(tables["eager"], tables["bare"])
    print("\ntables agree (status and iteration of all 9 runs), and match the tutorial's")

    medians = {label: statistics.median(seconds) for label, seconds in times.items()}
    print(f"\nmedian of {args.repeats} repetitions (9 runs each):")
    print(f"  tutorial eager loop:           {medians['eager']:8.3f} s   {[f'{t:.3f}' for t in times['eager']]}")
    print(f"  optreg, cold (trace + XLA):    {medians['cold']:8.3f} s   {[f'{t:.3f}' for t in times['cold']]}")
    print(f"  optreg, warm (compiled loops): {medians['warm']:8.3f} s   {[f'{t:.3f}' for t in times['warm']]}")
    print(f"  bare hand-written XLA loop:    {medians['bare']:8.3f} s   {[f'{t:.3f}' for t in times['bare']]}")
    print(f"optreg is {medians['eager'] / medians['cold']:.0f}× faster cold and "
          f"{medians['eager'] / medians['warm']:.0f}× faster warm than the tutorial's eager loop; "
          f"the bare XLA loop, cold, is {medians['eager'] / medians['bare']:.0f}×")
    if args.split:
        split = split_cold(args.repeats)
        print(f"\ncold sides, tracing apart from the first call (XLA's compilation), median of {args.repeats}:")
        for label, name in (("cold", "optreg, cold"), ("bare", "bare XLA loop")):
            trace, first_call, ops = split[label]
            print(f"  {name + ':':<15} trace {trace:.3f} s ({ops:.0f} ops), first call {first_call:.3f} s")
        print(f"  optreg / bare: trace {split['cold'][0] / split['bare'][0]:.2f}×, "
              f"first call {split['cold'][1] / split['bare'][1]:.2f}×")


if __name__ == "__main__":
    main()
