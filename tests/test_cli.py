"""The optreg command: list, show, bench and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from optreg.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_list_table_names_every_optimizer():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "source", "summary"]
    assert [line.split()[0] for line in lines[1:]] == ["adam", "gradient_descent", "momentum", "sgd"]


def test_list_json_has_name_source_summary_and_defaults():
    records = json.loads(invoke("list", "--format", "json").output)
    adam = next(r for r in records if r["name"] == "adam")
    assert adam["source"] == "builtin"
    assert adam["summary"]
    assert adam["hyperparameters"]["beta_2"] == 0.999


def test_show_text_and_json():
    text = invoke("show", "momentum").output
    assert "delta = learning_rate * grad + momentum * delta" in text
    assert "momentum = 0.7 (float, in [0, 1])" in text
    record = json.loads(invoke("show", "adam", "--format", "json").output)
    assert record["file"].endswith("adam.toml")
    assert [s["name"] for s in record["slots"]] == ["m", "v"]
    assert record["rule"][-1] == "var = var - alpha * m / (sqrt(v) + epsilon)"


def test_bench_json_reproduces_the_tutorial_rows():
    result = invoke("bench", "momentum", "adam", "--lr", "0.01", "--lr", "0.1", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [(r["optimizer"], r["hyperparameters"]["learning_rate"], r["status"], r["iterations"]) for r in json.loads(result.output)]
    assert rows == [
        ("momentum", 0.01, "converged", 80),
        ("momentum", 0.1, "exploded", 6),
        ("adam", 0.01, "exceeded", 2000),
        ("adam", 0.1, "converged", 1156),
    ]


def test_bench_set_and_csv():
    result = invoke("bench", "sgd", "--lr", "0.01", "--set", "momentum=0.5,0.9", "--max-iters", "50", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3 and lines[0].startswith("optimizer,problem,status")


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "adma"], "unknown optimizer 'adma'; did you mean 'adam'?"),
        (["bench", "adam", "--problem", "quartc"], "unknown problem 'quartc'"),
        (["bench", "adam", "--set", "beta_1=2"], "beta_1 must be at most 1.0"),
        (["bench", "adam", "--set", "beta_1"], "--set expects NAME=VALUE"),
        (["bench", "momentum", "--set", "nesterov=true"], "has no hyperparameter 'nesterov'"),
    ],
)
def test_user_errors_are_one_line_with_status_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("optreg: error: ") and message in line


def test_optreg_debug_shows_the_traceback():
    env = {**os.environ, "OPTREG_DEBUG": "1"}
    result = subprocess.run([sys.executable, "-m", "optreg", "show", "adma"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UnknownNameError" in result.stderr


@pytest.mark.parametrize("command", [["list"], ["list", "--format", "json"], ["show", "adam"], ["--help"]])
def test_commands_that_need_no_math_never_import_tensorflow(command):
    code = (
        "import sys\n"
        "from optreg.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
