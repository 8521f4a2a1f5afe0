"""Lookahead (Zhang et al. 2019) over any optreg optimizer.

The inner ("fast") optimizer takes every step; every ``sync_period`` steps the slow weights move
``slow_step_size`` of the way towards the fast ones, and the fast weights restart from there:

    fast ← inner step(fast, grad)                 every step
    slow ← slow + α·(fast − slow); fast ← slow    when step % k == 0

The inner optimizer keeps its own state (moments, step count) across synchronisations, as
optax.lookahead and pytorch-optimizer's Lookahead do. The slow weights are a slot of the wrapper,
so checkpoints hold them next to the inner optimizer's slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from optreg.errors import HyperparameterError, OptionError
from optreg.model.definitions import Slot
from optreg.model.options import GRADIENT_OPTION_NAMES, RUNTIME_OPTION_NAMES
from optreg.model.python_builtins import LOOKAHEAD_HYPERPARAMETERS
from optreg.runtime import lookup
from optreg.runtime.optimizer import Optimizer

#: The options every optimizer accepts; a lookahead keeps them for itself (they act on the
#: gradients before the inner step), except slot_dtype, which the inner optimizer shares.
_OPTIONS = ("name", *GRADIENT_OPTION_NAMES, *RUNTIME_OPTION_NAMES)


class Lookahead(Optimizer):
    """Lookahead over an inner optimizer, given by registered name or as an instance.

    Args:
        inner: the inner optimizer's registered name (default ``"adam"``), or an
            :class:`~optreg.runtime.optimizer.Optimizer` instance to wrap (without gradient options of
            its own: give those to the lookahead).
        **kwargs: ``sync_period`` and ``slow_step_size``; the optimizer options (``clipnorm``, …,
            ``jit_compile``); and, when ``inner`` is a name, the inner optimizer's
            hyperparameters (``learning_rate``, …).

    Raises:
        UnknownNameError: no registered optimizer of that name.
        HyperparameterError: a hyperparameter neither the lookahead nor the inner optimizer
            has, or inner hyperparameters given together with an inner instance.
        OptionError: the wrapped instance has gradient options of its own.

    The inner optimizer's hyperparameters read and write through the wrapper
    (``opt.learning_rate = 0.01``), without retracing.

    Example:
        >>> opt = optreg.registry.create("lookahead", inner="sgd", learning_rate=0.1, momentum=0.9)  # doctest: +SKIP
        >>> opt = optreg.Lookahead(optreg.registry.create("adam"), sync_period=10)  # doctest: +SKIP
    """

    optimizer_name = "lookahead"
    summary = "Lookahead over an inner optimizer"
    hyperparameter_specs = LOOKAHEAD_HYPERPARAMETERS
    slot_specs = (Slot("slow", init="var", doc="the slow weights, synchronised every sync_period steps"),)

    def __init__(self, inner: str | Optimizer = "adam", **kwargs: Any):
        own_names = {spec.name for spec in LOOKAHEAD_HYPERPARAMETERS} | set(_OPTIONS)
        own = {key: value for key, value in kwargs.items() if key in own_names}
        rest = {key: value for key, value in kwargs.items() if key not in own_names}
        inner_optimizer = _inner_optimizer(inner, rest, own.get("slot_dtype"))
        # read by runs_without_xla while the base class checks jit_compile, before self.inner exists
        self.__dict__["_pending_inner"] = inner_optimizer
        super().__init__(**own)
        del self.__dict__["_pending_inner"]
        self.inner = inner_optimizer
        if own.get("jit_compile") is True and not inner_optimizer.compiles_with_xla:
            raise OptionError(
                f"lookahead: the inner optimizer {inner_optimizer.optimizer_name!r} must not be XLA-compiled "
                "(xla_compatible = False), so jit_compile=True is refused"
            )

    @property
    def compiles_with_xla(self) -> bool:
        """Whether the step may be XLA-compiled: when the inner optimizer's may."""
        return type(self).xla_compatible and self.inner.compiles_with_xla

    @property
    def runs_without_xla(self) -> bool:
        """The inner optimizer's: a Lookahead over an update XLA must not compile runs without XLA."""
        inner = self.__dict__.get("inner") or self.__dict__.get("_pending_inner")
        return bool(inner is not None and inner.runs_without_xla)

    # --- the inner optimizer's hyperparameters, through the wrapper -----------------------

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("inner")
            if inner is not None and name in inner.__dict__.get("_hyper", {}):
                return getattr(inner, name)
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        inner = self.__dict__.get("inner")
        own = self.__dict__.get("_hyper", {})
        if inner is not None and name not in own and name in inner.__dict__.get("_hyper", {}):
            inner.set_hyperparameter(name, value)
        else:
            super().__setattr__(name, value)

    def set_hyperparameter(self, name: str, value: Any) -> None:
        """Change a hyperparameter of the lookahead or, failing that, of the inner optimizer.

        Example:
            >>> opt.set_hyperparameter("learning_rate", 0.01)  # doctest: +SKIP
        """
        if name in self._hyper:
            super().set_hyperparameter(name, value)
        else:
            self.inner.set_hyperparameter(name, value)

    @property
    def hyperparameters(self) -> dict[str, float | int | bool | None]:
        """The inner optimizer's hyperparameters and the lookahead's own, by name (eager only)."""
        own = {spec.name: self.get_hyperparameter(spec.name) for spec in self.hyperparameter_specs}
        return {**self.inner.hyperparameters, **own}

    def get_config(self) -> dict[str, Any]:
        """The config, with the inner optimizer's qualified name among the options.

        Example:
            >>> optreg.Optimizer.from_config(opt.get_config())  # doctest: +SKIP
        """
        config = super().get_config()
        source = self.inner.registry_source
        inner_name = f"{source}:{self.inner.optimizer_name}" if source else self.inner.optimizer_name
        config["options"] = {**config["options"], "inner": inner_name}
        return config

    # --- state ----------------------------------------------------------------------------

    def build(self, variables: Iterable[tf.Variable]) -> None:
        """Create the slow weights and the inner optimizer's slots of new variables."""
        variables = list(variables)
        self.inner.build(variables)
        super().build(variables)

    def reset(self) -> None:
        """Start over, the inner optimizer too; the slow weights restart at the variables' values."""
        super().reset()
        self.inner.reset()

    def moves_on_call(self, calls: tf.Tensor) -> tf.Tensor | bool:
        """Whether a call is meant to move the variables: when the inner optimizer's is (see
        :meth:`Optimizer.moves_on_call`)."""
        return self.inner.moves_on_call(calls)

    # --- the step -------------------------------------------------------------------------

    def update_variables(self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: Any) -> None:
        """The inner optimizer's whole step on the fast weights — its schedules, weight decay,
        EMA, accumulation and updates that couple the variables (Prodigy) — then, on a
        synchronising step, the slow-weight update.

        Under a distribution strategy this runs in cross-replica context, where every assignment
        writes each replica's copy, so ``update_one`` is not needed.
        """
        self.inner._step(grads, variables)
        period = tf.cast(self.hyperparameter_state.variables["sync_period"], tf.float64)
        synchronise = tf.equal(tf.math.floormod(step, period), 0.0)
        for var in variables:
            self._synchronise(var, self.slots_for(var)["slow"], synchronise)

    def _synchronise(self, var: tf.Variable, slow: tf.Variable, synchronise: tf.Tensor) -> None:
        """On a synchronising step, move the slow weights towards the fast ones and restart the
        fast ones from there."""
        alpha = tf.cast(self.hyperparameter_state.variables["slow_step_size"], slow.dtype)
        current = slow.read_value()
        moved = current + alpha * (tf.cast(var.read_value(), slow.dtype) - current)
        new_slow = tf.where(synchronise, moved, current)
        slow.assign(new_slow)
        var.assign(tf.where(synchronise, tf.cast(new_slow, var.dtype), var.read_value()))


def _inner_optimizer(inner: str | Optimizer, hyperparameters: dict[str, Any], slot_dtype: str | None) -> Optimizer:
    """The inner optimizer: built from the registry by name, or the given instance, checked."""
    if isinstance(inner, Optimizer):
        if hyperparameters:
            names = ", ".join(sorted(hyperparameters))
            raise HyperparameterError(
                f"lookahead: {names} must be set on the inner optimizer instance, not on the lookahead"
            )
        if inner.gradient_options.as_dict():
            raise OptionError(
                f"lookahead: the inner optimizer {inner.optimizer_name!r} has gradient options "
                f"({', '.join(inner.gradient_options.as_dict())}); give them to the lookahead instead"
            )
        return inner
    if not isinstance(inner, str):
        raise HyperparameterError(f"lookahead: inner must be an optimizer name or an optreg.Optimizer, got {inner!r}")
    options = {"slot_dtype": slot_dtype} if slot_dtype else {}
    created: Optimizer = lookup.create(inner, **hyperparameters, **options)
    return created
