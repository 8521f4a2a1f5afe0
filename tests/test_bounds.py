"""Bounded inputs: every value too large or malformed to handle is refused up front, in one line."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

import optreg
from optreg.catalog.registry import PluginWarning
from optreg.cli import main
from optreg.errors import SpecError
from optreg.spec.reader import MAX_SPEC_BYTES, load_spec, load_spec_text
from tests.helpers import MY_SPEC


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_a_spec_file_beyond_the_size_limit_is_refused_unread(tmp_path):
    big = tmp_path / "big.toml"
    with big.open("w", encoding="utf-8") as handle:
        handle.write(MY_SPEC)
        handle.truncate(MAX_SPEC_BYTES + 1)  # sparse: the size is there without writing it
    with pytest.raises(SpecError, match=r"more than the limit of 1048576 \(1 MiB\)"):
        load_spec(big)
    result = invoke("validate", str(big))
    assert result.exit_code == 1 and "more than the limit" in result.output


def test_spec_text_beyond_the_size_limit_is_refused():
    with pytest.raises(SpecError, match="spec text is .* more than the limit"):
        load_spec_text(MY_SPEC + "#" * MAX_SPEC_BYTES)


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_a_device_is_not_a_spec(path, kind):
    with pytest.raises(SpecError, match=f"a spec must be a regular file, got {kind}"):
        load_spec(path)


def test_a_fifo_is_refused_by_every_command_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    with pytest.raises(SpecError, match="got a FIFO"):
        load_spec(fifo)
    for args in (
        ["validate", str(fifo)],
        ["show", str(fifo)],
        ["list", "--spec", str(fifo)],
        ["validate", str(tmp_path)],
    ):
        result = invoke(*args)
        assert result.exit_code == 1 and "a spec must be a regular file, got a FIFO" in result.output, args


def test_a_fifo_on_the_spec_path_is_a_plugin_failure_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    registry = optreg.Registry(environ={"OPTREG_SPEC_PATH": str(fifo), "OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"})
    with pytest.warns(PluginWarning, match="a spec must be a regular file, got a FIFO"):
        assert "adam" in registry.names()


def test_a_folder_named_like_a_spec_is_refused(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(SpecError, match="got a folder"):
        load_spec(tmp_path / "folder.toml")
    with pytest.raises(SpecError, match="got a folder"):
        optreg.registry.get(str(tmp_path / "folder.toml"))


def test_an_iteration_limit_beyond_the_int32_counter_is_refused_with_the_limit():
    from optreg.bench.runner import MAX_ITERATIONS, plan_bench
    from optreg.errors import OptionError

    result = invoke("bench", "adam", "--max-iters", "1000000000000")
    assert result.exit_code == 2 and "1<=x<=2147483647" in result.output
    with pytest.raises(OptionError, match="max_iters must be between 1 and 2147483647"):
        plan_bench(optreg.registry, ["adam"], "quartic", [{}], MAX_ITERATIONS + 1)
    assert plan_bench(optreg.registry, ["adam"], "quartic", [{}], MAX_ITERATIONS).max_iters == 2**31 - 1


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("", False),
    ],
)
def test_boolean_settings_take_the_usual_spellings(value, expected):
    from optreg.settings import BOOLEAN_SETTINGS, env_flag

    assert all(env_flag(name, {name: value}) is expected for name in BOOLEAN_SETTINGS)


def test_strict_plugins_true_is_strict(tmp_path):
    (tmp_path / "bad.toml").write_text(MY_SPEC.replace("* grad", "* grad.sum()"), encoding="utf-8")
    environ = {"OPTREG_STRICT_PLUGINS": "true", "OPTREG_DISABLE_PLUGIN_AUTOLOAD": "yes"}
    with pytest.raises(optreg.PluginError, match="bad.toml"):
        optreg.Registry(spec_paths=[str(tmp_path)], environ=environ).names()
    lenient = optreg.Registry(spec_paths=[str(tmp_path)], environ={**environ, "OPTREG_STRICT_PLUGINS": "off"})
    with pytest.warns(PluginWarning, match="bad.toml"):
        assert "adam" in lenient.names()


@pytest.mark.parametrize("name", ["OPTREG_STRICT_PLUGINS", "OPTREG_DEBUG", "OPTREG_DISABLE_PLUGIN_AUTOLOAD"])
def test_a_malformed_boolean_setting_is_one_error_naming_it(name):
    result = CliRunner().invoke(main, ["list"], env={name: "maybe"})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line == f"optreg: error: {name} must be 1/0, true/false, yes/no or on/off, got 'maybe'"


@pytest.mark.parametrize(
    "problem, setting, message",
    [
        ("quadratic", "condition=nan", "problem 'quadratic' option condition must be finite, got nan"),
        ("quadratic", "condition=inf", "problem 'quadratic' option condition must be finite, got inf"),
        ("quadratic", "dimension=2.5", "problem 'quadratic' option dimension must be a whole number, got 2.5"),
        ("quadratic", "dimension=true", "problem 'quadratic' option dimension must be a number, got True"),
        ("quadratic", "dimension=1e9", "quadratic needs 1 <= dimension <= 1000000"),
        ("mlp-regression", "hidden=1e9", "mlp-regression needs 1 <= hidden <= 83333"),
        ("mlp-regression", "seed=1e12", "mlp-regression needs a seed that fits in int32"),
    ],
)
def test_problem_options_are_checked_before_anything_runs(problem, setting, message):
    result = invoke("bench", "adam", "--problem", problem, "--problem-set", setting)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("optreg: error: ") and message in line


def test_problem_options_of_the_right_type_are_converted():
    from optreg.problems import MAX_DIMENSION
    from optreg.problems.analytic import QUADRATIC
    from optreg.problems.regression import MAX_HIDDEN, mlp_regression

    assert QUADRATIC.with_options(dimension=3.0).options == {"dimension": 3, "condition": 100.0}
    assert QUADRATIC.with_options(condition=4).options["condition"] == 4.0
    assert mlp_regression(hidden=4).dimension == 4 * 12 + 1  # the count MAX_HIDDEN is derived from
    assert MAX_HIDDEN * 12 + 1 <= MAX_DIMENSION < (MAX_HIDDEN + 1) * 12 + 1


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--lr", "logspace:1e-4:1e-1:100000", "--lr", "logspace:1e-4:1e-1:100000"],
            "the --lr and --set values make 200000 runs, more than the limit of 100000",
        ),
        (
            ["--lr", "logspace:1e-4:1e-1:100000", "--set", "beta_1=linspace:0.1:0.9:100000"],
            "the --lr and --set values make 10000000000 runs, more than the limit of 100000",
        ),
        (
            ["--lr", "logspace:1e-4:1e-1:60000", "--problem", "quartic", "--problem", "booth"],
            "the optimizers, problems and settings make 120000 runs, more than the limit of 100000",
        ),
        (
            ["--history-every", "1", "--max-iters", "1000000000"],
            "the history of quartic would take 8000000016 bytes "
            "(1000000002 recorded points × 1 runs × (dimension 1 + 1) × 4), more than the limit of 1073741824 (1 GiB)",
        ),
        (
            ["--lr", "linspace:0.1:1:1000", "--problem", "quadratic", "--problem-set", "dimension=1000000"],
            "the parameters of quadratic would take 4000000000 bytes (1000 runs × dimension 1000000 × 4)",
        ),
    ],
)
def test_a_bench_too_big_to_hold_is_refused_saying_how_big(args, message):
    result = invoke("bench", "adam", *args)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("optreg: error: ") and message in line


def test_a_bench_at_the_limits_is_planned():
    from optreg.bench.grid import MAX_RUNS, settings_grid
    from optreg.bench.runner import plan_bench

    grid = settings_grid([f"logspace:1e-4:1e-1:{MAX_RUNS}"], [])
    assert plan_bench(optreg.registry, ["adam"], "quartic", grid, history_every=0).run_count == MAX_RUNS
    assert plan_bench(optreg.registry, ["adam"], "quartic", [{}], 10**6, history_every=1).history_every == 1
