"""A sweep's settings checked and grouped as columns: the same errors, and the same groups, as
taking the settings one at a time (optreg.bench.setting_columns, optreg.bench.groups)."""

from __future__ import annotations

import math

import pytest

import optreg
from optreg.bench.groups import plan_groups
from optreg.bench.runner import plan_bench
from optreg.bench.setting_columns import check_one_by_one, setting_blocks
from optreg.model.hyperparameters import Hyperparameter, check_values


def _error(function, *args):
    with pytest.raises(optreg.OptregError) as raised:
        function(*args)
    return type(raised.value), str(raised.value)


def _sweep(bad: dict[int, dict]) -> list[dict]:
    settings = [{"learning_rate": 1e-4 * (1 + k / 1000)} for k in range(10_000)]
    for index, setting in bad.items():
        settings[index] = setting
    return settings


@pytest.mark.parametrize(
    "bad, message",
    [
        ({7342: {"learning_rate": -1.0}}, "learning_rate must be at least 0.0, got -1.0"),
        # the first bad setting is reported, even when a later one sets other keys
        ({7342: {"learning_rate": -1.0}, 3: {"learning_rate": 0.1, "momentum": 1.5}}, "momentum must be at most 1.0"),
        ({9000: {"learning_rate": 0.1, "beta": 0.5}}, "has no hyperparameter 'beta'"),
        ({9999: {"learning_rate": 0.1, "weight_decay": -1.0}}, "weight_decay must be"),
        ({5000: {"learning_rate": True}}, "learning_rate must be a number, got True"),
        ({42: {"learning_rate": math.nan}}, "learning_rate must be finite, got nan"),
    ],
)
def test_the_first_bad_setting_of_a_big_sweep_is_reported_as_checking_it_alone_reports_it(bad, message):
    settings = _sweep(bad)
    entry = optreg.registry.get("sgd")
    planned = _error(plan_bench, optreg.registry, ["sgd"], "quartic", settings)
    assert planned == _error(check_one_by_one, entry, settings)
    assert message in planned[1]


def test_columns_are_checked_as_each_value_alone_is():
    ranged = Hyperparameter("rate", 0.1, "float", 0.0, 1.0)
    growth = Hyperparameter("growth", 1.0, "float", 1.0, infinite=True)
    count = Hyperparameter("count", 1, "int", 1)
    flag = Hyperparameter("flag", False, "bool")
    assert check_values(ranged, [0.0, 0.5, 1.0]) == [0.0, 0.5, 1.0]
    assert check_values(ranged, [0, 1]) == [0.0, 1.0] and all(type(v) is float for v in check_values(ranged, [0, 1]))
    assert check_values(growth, [1.0, math.inf]) == [1.0, math.inf]
    assert check_values(count, [1.0, 2]) == [1, 2]
    assert check_values(flag, [True, False]) == [True, False]
    for hyper, column in [(ranged, [0.5, 1.5]), (ranged, [0.5, math.inf]), (growth, [2.0, math.nan]),
                          (ranged, [0.5, False]), (flag, [True, 1]), (count, [2, 2.5])]:
        bad = next(value for value in column if _fails(hyper, value))
        assert _error(check_values, hyper, column) == _error(hyper.check, bad)


def _fails(hyper, value) -> bool:
    try:
        hyper.check(value)
    except optreg.HyperparameterError:
        return True
    return False


def test_settings_group_by_options_fixed_values_and_slots_across_blocks():
    """sgd keeps its velocity only when momentum > 0, and nesterov is fixed: settings that set
    different keys still share a group when those agree."""
    entry = optreg.registry.get("sgd")
    settings = [
        {"learning_rate": 0.1},
        {"learning_rate": 0.2, "momentum": 0.5},
        {"learning_rate": 0.3, "momentum": 0.0},
        {"learning_rate": 0.4, "nesterov": True, "momentum": 0.9},
        {"momentum": 0.9, "learning_rate": 0.5},
        {"learning_rate": 0.6, "clipnorm": 1.0},
    ]
    assert len(setting_blocks(entry, settings)) == 5
    groups = plan_groups(entry, 0, settings)
    assert [group.indices for group in groups] == [(0, 2), (1, 4), (3,), (5,)]
    assert [dict(group.options) for group in groups] == [
        {"nesterov": False, "momentum": 0.0},
        {"nesterov": False, "momentum": 0.5},
        {"nesterov": True, "momentum": 0.9},
        {"clipnorm": 1.0, "nesterov": False, "momentum": 0.0},
    ]
    assert groups[1].columns == {"learning_rate": [0.2, 0.5], "momentum": [0.5, 0.9], "nesterov": [False, False]}
    assert groups[1].settings == (settings[1], settings[4])


def test_a_hyperparameter_every_run_shares_is_held_once():
    """The stacked state holds a column of equal values as one value (its per-step arithmetic is
    done once), and keeps it one value."""
    from optreg.runtime.hyperparameter_state import HyperparameterState

    specs = (Hyperparameter("learning_rate", 0.1, min=0.0), Hyperparameter("beta", 0.9, max=1.0))
    state = HyperparameterState.create(specs, {}, "m")
    runs = state.stacked({"learning_rate": [0.1, 0.2, 0.3], "beta": [0.9] * 3}, variable_rank=2, shared={"beta"})
    assert runs.variables["learning_rate"].shape == (3, 1) and runs.variables["beta"].shape == (1, 1)
    runs.assign_runs({"learning_rate": [0.4, 0.5, 0.6], "beta": [0.5] * 3})
    assert runs.variables["beta"].numpy().tolist() == [[0.5]]
    with pytest.raises(optreg.OptionError, match="beta is shared by every stacked run"):
        runs.assign_runs({"learning_rate": [0.4, 0.5, 0.6], "beta": [0.5, 0.5, 0.0]})
    with pytest.raises(optreg.HyperparameterError, match="beta must be at most 1.0"):
        runs.assign_runs({"learning_rate": [0.4, 0.5, 0.6], "beta": [2.0] * 3})
    settings = [{"learning_rate": 0.1}, {"learning_rate": 0.2, "beta_1": 0.9}]
    groups = plan_groups(optreg.registry.get("adam"), 0, settings)
    assert [sorted(group.shared) for group in groups] == [["amsgrad", "beta_1", "beta_2", "epsilon"]]
    zero = plan_groups(optreg.registry.get("sgd"), 0, [{"momentum": 0.0}, {"momentum": -0.0}])
    assert "momentum" not in zero[0].shared  # 0.0 and -0.0 are equal, not the same bits
