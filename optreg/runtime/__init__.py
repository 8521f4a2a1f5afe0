"""The TensorFlow runtime: compiled rules, option stages, slots, :class:`optreg.Optimizer` and
the built-in Python optimizers. It never looks an optimizer up by name except through
:mod:`optreg.runtime.lookup`. Importing this package itself imports no TensorFlow.
"""
