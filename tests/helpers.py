"""What the tests share besides fixtures: the repository, small specs and shapes, random
problems, and virtual environments with projects really installed in them."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np

from optreg.bench.loop_cache import LoopCache

REPO = Path(__file__).resolve().parents[1]

#: A small valid spec the command-line and bounds tests write to files and vary.
MY_SPEC = """
[optimizer]
name = "my_opt"
summary = "half-size gradient steps"

[hyperparameters]
learning_rate = { default = 0.01, min = 0.0 }

[update]
rule = ["var = var - 0.5 * learning_rate * grad"]
"""

#: Shapes every numeric check runs on: scalar, vector, matrix, rank 3.
SHAPES = [(), (7,), (3, 4), (2, 3, 4)]

#: The seed of the ``rng`` fixture (tests/conftest.py), for tests that draw as several tests of
#: it would (tests/battery.py).
SEED = 20261121


def random_problem(rng, shape, steps, dtype=np.float32):
    """A start value and a list of gradients, as NumPy arrays of one dtype."""
    start = rng.normal(size=shape).astype(dtype)
    grads = [rng.normal(size=shape).astype(dtype) for _ in range(steps)]
    return start, grads


def make_venv(root: Path, *projects: Path) -> Path:
    """A virtual environment that sees the packages of the interpreter running the tests
    (TensorFlow, hatchling: the user's venv, or the machine's Python) and has the given projects
    installed from source, non-editable (a real pip install, entry points and all).

    The outer packages come in through a ``.pth`` file, after the venv's own, so what is
    installed here wins; ``system_site_packages`` would show the base interpreter's instead.

    The venv is created without a pip of its own (``ensurepip`` alone took about 10 s per venv):
    the pip of the interpreter running the tests installs into it through ``pip --python``,
    which runs that pip under the venv's interpreter, so the projects are built from their
    source folders and installed into the venv's own site-packages exactly as a pip inside it
    would.

    Raises:
        AssertionError: pip failed; the message holds its output.
    """
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(own_site) / "_outer_packages.pth").write_text("\n".join(outer) + "\n", encoding="utf-8")
    if projects:
        command = [
            sys.executable, "-m", "pip", "--python", str(python),
            "install", "--quiet", "--no-deps", "--no-build-isolation", *map(str, projects),
        ]
        installed = subprocess.run(command, capture_output=True, text=True, env=venv_environment())
        assert installed.returncode == 0, (
            f"{' '.join(command)} failed ({installed.returncode}):\n{installed.stdout}{installed.stderr}"
        )
    return root


def venv_environment(**settings: str) -> dict:
    """The environment for a command in a test venv: no OPTREG_* settings but the given ones,
    and no PYTHONPATH (a checkout on it would shadow the package installed in the venv)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPTREG_") and k != "PYTHONPATH"}
    environment.update(settings)
    return environment



#: The compiled bench loops the tests share (a process's benches shared them through a module
#: global once): a bench repeating an earlier one's shapes reuses its loops, as a sweep session
#: would, instead of compiling them again.
TEST_LOOPS = LoopCache()


def run_bench(plan, jit_compile=True, progress=None, loops=None):
    """:func:`optreg.bench.execute.run_bench` with the tests' shared loop cache, unless a test
    gives its own."""
    from optreg.bench.execute import run_bench as run  # TensorFlow, only for the tests that bench

    return run(plan, jit_compile, progress, TEST_LOOPS if loops is None else loops)
