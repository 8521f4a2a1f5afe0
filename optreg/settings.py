"""optreg's ``OPTREG_*`` boolean settings, read from the environment the same way everywhere.

A boolean setting takes the usual spellings, case-insensitive: ``1``, ``true``, ``yes``, ``on``
for true; ``0``, ``false``, ``no``, ``off`` or an empty value for false. Anything else is an
:class:`~optreg.errors.OptionError` naming the variable, never a silent false.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from optreg.errors import OptionError

#: The spellings of true and of false a boolean setting accepts (compared lower-cased, stripped).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")

#: Every boolean setting optreg reads.
BOOLEAN_SETTINGS = ("OPTREG_DEBUG", "OPTREG_STRICT_PLUGINS", "OPTREG_DISABLE_PLUGIN_AUTOLOAD")


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A boolean setting's value: False when unset.

    Args:
        name: the variable, e.g. ``"OPTREG_STRICT_PLUGINS"``.
        environ: where to read it (default ``os.environ``).

    Returns:
        True or False.

    Raises:
        OptionError: the value is no spelling of true or false.

    Example:
        >>> env_flag("OPTREG_STRICT_PLUGINS", {"OPTREG_STRICT_PLUGINS": "True"})
        True
        >>> env_flag("OPTREG_DEBUG", {"OPTREG_DEBUG": "maybe"})
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: OPTREG_DEBUG must be 1/0, true/false, yes/no or on/off, got 'maybe'
    """
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return False
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise OptionError(f"{name} must be 1/0, true/false, yes/no or on/off, got {value!r}")


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Check every boolean setting that is set, so a misspelt one is refused up front.

    Raises:
        OptionError: the first setting with a value that is no spelling of true or false.

    Example:
        >>> check_environment({"OPTREG_DEBUG": "on", "OPTREG_STRICT_PLUGINS": "no"})
    """
    for name in BOOLEAN_SETTINGS:
        env_flag(name, environ)


def debug_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OPTREG_DEBUG`` asks for tracebacks; a malformed value counts as no (this is
    read while reporting errors, where raising another would hide the first).

    Example:
        >>> debug_requested({"OPTREG_DEBUG": "yes"}), debug_requested({"OPTREG_DEBUG": "perhaps"})
        (True, False)
    """
    try:
        return env_flag("OPTREG_DEBUG", environ)
    except OptionError:
        return False
