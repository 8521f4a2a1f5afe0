"""optreg's test suite (a package, so its helpers import by name: ``from tests.helpers import REPO``)."""
