"""Rebuilding optimizers from configs (:mod:`optreg.configs`): a spec optimizer's config rebuilds
from its spec's text; a Python optimizer's goes through the catalogue by its registered name.
"""

from __future__ import annotations

from typing import Any, Mapping

from optreg.configs import CONFIG_KEYS
from optreg.errors import OptionError
from optreg.schedules import schedule_from_config
from optreg.spec_optimizer import SpecOptimizer
from optreg.spec_reader import load_spec_text


def optimizer_from_config(config: Mapping[str, Any], registry: Any):
    """Rebuild an optimizer from :func:`~optreg.configs.optimizer_config`'s dict.

    Args:
        config: the config.
        registry: where to find Python optimizers by registered name (an :class:`optreg.Registry`).

    Returns:
        A new :class:`optreg.Optimizer` with the same hyperparameters and options, and fresh state.

    Raises:
        OptregError: the config names an optimizer that cannot be found or built.
    """
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise OptionError(f"optimizer config has unknown keys: {', '.join(sorted(unknown))}")
    hyperparameters = {name: schedule_from_config(value) for name, value in config.get("hyperparameters", {}).items()}
    kwargs = {**hyperparameters, **config.get("options", {}), "name": config.get("name")}
    if config.get("spec"):
        optimizer = SpecOptimizer(load_spec_text(config["spec"], source=f"<config of {config['optimizer']}>"), **kwargs)
        optimizer.registry_source = config.get("source") or ""
        return optimizer
    name = config["optimizer"]
    qualified = f"{config['source']}:{name}" if config.get("source") else name
    return registry.create(qualified, **kwargs)
