"""Shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite sees optreg's own plugins only, whatever is installed on the machine; tests of
# installed plugins run them in virtual environments of their own.
os.environ["OPTREG_DISABLE_PLUGIN_AUTOLOAD"] = "1"
for variable in ("OPTREG_PLUGINS", "OPTREG_SPEC_PATH", "OPTREG_STRICT_PLUGINS", "OPTREG_DEBUG"):
    os.environ.pop(variable, None)

import subprocess
import sys
import sysconfig
import venv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

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


#: The files that take longest, longest first (seconds of one worker: ``--durations=0`` of a
#: whole run on the shared 2-core machine, scaled to its unloaded speed). Under
#: ``--dist loadfile`` a worker takes whole files in collection order (``--no-loadscope-reorder``
#: in pyproject.toml), so these start first and the short files fill in at the end: no worker
#: is left running one long file while the other sits idle. Files not named here follow, most
#: tests first (xdist's own order).
LONGEST_FIRST = (
    "test_optimizers.py",  # ~200 s
    "test_distribute.py",  # ~180 s, mostly two processes that train every built-in
    "test_checkpoint.py",  # ~105 s
    "test_keras_models.py",  # ~75 s
    "test_nonfinite.py",  # ~55 s
    "test_options.py",  # ~38 s
    "test_plugin_install.py",  # ~25 s, builds two venvs
    "test_multiworker.py",  # ~25 s, a two-process cluster and two more processes
    "test_muon.py",  # ~24 s
    "test_properties.py",  # ~22 s
    "test_keras.py",  # ~21 s
    "test_install.py",  # ~15 s, builds a venv
    "test_bench.py",  # ~14 s
    "test_bench_outputs.py",  # ~12 s
    "test_sweeps.py",  # ~12 s
    "test_bench_statuses.py",  # ~8 s
    "test_lookahead.py",  # ~6 s
)


def pytest_collection_modifyitems(items):
    """Reorder whole files, longest first (:data:`LONGEST_FIRST`); the tests of a file keep
    their order."""
    counts = Counter(item.path.name for item in items)

    def rank(item):
        name = item.path.name
        place = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        return place, -counts[name], str(item.path)

    items.sort(key=rank)


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every run sees the same random tensors."""
    return np.random.default_rng(20261121)


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
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(own_site) / "_outer_packages.pth").write_text("\n".join(outer) + "\n", encoding="utf-8")
    if projects:
        command = [
            sys.executable, "-m", "pip", "--python", str(python),
            "install", "--quiet", "--no-deps", "--no-build-isolation", *map(str, projects),
        ]
        installed = subprocess.run(command, capture_output=True, text=True, env=venv_environment())
        assert installed.returncode == 0, f"{' '.join(command)} failed ({installed.returncode}):\n{installed.stdout}{installed.stderr}"
    return root


def venv_environment(**settings: str) -> dict:
    """The environment for a command in a test venv: no OPTREG_* settings but the given ones,
    and no PYTHONPATH (a checkout on it would shadow the package installed in the venv)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPTREG_") and k != "PYTHONPATH"}
    environment.update(settings)
    return environment
