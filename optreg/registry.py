"""The registry: every optimizer and loss problem the plugins provide, discovered lazily.

``from optreg import registry`` gives the default registry. Nothing is discovered until it is
first asked for something, and discovery reads spec files and problem records only: it never
imports TensorFlow. Creating an optimizer does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

import attrs
import pluggy

from optreg.errors import PluginError, UnknownNameError
from optreg.problems import Problem
from optreg.spec import Hyperparameter, OptimizerSpec, load_spec


@attrs.frozen
class OptimizerEntry:
    """What the registry knows of one optimizer, before anything is built.

    Attributes:
        name: the short name.
        source: the plugin that provided it (``"builtin"`` for optreg's own).
        spec: the validated spec it is built from.
    """

    name: str
    source: str
    spec: OptimizerSpec

    @property
    def summary(self) -> str:
        """One line saying what the optimizer is."""
        return self.spec.summary

    @property
    def hyperparameters(self) -> tuple[Hyperparameter, ...]:
        """The hyperparameters with their defaults, bounds and docs."""
        return self.spec.hyperparameters

    def defaults(self) -> dict[str, Any]:
        """Every hyperparameter's default, by name."""
        return self.spec.defaults()

    def build(self, **kwargs: Any):
        """Build the optimizer (imports TensorFlow).

        Args:
            **kwargs: hyperparameters and optimizer options.

        Returns:
            An :class:`optreg.Optimizer`.
        """
        from optreg.spec_optimizer import SpecOptimizer

        return SpecOptimizer(self.spec, **kwargs)


Entry = TypeVar("Entry")


@attrs.frozen
class Discovery:
    """Everything the plugins provided, by name."""

    optimizers: Mapping[str, OptimizerEntry]
    problems: Mapping[str, Problem]


class Catalog(Generic[Entry]):
    """Named entries of one kind, loaded on first use.

    Args:
        kind: what the entries are, for messages (``"optimizer"``, ``"problem"``).
        load: returns the entries by name; called once, on first use.
    """

    def __init__(self, kind: str, load: Callable[[], Mapping[str, Entry]]):
        self.kind = kind
        self._load = load

    def names(self) -> list[str]:
        """Every registered name, sorted.

        Example:
            >>> from optreg import registry
            >>> "adam" in registry.names()
            True
        """
        return sorted(self._load())

    def get(self, name: str) -> Entry:
        """The entry registered under ``name``.

        Raises:
            UnknownNameError: no such name; the message suggests close matches.
        """
        entries = self._load()
        if name not in entries:
            raise UnknownNameError(self.kind, name, list(entries))
        return entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[Entry]:
        entries = self._load()
        return iter([entries[name] for name in sorted(entries)])

    def __len__(self) -> int:
        return len(self._load())


class Registry(Catalog[OptimizerEntry]):
    """The optimizers (and, under :attr:`problems`, the loss problems) plugins provide.

    Args:
        plugin_manager: builds the plugin manager to discover from; called once, on first use.

    Example:
        >>> from optreg import registry
        >>> registry.get("adam").defaults()["beta_1"]
        0.9
        >>> opt = registry.create("adam", learning_rate=0.1)  # doctest: +SKIP
    """

    def __init__(self, plugin_manager: Callable[[], pluggy.PluginManager] | None = None):
        super().__init__("optimizer", lambda: self.discovery.optimizers)
        self._plugin_manager = plugin_manager
        self._discovery: Discovery | None = None
        self.problems: Catalog[Problem] = Catalog("problem", lambda: self.discovery.problems)

    @property
    def discovery(self) -> Discovery:
        """What the plugins provided; discovered on first access."""
        if self._discovery is None:
            self._discovery = discover(self._make_plugin_manager())
        return self._discovery

    def _make_plugin_manager(self) -> pluggy.PluginManager:
        if self._plugin_manager is not None:
            return self._plugin_manager()
        from optreg.plugins import make_plugin_manager

        return make_plugin_manager()

    def create(self, name: str, **kwargs: Any):
        """Build a registered optimizer.

        Args:
            name: the optimizer's name.
            **kwargs: hyperparameters and optimizer options (``clipnorm``, …).

        Returns:
            An :class:`optreg.Optimizer` (a ``tf.Module``).

        Raises:
            UnknownNameError: no optimizer of that name.
            HyperparameterError: an unknown hyperparameter or a value out of bounds.

        Example:
            >>> opt = registry.create("momentum", learning_rate=0.01)  # doctest: +SKIP
        """
        return self.get(name).build(**kwargs)


def discover(manager: pluggy.PluginManager) -> Discovery:
    """Ask every plugin for its specs and problems.

    Args:
        manager: the plugin manager.

    Returns:
        A :class:`Discovery` with every optimizer and problem by name.

    Raises:
        PluginError: two definitions share one name.
        SpecError: a spec file is invalid.
    """
    optimizers: dict[str, OptimizerEntry] = {}
    for impl in manager.hook.optreg_spec_paths.get_hookimpls():
        source = manager.get_name(impl.plugin)
        for path in _spec_files(impl.function()):
            spec = load_spec(path)
            _add(optimizers, spec.name, OptimizerEntry(spec.name, source, spec), _describe_optimizer)
    problems: dict[str, Problem] = {}
    for impl in manager.hook.optreg_register_problems.get_hookimpls():
        impl.function(lambda problem: _add(problems, problem.name, problem, lambda p: p.name))
    return Discovery(optimizers=optimizers, problems=problems)


def _spec_files(paths) -> list[Path]:
    """Expand spec paths: a folder gives its ``*.toml`` files in name order."""
    files: list[Path] = []
    for path in map(Path, paths or ()):
        files.extend(sorted(path.glob("*.toml")) if path.is_dir() else [path])
    return files


def _describe_optimizer(entry: OptimizerEntry) -> str:
    return f"{entry.source} ({entry.spec.source})"


def _add(entries: dict[str, Any], name: str, entry: Any, describe: Callable[[Any], str]) -> None:
    """Add an entry, refusing a second definition of the same name."""
    if name in entries:
        raise PluginError(f"{name!r} is defined twice: by {describe(entries[name])} and by {describe(entry)}")
    entries[name] = entry
