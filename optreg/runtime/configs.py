"""An optimizer's config: the plain dict :meth:`optreg.Optimizer.get_config` returns.

It holds the optimizer's registered name, its hyperparameter values (a scheduled one as
``{"schedule": <Keras's serialization>}``), its options (``clipnorm``, ``weight_decay``,
``use_ema``, …, those that differ from their defaults, and every option the spec's ``[options]``
table sets) and its module name. A spec optimizer's config also holds the spec's TOML text, so
it rebuilds exactly, even on a machine that has never seen the file
(:mod:`optreg.serialization` rebuilds it).
"""

from __future__ import annotations

from typing import Any

import attrs

from optreg.model.schedules import schedule_config

#: The keys of every config.
CONFIG_KEYS = ("optimizer", "source", "hyperparameters", "options", "name", "spec")


def optimizer_config(optimizer: Any) -> dict[str, Any]:
    """The config of an optreg optimizer (eager only: it reads hyperparameter values).

    Example:
        >>> import optreg
        >>> config = optimizer_config(optreg.registry.create("sgd", momentum=0.9))  # doctest: +SKIP
        >>> config["hyperparameters"]["momentum"]  # doctest: +SKIP
        0.9
    """
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
            **({"sparse_updates": optimizer.sparse_updates} if optimizer.sparse_updates != "exact" else {}),
        },
        "name": optimizer.name,
        "spec": spec.text if spec is not None and spec.text else None,
    }
