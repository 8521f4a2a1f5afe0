"""Discovery: ask every plugin's hooks for optimizers and problems, one plugin at a time.

Each hook call is isolated by :meth:`PluginHost.call_hook` (prints to stderr, a time limit,
``SystemExit`` caught). A hook that raises or runs out of time, a spec that is invalid, a
registration of the wrong type and a name defined twice by one plugin are each recorded as a
failure of that plugin; everything else goes on loading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from optreg.catalog.entries import OptimizerEntry
from optreg.catalog.names import NameTable
from optreg.errors import SpecError
from optreg.model.definitions import PythonOptimizer
from optreg.plugins.host import PluginFailure, PluginHost, PluginInfo
from optreg.problems import Problem
from optreg.spec.reader import load_spec, spec_files

if TYPE_CHECKING:
    from pluggy import HookImpl


@attrs.frozen
class PluginReport:
    """One plugin as ``optreg plugins`` shows it."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    registered: tuple[str, ...]
    errors: tuple[str, ...]

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self, value_serializer=lambda _, __, v: list(v) if isinstance(v, tuple) else v)


@attrs.frozen
class Discovery:
    """Everything the plugins provided, and what went wrong."""

    optimizers: NameTable[OptimizerEntry]
    problems: NameTable[Problem]
    plugins: tuple[PluginReport, ...]
    failures: tuple[PluginFailure, ...]


def discover(host: PluginHost) -> Discovery:
    """Call every plugin's hooks and collect their optimizers and problems.

    Args:
        host: the plugin host, with its plugins registered.

    Returns:
        A :class:`Discovery`; failures are in it, never raised.
    """
    collector = _Collector(host)
    hook = host.manager.hook
    for impl in hook.optreg_spec_paths.get_hookimpls():
        collector.spec_paths(impl)
    for impl in hook.optreg_register_optimizers.get_hookimpls():
        collector.call(impl, collector.optimizer_adder(host.info(impl.plugin)))
    for impl in hook.optreg_register_problems.get_hookimpls():
        collector.call(impl, collector.problem_adder(host.info(impl.plugin)))
    return Discovery(
        optimizers=NameTable(collector.optimizers),
        problems=NameTable(collector.problems),
        plugins=tuple(collector.reports()),
        failures=tuple(host.failures),
    )


class _Collector:
    """Accumulates entries by qualified name, and which plugin registered what."""

    def __init__(self, host: PluginHost):
        self.host = host
        self.optimizers: dict[str, OptimizerEntry] = {}
        self.problems: dict[str, Problem] = {}
        self.origins: dict[tuple[int, str], str] = {}  # (id of the table, qualified name) → where defined
        self.registered: dict[str, list[str]] = {}

    def spec_paths(self, impl: HookImpl) -> None:
        """Load every spec a plugin names; each invalid one is a failure of its own."""
        info = self.host.info(impl.plugin)
        called, paths = self.host.call_hook(info, lambda: _listed(impl.function()), name=impl.function.__name__)
        if not called:
            return
        for path in self._existing(paths, info):
            try:
                spec = load_spec(path)
            except SpecError as error:
                self.host.fail(info, f"invalid spec: {error}")
                continue
            entry = OptimizerEntry.from_spec(spec, info.source)
            self.add(self.optimizers, info, entry, entry.name, str(path))

    def call(self, impl: HookImpl, register: Callable[[Any], None]) -> None:
        """Call a register-style hook, attributing anything it raises to its plugin."""
        info = self.host.info(impl.plugin)
        running = [True]

        def register_while_running(definition: Any) -> None:
            if running[0]:  # a hook left behind past its time limit registers nothing more
                register(definition)

        self.host.call_hook(info, impl.function, {name: register_while_running for name in impl.argnames})
        running[0] = False

    def optimizer_adder(self, info: PluginInfo) -> Callable[[Any], None]:
        """The ``register`` callable handed to one plugin's optreg_register_optimizers."""

        def register(definition: Any) -> None:
            if not isinstance(definition, PythonOptimizer):
                raise TypeError(f"register() takes an optreg.PythonOptimizer, got {type(definition).__name__}")
            entry = OptimizerEntry.from_python(definition, info.source)
            self.add(self.optimizers, info, entry, entry.name, definition.factory)

        return register

    def problem_adder(self, info: PluginInfo) -> Callable[[Any], None]:
        """The ``register`` callable handed to one plugin's optreg_register_problems."""

        def register(problem: Any) -> None:
            if not isinstance(problem, Problem):
                raise TypeError(f"register() takes an optreg.problems.Problem, got {type(problem).__name__}")
            self.add(self.problems, info, attrs.evolve(problem, source=info.source), problem.name, "its problems")

        return register

    def add(self, table: dict[str, Any], info: PluginInfo, entry: Any, name: str, origin: str) -> None:
        """Add an entry unless this plugin already defined the name (that is a failure)."""
        qualified = f"{info.source}:{name}"
        if qualified in table:
            first = self.origins[id(table), qualified]
            self.host.fail(info, f"defines {name!r} twice: in {first} and in {origin}; kept the first")
            return
        table[qualified] = entry
        self.origins[id(table), qualified] = origin
        self.registered.setdefault(info.name, []).append(qualified)

    def reports(self) -> list[PluginReport]:
        """One report per plugin, registered ones first, then those that failed to register."""
        errors: dict[str, list[PluginFailure]] = {}
        for failure in self.host.failures:
            errors.setdefault(failure.plugin, []).append(failure)
        reports = [
            PluginReport(info.name, info.distribution, info.version, tuple(self.host.hooks_of(info)),
                         tuple(self.registered.get(info.name, [])), tuple(f.error for f in errors.pop(info.name, [])))
            for info in self.host.infos
        ]
        for plugin, failures in errors.items():
            first = failures[0]
            messages = tuple(f.error for f in failures)
            reports.append(PluginReport(plugin, first.distribution, first.version, (), (), messages))
        return reports

    def _existing(self, paths: list[Any], info: PluginInfo) -> list[Path]:
        """The spec files a plugin's paths name; a path that does not exist is a failure."""
        files: list[Path] = []
        for path in map(Path, paths):
            if path.exists():
                files.extend(spec_files(path))
            else:
                self.host.fail(info, f"spec path {str(path)!r} does not exist")
        return files


def _listed(returned: object) -> list[Any]:
    """What a hook returned, as a list (None, or anything false: nothing).

    Raises:
        TypeError: it returned something other than an iterable.

    Example:
        >>> _listed(None), _listed(("a.toml",))
        ([], ['a.toml'])
    """
    if not returned:
        return []
    if not isinstance(returned, Iterable):
        raise TypeError(f"{type(returned).__name__!r} object is not iterable")
    return list(returned)
