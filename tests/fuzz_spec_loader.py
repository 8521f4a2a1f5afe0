"""A mutational fuzzer for the spec loader: only SpecError may ever come out of it.

It starts from the built-in specs and a dictionary of TOML and grammar tokens, and applies
random byte-level edits (flip, insert, delete, duplicate, splice, token insertion). Any
exception other than SpecError is a crash: it is printed with the input that caused it and
saved under ``--crashes``. The suite runs it for a few seconds with a fixed seed; run it longer
by hand::

    python tests/fuzz_spec_loader.py --seconds 600 --seed 1
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

import optreg
from optreg.plugins.builtin import builtin_spec_dir

TOKENS = [
    b"[", b"]", b"{", b"}", b"=", b",", b'"', b"'", b"\n", b"#", b"[[", b"]]", b'"""', b"\\u0000",
    b"[optimizer]", b"[hyperparameters]", b"[slots]", b"[update]", b"rule = [", b"default = ", b"min = ",
    b"max = ", b"init = ", b"dtype = ", b"type = ", b"inf", b"nan", b"-0.0", b"1e308", b"9" * 400, b"true",
    b"var = ", b"grad", b"step", b"sqrt(", b"where(", b"**", b"(", b")", b" < ", b".__class__", b"[0]",
    b"lambda", b"__import__", b"_", b"1 if 2 else 3", b"f'{x}'", b"*", b";", b":=",
]


def seeds() -> list[bytes]:
    """The starting corpus: every built-in spec."""
    return [path.read_bytes() for path in sorted(builtin_spec_dir().glob("*.toml"))]


def mutate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """One to four random edits of a byte string."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(buffer))
        choice = rng.randrange(6)
        if choice == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buffer[position:position] = bytes([rng.randrange(256)])
        elif choice == 2:
            del buffer[position : position + rng.randint(1, 16)]
        elif choice == 3:
            start = rng.randint(0, len(buffer))
            buffer[position:position] = buffer[start : start + rng.randint(1, 32)]
        elif choice == 4:
            other = rng.choice(corpus)
            start = rng.randint(0, len(other))
            buffer[position:position] = other[start : start + rng.randint(1, 64)]
        else:
            buffer[position:position] = rng.choice(TOKENS)
    return bytes(buffer[:20000])


def load(data: bytes) -> None:
    """Feed one input to the loader; SpecError is the only allowed failure."""
    try:
        optreg.load_spec_text(data.decode("utf-8", errors="replace"), source="fuzz.toml")
    except optreg.SpecError:
        pass


def run(seconds: float, seed: int, crashes: Path | None = None) -> tuple[int, list[tuple[bytes, str]]]:
    """Fuzz for a bounded time.

    Returns:
        The number of inputs tried, and each crashing input with its traceback.
    """
    rng = random.Random(seed)
    corpus = seeds()
    deadline = time.monotonic() + seconds
    tried, found = 0, []
    while time.monotonic() < deadline:
        data = mutate(rng.choice(corpus), rng, corpus)
        tried += 1
        try:
            load(data)
        except Exception:
            found.append((data, traceback.format_exc()))
            if crashes is not None:
                crashes.mkdir(parents=True, exist_ok=True)
                (crashes / f"crash-{len(found)}.toml").write_bytes(data)
            continue
        if rng.random() < 0.05 and len(corpus) < 500:
            corpus.append(data)
    return tried, found


def main(argv=None) -> int:
    """Command-line entry: fuzz, report, exit 1 on any crash."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes", type=Path, default=None, help="folder to save crashing inputs in")
    args = parser.parse_args(argv)
    tried, found = run(args.seconds, args.seed, args.crashes)
    print(f"{tried} inputs in {args.seconds:g} s, {len(found)} crashes")
    for data, trace in found[:5]:
        print(repr(data[:300]), trace, sep="\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
