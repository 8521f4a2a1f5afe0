"""optreg's version, in one place: the package, its plugins' reports and the wheel read it here."""

__version__ = "0.1.0"
