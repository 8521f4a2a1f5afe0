"""The code is clean under the checked-in linters: ``ruff check`` and ``mypy``, configured in
pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``), run as a developer would from the checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
#: What ruff checks: the package, the benchmark scripts, the example plugins and the tests.
RUFF_PATHS = ("optreg", "benchmarks", "plugins", "tests")
#: Modules mypy must not analyse: TensorFlow and Keras carry no usable stubs, and following them
#: would analyse their whole sources, where the package alone takes seconds.
SKIPPED = {"tensorflow", "tensorflow.*", "keras", "keras.*"}


def _run(*command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _assert_clean(result: subprocess.CompletedProcess) -> None:
    """Fail with the tool's own output when it exits other than 0."""
    if result.returncode != 0:
        command = " ".join(result.args[2:])  # after "python -m"
        pytest.fail(f"{command} exited {result.returncode}:\n{result.stdout}{result.stderr}", pytrace=False)


def test_ruff_finds_nothing():
    _assert_clean(_run("ruff", "check", "--no-cache", "--output-format", "concise", *RUFF_PATHS))


def test_mypy_finds_nothing(tmp_path):
    # the files come from [tool.mypy] (files = ["optreg"]); a cache of its own leaves the checkout as it was
    _assert_clean(_run("mypy", "--cache-dir", str(tmp_path / "mypy_cache")))


def test_mypy_skips_tensorflow_and_keras():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["optreg"]
    skipped = {
        module
        for override in config.get("overrides", [])
        if override.get("follow_imports") == "skip"
        for module in ([override["module"]] if isinstance(override["module"], str) else override["module"])
    }
    assert SKIPPED <= skipped, f"mypy would follow {sorted(SKIPPED - skipped)}"


#: The checks ``strict`` turns on that an override could turn off again for some modules.
STRICT_FLAGS = {
    "disallow_untyped_defs", "disallow_incomplete_defs", "disallow_untyped_calls", "disallow_any_generics",
    "warn_return_any", "check_untyped_defs", "no_implicit_reexport", "strict_equality", "warn_unused_ignores",
}


def test_mypy_is_strict_for_every_module():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True
    relaxed = {
        module: sorted(flag for flag in STRICT_FLAGS if override.get(flag) is False)
        for override in config.get("overrides", [])
        for module in ([override["module"]] if isinstance(override["module"], str) else override["module"])
        if module.split(".")[0] == "optreg" and any(override.get(flag) is False for flag in STRICT_FLAGS)
    }
    assert relaxed == {}, f"an override makes optreg modules less strict: {relaxed}"
    silenced = [
        override["module"] for override in config.get("overrides", [])
        if any(str(module).split(".")[0] == "optreg" for module in
               ([override["module"]] if isinstance(override["module"], str) else override["module"]))
        and (override.get("ignore_errors") or override.get("disable_error_code"))
    ]
    assert silenced == [], f"an override silences mypy for optreg modules: {silenced}"


def test_the_linters_are_in_the_test_extra():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {re.match(r"[A-Za-z0-9_.-]+", requirement).group() for requirement in extra["test"]}
    assert {"ruff", "mypy"} <= names
