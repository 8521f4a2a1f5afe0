"""A real, non-editable install into a fresh virtual environment finds the built-in specs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, make_venv


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A venv that sees the system's TensorFlow but has its own, wheel-built optreg."""
    return make_venv(tmp_path_factory.mktemp("venv"), REPO)


@pytest.mark.slow
def test_installed_package_is_the_wheel_not_the_checkout(fresh_venv, tmp_path):
    code = "import optreg, pathlib; print(pathlib.Path(optreg.__file__).parent)"
    found = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    package = Path(found.stdout.strip())
    assert str(package).startswith(str(fresh_venv))
    assert sorted(p.name for p in (package / "specs").glob("*.toml")) == sorted(p.name for p in (REPO / "specs").glob("*.toml"))


@pytest.mark.slow
def test_installed_command_lists_and_benches(fresh_venv, tmp_path):
    optreg = str(fresh_venv / "bin" / "optreg")
    listing = subprocess.run([optreg, "list", "--format", "json"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert {"adam", "gradient_descent", "momentum", "sgd"} <= {r["name"] for r in json.loads(listing.stdout)}
    bench = subprocess.run(
        [optreg, "bench", "gradient_descent", "momentum", "adam", "--lr", "0.001", "--lr", "0.01", "--lr", "0.1", "--format", "json"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    rows = [(r["optimizer"], r["status"], r["iterations"]) for r in json.loads(bench.stdout)]
    assert rows == [
        ("gradient_descent", "exceeded", 2000), ("gradient_descent", "exceeded", 2000), ("gradient_descent", "exploded", 6),
        ("momentum", "exceeded", 2000), ("momentum", "converged", 80), ("momentum", "exploded", 6),
        ("adam", "exceeded", 2000), ("adam", "exceeded", 2000), ("adam", "converged", 1156),
    ]
