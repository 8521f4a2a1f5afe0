"""Rebuilding optimizers from configs (:mod:`optreg.runtime.configs`): a spec optimizer's config rebuilds
from its spec's text; a Python optimizer's goes through the catalogue by its registered name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optreg.errors import OptionError
from optreg.model.schedules import schedule_from_config
from optreg.runtime.configs import CONFIG_KEYS
from optreg.runtime.optimizer import Optimizer
from optreg.runtime.spec_optimizer import SpecOptimizer
from optreg.spec.reader import load_spec_text


def optimizer_from_config(config: Mapping[str, Any], registry: Any) -> Optimizer:
    """Rebuild an optimizer from :func:`~optreg.runtime.configs.optimizer_config`'s dict.

    Args:
        config: the config.
        registry: where to find Python optimizers by registered name (an :class:`optreg.Registry`).

    Returns:
        A new :class:`optreg.Optimizer` with the same hyperparameters and options, and fresh state.

    Raises:
        OptregError: the config names an optimizer that cannot be found or built.
    """
    check_config(config)
    hyperparameters = {
        name: schedule_from_config(value, name) for name, value in config.get("hyperparameters", {}).items()
    }
    kwargs = {**hyperparameters, **config.get("options", {}), "name": config.get("name")}
    if config.get("spec"):
        spec = load_spec_text(config["spec"], source=f"<config of {config['optimizer']}>")
        if spec.name != config["optimizer"]:
            raise OptionError(
                f"optimizer config key 'optimizer' says {config['optimizer']!r}, but its spec defines {spec.name!r}"
            )
        optimizer = SpecOptimizer(spec, **kwargs)
        optimizer.registry_source = config.get("source") or ""
        return optimizer
    name = config["optimizer"]
    qualified = f"{config['source']}:{name}" if config.get("source") else name
    rebuilt: Optimizer = registry.create(qualified, **kwargs)
    return rebuilt


#: Each config key → the types its value may have when present (``type(None)``: it may be null).
CONFIG_TYPES: Mapping[str, tuple[type, ...]] = {
    "optimizer": (str,),
    "source": (str, type(None)),
    "hyperparameters": (Mapping,),
    "options": (Mapping,),
    "name": (str, type(None)),
    "spec": (str, type(None)),
}


def check_config(config: Any) -> None:
    """Check a config's shape before anything is read from it: a mapping with only the
    :data:`~optreg.runtime.configs.CONFIG_KEYS`, a non-empty ``optimizer`` name, and each key's value of
    the type in :data:`CONFIG_TYPES`.

    Raises:
        OptionError: one line naming the key at fault.

    Example:
        >>> check_config({"optimizer": "sgd", "spec": 3})
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: optimizer config key 'spec' must be str or None, got int
    """
    if not isinstance(config, Mapping):
        raise OptionError(f"an optimizer config must be a dict, got {type(config).__name__}")
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise OptionError(f"optimizer config has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    if not config.get("optimizer"):
        raise OptionError("optimizer config key 'optimizer' is missing: it names the optimizer to rebuild")
    for key, types in CONFIG_TYPES.items():
        if key in config and not isinstance(config[key], types):
            allowed = " or ".join("None" if kind is type(None) else kind.__name__ for kind in types)
            raise OptionError(f"optimizer config key {key!r} must be {allowed}, got {type(config[key]).__name__}")
