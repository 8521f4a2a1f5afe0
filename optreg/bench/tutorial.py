"""The TensorFlow Core optimizer tutorial's convergence experiment, as data.

The tutorial runs three optimizers at three learning rates on the ``quartic`` problem for at
most 2000 iterations and publishes the outcome of each run. The tests and
``benchmarks/tutorial_table.py`` check optreg against these figures.
"""

from __future__ import annotations

OPTIMIZERS = ("gradient_descent", "momentum", "adam")
LEARNING_RATES = (1e-3, 1e-2, 1e-1)
PROBLEM = "quartic"
MAX_ITERS = 2000

#: The tutorial's published table: (optimizer, learning rate) → (status, iteration).
PUBLISHED = {
    ("gradient_descent", 1e-3): ("exceeded", 2000),
    ("gradient_descent", 1e-2): ("exceeded", 2000),
    ("gradient_descent", 1e-1): ("exploded", 6),
    ("momentum", 1e-3): ("exceeded", 2000),
    ("momentum", 1e-2): ("converged", 80),
    ("momentum", 1e-1): ("exploded", 6),
    ("adam", 1e-3): ("exceeded", 2000),
    ("adam", 1e-2): ("exceeded", 2000),
    ("adam", 1e-1): ("converged", 1156),
}
