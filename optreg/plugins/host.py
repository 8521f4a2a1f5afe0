"""The plugin host: hook specifications, the built-in plugin, local specs and entry points.

Plugins are registered in this order:

1. the hook specifications of :mod:`optreg.hookspecs`;
2. ``builtin``: optreg's own specs and problems, an ordinary plugin;
3. ``local``: spec files and folders named by ``OPTREG_SPEC_PATH`` (``os.pathsep``-separated)
   and by ``--spec`` on the command line;
4. every entry point of the group ``optreg``, unless ``OPTREG_DISABLE_PLUGIN_AUTOLOAD`` is set;
   ``OPTREG_PLUGINS=a,b`` keeps only the entry points (or distributions) named.

Each entry point loads on its own: one that fails to import, or implements a hook that does
not exist (a misspelled name), is recorded as a :class:`PluginFailure` naming the plugin, its
distribution and version, and the error; the others load as usual.

Plugin code runs isolated from the command: whatever it prints (at import or in a hook) goes
to stderr, never into machine-readable output; a hook that raises anything, ``SystemExit``
included, is a failure of its plugin (only ``KeyboardInterrupt`` passes through); and each hook
call runs in a daemon thread under a time limit (:data:`DEFAULT_HOOK_TIME_LIMIT` seconds,
``OPTREG_HOOK_TIMEOUT`` to change it): a hook still running then is a failure of its plugin,
left behind while discovery goes on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import pluggy

from optreg import hookspecs
from optreg.errors import PluginError
from optreg.plugins import builtin
from optreg.settings import env_flag
from optreg.version import __version__

ENTRY_POINT_GROUP = "optreg"
LOCAL_PLUGIN_NAME = "local"
#: The environment variable that sets how long one hook call may run, in seconds.
HOOK_TIME_LIMIT_VARIABLE = "OPTREG_HOOK_TIMEOUT"
#: How long one hook call may run, in seconds, unless ``OPTREG_HOOK_TIMEOUT`` says otherwise.
DEFAULT_HOOK_TIME_LIMIT = 10.0


class HookTimeout(Exception):
    """A plugin's hook was still running when its time limit ran out."""


def _plugin_output() -> contextlib.AbstractContextManager[Any]:
    """A context in which what plugin code prints goes to stderr, not to stdout."""
    return contextlib.redirect_stdout(sys.stderr)


class _LeftBehindOutput:
    """``sys.stdout`` once a hook has been left running: what the left-behind hook threads print
    goes to stderr, everything else to the stdout this replaced, so a hook that prints after its
    time limit cannot break machine-readable output (``optreg list --format json``).

    Example:
        >>> import io
        >>> routed = _LeftBehindOutput(io.StringIO())
        >>> routed.write("main thread")
        11
        >>> routed.stdout.getvalue()
        'main thread'
    """

    def __init__(self, stdout: Any) -> None:
        self.stdout = stdout
        self.threads: set[int] = set()

    def write(self, text: str) -> int:
        """Write to stderr from a left-behind hook thread, else to the replaced stdout."""
        if threading.get_ident() in self.threads:
            return sys.stderr.write(text)
        return int(self.stdout.write(text))

    def flush(self) -> None:
        """Flush the replaced stdout."""
        self.stdout.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stdout, name)


def _left_behind(stdout: Any, thread: threading.Thread) -> _LeftBehindOutput:
    """``stdout`` routed so that what a timed-out hook's thread prints from now on goes to stderr."""
    routed = stdout if isinstance(stdout, _LeftBehindOutput) else _LeftBehindOutput(stdout)
    if thread.ident is not None:
        routed.threads.add(thread.ident)
    return routed


def call_isolated(function: Callable[..., Any], kwargs: dict[str, Any], time_limit: float) -> Any:
    """Call a plugin's function in a daemon thread, its prints sent to stderr.

    Args:
        function: the plugin's hook implementation.
        kwargs: the arguments to call it with.
        time_limit: how many seconds to wait for it.

    Returns:
        What the function returned.

    Raises:
        HookTimeout: it was still running after ``time_limit`` seconds; its thread is left behind.
        BaseException: whatever the function raised, ``SystemExit`` included, as itself.

    Example:
        >>> call_isolated(lambda register: register + 1, {"register": 1}, time_limit=1.0)
        2
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(**kwargs)
        except BaseException as error:  # a hook may raise anything; the caller decides
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"optreg hook {getattr(function, '__name__', function)}", daemon=True)
    stdout, sys.stdout = sys.stdout, sys.stderr  # while it runs, what plugin code prints goes to stderr
    try:
        thread.start()
        thread.join(time_limit)
    finally:
        # one assignment, so nothing the thread prints meanwhile reaches stdout
        sys.stdout = _left_behind(stdout, thread) if thread.is_alive() else stdout
    if thread.is_alive():
        raise HookTimeout(
            f"still running after {time_limit:g} s (the limit {HOOK_TIME_LIMIT_VARIABLE} sets); left behind"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@attrs.frozen
class PluginInfo:
    """Where a registered plugin came from.

    Attributes:
        name: the plugin's name (its entry point's name for installed plugins).
        distribution: the distribution that provides it (``optreg`` for the built-in one).
        version: that distribution's version.
    """

    name: str
    distribution: str
    version: str

    @property
    def source(self) -> str:
        """What the plugin's optimizers and problems are qualified with (``SOURCE:NAME``)."""
        return self.name if self.name in (builtin.PLUGIN_NAME, LOCAL_PLUGIN_NAME) else self.distribution


@attrs.frozen
class PluginFailure:
    """Something a plugin did wrong, with everything needed to find it.

    Attributes:
        plugin: the plugin's name.
        distribution: its distribution, where known.
        version: the distribution's version, where known.
        error: one line: what went wrong.
        details: the traceback or further context, for ``optreg plugins``.
    """

    plugin: str
    distribution: str | None
    version: str | None
    error: str
    details: str = ""

    def __str__(self) -> str:
        origin = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin {self.plugin!r}{origin}: {self.error}"


class PluginHost:
    """A plugin manager together with what is known about each plugin and what failed.

    Args:
        spec_paths: extra spec files or folders for the ``local`` plugin (``--spec``).
        environ: the environment to read ``OPTREG_*`` variables from.
        plugins: further ``(plugin object, PluginInfo)`` pairs to register before the entry
            points, for programs that embed optreg with plugins of their own.

    Example:
        >>> host = PluginHost(environ={"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"})
        >>> [info.name for info in host.infos]
        ['builtin']
    """

    def __init__(
        self,
        spec_paths: Sequence[str | Path] = (),
        environ: Mapping[str, str] | None = None,
        plugins: Sequence[tuple[object, PluginInfo]] = (),
    ):
        self.environ = dict(os.environ if environ is None else environ)
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self._add(builtin, PluginInfo(builtin.PLUGIN_NAME, "optreg", _optreg_version()))
        local_paths = [*_split_path(self.environ.get("OPTREG_SPEC_PATH", "")), *map(str, spec_paths)]
        if local_paths:
            self._add(_LocalSpecs(local_paths), PluginInfo(LOCAL_PLUGIN_NAME, "optreg", _optreg_version()))
        for plugin, info in plugins:
            self._add(plugin, info)
        if not env_flag("OPTREG_DISABLE_PLUGIN_AUTOLOAD", self.environ):
            self._load_entry_points(_split_names(self.environ.get("OPTREG_PLUGINS")))

    def info(self, plugin: object) -> PluginInfo:
        """The :class:`PluginInfo` of a registered plugin object."""
        name = self.manager.get_name(plugin)
        return next(info for info in self.infos if info.name == name)

    def fail(self, info: PluginInfo, error: str, details: str = "") -> None:
        """Record a failure of a plugin."""
        self.failures.append(PluginFailure(info.name, info.distribution, info.version, error, details))

    @property
    def hook_time_limit(self) -> float:
        """How many seconds one hook call may run: ``OPTREG_HOOK_TIMEOUT``, or the default.

        Raises:
            PluginError: the variable is not a positive number.
        """
        text = self.environ.get(HOOK_TIME_LIMIT_VARIABLE, "").strip()
        if not text:
            return DEFAULT_HOOK_TIME_LIMIT
        try:
            limit = float(text)
        except ValueError:
            limit = -1.0
        if not limit > 0:
            raise PluginError(f"{HOOK_TIME_LIMIT_VARIABLE} must be a positive number of seconds, got {text!r}")
        return limit

    def call_hook(
        self,
        info: PluginInfo,
        function: Callable[..., Any],
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> tuple[bool, Any]:
        """Call one plugin's hook in isolation (see :func:`call_isolated`), recording a failure.

        Args:
            info: the plugin the hook belongs to.
            function: the hook implementation (or a function that calls it).
            kwargs: its arguments.
            name: the hook's name for messages (default: the function's name).

        Returns:
            ``(True, what it returned)``, or ``(False, None)`` when it raised (anything but
            ``KeyboardInterrupt``, which passes through) or ran out of time: a failure is recorded.

        Example:
            >>> host = PluginHost(environ={"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"})
            >>> host.call_hook(host.infos[0], lambda: 1 / 0)
            (False, None)
            >>> host.failures[-1].error
            '<lambda> raised ZeroDivisionError: division by zero'
        """
        name = name or getattr(function, "__name__", "hook")
        time_limit = self.hook_time_limit
        try:
            return True, call_isolated(function, kwargs or {}, time_limit)
        except KeyboardInterrupt:
            raise
        except HookTimeout as error:
            self.fail(info, f"{name} {error}")
        except BaseException as error:  # SystemExit too: a plugin cannot end the command
            self.fail(info, f"{name} raised {type(error).__name__}: {error}", traceback.format_exc())
        return False, None

    def hooks_of(self, info: PluginInfo) -> list[str]:
        """The hook names a plugin implements."""
        plugin = self.manager.get_plugin(info.name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])

    def _add(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin; refuse it (as a failure) if it implements an unknown hook."""
        try:
            self.manager.register(plugin, name=info.name)
        except Exception as error:  # pluggy's validation errors, and anything a plugin's attributes raise
            self.fail(info, f"cannot be registered: {error}", traceback.format_exc())
            return
        unknown = [c.name for c in self.manager.get_hookcallers(plugin) or [] if not c.has_spec()]
        if unknown:
            self.manager.unregister(plugin)
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("optreg_")))
            self.fail(info, f"implements unknown hook(s) {', '.join(sorted(unknown))}; the hooks are: {known}")
            return
        self.infos.append(info)

    def _load_entry_points(self, allowed: set[str] | None) -> None:
        """Load each entry point of the group on its own."""
        for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
            dist = getattr(point, "dist", None)
            info = PluginInfo(point.name, dist.name if dist else point.name, dist.version if dist else "unknown")
            if allowed is not None and not allowed & {info.name, info.distribution}:
                continue
            if self.manager.has_plugin(info.name):
                self.fail(info, f"an entry point named {info.name!r} is already registered; this one was not loaded")
                continue
            try:
                with _plugin_output():
                    plugin = point.load()
            except BaseException as error:  # a plugin's import may raise anything, even SystemExit
                if isinstance(error, KeyboardInterrupt):
                    raise
                message = f"failed to import {point.value}: {type(error).__name__}: {error}"
                self.fail(info, message, traceback.format_exc())
                continue
            self._add(plugin, info)


class _LocalSpecs:
    """The ``local`` plugin: spec files and folders from OPTREG_SPEC_PATH and --spec."""

    def __init__(self, paths: Iterable[str]):
        self.paths = list(paths)

    @hookspecs.hookimpl
    def optreg_spec_paths(self) -> list[str]:
        """The configured local spec paths."""
        return self.paths


def _split_path(value: str) -> list[str]:
    return [part for part in value.split(os.pathsep) if part.strip()]


def _split_names(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _optreg_version() -> str:
    return __version__
