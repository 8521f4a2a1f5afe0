"""A plugin shipping one invalid spec beside a valid one."""

from pathlib import Path

import optreg


@optreg.hookimpl
def optreg_spec_paths():
    """Both specs."""
    return [Path(__file__).parent / "specs"]
