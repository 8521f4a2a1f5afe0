"""Start-up: ``optreg list`` as a whole process against ``python -c "import tensorflow"``.

Runs each command ``--runs`` times, alternating, and prints the median wall time of each and
their ratio. ``optreg list`` never imports TensorFlow, so it should cost a small fraction.

    python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def wall_time(command: list[str]) -> float:
    """Seconds one run of the command takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv=None) -> None:
    """Time both commands alternately and print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    optreg = [shutil.which("optreg") or "optreg", "list"]
    tensorflow = [sys.executable, "-c", "import tensorflow"]
    wall_time(optreg), wall_time(tensorflow)  # warm the file cache for both
    times = {"optreg list": [], "import tensorflow": []}
    for _ in range(args.runs):
        times["optreg list"].append(wall_time(optreg))
        times["import tensorflow"].append(wall_time(tensorflow))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:>18}: {value:.3f} s (median of {args.runs})")
    ratio = medians["optreg list"] / medians["import tensorflow"]
    print(f"optreg list takes {ratio:.3f}× the time of importing TensorFlow")


if __name__ == "__main__":
    main()
