"""Plugins arrive with a real ``pip install``: the example plugins, and faulty ones that must
not take anything else down. Each environment is a fresh venv with the packages built from
source and installed non-editable, entry points and all."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import REPO, make_venv, venv_environment

EXAMPLES = [REPO / "plugins" / "optreg-classics", REPO / "plugins" / "optreg-sam"]
FAULTY = sorted((REPO / "tests" / "plugin_fixtures").iterdir())

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def examples_venv(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("examples"), REPO, *EXAMPLES)


@pytest.fixture(scope="module")
def faulty_venv(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("faulty"), REPO, *EXAMPLES, *FAULTY)


def optreg(venv, *args, **settings):
    """Run the venv's optreg command; returns the completed process."""
    return subprocess.run(
        [str(venv / "bin" / "optreg"), *args],
        capture_output=True,
        text=True,
        env=venv_environment(**settings),
        cwd=venv,
    )


def listed(process):
    return {(r["name"], r["source"]) for r in json.loads(process.stdout)}


def test_example_plugins_are_listed_with_their_sources(examples_venv):
    result = optreg(examples_venv, "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert {
        ("qhm", "optreg-classics"),
        ("adabound", "optreg-classics"),
        ("sam", "optreg-sam"),
        ("adam", "builtin"),
    } <= listed(result)
    assert "optreg: warning" not in result.stderr


def test_each_example_plugin_optimizer_benches(examples_venv):
    result = optreg(
        # the plugin's qhm by its qualified name: qhm is a built-in too
        examples_venv, "bench", "optreg-classics:qhm", "adabound", "sam", "--problem", "three_hump_camel",
        "--lr", "0.05", "--max-iters", "500", "--format", "json",
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["optimizer"] for r in records] == ["qhm", "adabound", "sam"]
    start_loss = 2 * 0.8**2 - 1.05 * 0.8**4 + 0.8**6 / 6 + 0.8 * -0.6 + 0.6**2
    for record in records:
        assert record["status"] in ("converged", "exceeded")
        assert record["final_loss"] < start_loss / 10


def test_listing_with_plugins_installed_does_not_import_tensorflow(examples_venv):
    code = (
        "import sys\n"
        "from optreg.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit as exit:\n    assert not exit.code\n"
        "import optreg\nassert 'sam' in optreg.registry.names()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run(
        [str(examples_venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        env=venv_environment(),
        cwd=examples_venv,
    )
    assert result.returncode == 0, result.stderr


def test_plugins_command_reports_hooks_and_registrations(examples_venv):
    reports = {r["name"]: r for r in json.loads(optreg(examples_venv, "plugins", "--format", "json").stdout)}
    assert reports["classics"]["distribution"] == "optreg-classics"
    assert reports["classics"]["version"] == "0.1.0"
    assert reports["classics"]["hooks"] == ["optreg_register_problems", "optreg_spec_paths"]
    assert set(reports["classics"]["registered"]) == {
        "optreg-classics:adabound", "optreg-classics:qhm", "optreg-classics:three_hump_camel",
    }
    assert reports["sam"]["hooks"] == ["optreg_register_optimizers"]
    assert reports["sam"]["registered"] == ["optreg-sam:sam"]
    assert all(not r["errors"] for r in reports.values())


def test_a_plugin_that_fails_to_import_is_a_warning_and_nothing_else_is_lost(faulty_venv):
    result = optreg(faulty_venv, "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert (
        "optreg: warning: plugin 'broken' (optreg-broken 0.0.1): failed to import optreg_broken: "
        "RuntimeError: this plugin is broken on purpose"
    ) in result.stderr
    names = {name for name, _ in listed(result)}
    assert {"adam", "sgd", "qhm", "adabound", "sam", "sound"} <= names


def test_strict_mode_turns_plugin_failures_into_errors(faulty_venv):
    result = optreg(faulty_venv, "list", OPTREG_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "optreg: error: plugin 'broken' (optreg-broken 0.0.1): failed to import optreg_broken: "
        "RuntimeError: this plugin is broken on purpose; "
    )
    for plugin in ("badspec", "misspelled", "raising"):
        assert f"plugin '{plugin}'" in line


def test_an_invalid_spec_is_reported_with_file_and_key_and_its_siblings_load(faulty_venv):
    result = optreg(faulty_venv, "list", "--format", "json")
    (line,) = [line for line in result.stderr.splitlines() if "broken_rule.toml" in line]
    assert "plugin 'badspec' (optreg-badspec 0.0.1): invalid spec:" in line
    assert "[update.rule[0]] undefined name 'gradient'" in line
    names = {name for name, _ in listed(result)}
    assert "sound" in names and "broken_rule" not in names


def test_duplicate_short_names_are_ambiguous_and_qualified_names_work(faulty_venv):
    result = optreg(faulty_venv, "show", "momentum")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "optreg: error: optimizer 'momentum' is defined by builtin and optreg-dupe; "
        "use builtin:momentum or optreg-dupe:momentum"
    )
    assert "momentum = 0.7" in optreg(faulty_venv, "show", "builtin:momentum").stdout
    assert "momentum = 0.9" in optreg(faulty_venv, "show", "optreg-dupe:momentum").stdout
    bench = optreg(faulty_venv, "bench", "builtin:momentum", "--lr", "0.01", "--format", "json")
    assert json.loads(bench.stdout)[0]["iterations"] == 80


def test_a_misspelled_hook_is_refused_naming_the_plugin(faulty_venv):
    result = optreg(faulty_venv, "plugins")
    assert (
        "plugin 'misspelled' (optreg-misspelled 0.0.1): implements unknown hook(s) optreg_register_problem"
        in result.stderr
    )


def test_a_raising_hook_is_reported_and_the_other_problems_remain(faulty_venv):
    result = optreg(
        faulty_venv, "bench", "adam", "--problem", "three_hump_camel", "--max-iters", "5", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "plugin 'raising' (optreg-raising 0.0.1): optreg_register_problems raised ValueError: no problems today"
        in result.stderr
    )


def test_plugins_command_shows_each_plugins_errors(faulty_venv):
    reports = {r["name"]: r for r in json.loads(optreg(faulty_venv, "plugins", "--format", "json").stdout)}
    assert reports["broken"]["registered"] == [] and "RuntimeError" in reports["broken"]["errors"][0]
    assert reports["badspec"]["registered"] == ["optreg-badspec:sound"]
    assert len(reports["badspec"]["errors"]) == 1
    assert reports["classics"]["errors"] == []


def test_environment_selects_which_plugins_load(faulty_venv):
    only_classics = optreg(faulty_venv, "list", "--format", "json", OPTREG_PLUGINS="classics")
    assert only_classics.stderr.count("optreg: warning") == 0
    assert {source for _, source in listed(only_classics)} == {"builtin", "optreg-classics"}
    none = optreg(faulty_venv, "list", "--format", "json", OPTREG_DISABLE_PLUGIN_AUTOLOAD="1")
    assert {source for _, source in listed(none)} == {"builtin"}
