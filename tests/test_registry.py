"""The registry: discovery, lookup, creation and its errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import optreg
from optreg.catalog.registry import Registry


def test_names_are_sorted_and_hold_the_seed_optimizers():
    names = optreg.registry.names()
    assert names == sorted(names)
    assert {"adam", "gradient_descent", "momentum", "sgd"} <= set(names)


def test_entries_carry_source_summary_and_defaults():
    entry = optreg.registry.get("momentum")
    assert entry.source == "builtin"
    assert "momentum" in entry.summary.lower()
    assert entry.defaults() == {"learning_rate": 1e-3, "momentum": 0.7}
    assert optreg.registry.get("sgd").defaults() == {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}
    assert optreg.registry.get("adam").defaults() == {
        "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False,
    }


def test_unknown_optimizer_suggests_close_matches():
    with pytest.raises(optreg.UnknownNameError, match=r"unknown optimizer 'momentun'; did you mean 'momentum'\?"):
        optreg.registry.get("momentun")
    with pytest.raises(optreg.UnknownNameError, match="unknown problem 'quartc'"):
        optreg.registry.problems.get("quartc")


def test_create_applies_hyperparameters():
    opt = optreg.registry.create("adam", learning_rate=0.1, beta_2=0.99)
    assert opt.hyperparameters == {
        "learning_rate": 0.1,
        "beta_1": 0.9,
        "beta_2": 0.99,
        "epsilon": 1e-7,
        "amsgrad": False,
    }
    assert opt.optimizer_name == "adam"


def test_unknown_hyperparameter_names_what_is_accepted():
    with pytest.raises(
        optreg.HyperparameterError, match="has no hyperparameter 'beta_3'; it accepts: learning_rate, beta_1"
    ):
        optreg.registry.create("adam", beta_3=0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": -0.1}, "learning_rate must be at least 0.0"),
        ({"beta_1": 1.5}, "beta_1 must be at most 1.0"),
        ({"beta_1": "high"}, "beta_1 must be a number"),
        ({"epsilon": float("inf")}, "epsilon must be finite"),
    ],
)
def test_out_of_bounds_hyperparameter_names_the_bound(kwargs, message):
    with pytest.raises(optreg.HyperparameterError, match=message):
        optreg.registry.create("adam", **kwargs)


def test_assignment_is_checked_against_the_bounds():
    opt = optreg.registry.create("momentum")
    with pytest.raises(optreg.HyperparameterError, match="momentum must be at most 1.0"):
        opt.momentum = 2.0
    opt.momentum = 0.25
    assert opt.get_hyperparameter("momentum") == 0.25


def test_bool_hyperparameters_must_be_bools():
    with pytest.raises(optreg.HyperparameterError, match="nesterov must be true or false"):
        optreg.registry.create("sgd", nesterov=1)


def test_quartic_problem_is_the_tutorials():
    problem = optreg.registry.problems.get("quartic")
    assert problem.start == (2.0,)
    assert problem.minimum == (-1.125,)
    assert problem.loss(np.array([2.0])) == 2 * 16 + 3 * 8 + 2
    np.testing.assert_array_equal(problem.loss(np.array([[2.0], [0.0]])), [2 * 16 + 3 * 8 + 2, 2])


def test_discovery_is_lazy_and_needs_no_tensorflow():
    code = (
        "import sys, optreg\n"
        "assert optreg.registry._discovery is None\n"
        "names = optreg.registry.names()\n"
        "optreg.registry.get('adam'); optreg.registry.problems.names()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print(','.join(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "adam" in out.stdout


def test_spec_paths_add_local_optimizers(tmp_path):
    spec = optreg.registry.get("momentum").spec
    text = open(spec.source, encoding="utf-8").read().replace('name = "momentum"', 'name = "my_momentum"')
    (tmp_path / "my_momentum.toml").write_text(text, encoding="utf-8")
    from_argument = Registry(spec_paths=[tmp_path / "my_momentum.toml"])
    from_environment = Registry(environ={"OPTREG_SPEC_PATH": str(tmp_path), "OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"})
    for registry in (from_argument, from_environment):
        entry = registry.get("my_momentum")
        assert (entry.source, entry.qualified_name) == ("local", "local:my_momentum")
        assert registry.get("local:my_momentum") is entry
        assert "adam" in registry.names()


def test_lazy_tensorflow_classes_are_reachable_from_the_package():
    assert issubclass(optreg.SpecOptimizer, optreg.Optimizer)
    with pytest.raises(AttributeError):
        _ = optreg.NoSuchThing
