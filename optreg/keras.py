"""The Keras adapter: any spec optimizer as a ``keras.optimizers.Optimizer``.

``optreg.keras.optimizer("adam", learning_rate=1e-3)`` (or a path to a TOML spec) gives an
optimizer for ``model.compile(optimizer=...)`` and ``model.fit`` on the TensorFlow backend.
Keras's own options work as with any Keras optimizer — ``clipnorm``, ``clipvalue``,
``global_clipnorm``, ``weight_decay``, ``use_ema``, ``ema_momentum``,
``ema_overwrite_frequency``, ``loss_scale_factor``, ``gradient_accumulation_steps`` — and
``learning_rate`` may be a ``LearningRateSchedule``; so may every other hyperparameter, evaluated
at Keras's step counter as optreg's own optimizers do (:mod:`optreg.model.schedules`). The spec's
``[options]`` table gives defaults for Keras's options (``weight_decay = 0.004`` for AdamW).
``exclude_layers`` and ``exclude_embeddings`` choose what a rule's ``excluded(var)`` selects, by
the Keras variable's path, as Keras's Muon does; a rule that reads ``weight_decay`` applies the
decay itself and Keras's own decay step then leaves its variables alone. The
class is registered with Keras's
serialization, and its config carries the spec's text, so a saved ``.keras`` model reloads with
the same optimizer and state on a machine that has never seen the spec file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from optreg.errors import HyperparameterError, OptionError
from optreg.model import schedules
from optreg.model.definitions import OptimizerSpec, Slot
from optreg.model.hyperparameters import as_float64, resolve_hyperparameters, unknown_hyperparameter_message
from optreg.model.option_values import StepOptions
from optreg.runtime.spec_optimizer import compile_spec
from optreg.runtime.variables import initial_value, refuse_parameter_servers, slot_shape, variable_path
from optreg.spec.reader import load_spec, load_spec_text
from optreg.spec.variable_slots import SlotPlan


@keras.saving.register_keras_serializable(package="optreg")
class SpecOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose update rule comes from an optreg spec.

    Args:
        spec: the spec's TOML text.
        hyperparameters: values for the spec's hyperparameters other than the learning rate,
            each a number or a schedule.
        learning_rate: a float, a ``LearningRateSchedule`` or a callable; defaults to the
            spec's ``learning_rate`` default.
        **kwargs: Keras's optimizer options (``clipnorm``, ``weight_decay``, ``use_ema``, …).

    Example:
        >>> model.compile(optimizer=optreg.keras.optimizer("adam", learning_rate=1e-3), loss="mse")  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: str,
        hyperparameters: dict | None = None,
        learning_rate: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        refuse_parameter_servers(tf.distribute.get_strategy(), KERAS_PARAMETER_SERVER_MESSAGE)
        parsed = load_spec_text(spec, source="<keras optimizer config>")
        given, scheduled = schedules.split_schedules(
            {name: schedules.schedule_from_config(value, name) for name, value in (hyperparameters or {}).items()}
        )
        if isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool):
            given["learning_rate"] = learning_rate
        values = resolve_hyperparameters(parsed.hyperparameters, given, parsed.name)
        for name in set(scheduled) - set(values):
            raise HyperparameterError(unknown_hyperparameter_message(parsed.name, name, parsed.hyperparameters))
        if learning_rate is None:
            learning_rate = values.get("learning_rate", 0.0)
        options = {**_keras_options(parsed), **kwargs}
        selection = StepOptions(**{key: options.pop(key) for key in _SELECTION_OPTIONS if key in options})
        super().__init__(learning_rate=learning_rate, name=name or parsed.name, **options)
        self._selection = selection
        self._spec = parsed
        self._values = {k: v for k, v in values.items() if k != "learning_rate" and k not in scheduled}
        self._schedules = scheduled
        self._rule, self._slot_specs, _ = compile_spec(parsed, {**values, **scheduled})
        if selection.selects_variables and "excluded" not in self._rule.variable_facts:
            raise OptionError(
                f"exclude_layers and exclude_embeddings need a rule that calls excluded(var); {parsed.name}'s does not"
            )

    @property
    def spec(self) -> OptimizerSpec:
        """The spec this optimizer runs."""
        return self._spec

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        """Keras's step (what ``apply_gradients`` and ``model.fit`` call), refused under a
        ParameterServerStrategy like the optimizer's creation.

        Raises:
            OptionError: applied under a ParameterServerStrategy.

        Example:
            >>> opt.apply(grads, model.trainable_variables)  # doctest: +SKIP
        """
        refuse_parameter_servers(tf.distribute.get_strategy(), KERAS_PARAMETER_SERVER_MESSAGE)
        return super().apply(grads, trainable_variables)

    def build(self, variables: list):
        """Create the slot variables of every model variable: only the slots the rule,
        specialised by the variable's rank, shape and ``excluded(var)``, reads (None in
        ``_slot_lists`` where a variable does not keep a slot, as Keras's Muon does)."""
        if self.built:
            return
        super().build(variables)
        kept = [self._slot_plan(var).slots for var in variables]
        self._slot_lists = {
            slot.name: [self._make_slot(slot, var) if slot.name in own else None for var, own in zip(variables, kept)]
            for slot in self._slot_specs
        }

    def _slot_plan(self, variable: Any) -> SlotPlan:
        """The variable's :class:`~optreg.spec.variable_slots.SlotPlan`: its slots and rule lines."""
        excluded = self._facts(variable).get("excluded")
        return self._rule.slot_plan(tuple(variable.shape), excluded)

    def _make_slot(self, slot: Slot, var: Any):
        """One slot variable for one model variable, in the slot's shape and dtype, created
        holding its start value. Keras builds an optimizer inside the first traced training
        step, where an assignment after creation would not survive; an initializer is run
        when the variable is created, outside the trace."""
        dtype = slot.dtype or var.dtype
        shape = slot_shape(slot.shape, tf.TensorShape(var.shape))

        def initializer(shape: Any, dtype: Any = None):
            return initial_value(slot, var, dtype, self._start_values())

        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=_slot_name(var, slot.name))

    def _start_values(self) -> dict[str, tf.Tensor]:
        """Every hyperparameter's value at step 0 (a schedule's first value), for slots that
        start at one; called where the slot is initialised, outside any trace."""
        start = {name: tf.constant(as_float64(value), tf.float64) for name, value in self._values.items()}
        for name, schedule in self._schedules.items():
            start[name] = tf.cast(schedules.evaluate(schedule, 0), tf.float64)
        rate = self._learning_rate
        start["learning_rate"] = tf.cast(rate(0) if callable(rate) else tf.convert_to_tensor(rate), tf.float64)
        return start

    def update_step(self, gradient: tf.Tensor, variable: Any, learning_rate: Any):
        """One spec update of one variable; Keras runs clipping, decay and EMA around it."""
        index = self._get_variable_index(variable)
        hyper = {name: tf.constant(as_float64(value), tf.float64) for name, value in self._values.items()}
        for name, schedule in self._schedules.items():
            hyper[name] = schedules.evaluate(schedule, self._iterations)
        hyper["learning_rate"] = tf.cast(learning_rate, tf.float64)
        scalars = self._rule.step_scalars(hyper, tf.cast(self.iterations + 1, tf.float64), self.weight_decay)
        slots = {name: variables[index] for name, variables in self._slot_lists.items() if variables[index] is not None}
        current = {n: _tensor(s) for n, s in slots.items()}
        facts = self._facts(variable)
        new = self._rule.update(gradient, _tensor(variable), current, scalars, facts, self._slot_plan(variable))
        for target, value in new.items():
            destination = variable if target == "var" else slots[target]
            self.assign(destination, tf.cast(value, destination.dtype))

    def _facts(self, variable: Any) -> dict[str, bool]:
        """The variable facts the rule reads: ``excluded`` by the variable's Keras path, ``decayed``
        as Keras's own weight decay decides."""
        facts = {
            "excluded": lambda: self._selection.excludes(variable_path(variable)),
            "decayed": lambda: self._use_weight_decay(variable),
        }
        return {name: facts[name]() for name in self._rule.variable_facts}

    def _apply_weight_decay(self, variables: list):
        """Keras's decoupled decay, unless the rule reads ``weight_decay`` and applies it itself."""
        if not self._rule.applies_weight_decay:
            super()._apply_weight_decay(variables)

    def get_config(self) -> dict:
        """Keras's config plus the spec's text, the hyperparameters and the variable selection."""
        config = super().get_config()
        scheduled = {name: schedules.schedule_config(name, value) for name, value in self._schedules.items()}
        config.update(spec=self._spec.text, hyperparameters={**self._values, **scheduled})
        config.update({key: value for key, value in self._selection.as_dict().items() if key in _SELECTION_OPTIONS})
        return config


#: The options that choose what ``excluded(var)`` selects; Keras's base class has no such options.
_SELECTION_OPTIONS = ("exclude_layers", "exclude_embeddings")

KERAS_PARAMETER_SERVER_MESSAGE = (
    "ParameterServerStrategy is not supported by optreg's Keras adapter: its workers apply steps "
    "asynchronously, and a spec's update assigns each variable and slot a value computed from a "
    "read another step may have made stale, so updates could be lost. Train synchronously with "
    "MultiWorkerMirroredStrategy across machines (MirroredStrategy on one)"
)


def _keras_options(spec: OptimizerSpec) -> dict[str, Any]:
    """The spec's ``[options]`` defaults, for Keras (which has no ``skip_nonfinite``)."""
    options = spec.option_defaults()
    if options.pop("skip_nonfinite", False):
        raise OptionError(f"{spec.name} sets skip_nonfinite, which Keras optimizers do not have")
    return options


def optimizer(name_or_path: str | Path, registry: Any = None, **kwargs: Any) -> SpecOptimizer:
    """A Keras optimizer for a registered spec optimizer or a spec file.

    Args:
        name_or_path: a registered name (``"adam"``, ``"builtin:adam"``) or a ``.toml`` path.
        registry: where to look names up (default: optreg's registry).
        **kwargs: the spec's hyperparameters and Keras's optimizer options.

    Returns:
        A :class:`SpecOptimizer`, a ``keras.optimizers.Optimizer``.

    Raises:
        UnknownNameError: no such optimizer.
        OptionError: the optimizer is written in Python, not as a spec.
        HyperparameterError: a hyperparameter out of bounds.

    Example:
        >>> opt = optimizer("specs/my_opt.toml", learning_rate=0.01, clipnorm=1.0)  # doctest: +SKIP
    """
    spec = _find_spec(name_or_path, registry)
    names = {h.name for h in spec.hyperparameters} - {"learning_rate"}
    hyperparameters = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    return SpecOptimizer(spec.text, hyperparameters=hyperparameters, **kwargs)


def _find_spec(name_or_path: str | Path, registry: Any) -> OptimizerSpec:
    path = Path(name_or_path)
    if str(name_or_path).endswith(".toml") or path.is_file():
        return load_spec(path)
    if registry is None:
        from optreg import registry
    entry = registry.get(str(name_or_path))
    if entry.spec is None:
        raise OptionError(f"{entry.qualified_name} is written in Python; the Keras adapter takes spec optimizers")
    return entry.spec


def _slot_name(variable: Any, slot: str) -> str:
    """A slot variable's name: the model variable's path with '/' and ':' made '_', then the slot."""
    return variable_path(variable).replace("/", "_").replace(":", "_") + "_" + slot


def _tensor(variable: Any) -> tf.Tensor:
    """A Keras variable's current value as a TensorFlow tensor."""
    return tf.convert_to_tensor(variable)
