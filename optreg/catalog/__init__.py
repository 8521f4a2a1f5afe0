"""The catalogue: entries discovered from plugins and spec files, their names, and the
:class:`~optreg.catalog.registry.Registry`. It reaches the TensorFlow runtime through one seam,
:mod:`optreg.runtime.build`, imported there lazily so listing never imports TensorFlow.
"""
