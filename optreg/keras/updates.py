"""How the Keras adapter runs a spec's rule: on a dense gradient, on a sparse gradient's rows,
and every dense update of a step as one XLA computation.

Keras calls an optimizer's ``update_step`` once per variable, op by op, inside the training
step it traces (``model.fit`` on a CPU-only machine compiles no XLA). The adapter runs the same
compiled rule program as optreg's own optimizers instead: the step program (hyperparameter-only
values, once per step) and each variable's program, every variable of a step in one
``tf.function(jit_compile=True)``, so XLA fuses each variable's update into a few loops.

A sparse gradient (``tf.IndexedSlices``, an embedding's) is updated on its touched rows where
``sparse_updates`` allows (:mod:`optreg.runtime.sparse`). Its repeated rows are summed before the
XLA computation, by TensorFlow's own ``Unique``, several times faster than XLA's on a CPU; the
rows are gathered and scattered inside it. That matters beyond the update: TensorFlow's own row
reads and writes of a variable put it in a mode where every later dense read copies it, and
Keras's ``Embedding`` reads its table densely in each forward pass; XLA's row writes do not.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import keras
import tensorflow as tf

__all__ = ["COMPILED_LIMIT", "CompiledUpdates", "backend_variable", "compiled_update", "compiles_updates"]

#: How many compiled update functions an adapter keeps, one per list of variables it was
#: applied to (a model has one; an optimizer shared by a few models a few).
COMPILED_LIMIT = 8


def compiles_updates(jit_compile: bool | str) -> bool:
    """Whether a step's dense updates run as one XLA computation: unless ``jit_compile`` is False,
    and never under a distribution strategy, where Keras updates each replica's copies.

    Example:
        >>> compiles_updates("auto"), compiles_updates(False)
        (True, False)
    """
    return jit_compile is not False and not tf.distribute.has_strategy()


def backend_variable(variable: Any) -> Any:
    """The ``tf.Variable`` behind a Keras variable (a ``tf.Variable`` as it is), for row reads
    and writes.

    Example:
        >>> type(backend_variable(keras.Variable([1.0]))).__name__  # doctest: +SKIP
        'ResourceVariable'
    """
    return variable.value if isinstance(variable, keras.Variable) else variable


class CompiledUpdates:
    """One XLA-compiled function per list of variables, the most recently used
    :data:`COMPILED_LIMIT` kept.

    Args:
        limit: how many functions to keep.

    Example:
        >>> updates = CompiledUpdates()
        >>> fn = updates.get(("a",), lambda: tf.function(lambda: tf.constant(1.0), jit_compile=True))
        >>> len(updates)
        1
    """

    def __init__(self, limit: int = COMPILED_LIMIT):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._functions: OrderedDict[Hashable, Callable[..., Any]] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        """The function for ``key``, made by ``make()`` the first time (the least recently used
        one dropped past the limit)."""
        function = self._functions.get(key)
        if function is None:
            function = self._functions[key] = make()
            while len(self._functions) > self._limit:
                self._functions.popitem(last=False)
        self._functions.move_to_end(key)
        return function

    def __len__(self) -> int:
        return len(self._functions)


def compiled_update(update_all: Callable[[Sequence[tf.Tensor], tf.Tensor], None]) -> Callable[..., Any]:
    """``update_all(grads, learning_rate)`` as one XLA-compiled function (no autograph: the
    rule's Python branches are decided when it is traced)."""
    compiled: Callable[..., Any] = tf.function(update_all, jit_compile=True, autograph=False)
    return compiled
