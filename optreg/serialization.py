"""Optimizer configs: plain dicts that rebuild an optimizer (``get_config`` / ``from_config``).

A config holds the optimizer's registered name, its hyperparameter values (a scheduled one as
``{"schedule": <Keras's serialization>}``), its options (``clipnorm``, ``weight_decay``,
``use_ema``, …, those that differ from their defaults, and every option the spec's ``[options]``
table sets) and its module name. A spec optimizer's config also holds
the spec's TOML text, so it rebuilds exactly, even on a machine that has never seen the file.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

CONFIG_KEYS = ("optimizer", "source", "hyperparameters", "options", "name", "spec")


def optimizer_config(optimizer) -> dict[str, Any]:
    """The config of an optreg optimizer (eager only: it reads hyperparameter values).

    Example:
        >>> import optreg
        >>> config = optimizer_config(optreg.registry.create("sgd", momentum=0.9))  # doctest: +SKIP
        >>> config["hyperparameters"]["momentum"]  # doctest: +SKIP
        0.9
    """
    from optreg.schedules import schedule_config

    spec = getattr(optimizer, "spec", None)
    scheduled = optimizer.scheduled_hyperparameters
    hyperparameters = {
        name: schedule_config(name, scheduled[name]) if name in scheduled else value
        for name, value in optimizer.hyperparameters.items()
    }
    current = {**attrs.asdict(optimizer.gradient_options), **attrs.asdict(optimizer.step_options)}
    spec_set = {name: current[name] for name in (spec.option_defaults() if spec is not None else {})}
    return {
        "optimizer": optimizer.optimizer_name,
        "source": getattr(optimizer, "registry_source", ""),
        "hyperparameters": hyperparameters,
        "options": {
            **optimizer.gradient_options.as_dict(),
            **optimizer.step_options.as_dict(),
            **spec_set,
            **({"slot_dtype": optimizer.slot_dtype} if optimizer.slot_dtype else {}),
            **({"jit_compile": optimizer.jit_compile} if optimizer.jit_compile != "auto" else {}),
        },
        "name": optimizer.name,
        "spec": spec.text if spec is not None and spec.text else None,
    }


def optimizer_from_config(config: Mapping[str, Any], registry=None):
    """Rebuild an optimizer from :func:`optimizer_config`'s dict.

    Args:
        config: the config.
        registry: where to find Python optimizers (default: optreg's registry).

    Returns:
        A new :class:`optreg.Optimizer` with the same hyperparameters and options, and fresh state.

    Raises:
        OptregError: the config names an optimizer that cannot be found or built.
    """
    from optreg.errors import OptionError

    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise OptionError(f"optimizer config has unknown keys: {', '.join(sorted(unknown))}")
    from optreg.schedules import schedule_from_config

    hyperparameters = {name: schedule_from_config(value) for name, value in config.get("hyperparameters", {}).items()}
    kwargs = {**hyperparameters, **config.get("options", {}), "name": config.get("name")}
    if config.get("spec"):
        from optreg.spec import load_spec_text
        from optreg.spec_optimizer import SpecOptimizer

        optimizer = SpecOptimizer(load_spec_text(config["spec"], source=f"<config of {config['optimizer']}>"), **kwargs)
        optimizer.registry_source = config.get("source") or ""
        return optimizer
    if registry is None:
        from optreg import registry
    name = config["optimizer"]
    qualified = f"{config['source']}:{name}" if config.get("source") else name
    return registry.create(qualified, **kwargs)
