"""A plugin whose hook name is misspelled."""

import optreg


@optreg.hookimpl
def optreg_register_problem(register):
    """Should have been optreg_register_problems."""
