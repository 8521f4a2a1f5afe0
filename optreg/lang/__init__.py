"""The rule language: expressions parsed into a tree under limits, checked, folded and ranked.

Pure Python; nothing here knows optimizers or imports TensorFlow. ``optreg.lang.expr`` gathers the
public names of :mod:`~optreg.lang.tree`, :mod:`~optreg.lang.functions`, :mod:`~optreg.lang.parse`
and :mod:`~optreg.lang.fold`; it is imported with the package, so ``optreg.lang.expr.parse_assignment``
always resolves.
"""

from optreg.lang import expr  # noqa: F401  (the package's one front door, bound as an attribute)
