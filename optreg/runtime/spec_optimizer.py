"""SpecOptimizer: the Optimizer an :class:`~optreg.model.definitions.OptimizerSpec` describes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from optreg.errors import HyperparameterError
from optreg.lang.sparsity import SparseSupport
from optreg.model.definitions import OptimizerSpec, Slot
from optreg.runtime.compile import CompiledRule
from optreg.runtime.optimizer import Optimizer
from optreg.runtime.sparse import update_rows, write_touched_rows
from optreg.spec.conditions import (
    condition_holds,
    condition_hyperparameter,
    deciding_values,
    fixed_values,
    specialize_spec,
)
from optreg.spec.locations import rule_locations
from optreg.spec.variable_slots import SlotPlan

#: The state a rule that draws random numbers keeps per variable: the variable's index, which keys
#: its numbers, an int32 whatever ``slot_dtype`` says (it is no number the rule computes with). Kept
#: as a slot, so a checkpoint holds it by variable and a restored optimizer draws what the saved one
#: would have, whatever order it meets its variables in.
NOISE_INDEX = Slot(
    "noise_index", init=0.0, shape="scalar",
    doc="the variable's index among the optimizer's variables (int32), which keys its random numbers",
)


def compile_spec(
    spec: OptimizerSpec, given: Mapping[str, Any]
) -> tuple[CompiledRule, tuple[Slot, ...], dict[str, Any]]:
    """A spec's rule, specialised for the values an optimizer is created with, and compiled.

    Args:
        spec: the spec.
        given: the hyperparameter values the optimizer is created with (numbers or schedules;
            the rest take their defaults).

    Returns:
        ``(rule, slots, created_with)``: the compiled rule, the slots that exist, and the values
        of the fixed and the slot-deciding hyperparameters.

    Raises:
        HyperparameterError: a fixed or slot-deciding hyperparameter given a bad value or a schedule.

    Example:
        >>> rule, slots, created_with = compile_spec(load_spec("specs/sgd.toml"), {"momentum": 0.0})  # doctest: +SKIP
        >>> slots  # no velocity without momentum  # doctest: +SKIP
        ()
    """
    created_with = {**fixed_values(spec, given), **deciding_values(spec, given)}
    rule, slots = specialize_spec(spec, created_with)
    compiled = CompiledRule(
        rule, [h.name for h in spec.hyperparameters], {s.name: s.shape for s in slots}, rule_locations(spec)
    )
    return compiled, slots, created_with


class SpecOptimizer(Optimizer):
    """An optimizer whose hyperparameters, slots and update rule come from a spec.

    Args:
        spec: the validated spec.
        **kwargs: hyperparameter values and the options of :class:`~optreg.runtime.optimizer.Optimizer`;
            options the spec's ``[options]`` table sets default to its values.

    Example:
        >>> from optreg.spec.reader import load_spec
        >>> opt = SpecOptimizer(load_spec("specs/adam.toml"), learning_rate=0.1)  # doctest: +SKIP
    """

    def __init__(self, spec: OptimizerSpec, **kwargs: Any):
        self.spec = spec
        self.optimizer_name = spec.name
        self.summary = spec.summary
        self.hyperparameter_specs = spec.hyperparameters
        self._rule, self.slot_specs, self._created_with = compile_spec(spec, kwargs)
        self._sparse = self._rule.sparse_support
        super().__init__(**{**spec.option_defaults(), **kwargs})

    def set_hyperparameter(self, name: str, value: Any) -> None:
        """As :meth:`Optimizer.set_hyperparameter`; a hyperparameter that decides a slot
        (``when = "momentum > 0"``) takes any new number on the same side of its condition.

        Raises:
            HyperparameterError: a number that would need a slot this optimizer was created
                without (or make one it has meaningless), or a schedule for such a hyperparameter.
        """
        for slot in self.spec.slots:
            if slot.when and condition_hyperparameter(slot.when) == name and not tf.is_tensor(value):
                self._check_same_slots(slot, name, value)
        super().set_hyperparameter(name, value)

    def _check_same_slots(self, slot: Slot, name: str, value: Any) -> None:
        """Refuse a value on the other side of ``slot.when`` than the creation value."""
        created, when = self._created_with[name], slot.when or ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if condition_holds(when, {name: value}) == condition_holds(when, {name: created}):
                return
        exists = "exists" if condition_holds(when, {name: created}) else "does not exist"
        raise HyperparameterError(
            f"{name} = {value!r}: slot {slot.name!r} {exists} in this {self.optimizer_name} ({name} was {created!r} "
            f"at creation, and the slot exists only when {slot.when}); create a new optimizer for that value"
        )

    @property
    def measuring_steps(self) -> int:
        """The spec's ``[update] measuring_steps``."""
        return self.spec.measuring_steps

    @property
    def supports_stacked_runs(self) -> bool:
        """Runs stack side by side in one variable (the bench's ``[dimension, runs]``) when the
        rule is elementwise (no reductions over the variable, shape facts or matrix products)."""
        return getattr(self._rule, "elementwise", True)

    @property
    def runs_without_xla(self) -> bool:
        """True when the rule, as created, calls ``inverse_root`` or ``eigvecs``: its step is never
        compiled with XLA (see :mod:`optreg.runtime.linalg`)."""
        return self._rule.runs_without_xla

    @property
    def sparse_support(self) -> SparseSupport:
        """What the rule, as created, can do with a sparse gradient (exact, lazy only, or dense)."""
        return self._sparse

    @property
    def variable_facts(self) -> frozenset[str]:
        """The variable facts the rule calls."""
        return self._rule.variable_facts

    @property
    def applies_weight_decay(self) -> bool:
        """True when the rule reads ``weight_decay`` and so decays the variables itself."""
        return self._rule.applies_weight_decay

    def variable_slot_specs(self, var: tf.Variable) -> tuple[Slot, ...]:
        """The slots the rule, specialised by this variable's rank, shape and ``excluded(var)``,
        reads: Adafactor keeps ``r`` and ``c`` on a matrix and ``v`` on a vector; Muon keeps ``v``
        only on the variables of its AdamW branch."""
        kept = self._slot_plan(var).slots
        own = tuple(slot for slot in self.slot_specs if slot.name in kept)
        return (*own, NOISE_INDEX) if self._rule.draws else own

    def get_slot_names(self) -> list[str]:
        """The slots' names (and ``noise_index`` when the rule draws random numbers), then the
        options' state (see :meth:`SlotMethods.get_slot_names`)."""
        names = super().get_slot_names()
        return [NOISE_INDEX.name, *names] if self._rule.draws else names

    def slot_initial_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor:
        """As :meth:`Optimizer.slot_initial_value`; ``noise_index`` starts at the variable's place
        among the variables built so far (``reset()`` leaves it as it is)."""
        if slot is NOISE_INDEX:
            return tf.constant(len(self._slots), tf.int32)
        return super().slot_initial_value(slot, var)

    def _slot_plan(self, var: tf.Variable) -> SlotPlan:
        """The variable's :class:`~optreg.spec.variable_slots.SlotPlan` (remembered per shape)."""
        excluded = self.variable_fact_values(var).get("excluded") if "excluded" in self.variable_facts else None
        return self._rule.slot_plan(var.shape.as_list() if var.shape.rank is not None else None, excluded)

    def prepare_step(self, step: tf.Tensor) -> list[tf.Tensor]:
        """Run the rule's step program (hyperparameter-only sub-expressions) in float64."""
        return self._rule.step_scalars(dict(self.hyperparameter_state.variables), step, self.step_options.weight_decay)

    def update_variable(
        self, grad: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], prepared: list[tf.Tensor]
    ) -> None:
        """Run the rule's variable program and assign the new variable and slot values (only the
        touched rows' for a sparse gradient, see :mod:`optreg.runtime.sparse`)."""
        facts = self.variable_fact_values(var)
        plan = self._slot_plan(var)  # of the whole variable: a row-local rule reads no shape facts
        # value(), not read_value(): the same read without an Identity op after it (op by op, one
        # eager op fewer per slot and variable)
        index = slots[NOISE_INDEX.name].value() if self._rule.draws else 0
        current = {n: s.value() for n, s in slots.items() if n != NOISE_INDEX.name}
        if isinstance(grad, tf.IndexedSlices):
            if self.sparse_updates == "lazy" or self._sparse.exact:
                update_rows(grad, var, slots, lambda g, v, s: self._rule.update(g, v, s, prepared, facts, plan, index))
                return
            if self._rule.runs_on_touched_rows(var.shape.as_list(), facts.get("excluded")):
                values = self._rule.update_touched_rows(grad, var.value(), current, prepared, facts, plan)
                write_touched_rows(grad.indices, var, slots, values)
                return
            grad = tf.convert_to_tensor(grad)  # this variable's shape keeps its update whole
        values = self._rule.update(grad, var.value(), current, prepared, facts, plan, index)
        for target, value in values.items():
            destination = var if target == "var" else slots[target]
            destination.assign(tf.cast(value, destination.dtype))
