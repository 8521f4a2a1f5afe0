"""Decoupled weight decay (``weight_decay``), as Keras applies it.

Just before each update, every variable not excluded becomes
``var − var·weight_decay·learning_rate`` (in the variable's dtype, with the learning rate of
this step, scheduled or not). ``exclude_from_weight_decay`` excludes variables by identity or
by name: each string of ``var_names`` is a regular expression searched for in ``var.name``
(Keras joins them with ``|``), so ``["bias"]`` excludes ``"dense/bias:0"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf


class WeightDecayExclusions:
    """The variables weight decay skips.

    Example:
        >>> import tensorflow as tf
        >>> exclusions = WeightDecayExclusions()
        >>> exclusions.set(var_names=["bias"])
        >>> exclusions.applies_to(tf.Variable(1.0, name="layer/bias"))
        False
    """

    def __init__(self) -> None:
        self._refs: set[Any] = set()
        self._pattern: re.Pattern[str] | None = None

    def set(self, var_list: Iterable[tf.Variable] | None = None, var_names: Sequence[str] | None = None) -> None:
        """Replace the exclusions, as Keras's ``exclude_from_weight_decay`` does."""
        self._refs = {var.ref() for var in var_list or ()}
        self._pattern = re.compile("|".join(sorted(set(var_names)))) if var_names else None

    def applies_to(self, var: tf.Variable) -> bool:
        """Whether weight decay applies to ``var``."""
        if var.ref() in self._refs:
            return False
        return self._pattern is None or self._pattern.search(var.name) is None


def decay(
    variables: Sequence[tf.Variable], weight_decay: float, learning_rate: tf.Tensor, exclusions: WeightDecayExclusions
) -> None:
    """Apply ``var ← var − var·weight_decay·learning_rate`` to every variable not excluded."""
    for var in variables:
        if exclusions.applies_to(var):
            rate = tf.cast(learning_rate, var.dtype)
            var.assign(var - var * tf.constant(weight_decay, var.dtype) * rate)
