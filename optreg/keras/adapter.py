"""The Keras adapter's optimizer class, :class:`SpecOptimizer`, and :func:`optimizer`, which
builds one for a registered spec or a spec file (the package's docstring says what it does)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from optreg.errors import HyperparameterError, OptionError
from optreg.keras.updates import CompiledUpdates, backend_variable, compiled_update, compiles_updates
from optreg.model import schedules
from optreg.model.definitions import SLOT_INITS, OptimizerSpec, Slot
from optreg.model.hyperparameters import as_float64, resolve_hyperparameters, unknown_hyperparameter_message
from optreg.model.option_values import StepOptions
from optreg.runtime.sparse import check_sparse_updates, summed_rows, update_rows, write_touched_rows
from optreg.runtime.spec_optimizer import compile_spec
from optreg.runtime.variables import initial_value, refuse_parameter_servers, slot_shape, variable_path
from optreg.spec.reader import load_spec, load_spec_text
from optreg.spec.variable_slots import SlotPlan

__all__ = ["KERAS_PARAMETER_SERVER_MESSAGE", "SpecOptimizer", "optimizer"]


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
        hyperparameters: dict[str, Any] | None = None,
        learning_rate: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
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
        for key in _NOT_KERAS_OPTIONS & set(kwargs):
            raise OptionError(f"{key} is an option of optreg's own optimizers; Keras optimizers, and so the adapter, "
                              f"do not have it")
        options = {**_keras_options(parsed), **kwargs}
        selection = StepOptions(**{key: options.pop(key) for key in _SELECTION_OPTIONS if key in options})
        jit_compile = options.pop("jit_compile", "auto")
        if jit_compile not in (True, False, "auto"):
            raise OptionError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        sparse_updates = options.pop("sparse_updates", "exact")
        super().__init__(learning_rate=learning_rate, name=name or parsed.name, **options)
        self._selection = selection
        self._spec = parsed
        self._values = {k: v for k, v in values.items() if k != "learning_rate" and k not in scheduled}
        self._schedules = scheduled
        self._rule, self._slot_specs, _ = compile_spec(parsed, {**values, **scheduled})
        self._sparse = self._rule.sparse_support
        self._sparse_updates = check_sparse_updates(sparse_updates, parsed.name, self._sparse)
        if jit_compile is True and self._rule.runs_without_xla:
            raise OptionError(
                f"jit_compile=True: {parsed.name}'s update calls an eigendecomposition, which XLA computes far less "
                "accurately than TensorFlow op by op; the adapter runs it op by op (leave jit_compile 'auto' or False)"
            )
        self._jit_compile: bool | str = jit_compile
        self._compiled = CompiledUpdates()
        # the step program's results while Keras's op-by-op step updates its variables one by one
        # (see _backend_update_step); None outside such a step
        self._this_step: list[Any] | None = None
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

    def build(self, variables: list[Any]) -> None:
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

    def _make_slot(self, slot: Slot, var: Any) -> Any:
        """One slot variable for one model variable, in the slot's shape and dtype, created
        holding its start value. Keras builds an optimizer inside the first traced training
        step, where an assignment after creation would not survive; an initializer is run
        when the variable is created, outside the trace."""
        dtype = slot.dtype or var.dtype
        shape = slot_shape(slot.shape, tf.TensorShape(var.shape))

        # only a slot starting at a hyperparameter's value reads the start values
        reads_hyperparameter = isinstance(slot.init, str) and slot.init not in SLOT_INITS

        def initializer(shape: Any, dtype: Any = None) -> tf.Tensor:
            return initial_value(slot, var, dtype, self._start_values() if reads_hyperparameter else None)

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

    @property
    def sparse_updates(self) -> str:
        """The ``sparse_updates`` option: ``"exact"``, ``"lazy"`` or ``"dense"``."""
        return self._sparse_updates

    @property
    def jit_compile(self) -> bool | str:
        """The ``jit_compile`` option: True, False or ``"auto"``."""
        return self._jit_compile

    @property
    def takes_sparse_gradients(self) -> bool:
        """True when a ``tf.IndexedSlices`` gradient is updated on its touched rows: ``"lazy"``,
        or ``"exact"`` and the rule is exact-sparse or runs on touched rows; never with gradient
        accumulation, whose sums are dense."""
        if self.gradient_accumulation_steps:
            return False
        exact = self._sparse.exact or self._sparse.touched_rows
        return self._sparse_updates == "lazy" or (self._sparse_updates == "exact" and exact)

    def _backend_update_step(self, grads: list[Any], trainable_variables: list[Any], learning_rate: Any) -> None:
        """Every variable's update of one step as one XLA computation, a sparse gradient's rows
        summed before it (see :mod:`optreg.keras.updates`); op by op, through Keras's own
        per-replica step, with ``jit_compile=False``, under a distribution strategy, or for a rule
        that calls an eigendecomposition (which XLA computes far less accurately)."""
        if self._rule.runs_without_xla or not compiles_updates(self._jit_compile):
            # Keras calls update_step once per variable (per device copy under a strategy), each
            # with this step's learning rate: they share one run of the step program
            self._this_step = []
            try:
                super()._backend_update_step(grads, trainable_variables, learning_rate)
            finally:
                self._this_step = None
            return
        rows = self.takes_sparse_gradients
        prepared = [summed_rows(g) if rows and isinstance(g, tf.IndexedSlices) else tf.convert_to_tensor(g)
                    for g in grads]
        variables = list(trainable_variables)
        key = (*(self._var_key(v) for v in variables), *(isinstance(g, tf.IndexedSlices) for g in prepared))
        update = self._compiled.get(key, lambda: compiled_update(functools.partial(self._update_all, variables)))
        update(prepared, tf.convert_to_tensor(learning_rate))

    def _update_all(self, variables: list[Any], grads: Sequence[Any], learning_rate: tf.Tensor) -> None:
        """The step program once, then every variable's program (the inside of the XLA step; a
        sparse gradient's rows are summed already)."""
        scalars = self._step_scalars(learning_rate)
        for grad, variable in zip(grads, variables):
            self._update_variable(grad, variable, scalars, summed=True)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """One spec update of one variable; Keras runs clipping, decay and EMA around it. Inside
        Keras's step, the step program runs for its first variable and the others reuse it."""
        if self._this_step is None:
            self._update_variable(gradient, variable, self._step_scalars(learning_rate))
            return
        if not self._this_step:
            self._this_step.append(self._step_scalars(learning_rate))
        self._update_variable(gradient, variable, self._this_step[0])

    def _step_scalars(self, learning_rate: Any) -> list[tf.Tensor]:
        """The rule's step program at this step (hyperparameters and schedules in float64)."""
        hyper = {name: tf.constant(as_float64(value), tf.float64) for name, value in self._values.items()}
        for name, schedule in self._schedules.items():
            hyper[name] = schedules.evaluate(schedule, self._iterations)
        hyper["learning_rate"] = tf.cast(learning_rate, tf.float64)
        return self._rule.step_scalars(hyper, tf.cast(self.iterations + 1, tf.float64), self.weight_decay)

    def _update_variable(self, gradient: Any, variable: Any, scalars: list[tf.Tensor], summed: bool = False) -> None:
        """The variable's program on its gradient: on a sparse gradient's touched rows where
        :attr:`takes_sparse_gradients` (its repeated rows summed first, unless ``summed``), else
        on the whole (densified) gradient."""
        index = self._get_variable_index(variable)
        slots = {name: variables[index] for name, variables in self._slot_lists.items() if variables[index] is not None}
        facts, plan = self._facts(variable), self._slot_plan(variable)
        current = {n: _tensor(s) for n, s in slots.items()}
        if isinstance(gradient, tf.IndexedSlices) and self.takes_sparse_gradients:
            rows = {name: backend_variable(slot) for name, slot in slots.items()}
            gradient = gradient if summed else summed_rows(gradient)
            if self._sparse_updates == "lazy" or self._sparse.exact:
                update = lambda g, v, s: self._rule.update(g, v, s, scalars, facts, plan, index)  # noqa: E731
                update_rows(gradient, backend_variable(variable), rows, update)
                return
            if self._rule.runs_on_touched_rows(tuple(variable.shape), facts.get("excluded")):
                values = self._rule.update_touched_rows(gradient, _tensor(variable), current, scalars, facts, plan)
                write_touched_rows(gradient.indices, backend_variable(variable), rows, values)
                return
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)  # densified, or this variable's update is whole
        new = self._rule.update(gradient, _tensor(variable), current, scalars, facts, plan, index)
        for target, value in new.items():
            destination = variable if target == "var" else slots[target]
            self.assign(destination, tf.cast(value, destination.dtype))

    def _facts(self, variable: Any) -> dict[str, bool]:
        """The variable facts the rule reads: ``excluded`` by the variable's Keras path, ``decayed``
        as Keras's own weight decay decides."""
        facts: dict[str, Callable[[], bool]] = {
            "excluded": lambda: self._selection.excludes(variable_path(variable)),
            "decayed": lambda: self._use_weight_decay(variable),
        }
        return {name: facts[name]() for name in self._rule.variable_facts}

    def _apply_weight_decay(self, variables: list[Any]) -> None:
        """Keras's decoupled decay, unless the rule reads ``weight_decay`` and applies it itself."""
        if not self._rule.applies_weight_decay:
            super()._apply_weight_decay(variables)

    def get_config(self) -> dict[str, Any]:
        """Keras's config plus the spec's text, the hyperparameters and the variable selection."""
        config: dict[str, Any] = super().get_config()
        scheduled = {name: schedules.schedule_config(name, value) for name, value in self._schedules.items()}
        config.update(spec=self._spec.text, hyperparameters={**self._values, **scheduled})
        config.update({key: value for key, value in self._selection.as_dict().items() if key in _SELECTION_OPTIONS})
        config.update(jit_compile=self._jit_compile, sparse_updates=self._sparse_updates)
        return config


#: optreg's options that Keras optimizers do not have (Keras keeps a slot in its variable's dtype).
_NOT_KERAS_OPTIONS = frozenset({"skip_nonfinite", "slot_dtype"})

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
    spec: OptimizerSpec | None = entry.spec
    if spec is None:
        raise OptionError(f"{entry.qualified_name} is written in Python; the Keras adapter takes spec optimizers")
    return spec


def _slot_name(variable: Any, slot: str) -> str:
    """A slot variable's name: the model variable's path with '/' and ':' made '_', then the slot."""
    return variable_path(variable).replace("/", "_").replace(":", "_") + "_" + slot


def _tensor(variable: Any) -> tf.Tensor:
    """A Keras variable's current value as a TensorFlow tensor."""
    return tf.convert_to_tensor(variable)
