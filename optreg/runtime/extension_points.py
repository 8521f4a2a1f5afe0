"""The methods a Python optimizer subclasses (a mixin of :class:`optreg.Optimizer`), Keras 3 style.

An optimizer whose variables update independently overrides

* :meth:`~ExtensionPoints.update_variable` — update one variable and its slots from its
  gradient (required);
* :meth:`~ExtensionPoints.prepare_step` — compute, once per step, what every variable's update
  shares (optional; its result reaches ``update_variable`` as ``prepared``).

An optimizer whose update couples the variables (sums over all of them, as Prodigy) overrides
:meth:`~ExtensionPoints.update_variables` instead and sees them all at once. A slot's starting
value comes from :meth:`~ExtensionPoints.slot_initial_value`, which an optimizer may override too.

The underscored names of earlier releases (``_update_variable``, ``_prepare_step``,
``_update_variables``, ``_initial_value``) still work for one release: a subclass that
overrides one is called through it, with a DeprecationWarning when the class is defined.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from optreg.model.definitions import Slot
from optreg.runtime.steps import UpdateOne
from optreg.runtime.variables import initial_value

if TYPE_CHECKING:
    from optreg.model.option_values import StepOptions
    from optreg.runtime.hyperparameter_state import HyperparameterState
    from optreg.runtime.slots import RuntimeState

#: Each deprecated name, by the public name that replaces it.
DEPRECATED_NAMES = {
    "update_variable": "_update_variable",
    "prepare_step": "_prepare_step",
    "update_variables": "_update_variables",
    "slot_initial_value": "_initial_value",
}


class ExtensionPoints:
    """The public methods to override, and the deprecated underscored names that reach them.

    Example:
        >>> import optreg
        >>> class HalfStep(optreg.Optimizer):
        ...     hyperparameter_specs = ()
        ...     def update_variable(self, grad, var, slots, prepared):
        ...         var.assign_sub(0.5 * grad)
        >>> x = tf.Variable([1.0])
        >>> _ = HalfStep(jit_compile=False).apply_gradients([(tf.constant([1.0]), x)])
        >>> x.numpy()
        array([0.5], dtype=float32)
    """

    if TYPE_CHECKING:

        @property
        def hyperparameter_state(self) -> HyperparameterState: ...

        slot_dtype: str | None

        step_options: StepOptions
        _runtime: RuntimeState

        def slots_for(self, var: tf.Variable) -> Mapping[str, tf.Variable]: ...
        def _path(self, var: tf.Variable) -> str: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for public, old in DEPRECATED_NAMES.items():
            if _overrides(cls, old):
                warnings.warn(
                    f"{cls.__name__} overrides {old}, a deprecated name: override {public} instead "
                    f"({old} is called through it for one more release)",
                    DeprecationWarning,
                    stacklevel=2,
                )

    def update_variables(
        self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: UpdateOne | None
    ) -> None:
        """Update every variable from its (hooked) gradient: by default, :meth:`prepare_step`
        once, then :meth:`update_variable` per variable. Optimizers whose update couples the
        variables (sums over all of them) override this instead.

        Args:
            grads: the gradients, after the hooks.
            variables: the variables, in the same order.
            step: the 1-based update number, float64.
            update_one: ``update_one(grad, var, prepared)`` updates one variable's replica
                copies under a distribution strategy; None outside one.

        Example:
            >>> opt.update_variables(grads, variables, tf.constant(1.0, tf.float64), None)  # doctest: +SKIP
        """
        if _overrides(type(self), "_update_variables"):
            self._update_variables(grads, variables, step, update_one)
            return
        self._each_variable(grads, variables, step, update_one)

    def _each_variable(
        self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: UpdateOne | None
    ) -> None:
        """The default :meth:`update_variables`: :meth:`prepare_step` once, then each variable's
        update (``update_one`` where the caller gives one, else :meth:`update_variable`)."""
        prepared = self.prepare_step(step)
        for grad, var in zip(grads, variables):
            if update_one is None:
                self.update_variable(grad, var, self.slots_for(var), prepared)
            else:
                update_one(grad, var, prepared)

    def prepare_step(self, step: tf.Tensor) -> Any:
        """Compute what every variable's update shares this step (once per step); nothing by default.

        Args:
            step: the 1-based step number, float64.

        Returns:
            Anything; it is passed to :meth:`update_variable` as ``prepared``.

        Example:
            >>> optreg.registry.create("sgd").prepare_step(tf.constant(1.0, tf.float64))  # doctest: +SKIP
        """
        if _overrides(type(self), "_prepare_step"):
            return self._prepare_step(step)
        return None

    def update_variable(
        self, grad: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], prepared: Any
    ) -> None:
        """Update one variable (and its slots) from its gradient: what a subclass implements.

        Args:
            grad: the variable's gradient, after the hooks.
            var: the variable.
            slots: its slot variables, by slot name.
            prepared: what :meth:`prepare_step` returned this step.

        Raises:
            NotImplementedError: the optimizer implements neither this nor :meth:`update_variables`.

        Example:
            >>> opt.update_variable(grad, var, opt.slots_for(var), None)  # doctest: +SKIP
        """
        if _overrides(type(self), "_update_variable"):
            self._update_variable(grad, var, slots, prepared)
            return
        raise NotImplementedError(f"{type(self).__name__} implements neither update_variable nor update_variables")

    def slot_initial_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor:
        """A slot's starting value for one variable (a scalar slot holds one number per run when
        the hyperparameters hold one per stacked run).

        Example:
            >>> opt.slot_initial_value(opt.slot_specs[0], x)  # doctest: +SKIP
        """
        if _overrides(type(self), "_initial_value"):
            return self._initial_value(slot, var)
        return self._default_slot_value(slot, var)

    def _default_slot_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor:
        """The start value the slot's ``init`` and ``shape`` give, in the optimizer's slot dtype."""
        state = self.hyperparameter_state
        return initial_value(slot, var, self.slot_dtype, state.variables, state.run_shape)

    # --- what an optimizer declares about its updates -----------------------------------------

    @property
    def supports_stacked_runs(self) -> bool:
        """Whether runs stacked side by side in one variable stay independent: true when every
        update is elementwise (each entry's new value depends on that entry alone); False by
        default. The bench stacks them on the variable's last axis (``[dimension, runs]``, the
        hyperparameters ``[1, runs]``): the runs' count is ``hyperparameter_state.run_count``."""
        return False

    @property
    def measuring_steps(self) -> int:
        """How many first updates only measure the gradient and leave the variables where they
        are, by design (ADOPT's first records the squared gradient): 0 by default."""
        return 0

    @property
    def variable_facts(self) -> frozenset[str]:
        """The variable facts (``excluded``, ``decayed``) the update reads; none by default."""
        return frozenset()

    @property
    def applies_weight_decay(self) -> bool:
        """True when the update applies ``weight_decay`` itself (so the step must not apply it
        first); False by default."""
        return False

    @property
    def runs_without_xla(self) -> bool:
        """True when the update must not be compiled with XLA (a rule calling an eigendecomposition,
        which XLA computes far less accurately): ``jit_compile="auto"`` then runs it op by op, and
        ``jit_compile=True`` is refused. False by default."""
        return False

    def variable_fact_values(self, var: tf.Variable) -> dict[str, bool]:
        """The value of every variable fact the update reads, for one variable.

        Args:
            var: the variable about to be updated.

        Returns:
            ``{"excluded": ..., "decayed": ...}``, restricted to :attr:`variable_facts`.

        Example:
            >>> opt.variable_fact_values(model.layers[0].kernel)  # doctest: +SKIP
            {'excluded': False}
        """
        facts = {
            "excluded": lambda: self.step_options.excludes(self._path(var)),
            "decayed": lambda: self._runtime.weight_decay_exclusions.applies_to(var),
        }
        return {name: facts[name]() for name in self.variable_facts}

    # --- the deprecated names, kept for one release ---------------------------------------------
    # Each reaches the public method, except from an override of itself (``super()._prepare_step``),
    # which gets the default behaviour, so neither calls the other forever.

    def _update_variables(
        self, grads: list[Any], variables: list[Any], step: tf.Tensor, update_one: UpdateOne | None
    ) -> None:
        """Deprecated: :meth:`update_variables`."""
        _warn("_update_variables")
        if _overrides(type(self), "_update_variables"):
            self._each_variable(grads, variables, step, update_one)
        else:
            self.update_variables(grads, variables, step, update_one)

    def _prepare_step(self, step: tf.Tensor) -> Any:
        """Deprecated: :meth:`prepare_step`."""
        _warn("_prepare_step")
        return None if _overrides(type(self), "_prepare_step") else self.prepare_step(step)

    def _update_variable(
        self, grad: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], prepared: Any
    ) -> None:
        """Deprecated: :meth:`update_variable`."""
        _warn("_update_variable")
        if _overrides(type(self), "_update_variable"):
            raise NotImplementedError(f"{type(self).__name__} implements no update_variable")
        self.update_variable(grad, var, slots, prepared)

    def _initial_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor:
        """Deprecated: :meth:`slot_initial_value`."""
        _warn("_initial_value")
        if _overrides(type(self), "_initial_value"):
            return self._default_slot_value(slot, var)
        return self.slot_initial_value(slot, var)


def _overrides(cls: type, name: str) -> bool:
    """Whether ``cls`` defines ``name`` itself or inherits it from below :class:`ExtensionPoints`."""
    return getattr(cls, name, None) is not getattr(ExtensionPoints, name)


def _warn(old: str) -> None:
    """A DeprecationWarning for a call of a deprecated name."""
    public = {value: key for key, value in DEPRECATED_NAMES.items()}[old]
    warnings.warn(f"{old} is deprecated: call {public}", DeprecationWarning, stacklevel=3)
