"""One optimizer's bench settings as columns, checked and resolved in bulk.

A sweep repeats one shape of setting over many values: 10,000 learning rates are 10,000 dicts
with the same key. Checking and resolving them one dict at a time is most of what planning such a
bench costs, so the settings are split into blocks that set the same keys (in the same order),
and each block is handled once: its names sorted into hyperparameters and options once, each
hyperparameter's values checked as one column (:func:`~optreg.model.hyperparameters.check_values`),
each distinct set of options checked once, the defaults filled in as whole columns.

The checks are those of checking every setting alone, in order: when a block finds a bad value,
the settings are checked again one by one, so the error raised is the first bad setting's, worded
as checking that setting alone words it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from optreg.catalog.entries import OptimizerEntry
from optreg.errors import HyperparameterError, OptionError
from optreg.model.hyperparameters import check_values, resolve_hyperparameters, unknown_hyperparameter_message
from optreg.model.option_values import check_spec_options
from optreg.model.options import SPEC_OPTION_NAMES, split_options

__all__ = ["SettingBlock", "check_one_by_one", "setting_blocks", "split_setting"]


@attrs.frozen
class SettingBlock:
    """Settings of one optimizer that set the same keys in the same order.

    Attributes:
        indices: the settings' places in the optimizer's list of settings, increasing.
        keys: the keys each of them sets, in their order.
        options: those of the keys that are options (a spec's options, a wrapper's inner optimizer).
        given: each key → its value in each setting, as given.
        values: every hyperparameter the optimizer accepts → its checked value in each setting
            (the default where a setting leaves it out).
    """

    indices: tuple[int, ...]
    keys: tuple[str, ...]
    options: tuple[str, ...]
    given: Mapping[str, list[Any]]
    values: Mapping[str, list[Any]]


def setting_blocks(entry: OptimizerEntry, settings: Sequence[Mapping[str, Any]]) -> list[SettingBlock]:
    """Check an optimizer's settings and resolve them over its defaults, block by block.

    Args:
        entry: the optimizer.
        settings: one dict of explicitly set hyperparameters and options per run.

    Returns:
        The blocks, in the order of their first setting.

    Raises:
        HyperparameterError: a hyperparameter the optimizer does not have, or a bad value.
        OptionError: an option it does not take, or a value that option refuses. Either is the
            error of the first bad setting, as :func:`check_one_by_one` raises it.

    Example:
        >>> from optreg import registry
        >>> (block,) = setting_blocks(registry.get("momentum"), [{"learning_rate": 0.1}, {"learning_rate": 0.2}])
        >>> block.values["learning_rate"], block.indices
        ([0.1, 0.2], (0, 1))
    """
    by_keys: dict[tuple[str, ...], list[int]] = {}
    for index, setting in enumerate(settings):
        by_keys.setdefault(tuple(setting), []).append(index)
    try:
        return [_block(entry, settings, keys, indices) for keys, indices in by_keys.items()]
    except (HyperparameterError, OptionError):
        check_one_by_one(entry, settings)  # raises the first bad setting's error
        raise


def check_one_by_one(entry: OptimizerEntry, settings: Sequence[Mapping[str, Any]]) -> None:
    """Check every setting alone, in order (what :func:`setting_blocks` checks in bulk).

    Raises:
        HyperparameterError: the first setting with a hyperparameter the optimizer does not have
            or a bad value.
        OptionError: the first setting with a bad option.

    Example:
        >>> from optreg import registry
        >>> check_one_by_one(registry.get("momentum"), [{"learning_rate": 0.1}, {"learning_rate": -1.0}])
        Traceback (most recent call last):
        ...
        optreg.errors.HyperparameterError: learning_rate must be at least 0.0, got -1.0
    """
    checked: set[str] = set()  # a sweep repeats one set of options over many values: check each set once
    for setting in settings:
        hyperparameters, options = split_setting(setting, entry)
        resolve_hyperparameters(entry.accepted_hyperparameters, hyperparameters, entry.name)
        spec_options = {k: v for k, v in options.items() if k in SPEC_OPTION_NAMES}
        if repr(spec_options) not in checked:
            check_spec_options(spec_options)
            checked.add(repr(spec_options))


def split_setting(
    setting: Mapping[str, Any], entry: OptimizerEntry | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a run's settings into hyperparameters and optimizer options: those a spec may set
    (:data:`~optreg.model.options.SPEC_OPTION_NAMES`: ``clipnorm``, ``weight_decay``, …) and a
    wrapper's inner optimizer, such as lookahead's ``inner``.

    Example:
        >>> split_setting({"learning_rate": 0.1, "clipnorm": 2.0})
        ({'learning_rate': 0.1}, {'clipnorm': 2.0})
    """
    inner = [entry.inner.keyword] if entry is not None and entry.inner else []
    return split_options(setting, names=(*SPEC_OPTION_NAMES, *inner))


def _block(
    entry: OptimizerEntry, settings: Sequence[Mapping[str, Any]], keys: tuple[str, ...], indices: list[int]
) -> SettingBlock:
    """The settings at ``indices``, which all set ``keys``: checked, their defaults filled in."""
    names, options = split_setting(dict.fromkeys(keys), entry)
    accepted = {hyper.name: hyper for hyper in entry.accepted_hyperparameters}
    for name in names:
        if name not in accepted:
            raise HyperparameterError(unknown_hyperparameter_message(entry.name, name, entry.accepted_hyperparameters))
    given = {key: [settings[index][key] for index in indices] for key in keys}
    values = {
        name: check_values(hyper, given[name]) if name in given else [hyper.default] * len(indices)
        for name, hyper in accepted.items()
    }
    spec_options = [key for key in options if key in SPEC_OPTION_NAMES]
    if spec_options:
        checked: set[str] = set()
        for row in zip(*(given[key] for key in spec_options)):
            table = dict(zip(spec_options, row))
            if repr(table) not in checked:
                check_spec_options(table)
                checked.add(repr(table))
    return SettingBlock(tuple(indices), keys, tuple(options), given, values)
