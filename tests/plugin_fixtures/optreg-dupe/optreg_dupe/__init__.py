"""A plugin defining an optimizer under a built-in's short name."""

from pathlib import Path

import optreg


@optreg.hookimpl
def optreg_spec_paths():
    """Its one spec, named like the built-in momentum."""
    return [Path(__file__).parent / "specs"]
