"""The step program's results, and their casts to a variable's compute dtype.

The step program runs once per step in float64 (:meth:`~optreg.runtime.compile.CompiledRule.step_scalars`);
each variable's program reads its results in its compute dtype. Op by op, casting them costs one
eager op per scalar and variable (a fifth of a small Adam step's ops); a :class:`StepScalars`
casts them once per step and dtype, and every variable of that dtype reads the same casts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import tensorflow as tf

__all__ = ["StepScalars", "cast_scalars"]


class StepScalars(list[tf.Tensor]):
    """One step's results of the step program, in their order (the noise key last when the rule
    draws random numbers), remembering their casts per compute dtype when run op by op.

    A list, so what reads step scalars as a sequence reads these. The casts are kept only
    eagerly: inside a trace a cast is an op of the graph being built, which a branch or loop
    built later must not read, and XLA merges repeated casts itself.

    Args:
        values: the step program's results.
        draws: True when the last value is the step's noise key, which is never cast.

    Example:
        >>> scalars = StepScalars([tf.constant(0.5, tf.float64)], draws=False)
        >>> scalars.cast(tf.float32) is scalars.cast(tf.float32)
        True
    """

    def __init__(self, values: Iterable[tf.Tensor], draws: bool):
        super().__init__(values)
        self.draws = draws
        self._casts: dict[tf.DType, list[tf.Tensor]] = {}

    @classmethod
    def of(cls, scalars: Sequence[tf.Tensor], draws: bool) -> StepScalars:
        """``scalars`` itself when it is a :class:`StepScalars`, else a new one holding them."""
        return scalars if isinstance(scalars, StepScalars) else cls(scalars, draws)

    @property
    def noise_key(self) -> tf.Tensor | None:
        """The step's int64 noise key, or None when the rule draws nothing."""
        return self[-1] if self.draws else None

    def cast(self, dtype: tf.DType) -> list[tf.Tensor]:
        """The values other than the noise key in ``dtype`` (see :func:`cast_scalars`), cast once
        per dtype and step when executing eagerly.

        Args:
            dtype: the compute dtype of the variable being updated.

        Returns:
            One tensor per value, bools as they are.
        """
        if not tf.executing_eagerly():
            return cast_scalars(self._castable(), dtype)
        if dtype not in self._casts:
            self._casts[dtype] = cast_scalars(self._castable(), dtype)
        return self._casts[dtype]

    def _castable(self) -> list[tf.Tensor]:
        """The values :meth:`cast` casts: all but the noise key."""
        return self[:-1] if self.draws else list(self)


def cast_scalars(scalars: Sequence[tf.Tensor], dtype: tf.DType) -> list[tf.Tensor]:
    """The step program's results in the compute dtype, bools as they are.

    Inside a trace, the ones to cast that are not literals are cast as one tensor per dtype and
    shape (stacked, cast and unstacked): the values are those of casting each, and where a
    loop's body holds them all unchanged (the learning rates, betas and epsilons of ``optreg
    bench``'s stacked runs), XLA hoists them out of the loop as one kernel, not one per scalar
    (a kernel costs about 10 ms of a cold bench's compilation on a CPU). A literal (a fixed
    hyperparameter) keeps a cast of its own, whose value the rule's functions read when traced
    (``x ** 0.5`` builds a square root). Eagerly, each is cast alone.

    Args:
        scalars: the step program's results (float64 or bool; per-run ones shaped to broadcast).
        dtype: the compute dtype.

    Returns:
        The scalars, each float one cast to ``dtype``, in their order.

    Example:
        >>> [t.dtype.name for t in cast_scalars([tf.constant(0.5, tf.float64), tf.constant(True)], tf.float32)]
        ['float32', 'bool']
    """
    groups: dict[tuple[tf.DType, tuple[int, ...]], list[int]] = {}
    for k, s in enumerate(scalars):
        if tf.inside_function() and s.dtype not in (tf.bool, dtype) and s.shape.is_fully_defined():
            if tf.get_static_value(s) is None:
                groups.setdefault((s.dtype, tuple(s.shape.as_list())), []).append(k)
    cast: dict[int, tf.Tensor] = {}
    for together in groups.values():
        if len(together) > 1:
            cast.update(zip(together, tf.unstack(tf.cast(tf.stack([scalars[k] for k in together]), dtype))))
    return [cast[k] if k in cast else s if s.dtype == tf.bool else tf.cast(s, dtype) for k, s in enumerate(scalars)]
