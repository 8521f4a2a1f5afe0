"""The pure-Python vocabulary of optimizers: hyperparameters, slots, options, schedules and
the definition records every other layer reads. No TensorFlow.
"""
