"""Per-variable state: slots, moving averages and gradient sums, and how checkpoints key them.

:class:`SlotMethods` is a mixin of :class:`optreg.Optimizer`. On first use (or :meth:`~SlotMethods.build`)
each variable gets one variable per slot of the optimizer, plus its moving average (``use_ema``)
and its gradient sum (``gradient_accumulation_steps``). They are not the module's checkpoint
children: ``tf.train.Checkpoint`` saves them as TensorFlow's slot variables, keyed by the
variable they belong to (:meth:`~SlotMethods.get_slot_names`, :meth:`~SlotMethods.get_slot`,
``_create_or_restore_slot_variable``), so a restore gives each variable its own state whatever
order variables are first stepped in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from optreg.errors import CheckpointError
from optreg.model.definitions import Slot
from optreg.runtime.variables import tf_variable, variable_path
from optreg.runtime.weight_decay import WeightDecayExclusions

if TYPE_CHECKING:
    from optreg.model.option_values import StepOptions
    from optreg.runtime.hyperparameter_state import HyperparameterState

#: The names under which checkpoints keep a variable's moving average and gradient sum (no
#: slot's name can start with an underscore).
AVERAGE, ACCUMULATED = "_average", "_accumulated"


class RuntimeState:
    """Which slot set belongs to which variable, the distribution strategy the optimizer was
    created under, and its compiled steps (a plain object, so not checkpointed).

    Example:
        >>> RuntimeState(tf.distribute.get_strategy()).position
        {}
    """

    def __init__(self, strategy: Any) -> None:
        self.position: dict[Any, int] = {}
        #: The Keras path of each variable that came in as a Keras 3 variable, by its ``ref()``.
        self.paths: dict[Any, str] = {}
        self.strategy = strategy
        self.compiled: dict[tuple[Any, ...], Any] = {}
        self.weight_decay_exclusions = WeightDecayExclusions()
        #: Held for a whole step (building slots included), so steps made from several threads
        #: run one after another: none is lost and no variable gets two slot sets.
        self.lock = threading.RLock()


class SlotMethods:
    """Creating, finding, resetting and checkpointing every variable's state.

    Example:
        >>> opt = optreg.registry.create("adam")  # doctest: +SKIP
        >>> opt.build([tf.Variable([1.0])]); opt.get_slot_names()  # doctest: +SKIP
        ['m', 'v']
    """

    #: The per-variable state the optimizer keeps.
    slot_specs: tuple[Slot, ...] = ()

    if TYPE_CHECKING:

        @property
        def hyperparameter_state(self) -> HyperparameterState: ...

        optimizer_name: str
        slot_dtype: str | None
        step_options: StepOptions
        iterations: tf.Variable
        skipped_steps: tf.Variable
        _runtime: RuntimeState
        _slots: list[dict[str, tf.Variable]]
        _averages: list[tf.Variable]
        _accumulators: list[tf.Variable]

        def slot_initial_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor: ...

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _untracked_variable_state(self) -> None:
        """Per variable (by ``runtime.position``): its slots, its moving average (use_ema) and
        its gradient sum (gradient_accumulation_steps). Not tracked as checkpoint children."""
        self._slots = []
        self._averages = []
        self._accumulators = []

    def build(self, variables: Iterable[tf.Variable]) -> None:
        """Create the slots of every variable that has none yet (done on first use anyway).

        Args:
            variables: the variables this optimizer will update.

        Example:
            >>> opt.build(model.trainable_variables)  # doctest: +SKIP
        """
        with self._runtime.lock:
            for var in self._tf_variables(variables):
                if var.ref() not in self._runtime.position:
                    self._create_slots(var)

    def _tf_variables(self, variables: Iterable[Any]) -> list[tf.Variable]:
        """The ``tf.Variable`` of each variable, remembering the Keras path of every Keras 3
        variable (as ``model.trainable_variables`` holds) for ``excluded(var)`` and slot names."""
        held = []
        for var in variables:
            inner = tf_variable(var)
            if inner is not var:
                self._runtime.paths[inner.ref()] = variable_path(var)
            held.append(inner)
        return held

    def _path(self, var: tf.Variable) -> str:
        """A variable's path: its Keras path when it came in as a Keras variable."""
        return self._runtime.paths.get(var.ref()) or variable_path(var)

    def _create_slots(self, var: tf.Variable) -> None:
        """Create one variable's slots, moving average and gradient sum."""
        with tf.init_scope(), self._runtime.strategy.scope():
            base = self._path(var).split(":")[0]
            slots = {
                slot.name: tf.Variable(self.slot_initial_value(slot, var), trainable=False, name=f"{base}/{slot.name}")
                for slot in self.variable_slot_specs(var)
            }
            if self.step_options.use_ema:
                self._averages.append(tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/average"))
            if self.step_options.gradient_accumulation_steps:
                self._accumulators.append(tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/accumulated"))
        self._runtime.position[var.ref()] = len(self._slots)
        self._slots.append(slots)

    def variable_slot_specs(self, var: tf.Variable) -> tuple[Slot, ...]:
        """The slots one variable keeps: every one of :attr:`slot_specs` by default. A spec
        optimizer keeps only those its rule, specialised by the variable's rank, shape and
        ``excluded(var)``, reads (:mod:`optreg.spec.variable_slots`).

        Args:
            var: the variable (a ``tf.Variable``).

        Example:
            >>> opt = optreg.registry.create("adafactor")  # doctest: +SKIP
            >>> [s.name for s in opt.variable_slot_specs(tf.Variable(tf.zeros([3, 2])))]  # doctest: +SKIP
            ['r', 'c']
        """
        return self.slot_specs

    def slots_for(self, var: tf.Variable) -> Mapping[str, tf.Variable]:
        """The slot variables of one variable, by slot name (only those it keeps: see
        :meth:`variable_slot_specs`).

        Args:
            var: a variable this optimizer has built or updated (a ``tf.Variable`` or a Keras
                variable).

        Raises:
            KeyError: the variable has no slots yet (it was never updated nor built).

        Example:
            >>> opt.slots_for(x)["m"]  # doctest: +SKIP
        """
        return self._slots[self._runtime.position[tf_variable(var).ref()]]

    def variable_index(self, var: tf.Variable) -> int:
        """A variable's index among this optimizer's variables: the order they were first built in
        (what keys a rule's random numbers, so a resumed or replicated run draws the same).

        Raises:
            KeyError: the variable was never built nor updated.

        Example:
            >>> opt.variable_index(model.trainable_variables[0])  # doctest: +SKIP
            0
        """
        return self._runtime.position[tf_variable(var).ref()]

    def get_slot_names(self) -> list[str]:
        """The names of the state kept per variable: the slots, then ``_average`` (use_ema) and
        ``_accumulated`` (gradient_accumulation_steps). With :meth:`get_slot`, this is how
        ``tf.train.Checkpoint`` saves every one keyed by the variable it belongs to (a slot some
        variable does not keep raises ``KeyError`` there, and the checkpoint skips it).

        Example:
            >>> optreg.registry.create("adam").get_slot_names()  # doctest: +SKIP
            ['m', 'v']
        """
        names = [slot.name for slot in self.slot_specs]
        if self.step_options.use_ema:
            names.append(AVERAGE)
        if self.step_options.gradient_accumulation_steps:
            names.append(ACCUMULATED)
        return names

    def get_slot(self, var: Any, slot_name: str) -> tf.Variable:
        """One variable's state of that name (a slot, ``_average`` or ``_accumulated``).

        Raises:
            KeyError: the variable has no such state (it was never built, or does not keep that
                slot), or is no variable.

        Example:
            >>> opt.get_slot(x, "m")  # doctest: +SKIP
        """
        held = tf_variable(var)
        if not isinstance(held, tf.Variable):
            raise KeyError(slot_name)
        position = self._runtime.position[held.ref()]
        extras = {AVERAGE: self._averages, ACCUMULATED: self._accumulators}
        if slot_name in extras:
            return extras[slot_name][position]
        return self._slots[position][slot_name]

    def _create_or_restore_slot_variable(
        self, slot_variable_position: Any, slot_name: str, variable: Any, slot_variable_shape: Any = None
    ) -> tf.Variable | None:
        """TensorFlow's checkpoint calls this when it restores a variable whose state this
        optimizer saved: build the variable's state if it has none yet and hand back the one to
        restore; None when this optimizer keeps no state of that name for the variable (then the
        checkpoint's ``assert_consumed`` names it).

        Raises:
            CheckpointError: the saved state has another shape than this optimizer's.
        """
        held = tf_variable(variable)
        if not isinstance(held, tf.Variable) or slot_name not in self.get_slot_names():
            return None
        self.build([held])
        try:
            state = self.get_slot(held, slot_name)
        except KeyError:
            return None
        saved = slot_variable_position.value_shape()
        if saved is not None and not tf.TensorShape(saved).is_compatible_with(state.shape):
            raise CheckpointError(
                f"the checkpoint's {slot_name!r} of {self._path(held)} has shape {tf.TensorShape(saved).as_list()}, "
                f"but this {self.optimizer_name}'s has {state.shape.as_list()}"
            )
        saved_dtype = _saved_dtype(slot_variable_position)
        if saved_dtype is not None and saved_dtype != state.dtype:
            raise CheckpointError(
                f"the checkpoint's {slot_name!r} of {self._path(held)} is {saved_dtype.name}, "
                f"but this {self.optimizer_name}'s is {state.dtype.name} (slot_dtype decides it)"
            )
        return state

    def reset(self) -> None:
        """Start over: the step and skip counters to zero, every slot to its initial value, and
        the moving averages and accumulated gradients to zero.

        Example:
            >>> opt.reset()  # doctest: +SKIP
        """
        self.iterations.assign(0)
        self.skipped_steps.assign(0)
        for ref, position in self._runtime.position.items():
            kept = self._slots[position]
            for slot in self.slot_specs:
                if slot.name in kept:
                    kept[slot.name].assign(self.slot_initial_value(slot, ref.deref()))
        for extra in (*self._averages, *self._accumulators):
            extra.assign(tf.zeros_like(extra))


def _saved_dtype(position: Any) -> tf.DType | None:
    """The dtype a checkpoint saved a slot variable's value in, or None where it does not say.

    ``position`` is TensorFlow's checkpoint position of the slot variable, as
    ``_create_or_restore_slot_variable`` receives it (its ``value_shape`` has no dtype twin).
    """
    dtypes = getattr(position.checkpoint, "dtype_map", None) or {}
    for attribute in position.object_proto.attributes:
        if attribute.name == "VARIABLE_VALUE" and attribute.checkpoint_key in dtypes:
            return tf.as_dtype(dtypes[attribute.checkpoint_key])
    return None
