"""A 1000-run learning-rate sweep against a single run, in one process.

``optreg bench adam --lr logspace:1e-4:1e-1:1000`` trains the 1000 runs side by side in one
compiled loop. This script times, through the library calls the command makes
(``plan_bench`` / ``run_bench``), on the tutorial's ``quartic`` problem with at most 2000
iterations:

* **single**: one run (learning rate 1e-2);
* **sweep**: the 1000 learning rates of ``logspace:1e-4:1e-1:1000``;

each both **cold** (a new loop cache: tracing and XLA compilation included, as a fresh
``optreg bench`` pays them) and **warm** (the compiled loop reused). Timings alternate single
and sweep over ``--repeats`` repetitions; medians and the sweep/single ratios are printed.

Run it from the repository root::

    python benchmarks/sweep.py [--repeats N] [--optimizer NAME] [--runs N]
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

import tensorflow as tf

from optreg import registry
from optreg.bench.execute import run_bench
from optreg.bench.grid import settings_grid
from optreg.bench.loop_cache import LoopCache
from optreg.bench.runner import plan_bench

#: The warm benches' loops, kept across them.
WARM_LOOPS = LoopCache()


def timed_bench(optimizer: str, learning_rates: list[str], cold: bool) -> tuple[float, int]:
    """One bench through the library; returns (seconds, number of records)."""
    loops = LoopCache() if cold else WARM_LOOPS
    started = time.perf_counter()
    plan = plan_bench(registry, [optimizer], "quartic", settings_grid(learning_rates, []), max_iters=2000)
    results = list(run_bench(plan, loops=loops))  # every record made, as the command's output makes them
    return time.perf_counter() - started, len(results)


def main(argv=None) -> None:
    """Measure and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args(argv)
    sweep = [f"logspace:1e-4:1e-1:{args.runs}"]
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"tensorflow {tf.__version__}")
    tf.function(lambda t: t * 3.0, jit_compile=True)(tf.constant(1.0)).numpy()  # XLA's one-time start-up
    times: dict[str, list[float]] = {key: [] for key in ("single cold", "sweep cold", "single warm", "sweep warm")}
    for _ in range(args.repeats):
        for label, rates in (("single", ["1e-2"]), ("sweep", sweep)):
            seconds, records = timed_bench(args.optimizer, rates, cold=True)
            assert records == len(settings_grid(rates, []))
            times[f"{label} cold"].append(seconds)
            times[f"{label} warm"].append(timed_bench(args.optimizer, rates, cold=False)[0])
    medians = {key: statistics.median(values) for key, values in times.items()}
    print(f"\n{args.optimizer} on quartic, at most 2000 iterations; median of {args.repeats} repetitions")
    for key, values in times.items():
        print(f"  {key:<12} {medians[key]:8.3f} s   {[f'{v:.3f}' for v in values]}")
    print(f"{args.runs}-run sweep / single run: {medians['sweep cold'] / medians['single cold']:.2f}× cold, "
          f"{medians['sweep warm'] / medians['single warm']:.2f}× warm")


if __name__ == "__main__":
    main()
