"""How long a large valid spec with many slot conditions takes to load (no TensorFlow).

Writes a spec of about 103 KB whose 8 slots each exist only when one of 8 fixed bool
hyperparameters is true, and whose rule reads each slot under its condition, then loads it a few
times and prints the median. The loader checks the rule against every setting of the conditions
in one pass over it (``optreg.spec.slot_check``); checking each of the 256 settings over every
line, as it once did, took 10 to 12 s here.

Usage: ``python benchmarks/spec_conditions.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from optreg.spec.reader import load_spec

CONDITIONS = 8
TARGET_BYTES = 101_800


def conditional_spec(conditions: int = CONDITIONS, target_bytes: int = TARGET_BYTES) -> str:
    """The TOML text of a valid spec of about ``target_bytes`` with ``conditions`` slot conditions."""
    hyperparameters = ["learning_rate = { default = 0.01, min = 0.0 }"]
    hyperparameters += [f"f{i} = {{ default = false, fixed = true }}" for i in range(conditions)]
    slots = [f'w{i} = {{ init = "zeros", when = "f{i}" }}' for i in range(conditions)]
    lines: list[str] = []
    previous = "grad"
    while sum(len(line) + 6 for line in lines) < target_bytes:
        index = len(lines) % conditions
        kept, decayed = f"0.5 * w{index} + 0.25 * {previous}", f"{previous} * 0.999 + 0.001 * grad"
        lines.append(f"d{len(lines)} = where(f{index}, {kept}, {decayed})")
        previous = f"d{len(lines) - 1}"
    lines += [f"w{i} = where(has(w{i}), 0.9 * w{i} + 0.1 * {previous}, 0)" for i in range(conditions)]
    lines.append(f"var = var - learning_rate * {previous}")
    rule = ",\n".join(f'  "{line}"' for line in lines)
    return (
        '[optimizer]\nname = "conditional"\nsummary = "many slot conditions"\n\n[hyperparameters]\n'
        + "\n".join(hyperparameters)
        + "\n\n[slots]\n"
        + "\n".join(slots)
        + f"\n\n[update]\nrule = [\n{rule}\n]\n"
    )


def main() -> None:
    """Write the spec, load it ``--repeats`` times, print its size and the median load time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "conditional.toml"
        path.write_text(conditional_spec(), encoding="utf-8")
        seconds = []
        for _ in range(arguments.repeats):
            start = time.perf_counter()
            spec = load_spec(path)
            seconds.append(time.perf_counter() - start)
        size = path.stat().st_size
    print(f"{size} bytes, {len(spec.rule.assignments)} rule lines, {len(spec.slots)} conditional slots")
    each = ", ".join(f"{s:.3f}" for s in seconds)
    print(f"load: median {statistics.median(seconds):.3f} s over {arguments.repeats} ({each})")


if __name__ == "__main__":
    main()
