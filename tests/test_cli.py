"""The optreg command: list, show, bench and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import optreg
from optreg.cli import main
from tests.helpers import MY_SPEC


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_list_table_names_every_optimizer():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "source", "summary", "reference"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == sorted(entry.name for entry in optreg.registry)
    assert {"adam", "gradient_descent", "momentum", "sgd", "lookahead"} <= set(names)


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
    assert [s["name"] for s in record["slots"]] == ["m", "v", "vhat"]
    assert record["rule"][-1] == "var = var - alpha * m / (sqrt(where(amsgrad, vhat, v)) + epsilon)"
    assert record["slots"][2]["when"] == "amsgrad"


def test_show_prints_a_specs_convention_notes(tmp_path):
    """``[optimizer] notes`` are shown after the references, in text and JSON, and a spec
    without them shows none."""
    noted = MY_SPEC.replace('summary = ', 'notes = ["eps outside the root", "decay as optax"]\nsummary = ', 1)
    (tmp_path / "my_opt.toml").write_text(noted, encoding="utf-8")
    text = invoke("show", "--spec", str(tmp_path), "my_opt").output
    assert "  note: eps outside the root\n  note: decay as optax\nhyperparameters:" in text
    record = json.loads(invoke("show", "--spec", str(tmp_path), "my_opt", "--format", "json").output)
    assert record["notes"] == ["eps outside the root", "decay as optax"]
    assert "note:" not in invoke("show", "momentum").output


def test_bench_json_reproduces_the_tutorial_rows():
    result = invoke("bench", "momentum", "adam", "--lr", "0.01", "--lr", "0.1", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [
        (r["optimizer"], r["hyperparameters"]["learning_rate"], r["status"], r["iterations"])
        for r in json.loads(result.output)
    ]
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
    assert len(lines) == 3 and lines[0].startswith("schema_version,optimizer,problem,settings")


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "momentun"], "unknown optimizer 'momentun'; did you mean 'momentum'?"),
        (["bench", "adam", "--problem", "quartc"], "unknown problem 'quartc'"),
        (["bench", "adam", "--set", "beta_1=2"], "beta_1 must be at most 1.0"),
        (["bench", "adam", "--set", "beta_1"], "--set expects NAME=VALUE"),
        (["bench", "momentum", "--set", "nesterov=true"], "has no hyperparameter 'nesterov'"),
        (["bench", "adam", "--lr", "nan"], "learning_rate must be finite, got nan"),
        (["bench", "adam", "--set", "clipnorm=-1"], "clipnorm must be a finite number > 0, got -1"),
        (["bench", "adam", "--set", "clipnorm=1", "--set", "clipvalue=1"], "set at most one of clipnorm"),
        (["bench", "adam", "--set", "skip_nonfinite=maybe"], "skip_nonfinite must be true or false, got 'maybe'"),
        (["show", "builtin:momentun"], "unknown optimizer 'builtin:momentun'; did you mean 'builtin:momentum'"),
    ],
)
def test_user_errors_are_one_line_with_status_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("optreg: error: ") and message in line


def test_optreg_debug_shows_the_traceback():
    env = {**os.environ, "OPTREG_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "optreg", "show", "momentun"], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UnknownNameError" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["list", "--format", "json"],
        ["show", "adam"],
        ["plugins"],
        ["problems"],
        ["validate", "specs"],
        ["--help"],
    ],
)
def test_commands_that_need_no_math_never_import_tensorflow(command):
    code = (
        "import sys\n"
        "from optreg.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr



def test_bench_a_spec_the_moment_it_is_written(tmp_path):
    (tmp_path / "my_opt.toml").write_text(MY_SPEC, encoding="utf-8")
    result = invoke("bench", "--spec", str(tmp_path / "my_opt.toml"), "my_opt", "--lr", "0.02", "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)[0]
    assert record["optimizer"] == "my_opt" and record["hyperparameters"] == {"learning_rate": 0.02}
    listing = json.loads(invoke("list", "--spec", str(tmp_path), "--format", "json").output)
    assert {"name": "my_opt", "source": "local"}.items() <= next(r for r in listing if r["name"] == "my_opt").items()


def test_a_spec_edited_and_benched_again_in_the_same_process_runs_as_edited(tmp_path):
    spec = tmp_path / "my_opt.toml"
    finals = []
    for factor in ("0.5", "2"):
        spec.write_text(MY_SPEC.replace("0.5 *", f"{factor} *"), encoding="utf-8")
        result = invoke("bench", "--spec", str(spec), "my_opt", "--max-iters", "3", "--format", "json")
        assert result.exit_code == 0, result.output
        finals.append(json.loads(result.output)[0]["final_params"])
    assert finals[0] != finals[1]


def test_a_shape_error_when_benched_is_one_line_naming_the_spec_line(tmp_path):
    """matmul(grad, grad) passes validate (a square matrix runs it), but the quartic's parameter
    is a vector: the bench fails when it traces the rule, and says where in one line."""
    spec = tmp_path / "my_opt.toml"
    spec.write_text(
        MY_SPEC.replace(
            'rule = ["var = var - 0.5 * learning_rate * grad"]',
            'rule = [\n  "g2 = matmul(grad, grad)",\n  "var = var - learning_rate * g2",\n]',
        ),
        encoding="utf-8",
    )
    assert invoke("validate", str(spec)).exit_code == 0
    result = invoke("bench", "--spec", str(spec), "my_opt")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f'optreg: error: {spec}:11: [update] rule line 1 "g2 = matmul(grad, grad)": matmul(grad, grad): '
    )
    assert "rank 1" in line and line.endswith("(for a float32 variable of shape [1])")


def test_validate_reports_each_file_and_exits_1_on_any_error(tmp_path):
    (tmp_path / "good.toml").write_text(MY_SPEC, encoding="utf-8")
    (tmp_path / "bad.toml").write_text(MY_SPEC.replace("* grad", "* grad.sum()"), encoding="utf-8")
    result = invoke("validate", str(tmp_path / "good.toml"), str(tmp_path / "bad.toml"), str(tmp_path / "missing.toml"))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"{tmp_path / 'good.toml'}: ok"
    assert lines[1] == (
        f"{tmp_path / 'bad.toml'}:10: [update.rule[0]] only functions of the table may be called, not attribute access"
    )
    assert lines[2] == f"{tmp_path / 'missing.toml'}: no such file"
    assert invoke("validate", str(tmp_path / "good.toml")).exit_code == 0


def test_validate_prints_every_error_of_a_file_one_line_each(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        MY_SPEC.replace("min = 0.0", "min = 0.0, colour = 1").replace(
            'rule = ["var = var - 0.5 * learning_rate * grad"]', 'rule = ["d = gard % 2", "var = var - d // 2"]'
        ),
        encoding="utf-8",
    )
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:7: [hyperparameters.learning_rate.colour] unknown key 'colour'; "
        "allowed: default, doc, fixed, inf, max, min, none, type",
        f"{bad}:10: [update.rule[0]] undefined name 'gard'",
        f"{bad}:10: [update.rule[1]] operator '//' is not in the language",
    ]


def test_validate_finds_a_shape_error_without_running_it(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        MY_SPEC.replace("0.5 * learning_rate * grad", "where(rank(var) < 2, matmul(grad, grad), grad)"),
        encoding="utf-8",
    )
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:10: [update.rule[0]] matmul(grad, grad): matmul needs arguments of rank >= 2, "
        "but grad has rank 0 or 1 wherever it is built (variables of rank 0, 1)"
    ]


def test_a_spec_named_with_spec_reports_every_error(tmp_path):
    (tmp_path / "bad.toml").write_text(
        MY_SPEC.replace("default = 0.01", "default = -1").replace("* grad", "* gard"), encoding="utf-8"
    )
    result = invoke("bench", "--spec", str(tmp_path / "bad.toml"), "my_opt")
    assert result.exit_code == 1
    assert [line.split("] ")[0] for line in result.stderr.splitlines()] == [
        f"optreg: error: {tmp_path / 'bad.toml'}:7: [hyperparameters.learning_rate",
        f"optreg: error: {tmp_path / 'bad.toml'}:10: [update.rule[0]",
    ]


def test_validate_accepts_the_builtin_folder():
    from optreg.plugins.builtin import builtin_spec_dir

    result = invoke("validate", str(builtin_spec_dir()))
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == len(list(builtin_spec_dir().glob("*.toml")))


def test_plugins_lists_the_builtin_plugin():
    records = json.loads(invoke("plugins", "--format", "json").output)
    (builtin,) = records
    assert builtin["name"] == "builtin" and builtin["distribution"] == "optreg"
    assert builtin["hooks"] == ["optreg_register_optimizers", "optreg_register_problems", "optreg_spec_paths"]
    assert "builtin:lookahead" in builtin["registered"]
    assert "builtin:adam" in builtin["registered"] and "builtin:quartic" in builtin["registered"]


def test_an_invalid_spec_named_with_spec_is_an_error_not_a_warning(tmp_path):
    (tmp_path / "bad.toml").write_text(MY_SPEC.replace("default = 0.01", "default = -1"), encoding="utf-8")
    result = invoke("bench", "--spec", str(tmp_path / "bad.toml"), "my_opt")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"optreg: error: {tmp_path / 'bad.toml'}:7: [hyperparameters.learning_rate] "
        "default: learning_rate must be at least 0.0, got -1"
    )


def test_problems_lists_the_quartic_and_the_classic_test_functions():
    problems = {p["name"]: p for p in json.loads(invoke("problems", "--format", "json").output)}
    assert set(problems) == {
        "quartic", "quadratic", "rosenbrock", "beale", "booth", "himmelblau", "rastrigin", "mlp-regression",
        "digits-mlp", "digits-cnn", "logistic-regression", "noisy-quadratic", "autoencoder", "char-lm",
    }
    assert problems["quartic"] == {
        "name": "quartic", "source": "builtin", "summary": problems["quartic"]["summary"], "start": [2.0],
        "minimum": [-1.125], "minimum_loss": 0.93212890625, "tolerance": 1e-5, "options": {},
    }
    assert problems["quadratic"]["options"] == {"dimension": 10, "condition": 100.0}
    rows = [line.split()[:3] for line in invoke("problems").output.splitlines()[1:]]
    assert ["quartic", "builtin", "1"] in rows


def test_the_catalogue_lists_at_least_thirty_optimizers_each_with_a_summary_and_a_reference():
    records = json.loads(invoke("list", "--format", "json").output)
    assert len(records) >= 30
    for record in records:
        assert record["summary"] and record["references"], record["name"]
    rows = invoke("list").output.splitlines()
    assert rows[0].split()[-1] == "reference"
    assert "Kingma & Ba 2015" in next(row for row in rows if row.startswith("adam "))


@pytest.mark.parametrize("name", ["rmsprop", "lamb", "adafactor", "signum"])
def test_show_prints_the_rule(name):
    text = invoke("show", name).output
    rule = text.split("update rule:\n", 1)[1]
    assert rule.strip() and all(line.startswith("  ") and " = " in line for line in rule.splitlines())


def test_a_folder_with_one_bad_spec_warns_and_loads_the_rest(tmp_path, monkeypatch):
    (tmp_path / "my_opt.toml").write_text(MY_SPEC, encoding="utf-8")
    (tmp_path / "broken.toml").write_text("[optimizer]\nname = 'broken'\n", encoding="utf-8")
    result = invoke("list", "--spec", str(tmp_path), "my_opt")
    assert result.exit_code == 0, result.output
    assert "my_opt" in result.stdout
    assert result.stderr.count("\n") == 1 and "warning" in result.stderr and "broken.toml" in result.stderr
    monkeypatch.setenv("OPTREG_STRICT_PLUGINS", "1")
    strict = invoke("list", "--spec", str(tmp_path), "my_opt")
    assert strict.exit_code == 1 and "broken.toml" in strict.stderr


def test_every_option_of_every_command_has_help_text():
    import click

    missing = [
        f"{name} {param.opts[0]}"
        for name, command in main.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert not missing


@pytest.mark.parametrize("width", [80, 120])
def test_list_fits_the_terminal(width):
    from optreg.catalog import show

    lines = show.list_table(optreg.registry, width).splitlines()
    assert all(len(line) <= width for line in lines)
    assert {line.split()[0] for line in lines[1:]} == {entry.name for entry in optreg.registry}


def test_a_spec_file_builds_from_python_in_one_call(tmp_path):
    import tensorflow as tf

    path = tmp_path / "my_opt.toml"
    path.write_text(MY_SPEC, encoding="utf-8")
    opt = optreg.registry.create(str(path), learning_rate=0.5)
    x = tf.Variable([1.0, -2.0])
    opt.apply_gradients([(tf.constant([1.0, 1.0]), x)])
    reference = optreg.SpecOptimizer(optreg.load_spec(path), learning_rate=0.5)
    y = tf.Variable([1.0, -2.0])
    reference.apply_gradients([(tf.constant([1.0, 1.0]), y)])
    assert opt.optimizer_name == "my_opt" and x.numpy().tolist() == y.numpy().tolist() != [1.0, -2.0]
