"""The registry: every optimizer and loss problem the plugins provide, discovered lazily.

``from optreg import registry`` gives the default registry. Nothing is discovered until it is
first asked for something, and discovery reads spec files, definitions and problem records
only: it never imports TensorFlow. Creating an optimizer does.

A plugin that fails is reported as a :class:`PluginWarning` (and kept in
:attr:`Registry.failures`); with ``OPTREG_STRICT_PLUGINS=1`` discovery raises
:class:`~optreg.errors.PluginError` instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optreg.catalog.discovery import Discovery, discover
from optreg.catalog.entries import OptimizerEntry
from optreg.catalog.names import Catalog
from optreg.errors import PluginError
from optreg.plugins.host import PluginFailure, PluginHost
from optreg.problems import Problem
from optreg.settings import env_flag
from optreg.spec.reader import load_spec


class PluginWarning(UserWarning):
    """A plugin failed to load, or part of it did; the rest of optreg works without it."""


class Registry(Catalog[OptimizerEntry]):
    """The optimizers (and, under :attr:`problems`, the loss problems) plugins provide.

    Args:
        spec_paths: extra spec files or folders, as ``--spec`` gives them.
        environ: where to read ``OPTREG_*`` settings from (default: ``os.environ`` at discovery).
        host: builds the plugin host; for tests that need their own plugins.

    Example:
        >>> from optreg import registry
        >>> registry.get("adam").defaults()["beta_1"]
        0.9
        >>> opt = registry.create("adam", learning_rate=0.1)  # doctest: +SKIP
    """

    def __init__(
        self,
        spec_paths: Sequence[str | Path] = (),
        environ: Mapping[str, str] | None = None,
        host: Callable[[], PluginHost] | None = None,
    ):
        super().__init__("optimizer", lambda: self.discovery.optimizers)
        self._spec_paths = tuple(spec_paths)
        self._environ = environ
        self._host = host
        self._discovery: Discovery | None = None
        self.problems: Catalog[Problem] = Catalog("problem", lambda: self.discovery.problems)

    @property
    def discovery(self) -> Discovery:
        """What the plugins provided; discovered on first access, warning of each failure.

        Raises:
            PluginError: with ``OPTREG_STRICT_PLUGINS=1``, when any plugin failed.
        """
        if self._discovery is None:
            environ = dict(os.environ if self._environ is None else self._environ)
            host = self._host() if self._host else PluginHost(self._spec_paths, environ)
            found = discover(host)
            if env_flag("OPTREG_STRICT_PLUGINS", environ) and found.failures:
                raise PluginError("; ".join(str(f) for f in found.failures))
            self._discovery = found
            for failure in found.failures:
                warnings.warn(str(failure), PluginWarning, stacklevel=3)
        return self._discovery

    @property
    def failures(self) -> tuple[PluginFailure, ...]:
        """What went wrong while discovering plugins (empty when all is well)."""
        return self.discovery.failures

    def get(self, name: str) -> OptimizerEntry:
        """A registered optimizer by short or qualified name; a name ending in ``.toml`` is a
        spec file, loaded as it is now (source ``local``), registered or not.

        Raises:
            UnknownNameError: no optimizer of that name.
            AmbiguousNameError: several sources define that short name.
            SpecError: the spec file is missing or invalid.

        Example:
            >>> registry.get("specs/momentum.toml").defaults()  # doctest: +SKIP
            {'learning_rate': 0.01, 'momentum': 0.7}
        """
        if str(name).endswith(".toml"):
            return OptimizerEntry.from_spec(load_spec(name), "local")
        return super().get(name)

    def create(self, optimizer: str, /, **kwargs: Any) -> Any:
        """Build a registered optimizer.

        Args:
            optimizer: the optimizer's short name, its qualified ``SOURCE:NAME``, or the path of
                a spec file (ending in ``.toml``).
            **kwargs: hyperparameters and optimizer options (``clipnorm``, …, and ``name``,
                the module's name).

        Returns:
            An :class:`optreg.Optimizer` (a ``tf.Module``).

        Raises:
            UnknownNameError: no optimizer of that name.
            AmbiguousNameError: several sources define that short name.
            HyperparameterError: an unknown hyperparameter or a value out of bounds.

        Example:
            >>> opt = registry.create("momentum", learning_rate=0.01)  # doctest: +SKIP
            >>> opt = registry.create("specs/my_opt.toml", learning_rate=0.01)  # doctest: +SKIP
        """
        return self.get(optimizer).build(**kwargs)
