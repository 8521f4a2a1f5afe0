"""optreg's sweep loop against ``jax.jit(jax.vmap(...))`` + optax, and its cold table against a bare XLA loop.

Two ratios, as issue 18 states its targets (warm loop at most 1.0× jax, cold table within 1.25× of
the bare loop):

1. **Warm sweep.** A learning-rate sweep of ``--runs`` (10,000) values, ``logspace:1e-4:1e-1``,
   of gradient descent, momentum (0.7) and Adam on ``quadratic`` (10 dimensions, condition 100)
   and ``rosenbrock``, at most ``--max-iters`` (2000) iterations, each run stopping on its own at
   the problem's tolerance (``stop_at_tolerance``), when it explodes, or when a step leaves it
   where it was. optreg: ``plan_bench`` / ``run_bench``, all runs side by side in its one compiled
   loop, as ``optreg bench adam --lr logspace:1e-4:1e-1:10000 --stop-at-tolerance`` runs them.
   jax: the same problem, the same optimizer from optax (``optax.sgd``, ``optax.sgd(momentum=0.7)``,
   ``optax.adam(eps=1e-7)``) and the same stopping rules in one ``lax.while_loop`` per run, the
   runs batched by ``jax.vmap`` and compiled by ``jax.jit`` (a batched while-loop, like optreg's,
   runs until its last run stops). Both float32. Each side is compiled once, untimed; then the
   two are timed alternately ``--repeats`` times (optreg: planning, the loop and the runs'
   statuses read from its results as a column; jax: the call and its statuses brought to
   NumPy) and the medians compared. The two sides' final statuses are compared run by run as
   a check that they did the same work. optreg's time is also split: the part inside
   ``StackedLoop.run`` (the compiled loop's calls and its outcome) against the rest (planning
   and checking 10,000 settings, grouping, the status column); and the time making every
   run's record takes afterwards, as ``optreg bench``'s table and files make them, is shown
   on its own and added to optreg's side in a last ratio.
2. **Cold table.** The TensorFlow Core tutorial's 9-run table (``benchmarks/tutorial_table.py``)
   through optreg with a new loop cache, against that script's bare hand-written XLA loop,
   alternately, medians.

Run it from the repository root, in a venv with the ``peers`` extra::

    python benchmarks/sweep_peers.py [--runs N] [--repeats N] [--max-iters N]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import importlib.metadata
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import tensorflow as tf  # noqa: E402
import tutorial_table  # noqa: E402

from optreg import registry  # noqa: E402
from optreg.bench.execute import run_bench  # noqa: E402
from optreg.bench.grid import settings_grid  # noqa: E402
from optreg.bench.loop import StackedLoop  # noqa: E402
from optreg.bench.loop_cache import LoopCache  # noqa: E402
from optreg.bench.run_status import GRADIENT_DROP  # noqa: E402
from optreg.bench.runner import plan_bench  # noqa: E402

OPTIMIZERS = {
    "gradient_descent": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.7),
    "adam": lambda lr: optax.adam(lr, eps=1e-7),
}
#: Statuses as optreg's loop numbers them (optreg.bench.loop)
RUNNING, CONVERGED, EXCEEDED, EXPLODED, REACHED = -1, 0, 1, 2, 3
WORDS = {CONVERGED: "converged", EXCEEDED: "exceeded", EXPLODED: "exploded", REACHED: "reached"}


def quadratic_loss(x):
    """½ Σ λᵢ xᵢ², λ from 1 to 100 geometrically over 10 dimensions (optreg's ``quadratic``)."""
    curvatures = jnp.asarray([100.0 ** (i / 9) for i in range(10)], jnp.float32)
    return 0.5 * jnp.sum(curvatures * x**2)


def rosenbrock_loss(x):
    """(1 − x)² + 100 (y − x²)² (optreg's ``rosenbrock``)."""
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


#: name → (loss, start, minimum loss, tolerance): optreg's problems, written in jax
PROBLEMS = {
    "quadratic": (quadratic_loss, [1.0] * 10, 0.0, 1e-6),
    "rosenbrock": (rosenbrock_loss, [-1.2, 1.0], 0.0, 1e-4),
}


def jax_sweep(optimizer: str, problem: str, max_iters: int):
    """``jax.jit(jax.vmap(one run))``: learning rates → (status, iterations) per run."""
    loss, start, minimum, tolerance = PROBLEMS[problem]
    value_and_grad = jax.value_and_grad(loss)
    x0 = jnp.asarray(start, jnp.float32)

    def one_run(lr):
        tx = OPTIMIZERS[optimizer](lr)

        def running(carry):
            return (carry[0] < max_iters) & (carry[1] == RUNNING)

        def iteration(carry):
            i, status, x, state, first = carry
            value, grad = value_and_grad(x)
            status = jnp.where(~jnp.all(jnp.isfinite(x)), EXPLODED, status)
            status = jnp.where((status == RUNNING) & (value - minimum <= tolerance), REACHED, status)
            status = jnp.where((status == RUNNING) & jnp.any(jnp.isnan(grad)), EXPLODED, status)
            updates, new_state = tx.update(grad, state, x)
            new_x = optax.apply_updates(x, updates)
            go = status == RUNNING
            largest = jnp.max(jnp.abs(grad))
            first = jnp.where(i == 0, largest, first)
            still = go & jnp.all(new_x == x) & (largest <= GRADIENT_DROP * jnp.maximum(first, 1.0))
            status = jnp.where(still, CONVERGED, status)
            x = jnp.where(go, new_x, x)
            state = jax.tree.map(lambda new, old: jnp.where(go, new, old), new_state, state)
            return i + jnp.where(go, 1, 0), status, x, state, first

        carry = (jnp.int32(0), jnp.int32(RUNNING), x0, tx.init(x0), jnp.float32(0))
        i, status, *_ = jax.lax.while_loop(running, iteration, carry)
        return jnp.where(status == RUNNING, EXCEEDED, status), i

    return jax.jit(jax.vmap(one_run))


#: seconds spent inside StackedLoop.run (the compiled loop and its outcome), to split optreg's time
LOOP_SECONDS: list[float] = []
_run = StackedLoop.run


def _timed_run(self, *args, **kwargs):
    started = time.perf_counter()
    try:
        return _run(self, *args, **kwargs)
    finally:
        LOOP_SECONDS.append(time.perf_counter() - started)


StackedLoop.run = _timed_run  # measurement only: the loop itself is unchanged


def timed_jax(sweep, rates: np.ndarray) -> tuple[float, np.ndarray]:
    """One call of the compiled sweep, results brought to NumPy."""
    started = time.perf_counter()
    status, _ = sweep(jnp.asarray(rates, jnp.float32))
    status = np.asarray(status)
    return time.perf_counter() - started, status


#: optreg's loops, kept across its benches (the loop reused after the first).
OPTREG_LOOPS = LoopCache()


def timed_optreg(
    optimizer: str, problem: str, grid: list[dict], max_iters: int
) -> tuple[float, float, float, np.ndarray]:
    """One bench through the library (the compiled loop reused after the first): its seconds, the
    seconds of those inside the loop's ``run``, the seconds making every run's record took after
    it (as ``optreg bench``'s output makes them; not in the first), and the statuses."""
    LOOP_SECONDS.clear()
    started = time.perf_counter()
    plan = plan_bench(registry, [optimizer], problem, grid, max_iters=max_iters, stop_at_tolerance=True)
    table = run_bench(plan, loops=OPTREG_LOOPS)
    statuses = table.statuses()  # a column: no record is made
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    list(table)
    records = time.perf_counter() - started
    names = {word: code for code, word in WORDS.items()}
    return seconds, sum(LOOP_SECONDS), records, np.array([names.get(status, -9) for status in statuses])


def warm_sweeps(args) -> list[tuple[str, str, float, float, float]]:
    """Every (optimizer, problem): (optreg s, jax s, fraction of runs whose statuses agree)."""
    rates = np.logspace(-4, -1, args.runs)
    grid = settings_grid([f"logspace:1e-4:1e-1:{args.runs}"], [])
    assert np.allclose([g["learning_rate"] for g in grid], rates, rtol=1e-6)
    rows = []
    for problem in PROBLEMS:
        for optimizer in OPTIMIZERS:
            sweep = jax_sweep(optimizer, problem, args.max_iters)
            timed_jax(sweep, rates)  # compile, untimed
            timed_optreg(optimizer, problem, grid, args.max_iters)  # trace and compile, untimed
            ours, loops, records, theirs = [], [], [], []
            for _ in range(args.repeats):
                seconds, loop_seconds, record_seconds, our_status = timed_optreg(
                    optimizer, problem, grid, args.max_iters
                )
                ours.append(seconds)
                loops.append(loop_seconds)
                records.append(record_seconds)
                seconds, jax_status = timed_jax(sweep, rates)
                theirs.append(seconds)
            same = float(np.mean(our_status == jax_status))
            mine, loop, made, jaxs = (statistics.median(t) for t in (ours, loops, records, theirs))
            rows.append((optimizer, problem, mine, loop, made, jaxs, same))
            print(f"  {optimizer:<17}{problem:<11} optreg {mine:7.3f} s {[f'{t:.2f}' for t in ours]} "
                  f"(loop.run {loop:.3f} s; records after {made:.3f} s)   "
                  f"jax {jaxs:7.3f} s {[f'{t:.2f}' for t in theirs]}   "
                  f"ratio {mine / jaxs:5.2f}×   statuses agree {same:.1%}", flush=True)
    return rows


def cold_table(repeats: int) -> tuple[list[float], list[float]]:
    """optreg's cold tutorial table and the bare XLA loop, alternately; their times."""
    tutorial_table.warm_up()
    cold, bare = [], []
    for _ in range(repeats):
        table, seconds = tutorial_table.timed(tutorial_table.optreg_cold_table)
        assert table == tutorial_table.EXPECTED
        cold.append(seconds)
        table, seconds = tutorial_table.timed(tutorial_table.bare_xla_table)
        assert table == tutorial_table.EXPECTED
        bare.append(seconds)
    return cold, bare


def main(argv=None) -> None:
    """Measure and print both ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--skip-sweep", action="store_true", help="only the cold table")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    found = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("tensorflow", "jax", "jaxlib", "optax"))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, {found}")
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    if not args.skip_sweep:
        print(f"\nwarm sweep: {args.runs} learning rates logspace:1e-4:1e-1, at most {args.max_iters} iterations, "
              f"stop at tolerance; median of {args.repeats}, alternating")
        rows = warm_sweeps(args)
    cold, bare = cold_table(args.repeats)
    print(f"\ncold tutorial table (9 runs), median of {args.repeats}, alternating:")
    print(f"  optreg, cold:       {statistics.median(cold):7.3f} s   {[f'{t:.3f}' for t in cold]}")
    print(f"  bare XLA loop:      {statistics.median(bare):7.3f} s   {[f'{t:.3f}' for t in bare]}")
    print(f"\nload average at end: {os.getloadavg()}")
    print("\n| optimizer | problem | optreg warm (s) | of which loop.run (s) | jax.vmap + optax (s) | optreg / jax "
          "| loop.run / jax | every record after (s) | with the records / jax | statuses agree |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for optimizer, problem, ours, loop, made, theirs, same in rows:
        print(f"| {optimizer} | {problem} | {ours:.3f} | {loop:.3f} | {theirs:.3f} | {ours / theirs:.2f}× "
              f"| {loop / theirs:.2f}× | {made:.3f} | {(ours + made) / theirs:.2f}× | {same:.1%} |")
    print(f"\ncold table / bare XLA loop: {statistics.median(cold) / statistics.median(bare):.2f}× "
          f"(target ≤ 1.25×); warm sweep target ≤ 1.0×")


if __name__ == "__main__":
    main()
