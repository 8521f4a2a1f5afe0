"""The Optimizer base class: one ``apply_gradients`` protocol for every optimizer.

An :class:`Optimizer` is a :class:`tf.Module`. It holds

* ``iterations``, an int64 step counter (the update rule sees ``step = iterations + 1``);
* its :class:`~optreg.runtime.hyperparameter_state.HyperparameterState`: one float64 variable
  per hyperparameter, so ``opt.learning_rate = 0.01`` takes effect inside an already traced
  ``tf.function`` without retracing;
* per-variable slot variables (:mod:`optreg.runtime.slots`), created on first use and saved
  by ``tf.train.Checkpoint(optimizer=opt)`` keyed by their variable.

Subclasses describe their hyperparameters and slots and implement
:meth:`Optimizer.update_variable` (and optionally :meth:`Optimizer.prepare_step`), or, when
the update of one variable depends on the others, :meth:`Optimizer.update_variables` (see
:mod:`optreg.runtime.extension_points`). The steps around them live in
:mod:`optreg.runtime.steps`, the Keras options' methods in :mod:`optreg.runtime.keras_options`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import tensorflow as tf

from optreg.errors import OptionError
from optreg.lang.sparsity import SparseSupport
from optreg.model.definitions import SLOT_DTYPES, Slot
from optreg.model.hyperparameters import Hyperparameter
from optreg.model.option_values import GradientOptions, StepOptions
from optreg.model.options import options_docstring
from optreg.runtime import lookup
from optreg.runtime.configs import optimizer_config
from optreg.runtime.extension_points import ExtensionPoints
from optreg.runtime.gradients import gradient_hooks
from optreg.runtime.hyperparameter_state import HyperparameterState
from optreg.runtime.keras_options import KerasOptions
from optreg.runtime.slots import RuntimeState, SlotMethods
from optreg.runtime.sparse import check_sparse_updates, prepared_gradients
from optreg.runtime.steps import StepPipeline
from optreg.runtime.variables import refuse_parameter_servers, split_pairs

__all__ = ["Optimizer"]


class Optimizer(KerasOptions, SlotMethods, StepPipeline, ExtensionPoints, tf.Module):
    """Base class of optreg optimizers.

    Args:
        name: the module name; defaults to the optimizer's registered name.
        {options}
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
    #: False when the step must not be XLA-compiled (an op XLA computes less accurately, such as
    #: an eigendecomposition, or one XLA cannot compile): every host then runs it uncompiled —
    #: ``apply_gradients`` with ``jit_compile="auto"``, the bench loop even under ``--jit`` — and
    #: ``jit_compile=True`` is refused. Read it through :attr:`compiles_with_xla`.
    xla_compatible: ClassVar[bool] = True
    #: True when a step needs the loss itself, not only its gradient (AdaHessian's
    #: Hessian-vector products, SAM's second gradient): the class overrides :meth:`minimize`,
    #: and ``apply_gradients`` alone is refused with one error saying to call ``minimize``.
    #: ``optreg bench`` steps every optimizer through ``minimize``, so such optimizers bench too.
    needs_loss: ClassVar[bool] = False

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
        sparse_updates: str = "exact",
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
        #: The state steps read instead of the optimizer's own, inside :meth:`stepping_with`.
        self._stepping_state: HyperparameterState | None = None
        #: The call count steps take from their host, inside :meth:`counting_from`.
        self._host_calls: tf.Tensor | None = None
        self.gradient_options = GradientOptions(
            clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue, skip_nonfinite=skip_nonfinite
        )
        self._gradient_hooks = gradient_hooks(self.gradient_options)
        if slot_dtype is not None and slot_dtype not in SLOT_DTYPES:
            raise OptionError(f"slot_dtype must be one of {', '.join(SLOT_DTYPES)}, got {slot_dtype!r}")
        self.slot_dtype = slot_dtype
        if jit_compile not in (True, False, "auto"):
            raise OptionError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        if jit_compile is True and self.runs_without_xla:
            raise OptionError(
                f"jit_compile=True: {self.optimizer_name}'s update calls an eigendecomposition, which XLA computes "
                "far less accurately than TensorFlow op by op; it runs without XLA (leave jit_compile 'auto' or False)"
            )
        if jit_compile is True and not type(self).xla_compatible:
            raise OptionError(
                f"{self.optimizer_name or type(self).__name__} declares xla_compatible = False: "
                "its step must not be XLA-compiled, so jit_compile=True is refused"
            )
        self.jit_compile = jit_compile
        self.sparse_updates = check_sparse_updates(sparse_updates, self.optimizer_name, self.sparse_support)
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
            raise OptionError(
                f"weight_decay needs a learning_rate hyperparameter, which {self.optimizer_name!r} has not"
            )
        specs, name = self.hyperparameter_specs, self.optimizer_name
        self._own_hyperparameters = HyperparameterState.create(specs, hyperparameters, name)
        with tf.init_scope():
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
        #: The hyperparameters' variables, tracked under this name so checkpoints hold them.
        self._hyper = self._own_hyperparameters.variables
        self._untracked_variable_state()
        self._runtime = RuntimeState(tf.distribute.get_strategy())

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
        if self._own_hyperparameters.set(name, value):
            self._runtime.compiled.clear()

    def get_hyperparameter(self, name: str) -> float | int | bool | None | tf.Tensor:
        """A hyperparameter's current value, eagerly or inside a traced (compiled) step.

        Eagerly, the optimizer's own value as a Python float, int or bool (None for a ``none``
        hyperparameter left unset). Inside a traced step (``tf.function``, the XLA-compiled
        step, the bench loop), where no Python number can be read from a variable: a fixed
        hyperparameter's Python value (it cannot change after creation), and for the others the
        float64 tensor the step reads, so a later ``set_hyperparameter`` or a schedule reaches the
        traced step without retracing and, inside :meth:`stepping_with`, each stacked run reads
        its own value (a bool reads as 1.0 or 0.0, an unset ``none`` as NaN).

        Raises:
            HyperparameterError: no hyperparameter has that name.

        Example:
            >>> optreg.registry.create("sgd", learning_rate=0.5).get_hyperparameter("learning_rate")  # doctest: +SKIP
            0.5
            >>> tf.function(lambda: opt.get_hyperparameter("learning_rate"))()  # doctest: +SKIP
            <tf.Tensor: shape=(), dtype=float64, numpy=0.5>
        """
        spec = self._own_hyperparameters.spec(name)
        if spec.fixed:
            with tf.init_scope():  # the value it was created with, read outside the trace
                return self._own_hyperparameters.get(name)
        if tf.executing_eagerly():
            return self._own_hyperparameters.get(name)
        return self.hyperparameter_state.variables[name].read_value()

    @property
    def hyperparameters(self) -> dict[str, float | int | bool | None]:
        """Every hyperparameter's current value, by name (eager only; None for a ``none`` one unset)."""
        return self._own_hyperparameters.values()

    def _hyperparameter_spec(self, name: str) -> Hyperparameter:
        """The hyperparameter of that name (an unknown name is a HyperparameterError)."""
        return self._own_hyperparameters.spec(name)

    @property
    def hyperparameter_state(self) -> HyperparameterState:
        """The hyperparameters the steps read: the optimizer's own, or, inside
        :meth:`stepping_with`, the state given there."""
        return self._stepping_state or self._own_hyperparameters

    @contextlib.contextmanager
    def counting_from(self, calls: tf.Tensor) -> Iterator[Optimizer]:
        """A context in which steps take the number of calls made before them from ``calls``
        instead of reading :attr:`iterations`, which each step taken sets to ``calls + 1``. For
        a host that counts the calls itself and traces the steps inside its own loop (the bench's
        loop passes its iteration): the optimizer's step reads and increments no counter of its
        own, which would be one more loop variable to compile. ``calls`` must equal what
        :attr:`iterations` holds before each step, so a host counts only the steps taken (a call
        that ``skip_nonfinite`` skips takes none). Lookahead's inner optimizer and AdaHessian's
        noise still read their own counters, which then hold the same numbers.

        Args:
            calls: an integer scalar (a tensor inside the host's trace), the calls made before
                this one; held as int64, so counts of either integer dtype trace one step.

        Example:
            >>> with opt.counting_from(i):  # doctest: +SKIP
            ...     opt.apply_gradients([(grad, variable)])
        """
        with self._runtime.lock:
            outer, self._host_calls = self._host_calls, tf.cast(calls, tf.int64)
            try:
                yield self
            finally:
                self._host_calls = outer

    @contextlib.contextmanager
    def stepping_with(self, state: HyperparameterState | None) -> Iterator[Optimizer]:
        """A context in which the optimizer builds, resets and steps (or traces its steps) with
        another hyperparameter state, such as one holding a value per stacked run
        (:meth:`~optreg.runtime.hyperparameter_state.HyperparameterState.stacked`), while its own
        hyperparameters, :attr:`hyperparameters` and :meth:`get_config` stay as they are, before,
        inside and after. None steps with its own.

        Raises:
            OptionError: a state of other hyperparameters, or with stacked runs for an optimizer
                whose updates are not elementwise.

        Example:
            >>> opt = optreg.registry.create("adam")  # doctest: +SKIP
            >>> runs = opt.hyperparameter_state.stacked(columns, variable_rank=2)  # doctest: +SKIP
            >>> with opt.stepping_with(runs):  # doctest: +SKIP
            ...     opt.apply_gradients([(grad, stacked_variable)])
        """
        if state is None:
            yield self
            return
        if set(state.variables) != set(self._own_hyperparameters.variables):
            raise OptionError(f"stepping_with: a state of other hyperparameters than {self.optimizer_name}'s")
        if state.run_shape is not None and not self.supports_stacked_runs:
            raise OptionError(f"{self.optimizer_name}'s updates are not elementwise, so runs cannot be stacked")
        with self._runtime.lock:
            outer, self._stepping_state = self._stepping_state, state
            try:
                yield self
            finally:
                self._stepping_state = outer

    # --- the protocol -------------------------------------------------------------------------

    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_vars: Iterable[Any], variables: Iterable[Any] | None = None) -> tf.Variable:
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
        grads, variables = split_pairs(grads_and_vars, variables, keep_sparse=True)
        grads = prepared_gradients(grads, self.takes_sparse_gradients)
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
            if self.jit_compile is False or not self.compiles_with_xla:
                self._guarded_step(grads, variables, functools.partial(self._step, calls=self._host_calls))
            else:
                self._compiled_step(variables, self._host_calls)(grads)
        return self.iterations

    @property
    def compiles_with_xla(self) -> bool:
        """Whether this optimizer's step may be XLA-compiled: its class's :attr:`xla_compatible`,
        unless its update :attr:`runs_without_xla` (a wrapper such as lookahead also asks its inner
        optimizer). Every host reads this: the step of ``apply_gradients`` and the bench loop.

        Example:
            >>> optreg.registry.create("adam").compiles_with_xla  # doctest: +SKIP
            True
        """
        return type(self).xla_compatible and not self.runs_without_xla

    @property
    def sparse_support(self) -> SparseSupport | None:
        """What the update rule can do with a sparse gradient (:mod:`optreg.lang.sparsity`);
        None for an optimizer without a rule, which always densifies."""
        return None

    @property
    def takes_sparse_gradients(self) -> bool:
        """True when a ``tf.IndexedSlices`` gradient reaches :meth:`update_variable` as it is
        (its rows summed) rather than densified: ``sparse_updates`` is ``"lazy"``, or ``"exact"``
        and the rule is exact-sparse or runs on touched rows; never with gradient accumulation (its
        sums are dense)."""
        support = self.sparse_support
        if support is None or self.step_options.gradient_accumulation_steps:
            return False
        exact = support.exact or support.touched_rows
        return self.sparse_updates == "lazy" or (self.sparse_updates == "exact" and exact)

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
            >>> opt = optreg.registry.create("sgd", gradient_accumulation_steps=2)  # doctest: +SKIP
            >>> opt.moves_on_call(tf.constant(1))  # doctest: +SKIP
            <tf.Tensor: shape=(), dtype=bool, numpy=True>
        """
        every = self.step_options.accumulation
        if every == 1 and not self.measuring_steps:
            return True
        moves = calls // every >= self.measuring_steps
        return moves if every == 1 else moves & tf.equal(calls % every, every - 1)

    @tf.autograph.experimental.do_not_convert
    def minimize(
        self, loss_fn: Callable[[], Any], variables: Sequence[tf.Variable], grads: Sequence[Any] | None = None
    ) -> None:
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
    def from_config(cls, config: Mapping[str, Any]) -> Optimizer:
        """Rebuild an optimizer from :meth:`get_config`'s dict, with fresh state (a registered
        Python optimizer through the catalogue :mod:`optreg.runtime.lookup` reaches)."""
        rebuilt: Optimizer = lookup.from_config(config)  # the catalogue's, below this layer: Any
        return rebuilt


#: The options are documented once, in :mod:`optreg.model.options`, and spliced in here.
Optimizer.__doc__ = (Optimizer.__doc__ or "").replace("{options}", options_docstring())
