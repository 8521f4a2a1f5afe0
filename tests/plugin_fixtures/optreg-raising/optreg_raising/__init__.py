"""A plugin whose hook raises."""

import optreg


@optreg.hookimpl
def optreg_register_problems(register):
    """Fails while registering."""
    raise ValueError("no problems today")
