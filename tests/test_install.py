"""A real, non-editable install into a fresh virtual environment finds the built-in specs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO, make_venv, venv_environment


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A venv that sees the system's TensorFlow but has its own, wheel-built optreg."""
    return make_venv(tmp_path_factory.mktemp("venv"), REPO)


@pytest.mark.slow
def test_installed_package_is_the_wheel_not_the_checkout(fresh_venv, tmp_path):
    """The wheel holds the specs and the problems' data files, which the installed package reads."""
    code = (
        "import optreg, pathlib\n"
        "from optreg.problems.digits_data import load_digits\n"
        "from optreg.problems.regression import load_data\n"
        "print(pathlib.Path(optreg.__file__).parent)\n"
        "print(load_digits()[0].shape, load_digits()[2].shape, load_data()[0].shape)"
    )
    found = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", code],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=venv_environment(),
    )
    location, shapes = found.stdout.strip().splitlines()
    package = Path(location)
    assert str(package).startswith(str(fresh_venv))
    assert shapes == "(1347, 64) (450, 64) (354, 10)"
    assert (package / "problems" / "data" / "digits.csv.gz").is_file()
    shipped = sorted(p.name for p in (package / "specs").glob("*.toml"))
    assert shipped == sorted(p.name for p in (REPO / "specs").glob("*.toml"))


@pytest.mark.slow
def test_the_venv_sees_the_packages_of_the_interpreter_running_the_tests(fresh_venv, tmp_path):
    """TensorFlow and hatchling come from the interpreter running pytest (a user's venv, or the
    machine's Python), not from the base interpreter behind it."""
    code = "import tensorflow, hatchling; print(tensorflow.__file__)"
    found = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", code],
        capture_output=True, text=True, cwd=tmp_path, env=venv_environment(),
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(sysconfig.get_paths()["purelib"])


def quick_start_command() -> str:
    """The README's first Quick start command, after its ``pip install . &&``."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)[0].split("&&", 1)[1].strip()


def readme_output() -> str:
    """What the README shows the main command printing: the tutorial's table, a blank line,
    then the ranking and the profile (the code blocks after the Quick start commands)."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    table, ranking = [
        text for language, text in re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S) if not language
    ][:2]
    return table + "\n" + ranking


@pytest.mark.slow
def test_installed_command_lists_and_prints_the_readme_table_and_nothing_else(fresh_venv, tmp_path):
    """The README's main command in a fresh install prints the tutorial's table exactly, and
    nothing from TensorFlow on stderr (no TF_CPP_MIN_LOG_LEVEL or OPTREG_DEBUG set)."""
    environment = {k: v for k, v in venv_environment().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    listing = subprocess.run(
        [str(fresh_venv / "bin" / "optreg"), "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=environment,
    )
    assert {"adam", "gradient_descent", "momentum", "sgd"} <= {r["name"] for r in json.loads(listing.stdout)}
    words = shlex.split(quick_start_command())
    assert words[:2] == ["optreg", "bench"]
    bench = subprocess.run(
        [str(fresh_venv / "bin" / "optreg"), *words[1:]], capture_output=True, text=True, cwd=tmp_path, env=environment
    )
    assert (bench.returncode, bench.stderr) == (0, "")
    assert bench.stdout == readme_output()
