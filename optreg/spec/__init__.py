"""TOML spec files → :class:`~optreg.model.definitions.OptimizerSpec`: the reader, slot
conditions and rule specialisation, and where errors are in the file. No TensorFlow.
"""
