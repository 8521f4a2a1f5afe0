"""How the TensorFlow runtime reaches the catalogue without importing it.

The runtime (:class:`optreg.Optimizer` and the built-in Python optimizers) sits below the
registry, which builds optimizers through it, so it never imports the registry: the two places
where it needs one by name — :meth:`optreg.Optimizer.from_config` for a registered optimizer's
config, and lookahead's inner optimizer given by name — call the functions installed here.
``import optreg`` installs the default registry's (the package is imported before any of its
modules, so they are always there); a program may install its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from optreg.errors import OptregError

_create: Callable[..., Any] | None = None
_from_config: Callable[[Mapping[str, Any]], Any] | None = None


def install(create: Callable[..., Any], from_config: Callable[[Mapping[str, Any]], Any]) -> None:
    """Set how optimizers are created by registered name and rebuilt from configs.

    Args:
        create: ``create(name, **kwargs)``, as :meth:`optreg.Registry.create`.
        from_config: ``from_config(config)``, as :func:`optreg.serialization.optimizer_from_config`.

    Example:
        >>> install(lambda name, **kwargs: name, lambda config: config)  # doctest: +SKIP
    """
    global _create, _from_config
    _create, _from_config = create, from_config


def create(name: str, **kwargs: Any) -> Any:
    """Create a registered optimizer by name through the installed catalogue.

    Raises:
        OptregError: nothing is installed (optreg's package was not imported).
    """
    if _create is None:
        raise OptregError("no optimizer catalogue is installed; import optreg first")
    return _create(name, **kwargs)


def from_config(config: Mapping[str, Any]) -> Any:
    """Rebuild an optimizer from its config through the installed catalogue.

    Raises:
        OptregError: nothing is installed (optreg's package was not imported).
    """
    if _from_config is None:
        raise OptregError("no optimizer catalogue is installed; import optreg first")
    return _from_config(config)
