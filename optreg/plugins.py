"""The plugin manager: hook specifications first, then the built-in plugin."""

from __future__ import annotations

import pluggy

from optreg import builtin, hookspecs


def make_plugin_manager() -> pluggy.PluginManager:
    """Build a fresh plugin manager with optreg's hooks and the built-in plugin registered.

    Returns:
        A :class:`pluggy.PluginManager` for the project ``optreg``.

    Example:
        >>> pm = make_plugin_manager()
        >>> pm.has_plugin("builtin")
        True
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name=builtin.PLUGIN_NAME)
    manager.check_pending()
    return manager
