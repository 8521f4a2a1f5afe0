"""The rule language: expressions parsed into a tree under limits, checked, folded and ranked.

Pure Python; nothing here knows optimizers or imports TensorFlow.
"""
