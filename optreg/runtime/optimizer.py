"""The Optimizer base class: one ``apply_gradients`` protocol for every optimizer.

An :class:`Optimizer` is a :class:`tf.Module`. It holds

* ``iterations``, an int64 step counter (the update rule sees ``step = iterations + 1``);
* one float64 variable per hyperparameter, so ``opt.learning_rate = 0.01`` takes effect
  inside an already traced ``tf.function`` without retracing;
* per-variable slot variables, created on first use and tracked by the module, so
  ``tf.train.Checkpoint(optimizer=opt)`` saves and restores them.

Subclasses describe their hyperparameters and slots and implement
:meth:`Optimizer._update_variable` (and optionally :meth:`Optimizer._prepare_step`), or, when
the update of one variable depends on the others, :meth:`Optimizer._update_variables`.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Iterable, Mapping, Sequence

import tensorflow as tf

from optreg.runtime import lookup
from optreg.model import schedules
from optreg.runtime.configs import optimizer_config
from optreg.runtime.keras_options import KerasOptions
from optreg.errors import CheckpointError, HyperparameterError, OptionError
from optreg.model.options import GradientOptions
from optreg.runtime.gradients import gradient_hooks
from optreg.model.options import StepOptions
from optreg.model.definitions import SLOT_DTYPES, Slot
from optreg.model.hyperparameters import Hyperparameter, resolve_hyperparameters, unknown_hyperparameter_message
from optreg.runtime.weight_decay import WeightDecayExclusions, decay


#: The names under which checkpoints keep a variable's moving average and gradient sum (no
#: slot's name can start with an underscore).
_AVERAGE, _ACCUMULATED = "_average", "_accumulated"


class _RuntimeState:
    """Which slot set belongs to which variable, the distribution strategy the optimizer was
    created under, and its compiled steps (a plain object, so not checkpointed)."""

    def __init__(self, strategy: Any) -> None:
        self.position: dict[Any, int] = {}
        #: The Keras path of each variable that came in as a Keras 3 variable, by its ``ref()``.
        self.paths: dict[Any, str] = {}
        self.strategy = strategy
        self.compiled: dict[tuple, Any] = {}
        self.schedules: dict[str, Any] = {}
        self.weight_decay_exclusions = WeightDecayExclusions()
        #: ``[runs, 1, …]`` once runs are stacked: the shape of the hyperparameters and of
        #: every scalar slot (one number per run); None before.
        self.run_shape: list[int] | None = None
        #: Held for a whole step (building slots included), so steps made from several threads
        #: run one after another: none is lost and no variable gets two slot sets.
        self.lock = threading.RLock()


class Optimizer(KerasOptions, tf.Module):
    """Base class of optreg optimizers.

    Args:
        name: the module name; defaults to the optimizer's registered name.
        clipnorm: rescale each gradient tensor to at most this L2 norm.
        global_clipnorm: rescale all gradients together to at most this joint L2 norm.
        clipvalue: limit each gradient element to ``[-clipvalue, clipvalue]``.
        skip_nonfinite: skip, whole, every step whose gradients hold a NaN or an infinity;
            ``skipped_steps`` counts them (default False: apply every step, as Keras does).
        slot_dtype: the dtype of every slot (``"float32"`` for bfloat16 or float16 variables),
            overriding the spec's; None keeps the spec's, or the variable's own.
        jit_compile: compile each step (hooks and the update of every variable) into one XLA
            computation, eagerly and inside ``tf.function`` alike: True, False, or ``"auto"``
            (the default: XLA except under a distribution strategy).
        weight_decay: decoupled decay, ``var -= var * weight_decay * learning_rate`` before
            each update (see :mod:`optreg.runtime.weight_decay`).
        use_ema: keep a moving average of every variable (see :mod:`optreg.runtime.ema`).
        ema_momentum: the average's momentum (default 0.99).
        ema_overwrite_frequency: copy the averages into the variables every so many updates.
        gradient_accumulation_steps: apply the mean gradient of that many calls, once per that
            many calls; ``iterations`` counts calls and the rule's ``step`` counts updates.
        loss_scale_factor: divide every gradient by it (``scale_loss`` multiplies a loss by it).
        exclude_layers: regular expressions searched for in each variable's path (its
            ``path``, or its name); a match makes the rule's ``excluded(var)`` 1. Only for
            optimizers whose rule calls ``excluded(var)``, such as Muon.
        exclude_embeddings: ``excluded(var)`` is also 1 for every path holding "embedding".
        **hyperparameters: values for the optimizer's hyperparameters, each a number or a
            schedule (see :mod:`optreg.model.schedules`); the rest keep their defaults.

    Raises:
        HyperparameterError: an unknown hyperparameter, or a value of the wrong type or
            outside its bounds.
        OptionError: an invalid clipping option, or more than one; or created under a
            ParameterServerStrategy (see :func:`refuse_parameter_servers`).

    Example:
        >>> import optreg, tensorflow as tf
        >>> opt = optreg.registry.create("sgd", learning_rate=0.1)
        >>> x = tf.Variable([1.0, 2.0])
        >>> _ = opt.apply_gradients([(tf.constant([1.0, 1.0]), x)])
        >>> x.numpy()
        array([0.9, 1.9], dtype=float32)
    """

    #: The registered short name; set by subclasses (or per instance by SpecOptimizer).
    optimizer_name: str = ""
    #: One line saying what the optimizer is.
    summary: str = ""
    #: The hyperparameters the optimizer accepts, with defaults and bounds.
    hyperparameter_specs: tuple[Hyperparameter, ...] = ()
    #: The per-variable state the optimizer keeps.
    slot_specs: tuple[Slot, ...] = ()
    #: The registry source it was created from (set by the registry; empty otherwise).
    registry_source: str = ""

    def __init__(
        self,
        *,
        name: str | None = None,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        skip_nonfinite: bool = False,
        slot_dtype: str | None = None,
        jit_compile: bool | str = "auto",
        weight_decay: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        gradient_accumulation_steps: int | None = None,
        loss_scale_factor: float | None = None,
        exclude_layers: Sequence[str] | None = None,
        exclude_embeddings: bool = False,
        **hyperparameters: Any,
    ):
        refuse_parameter_servers(tf.distribute.get_strategy())
        super().__init__(name=name or self.optimizer_name or type(self).__name__)
        self.gradient_options = GradientOptions(
            clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue, skip_nonfinite=skip_nonfinite
        )
        self._gradient_hooks = gradient_hooks(self.gradient_options)
        if slot_dtype is not None and slot_dtype not in SLOT_DTYPES:
            raise OptionError(f"slot_dtype must be one of {', '.join(SLOT_DTYPES)}, got {slot_dtype!r}")
        self.slot_dtype = slot_dtype
        if jit_compile not in (True, False, "auto"):
            raise OptionError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        self.jit_compile = jit_compile
        self.step_options = StepOptions(
            weight_decay=weight_decay,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            gradient_accumulation_steps=gradient_accumulation_steps,
            loss_scale_factor=loss_scale_factor,
            exclude_layers=exclude_layers,
            exclude_embeddings=exclude_embeddings,
        )
        if self.step_options.selects_variables and "excluded" not in self.variable_facts:
            raise OptionError(
                f"exclude_layers and exclude_embeddings choose the variables a rule's excluded(var) selects; "
                f"the rule of {self.optimizer_name!r} never calls excluded(var)"
            )
        if weight_decay is not None and all(spec.name != "learning_rate" for spec in self.hyperparameter_specs):
            raise OptionError(f"weight_decay needs a learning_rate hyperparameter, which {self.optimizer_name!r} has not")
        plain, scheduled = schedules.split_schedules(hyperparameters)
        values = resolve_hyperparameters(self.hyperparameter_specs, plain, self.optimizer_name)
        for name in scheduled:
            if self._hyperparameter_spec(name).fixed:  # an unknown name is an error here too
                raise HyperparameterError(f"{name} is fixed when the optimizer is created, so it takes a value, not a schedule")
        with tf.init_scope():
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
            self._hyper = {
                spec.name: tf.Variable(float(values[spec.name]), dtype=tf.float64, trainable=False, name=spec.name)
                for spec in self.hyperparameter_specs
            }
        self._untracked_variable_state()
        self._runtime = _RuntimeState(tf.distribute.get_strategy())
        self._runtime.schedules.update(scheduled)

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _untracked_variable_state(self) -> None:
        """Per variable (by ``runtime.position``): its slots, its moving average (use_ema) and
        its gradient sum (gradient_accumulation_steps). Not tracked as checkpoint children:
        checkpoints save them as TensorFlow's slot variables, keyed by the variable they belong
        to (see :meth:`get_slot_names`, :meth:`get_slot`, :meth:`_create_or_restore_slot_variable`)."""
        self._slots: list[dict[str, tf.Variable]] = []
        self._averages: list[tf.Variable] = []
        self._accumulators: list[tf.Variable] = []

    # --- hyperparameters ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        hyper = self.__dict__.get("_hyper")
        if hyper is not None and name in hyper:
            return hyper[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        hyper = self.__dict__.get("_hyper")
        if hyper is not None and name in hyper:
            self.set_hyperparameter(name, value)
        else:
            super().__setattr__(name, value)

    def set_hyperparameter(self, name: str, value: Any) -> None:
        """Change a hyperparameter; traced functions see the new value without retracing.

        Args:
            name: the hyperparameter.
            value: a Python number or bool (checked against the bounds), a tensor
                (assigned as it is, for use inside ``tf.function``), or a schedule (taken
                by steps traced from now on).

        Raises:
            HyperparameterError: unknown name, wrong type or out of bounds, a number for a
                hyperparameter that follows a schedule (as Keras refuses it), or a new value
                for a hyperparameter fixed when the optimizer was created (its own value is
                accepted and changes nothing).

        Example:
            >>> opt.set_hyperparameter("learning_rate", 0.01)  # doctest: +SKIP
        """
        spec = self._hyperparameter_spec(name)
        if spec.fixed:
            self._check_fixed_unchanged(spec, value)
            return
        if schedules.is_schedule(value):
            self._runtime.schedules[name] = value
            self._runtime.compiled.clear()
        elif name in self._runtime.schedules:
            raise HyperparameterError(
                f"{name} follows a schedule, so it cannot be set to a number; create the optimizer with a number instead"
            )
        elif tf.is_tensor(value) or isinstance(value, tf.Variable):
            self._hyper[name].assign(tf.cast(value, tf.float64))
        else:
            self._hyper[name].assign(float(spec.check(value)))

    def _check_fixed_unchanged(self, spec: Hyperparameter, value: Any) -> None:
        """A fixed hyperparameter may be "set" only to the value it already has."""
        if tf.is_tensor(value) or isinstance(value, tf.Variable) or spec.check(value) != self.get_hyperparameter(spec.name):
            raise HyperparameterError(
                f"{spec.name} is fixed when the optimizer is created; create a new optimizer to change it"
            )

    def get_hyperparameter(self, name: str) -> float | int | bool:
        """A hyperparameter's current value as a Python float, int or bool (eager only)."""
        spec = self._hyperparameter_spec(name)
        value = float(self._hyper[name].numpy())
        return {"bool": bool, "int": int}.get(spec.type, float)(value)

    #: Whether runs stacked along a leading axis of one variable stay independent: true when
    #: every update is elementwise (each entry's new value depends on that entry alone).
    supports_stacked_runs: bool = False

    #: How many first updates only measure the gradient and leave the variables where they are,
    #: by design (ADOPT's first records the squared gradient): 0 for most optimizers.
    measuring_steps: int = 0

    def stack_runs(self, values: Mapping[str, Sequence[Any]], variable_rank: int) -> None:
        """Give each hyperparameter one value per run, for variables that stack independent runs
        along their leading axis (how ``optreg bench`` trains a whole sweep in one loop).

        Args:
            values: hyperparameter name → one value per run (checked against the bounds); every
                hyperparameter must be given, each with the same number of runs.
            variable_rank: the rank of the stacked variables, run axis included; the values
                are shaped ``[runs, 1, …]`` to broadcast against them, and so is every scalar
                slot (one number per run). Saved state then has those shapes too: a checkpoint
                of a stacked optimizer restores only into one stacked the same way.

        Raises:
            OptionError: the optimizer's updates are not elementwise, or the runs disagree.
            HyperparameterError: a value of the wrong type or out of bounds.

        Example:
            >>> opt = optreg.registry.create("adam")  # doctest: +SKIP
            >>> opt.stack_runs({"learning_rate": [0.1, 0.01], ...}, variable_rank=2)  # doctest: +SKIP
        """
        if not self.supports_stacked_runs:
            raise OptionError(f"{self.optimizer_name}'s updates are not elementwise, so runs cannot be stacked")
        if self._runtime.schedules:
            raise OptionError("runs cannot be stacked while a hyperparameter follows a schedule")
        counts = {len(column) for column in values.values()}
        if set(values) != set(self._hyper) or len(counts) != 1:
            raise OptionError("stack_runs needs every hyperparameter, each with one value per run")
        shape = [counts.pop()] + [1] * (variable_rank - 1)
        for name, column in values.items():
            checked = [float(self._hyperparameter_spec(name).check(value)) for value in column]
            stacked = tf.reshape(tf.constant(checked, tf.float64), shape)
            if self._hyper[name].shape == stacked.shape:
                self._hyper[name].assign(stacked)  # same runs count: traced loops see the new values
            else:
                with tf.init_scope():
                    self._hyper[name] = tf.Variable(stacked, trainable=False, name=name)
                self._runtime.compiled.clear()  # compiled steps read the replaced variable
        if self._runtime.run_shape != shape:
            self._runtime.run_shape = shape
            self._reshape_scalar_slots()

    def _reshape_scalar_slots(self) -> None:
        """Give every built scalar slot the run shape (one number per stacked run)."""
        scalar = [slot for slot in self.slot_specs if slot.shape == "scalar"]
        for ref, position in self._runtime.position.items():
            for slot in scalar:
                old = self._slots[position][slot.name]
                with tf.init_scope(), self._strategy.scope():
                    self._slots[position][slot.name] = tf.Variable(
                        self._initial_value(slot, ref.deref()), trainable=False, name=old.name.split(":")[0]
                    )
        if scalar:
            self._runtime.compiled.clear()  # compiled steps read the replaced slots

    @property
    def hyperparameters(self) -> dict[str, float | int | bool]:
        """Every hyperparameter's current value, by name (eager only)."""
        return {spec.name: self.get_hyperparameter(spec.name) for spec in self.hyperparameter_specs}

    def _hyperparameter_spec(self, name: str) -> Hyperparameter:
        for spec in self.hyperparameter_specs:
            if spec.name == name:
                return spec
        raise HyperparameterError(unknown_hyperparameter_message(self.optimizer_name, name, self.hyperparameter_specs))

    # --- slots ------------------------------------------------------------------------------

    def build(self, variables: Iterable[tf.Variable]) -> None:
        """Create the slots of every variable that has none yet (done on first use anyway).

        Args:
            variables: the variables this optimizer will update.
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
        with tf.init_scope(), self._strategy.scope():
            base = self._path(var).split(":")[0]
            slots = {
                slot.name: tf.Variable(
                    self._initial_value(slot, var),
                    trainable=False,
                    name=f"{base}/{slot.name}",
                )
                for slot in self.slot_specs
            }
            if self.step_options.use_ema:
                self._averages.append(tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/average"))
            if self.step_options.gradient_accumulation_steps:
                self._accumulators.append(tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/accumulated"))
        self._runtime.position[var.ref()] = len(self._slots)
        self._slots.append(slots)

    def _initial_value(self, slot: Slot, var: tf.Variable) -> tf.Tensor:
        """A slot's starting value for one variable (a scalar slot holds one number per run
        once runs are stacked)."""
        return initial_value(slot, var, self.slot_dtype, self._hyper, self._runtime.run_shape)

    @property
    def _strategy(self):
        return self._runtime.strategy

    def slots_for(self, var: tf.Variable) -> Mapping[str, tf.Variable]:
        """The slot variables of one variable, by slot name.

        Args:
            var: a variable this optimizer has built or updated (a ``tf.Variable`` or a Keras
                variable).

        Raises:
            KeyError: the variable has no slots yet (it was never updated nor built).
        """
        return self._slots[self._runtime.position[tf_variable(var).ref()]]

    # --- checkpoints: slot state keyed by its variable ---------------------------------------

    def get_slot_names(self) -> list[str]:
        """The names of the state kept per variable: the slots, then ``_average`` (use_ema) and
        ``_accumulated`` (gradient_accumulation_steps). With :meth:`get_slot`, this is how
        ``tf.train.Checkpoint`` saves every one keyed by the variable it belongs to, so a restore
        gives each variable its own state, whatever order variables are first stepped in.

        Example:
            >>> optreg.registry.create("adam").get_slot_names()  # doctest: +SKIP
            ['m', 'v']
        """
        names = [slot.name for slot in self.slot_specs]
        if self.step_options.use_ema:
            names.append(_AVERAGE)
        if self.step_options.gradient_accumulation_steps:
            names.append(_ACCUMULATED)
        return names

    def get_slot(self, var: Any, slot_name: str) -> tf.Variable:
        """One variable's state of that name (a slot, ``_average`` or ``_accumulated``).

        Raises:
            KeyError: the variable has no such state (it was never built), or is no variable.
        """
        held = tf_variable(var)
        if not isinstance(held, tf.Variable):
            raise KeyError(slot_name)
        position = self._runtime.position[held.ref()]
        extras = {_AVERAGE: self._averages, _ACCUMULATED: self._accumulators}
        if slot_name in extras:
            return extras[slot_name][position]
        return self._slots[position][slot_name]

    def _create_or_restore_slot_variable(self, slot_variable_position, slot_name, variable, slot_variable_shape=None):
        """TensorFlow's checkpoint calls this when it restores a variable whose state this
        optimizer saved: build the variable's state if it has none yet and hand back the one to
        restore; None when this optimizer keeps no state of that name (then the checkpoint's
        ``assert_consumed`` names it).

        Raises:
            CheckpointError: the saved state has another shape than this optimizer's.
        """
        held = tf_variable(variable)
        if not isinstance(held, tf.Variable) or slot_name not in self.get_slot_names():
            return None
        self.build([held])
        state = self.get_slot(held, slot_name)
        saved = slot_variable_position.value_shape()
        if saved is not None and not tf.TensorShape(saved).is_compatible_with(state.shape):
            raise CheckpointError(
                f"the checkpoint's {slot_name!r} of {self._path(held)} has shape {tf.TensorShape(saved).as_list()}, "
                f"but this {self.optimizer_name}'s has {state.shape.as_list()}"
            )
        return state

    def reset(self) -> None:
        """Start over: the step and skip counters to zero, every slot to its initial value, and
        the moving averages and accumulated gradients to zero."""
        self.iterations.assign(0)
        self.skipped_steps.assign(0)
        for ref, position in self._runtime.position.items():
            for slot in self.slot_specs:
                self._slots[position][slot.name].assign(self._initial_value(slot, ref.deref()))
        for extra in (*self._averages, *self._accumulators):
            extra.assign(tf.zeros_like(extra))

    # --- the protocol -------------------------------------------------------------------------

    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_vars: Iterable, variables: Iterable | None = None) -> tf.Variable:
        """Apply one step of the optimizer.

        Accepts both forms of the seeds and of Keras: ``apply_gradients(zip(grads, vars))``
        (pairs) and ``apply_gradients(grads, vars)`` (two lists). Pairs whose gradient is
        None are skipped. With ``skip_nonfinite``, a step with a NaN or infinite gradient
        changes nothing but ``skipped_steps``. Otherwise the gradient hooks run, then every
        variable is updated.

        Args:
            grads_and_vars: ``(gradient, variable)`` pairs, or the gradients when
                ``variables`` is given.
            variables: the variables, in the gradients' order.

        Returns:
            The ``iterations`` counter, incremented once.

        Raises:
            OptionError: applied under a ParameterServerStrategy (see
                :func:`refuse_parameter_servers`).

        Example:
            >>> opt.apply_gradients(zip(grads, model.trainable_variables))  # doctest: +SKIP
            >>> opt.apply_gradients(grads, model.trainable_variables)  # doctest: +SKIP
        """
        refuse_parameter_servers(tf.distribute.get_strategy())
        grads, variables = split_pairs(grads_and_vars, variables)
        variables = self._tf_variables(variables)
        if not variables:
            return self.iterations
        replica = tf.distribute.get_replica_context()
        if tf.distribute.has_strategy() and replica is not None:
            # In a replica of a distribution strategy: sum the gradients over the replicas, as
            # Keras does, then update every copy once, in cross-replica context.
            grads = replica.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            replica.merge_call(self._apply_distributed, args=(grads, variables))
            return self.iterations
        with self._runtime.lock:
            self.build(variables)
            if self.jit_compile is False:
                self._guarded_step(grads, variables, self._step)
            else:
                self._compiled_step(variables)(grads)
        return self.iterations

    def _compiled_step(self, variables: list):
        """The whole step for these variables as one XLA-compiled function, built once and reused."""
        key = tuple(var.ref() for var in variables)
        compiled = self._runtime.compiled.get(key)
        if compiled is None:
            compiled = tf.function(
                lambda grads: self._guarded_step(list(grads), variables, self._step),
                jit_compile=True,
                autograph=False,
            )
            self._runtime.compiled[key] = compiled
        return compiled

    def _guarded_step(self, grads: list, variables: list, step) -> None:
        """Run ``step(grads, variables)``, or count a skip when skip_nonfinite finds a bad gradient."""
        if not self.gradient_options.skip_nonfinite:
            step(grads, variables)
        elif not tf.executing_eagerly():
            tf.cond(all_finite(grads), lambda: _done(step(grads, variables)), lambda: _done(self.skipped_steps.assign_add(1)))
        elif bool(all_finite(grads)):
            step(grads, variables)
        else:
            self.skipped_steps.assign_add(1)

    def _apply_distributed(self, strategy, grads, variables) -> None:
        """The cross-replica half of a distributed step: every replica's copy gets the same update.
        The lock is taken here, not around the replicas' own calls: those wait for one another in
        ``merge_call``, and a lock held across it would deadlock them."""
        local_grads = [strategy.experimental_local_results(g)[0] for g in grads]

        def update_every_copy(grad, var, prepared):
            update = functools.partial(self._update_replica_copy, var=var, prepared=prepared)
            strategy.extended.update(var, update, args=(grad,), group=False)

        with self._runtime.lock:
            self.build(variables)
            self._guarded_step(local_grads, variables, functools.partial(self._step, update_one=update_every_copy))

    def _update_replica_copy(self, _copy, grad, *, var, prepared) -> None:
        """Update one replica's copy of a variable: inside ``extended.update`` the distributed
        variable and its slots read and write that replica's copies."""
        self._update_variable(grad, var, self.slots_for(var), prepared)

    def _step(self, grads: list, variables: list, update_one=None) -> tf.Tensor:
        """One call's work, in Keras's order: unscale the gradients, accumulate them or update
        the variables, move the averages; returns the new call count.

        ``update_one(grad, var, prepared)`` updates one variable (by default, in place).
        """
        options = self.step_options
        calls = self.iterations.read_value()
        self.iterations.assign_add(1)
        if options.loss_scale_factor is not None:
            grads = [g / tf.constant(options.loss_scale_factor, g.dtype) for g in grads]
        if options.gradient_accumulation_steps:
            self._accumulate_or_update(grads, variables, calls, update_one)
        else:
            self._update(grads, variables, calls, update_one)
        if options.use_ema:
            self._move_averages(variables, calls)
        return self.iterations.read_value()

    def _update(self, grads: list, variables: list, calls: tf.Tensor, update_one) -> None:
        """The gradient hooks, the schedules, weight decay, then one update of every variable."""
        for hook in self._gradient_hooks:
            grads = hook(grads, variables)
        for name, schedule in self._runtime.schedules.items():
            self._hyper[name].assign(schedules.evaluate(schedule, calls))
        if self.step_options.weight_decay is not None and not self.applies_weight_decay:
            decay(variables, self.step_options.weight_decay, self._hyper["learning_rate"], self._runtime.weight_decay_exclusions)
        step = tf.cast(calls // self.step_options.accumulation + 1, tf.float64)
        self._update_variables(grads, variables, step, update_one)

    def _update_variables(self, grads: list, variables: list, step: tf.Tensor, update_one) -> None:
        """Update every variable from its (hooked) gradient: by default, :meth:`_prepare_step`
        once, then :meth:`_update_variable` per variable. Optimizers whose update couples the
        variables (sums over all of them) override this instead.

        Args:
            grads: the gradients, after the hooks.
            variables: the variables, in the same order.
            step: the 1-based update number, float64.
            update_one: ``update_one(grad, var, prepared)`` updates one variable's replica
                copies under a distribution strategy; None outside one.
        """
        prepared = self._prepare_step(step)
        for grad, var in zip(grads, variables):
            if update_one is None:
                self._update_variable(grad, var, self.slots_for(var), prepared)
            else:
                update_one(grad, var, prepared)

    def moves_on_call(self, calls: tf.Tensor) -> tf.Tensor | bool:
        """Whether a call is meant to move the variables: not a call that only accumulates its
        gradient (``gradient_accumulation_steps``), nor one of the optimizer's first updates
        that only measure it (:attr:`measuring_steps`). ``optreg bench`` takes only such calls
        for convergence when they leave the parameters unchanged.

        Args:
            calls: the 0-based number of the call since the optimizer was created or reset (an
                int tensor).

        Returns:
            True when every call moves the variables (a Python bool, so callers build no ops);
            otherwise a bool tensor.

        Example:
            >>> optreg.registry.create("sgd", gradient_accumulation_steps=2).moves_on_call(tf.constant(1))  # doctest: +SKIP
            <tf.Tensor: shape=(), dtype=bool, numpy=True>
        """
        every = self.step_options.accumulation
        if every == 1 and not self.measuring_steps:
            return True
        moves = calls // every >= self.measuring_steps
        return moves if every == 1 else moves & tf.equal(calls % every, every - 1)

    @tf.autograph.experimental.do_not_convert
    def minimize(self, loss_fn, variables: Sequence[tf.Variable], grads: Sequence | None = None) -> None:
        """Take one step on ``loss_fn``: the protocol for optimizers that need the loss itself.

        Ordinary optimizers take the gradient and apply it. Optimizers coupled to the model,
        such as sharpness-aware minimization, override this to evaluate ``loss_fn`` again
        elsewhere; ``optreg bench`` steps every optimizer through this method.

        Args:
            loss_fn: a callable of no arguments returning a scalar loss of ``variables``.
            variables: the variables to update.
            grads: the gradients of ``loss_fn`` at the current point, when already computed.

        Example:
            >>> opt.minimize(lambda: tf.reduce_sum(x ** 2), [x])  # doctest: +SKIP
        """
        if grads is None:
            with tf.GradientTape() as tape:
                loss = loss_fn()
            grads = tape.gradient(loss, variables)
        self.apply_gradients(list(grads), list(variables))

    def get_config(self) -> dict[str, Any]:
        """A plain dict that rebuilds this optimizer with :meth:`from_config` (state not included).

        Example:
            >>> opt = optreg.registry.create("adam", learning_rate=0.1, clipnorm=1.0)  # doctest: +SKIP
            >>> optreg.Optimizer.from_config(opt.get_config())  # doctest: +SKIP
        """
        return optimizer_config(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Optimizer":
        """Rebuild an optimizer from :meth:`get_config`'s dict, with fresh state (a registered
        Python optimizer through the catalogue :mod:`optreg.runtime.lookup` reaches)."""
        return lookup.from_config(config)

    @property
    def variable_facts(self) -> frozenset[str]:
        """The variable facts (``excluded``, ``decayed``) the update reads; none by default."""
        return frozenset()

    @property
    def applies_weight_decay(self) -> bool:
        """True when the update applies ``weight_decay`` itself (so the step must not apply it
        first); False by default."""
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

    def _prepare_step(self, step: tf.Tensor) -> Any:
        """Compute what every variable's update shares this step (once per step).

        Args:
            step: the 1-based step number, float64.

        Returns:
            Anything; it is passed to :meth:`_update_variable`.
        """
        return None

    def _update_variable(self, grad: tf.Tensor, var: tf.Variable, slots: Mapping[str, tf.Variable], prepared: Any) -> None:
        """Update one variable (and its slots) from its gradient. Subclasses implement this."""
        raise NotImplementedError


#: The strategy classes whose workers update variables asynchronously through parameter
#: servers: ``tf.distribute.experimental.ParameterServerStrategy`` (ParameterServerStrategyV2)
#: and TensorFlow 1's, where TensorFlow still has them.
PARAMETER_SERVER_STRATEGIES = tuple(
    cls
    for cls in (
        getattr(tf.distribute.experimental, "ParameterServerStrategy", None),
        getattr(getattr(tf.compat.v1.distribute, "experimental", None), "ParameterServerStrategy", None),
    )
    if isinstance(cls, type)
)

PARAMETER_SERVER_MESSAGE = (
    "ParameterServerStrategy is not supported by optreg's own optimizers: its workers apply steps "
    "asynchronously, and optreg's updates assign each variable and slot a value computed from a "
    "read another step may have made stale, so updates could be lost. Train synchronously with "
    "MultiWorkerMirroredStrategy across machines (MirroredStrategy on one)"
)


def refuse_parameter_servers(strategy: Any) -> None:
    """Refuse a ParameterServerStrategy, the one strategy optreg's updates would go wrong under.

    Args:
        strategy: the current strategy (``tf.distribute.get_strategy()``).

    Raises:
        OptionError: ``strategy`` is a ParameterServerStrategy.

    Example:
        >>> refuse_parameter_servers(tf.distribute.get_strategy())  # the default: accepted
    """
    if isinstance(strategy, PARAMETER_SERVER_STRATEGIES):
        raise OptionError(PARAMETER_SERVER_MESSAGE)


def split_pairs(grads_and_vars: Iterable, variables: Iterable | None) -> tuple[list, list]:
    """Normalise both calling forms into two lists, dropping pairs with a None gradient.

    Example:
        >>> grads, variables = split_pairs([(None, "a"), (1.0, "b")], None)
        >>> len(grads), variables
        (1, ['b'])
    """
    if variables is None:
        pairs = list(grads_and_vars)
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError("apply_gradients expects (gradient, variable) pairs or apply_gradients(grads, vars)")
    else:
        grads, variables = list(grads_and_vars), list(variables)
        if len(grads) != len(variables):
            raise ValueError(f"apply_gradients got {len(grads)} gradients for {len(variables)} variables")
        pairs = list(zip(grads, variables))
    kept = [(grad, var) for grad, var in pairs if grad is not None]
    return [_dense(grad) for grad, _ in kept], [var for _, var in kept]


def tf_variable(var: Any) -> Any:
    """The ``tf.Variable`` behind a Keras 3 variable on the TensorFlow backend (what
    ``model.trainable_variables`` holds); any other variable as it is.

    Example:
        >>> import keras
        >>> type(tf_variable(keras.Variable(1.0))).__name__
        'ResourceVariable'
    """
    if isinstance(var, tf.Variable):
        return var
    held = getattr(var, "value", None)
    return held if isinstance(held, tf.Variable) else var


def variable_path(var: Any) -> str:
    """A variable's path as Keras names it (``"dense/kernel"``), or its TensorFlow name.

    Example:
        >>> variable_path(tf.Variable(1.0, name="head/bias"))
        'head/bias:0'
    """
    return str(getattr(var, "path", None) or var.name)


def _done(_) -> tf.Tensor:
    """What both branches of the skip_nonfinite ``tf.cond`` return (their effects are what count)."""
    return tf.constant(True)


def all_finite(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """A boolean scalar: every element of every tensor is finite (neither NaN nor infinite)."""
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]))


def _dense(grad: Any) -> tf.Tensor:
    """A dense tensor for a gradient (IndexedSlices are densified)."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad)
    return grad if tf.is_tensor(grad) else tf.convert_to_tensor(grad)


def initial_value(
    slot: Slot,
    var: Any,
    override: str | None = None,
    hyperparameters: Mapping[str, tf.Variable] | None = None,
    run_shape: list[int] | None = None,
) -> tf.Tensor:
    """A slot's starting value for one variable, in the overriding, the spec's or the variable's
    dtype: a copy of the variable, a number, or a hyperparameter's current value (one per stacked
    run when the hyperparameter holds one per run). With stacked runs (``run_shape``), a scalar
    slot holds one number per run.

    Args:
        slot: the slot.
        var: the variable (a ``tf.Variable`` or a Keras variable).
        override: a dtype overriding the spec's and the variable's.
        hyperparameters: hyperparameter name → its value (a variable or a tensor).
        run_shape: the run shape once runs are stacked.

    Returns:
        The tensor the slot starts at.

    Example:
        >>> initial_value(Slot("acc", init=0.1), tf.Variable([1.0, 2.0])).numpy()
        array([0.1, 0.1], dtype=float32)
    """
    dtype = tf.as_dtype(override or slot.dtype or var.dtype)
    shape = run_shape if slot.shape == "scalar" and run_shape else slot_shape(slot.shape, var.shape)
    if slot.init == "var":
        return tf.cast(tf.convert_to_tensor(var), dtype)
    if isinstance(slot.init, str) and slot.init in (hyperparameters or {}):
        return tf.broadcast_to(tf.cast(hyperparameters[slot.init], dtype), shape)
    fill = {"zeros": 0.0, "ones": 1.0}.get(slot.init, slot.init)
    return tf.fill(shape, tf.constant(fill, dtype))


def slot_shape(kind: str, shape: tf.TensorShape) -> list[int]:
    """The shape of a slot of the given kind (see :data:`optreg.model.definitions.SLOT_SHAPES`) for a variable.

    Example:
        >>> slot_shape("rows", tf.TensorShape([2, 3, 4])), slot_shape("columns", tf.TensorShape([7]))
        ([2, 3, 1], [])
    """
    dims = shape.as_list()
    if kind == "var":
        return dims
    if kind == "scalar" or len(dims) < 2:
        return []
    return dims[:-1] + [1] if kind == "rows" else dims[:-2] + [1, dims[-1]]
