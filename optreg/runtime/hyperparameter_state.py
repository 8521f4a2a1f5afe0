"""HyperparameterState: an optimizer's hyperparameters as its steps read them.

Each hyperparameter is one float64 ``tf.Variable``, so a new value takes effect inside an
already traced ``tf.function`` without retracing; a hyperparameter may instead follow a
schedule, evaluated at every step; a *fixed* one keeps the value the optimizer was created with.
The state checks every value against the hyperparameter's type and bounds.

A state may also hold one value per run, for variables that stack independent runs along one
axis (their last, as ``optreg bench`` holds a whole sweep in one loop, or their first):
:meth:`HyperparameterState.stacked` makes such a state beside the optimizer's own, which keeps
its plain numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from optreg.errors import HyperparameterError, OptionError
from optreg.model import schedules
from optreg.model.hyperparameters import (
    Hyperparameter,
    as_float64,
    check_values,
    from_float64,
    resolve_hyperparameters,
    unknown_hyperparameter_message,
)


class HyperparameterState:
    """The variables, schedules and checks of one optimizer's hyperparameters.

    Args:
        specs: the hyperparameters, with defaults and bounds.
        variables: hyperparameter name → its float64 variable.
        scheduled: hyperparameter name → its schedule, for those that follow one.
        optimizer_name: the optimizer's name, for error messages.
        run_shape: ``[runs, 1, …]`` when the variables hold one value per stacked run
            (``[1, …, runs]`` with ``runs_last``).
        shared: of a stacked state, the hyperparameters every run shares: each holds one value,
            shaped ``[1, 1, …]`` (it broadcasts as a column of equal values would, and its
            per-step arithmetic is done once, not once per run).
        runs_last: of a stacked state, the runs lie on the variables' last axis, not their first.

    Example:
        >>> from optreg.model.hyperparameters import Hyperparameter
        >>> state = HyperparameterState.create((Hyperparameter("learning_rate", 0.1),), {}, "sgd")
        >>> state.set("learning_rate", 0.5)
        False
        >>> state.values()
        {'learning_rate': 0.5}
    """

    def __init__(
        self,
        specs: Sequence[Hyperparameter],
        variables: Mapping[str, tf.Variable],
        scheduled: Mapping[str, Any] | None = None,
        optimizer_name: str = "",
        run_shape: list[int] | None = None,
        shared: Iterable[str] = (),
        runs_last: bool = False,
    ) -> None:
        self.specs = tuple(specs)
        self.variables = dict(variables)
        self.schedules = dict(scheduled or {})
        self.optimizer_name = optimizer_name
        self.run_shape = run_shape
        self.shared = frozenset(shared)
        self.runs_last = runs_last

    @property
    def run_axes(self) -> int:
        """Where stacked runs lie, as :mod:`optreg.runtime.clipping` takes it: 0 when the state is
        not stacked, 1 for the variables' leading axis, -1 for their last."""
        if self.run_shape is None:
            return 0
        return -1 if self.runs_last else 1

    @property
    def run_count(self) -> int:
        """How many stacked runs the state holds (1 when it is not stacked)."""
        return int(np.prod(self.run_shape)) if self.run_shape else 1

    @classmethod
    def create(
        cls, specs: Sequence[Hyperparameter], given: Mapping[str, Any], optimizer_name: str
    ) -> HyperparameterState:
        """A state holding the given values (numbers or schedules), the rest at their defaults.

        Raises:
            HyperparameterError: an unknown hyperparameter, a value of the wrong type or out of
                bounds, or a schedule for a fixed hyperparameter.

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> HyperparameterState.create((Hyperparameter("beta", 0.9),), {"beta": 0.5}, "m").get("beta")
            0.5
        """
        plain, scheduled = schedules.split_schedules(dict(given))
        values = resolve_hyperparameters(specs, plain, optimizer_name)
        state = cls(specs, {}, scheduled, optimizer_name)
        for name in scheduled:
            if state.spec(name).fixed:  # an unknown name is an error here too
                raise HyperparameterError(
                    f"{name} is fixed when the optimizer is created, so it takes a value, not a schedule"
                )
        with tf.init_scope():
            state.variables = {
                spec.name: tf.Variable(as_float64(values[spec.name]), dtype=tf.float64, trainable=False, name=spec.name)
                for spec in state.specs
            }
        return state

    def spec(self, name: str) -> Hyperparameter:
        """The hyperparameter of that name.

        Raises:
            HyperparameterError: no hyperparameter has that name (the message suggests close ones).

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> HyperparameterState((Hyperparameter("beta", 0.9),), {}).spec("beta").default
            0.9
        """
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise HyperparameterError(unknown_hyperparameter_message(self.optimizer_name, name, self.specs))

    def get(self, name: str) -> float | int | bool | None:
        """A hyperparameter's current value as a Python float, int or bool (eager only).

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> HyperparameterState.create((Hyperparameter("beta", 0.9),), {}, "m").get("beta")
            0.9
        """
        return from_float64(self.spec(name), float(self.variables[name].numpy()))

    def values(self) -> dict[str, float | int | bool | None]:
        """Every hyperparameter's current value, by name (eager only).

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> HyperparameterState.create((Hyperparameter("beta", 0.9),), {}, "m").values()
            {'beta': 0.9}
        """
        return {spec.name: self.get(spec.name) for spec in self.specs}

    def set(self, name: str, value: Any) -> bool:
        """Change a hyperparameter: a Python number or bool (checked against the bounds), a
        tensor (assigned as it is, for use inside ``tf.function``), or a schedule.

        Returns:
            True when steps traced before must be traced again (a new schedule).

        Raises:
            HyperparameterError: unknown name, wrong type or out of bounds, a number for a
                hyperparameter that follows a schedule, or a new value for a fixed one (its
                own value is accepted and changes nothing).

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> HyperparameterState.create((Hyperparameter("beta", 0.9),), {}, "m").set("beta", 0.5)
            False
        """
        spec = self.spec(name)
        if spec.fixed:
            self._check_fixed_unchanged(spec, value)
            return False
        if schedules.is_schedule(value):
            self.schedules[name] = value
            return True
        if name in self.schedules:
            raise HyperparameterError(
                f"{name} follows a schedule, so it cannot be set to a number; "
                "create the optimizer with a number instead"
            )
        if tf.is_tensor(value) or isinstance(value, tf.Variable):
            self.variables[name].assign(tf.cast(value, tf.float64))
        else:
            self.variables[name].assign(as_float64(spec.check(value)))
        return False

    def _check_fixed_unchanged(self, spec: Hyperparameter, value: Any) -> None:
        """A fixed hyperparameter may be "set" only to the value it already has."""
        if tf.is_tensor(value) or isinstance(value, tf.Variable) or spec.check(value) != self.get(spec.name):
            raise HyperparameterError(
                f"{spec.name} is fixed when the optimizer is created; create a new optimizer to change it"
            )

    def apply_schedules(self, calls: tf.Tensor) -> None:
        """Give every scheduled hyperparameter its value for this call (0-based count).

        Example:
            >>> state.apply_schedules(optimizer.iterations)  # doctest: +SKIP
        """
        for name, schedule in self.schedules.items():
            self.variables[name].assign(schedules.evaluate(schedule, calls))

    def stacked(
        self,
        columns: Mapping[str, Sequence[Any]],
        variable_rank: int,
        shared: Iterable[str] = (),
        runs_last: bool = False,
    ) -> HyperparameterState:
        """A new state holding one value per run of each hyperparameter, for variables that stack
        independent runs along their leading axis (how ``optreg bench`` trains a sweep in one
        loop); this state is left as it is. Step an optimizer with it through
        :meth:`optreg.Optimizer.stepping_with`.

        Args:
            columns: hyperparameter name → one value per run (checked against the bounds); every
                hyperparameter must be given, each with the same number of runs.
            variable_rank: the rank of the stacked variables, run axis included; the values
                are shaped ``[runs, 1, …]`` to broadcast against them, and so is every scalar
                slot built with the new state (one number per run).
            shared: the hyperparameters whose column holds one value for every run: each is
                held once, shaped ``[1, 1, …]``, and must keep one value for all runs.
            runs_last: the runs lie on the variables' last axis instead (``[…, runs]``, how the
                bench holds them so that what it reduces per run lies across rows); the values
                are shaped ``[1, …, runs]``.

        Raises:
            OptionError: a hyperparameter follows a schedule, or the runs disagree.
            HyperparameterError: a value of the wrong type or out of bounds.

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> state = HyperparameterState.create((Hyperparameter("beta", 0.9),), {}, "m")
            >>> state.stacked({"beta": [0.1, 0.2]}, variable_rank=2).variables["beta"].shape
            TensorShape([2, 1])
            >>> state.values()
            {'beta': 0.9}
        """
        if self.schedules:
            raise OptionError("runs cannot be stacked while a hyperparameter follows a schedule")
        counts = {len(column) for column in columns.values()}
        if set(columns) != set(self.variables) or len(counts) != 1:
            raise OptionError("stacked runs need every hyperparameter, each with one value per run")
        runs = counts.pop()
        shape = [1] * (variable_rank - 1) + [runs] if runs_last else [runs] + [1] * (variable_rank - 1)
        shared = frozenset(shared) & set(self.variables)
        with tf.init_scope():
            variables = {
                name: tf.Variable(
                    tf.zeros([1] * variable_rank if name in shared else shape, tf.float64), trainable=False, name=name
                )
                for name in self.variables
            }
        state = HyperparameterState(self.specs, variables, None, self.optimizer_name, shape, shared, runs_last)
        state.assign_runs(columns)
        return state

    def assign_runs(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Give a stacked state new values, one per run, as many runs as it holds (traced steps
        see them without retracing).

        Raises:
            OptionError: the state is not stacked, or a column has another number of runs.
            HyperparameterError: a value of the wrong type or out of bounds.

        Example:
            >>> from optreg.model.hyperparameters import Hyperparameter
            >>> state = HyperparameterState.create((Hyperparameter("beta", 0.9),), {}, "m")
            >>> runs = state.stacked({"beta": [0.1, 0.2]}, variable_rank=2)
            >>> runs.assign_runs({"beta": [0.3, 0.4]})
            >>> runs.variables["beta"].numpy().ravel().tolist()
            [0.3, 0.4]
        """
        if self.run_shape is None:
            raise OptionError("assign_runs needs a stacked state (see HyperparameterState.stacked)")
        for name, column in columns.items():
            if len(column) != self.run_count:
                raise OptionError(f"{name} has {len(column)} values for {self.run_count} stacked runs")
            # checked as one column; NumPy holds None (a ``none`` hyperparameter unset) as NaN, as as_float64 does
            checked = np.asarray(check_values(self.spec(name), column), np.float64)
            if name in self.shared:
                if len(checked) and not same_bits(checked):
                    raise OptionError(f"{name} is shared by every stacked run, so its runs take one value")
                checked = checked[:1]
            self.variables[name].assign(checked.reshape(self.variables[name].shape))


def same_bits(values: np.ndarray) -> bool:
    """Whether every float64 holds the same bits as the first (0.0 and -0.0 differ; one NaN
    equals itself).

    Example:
        >>> same_bits(np.array([0.5, 0.5])), same_bits(np.array([0.0, -0.0]))
        (True, False)
    """
    bits = np.ascontiguousarray(values, np.float64).view(np.int64)
    return bool(np.all(bits == bits[0]))
