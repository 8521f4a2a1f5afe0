"""Running one optimizer of the battery over all its settings and shapes with few builds.

Building an optimizer's step (tracing it, then compiling it with XLA, the default) costs far
more than the 50 steps a reference comparison takes: about 0.2 s against 0.05 s for one small
variable on the suite's 2-core machine. A test of every setting on every shape that built one
optimizer per (setting, shape) paid that a dozen times per optimizer. Here:

* one optimizer steps every shape's variable in one call when it updates each variable on its
  own, so each variable sees the very numbers it would see alone. An optimizer that couples its
  variables (it overrides ``update_variables``, as Prodigy does to sum its distance estimate over every
  variable, or a setting has a ``global_clipnorm``; Lookahead couples them when its inner
  optimizer does) gets one optimizer per shape;
* the next setting reuses the optimizer when it differs only in hyperparameters that may be set
  after creation: those are set (the ones the setting leaves out back to their defaults), the
  variables are put back at their starts, then :meth:`optreg.Optimizer.reset`. Hyperparameters
  are float64 variables the compiled step reads, so the step compiled for the first setting runs
  the next one as a fresh optimizer's would; :func:`optreg_trajectories` checks that an optimizer
  created fresh with the setting holds the same hyperparameter values. A setting that changes a
  fixed hyperparameter, gives a schedule, or passes an option that is no hyperparameter
  (Lookahead's ``inner``) gets optimizers of its own.

The random numbers are the ones a test of one (setting, shape) drew from the ``rng`` fixture:
each shape's start and gradients come from a fresh generator with the fixture's seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

import optreg
from optreg.model.schedules import is_schedule
from tests.helpers import SEED, random_problem

__all__ = ["couples_variables", "failures", "keras_trajectories", "optreg_trajectories", "problems"]

#: [setting][shape][step]: the variable after that step.
Trajectories = list[list[list[np.ndarray]]]


def problems(shapes: Sequence[tuple], steps: int, dtype=np.float32) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Each shape's (start, gradients), drawn as a test of that shape alone drew them from the
    ``rng`` fixture: a fresh generator with its seed per shape.

    Example:
        >>> [start.shape for start, _ in problems([(), (2,)], 3)]
        [(), (2,)]
    """
    return [random_problem(np.random.default_rng(SEED), shape, steps, dtype) for shape in shapes]


def couples_variables(opt: optreg.Optimizer) -> bool:
    """Whether one variable's update may depend on the others: an optimizer with its own
    ``update_variables`` (Prodigy), or one clipping by the global norm. Lookahead runs its inner
    optimizer's whole step, then moves each variable's slow weights on their own, so it couples
    its variables exactly when its inner optimizer does.

    Example:
        >>> couples_variables(optreg.registry.create("prodigy"))
        True
    """
    from optreg.runtime.lookahead import Lookahead

    if opt.gradient_options.global_clipnorm is not None:
        return True
    rule = getattr(opt, "_rule", None)
    if rule is not None and rule.draws:  # a rule's random numbers are keyed by the variable's index
        return True
    if type(opt).update_variables is Lookahead.update_variables:
        return couples_variables(opt.inner)
    return type(opt).update_variables is not optreg.Optimizer.update_variables


def _creation_key(name: str, setting: dict) -> list:
    """What of a setting only creating an optimizer can give: options that are no
    hyperparameters, schedules, and the value of every fixed hyperparameter (the default where
    the setting gives none). Settings with equal keys may share optimizers."""
    entry = optreg.registry.get(name)
    specs = {spec.name: spec for spec in entry.hyperparameters}
    values = {**entry.defaults(), **setting}
    key = [(spec.name, values[spec.name]) for spec in entry.hyperparameters if spec.fixed]
    for option, value in sorted(setting.items()):
        spec = specs.get(option)
        if spec is None or is_schedule(value):
            key.append((option, value))
    return key


class _Built:
    """The optimizers of one creation key: (optimizer, indices of the shapes it steps, variables)."""

    def __init__(self, name: str, setting: dict, starts: list[np.ndarray]):
        first = optreg.registry.create(name, **setting)
        groups = [[i] for i in range(len(starts))] if couples_variables(first) else [list(range(len(starts)))]
        optimizers = [first] + [optreg.registry.create(name, **setting) for _ in groups[1:]]
        self.groups = [(opt, group, [tf.Variable(starts[i]) for i in group]) for opt, group in zip(optimizers, groups)]

    def retarget(self, name: str, setting: dict, starts: list[np.ndarray]) -> bool:
        """Give every optimizer the setting's hyperparameters and start again from the starts;
        False (and nothing to use) when a value may not be set after creation, such as one on
        the other side of a slot's ``when`` condition than the creation value."""
        entry = optreg.registry.get(name)
        values = {**entry.defaults(), **setting}
        fresh = optreg.registry.create(name, **setting).hyperparameters
        for opt, group, variables in self.groups:
            try:
                for spec in entry.hyperparameters:
                    if not spec.fixed and not is_schedule(values[spec.name]):
                        opt.set_hyperparameter(spec.name, values[spec.name])
            except optreg.HyperparameterError:
                return False
            for i, var in zip(group, variables):
                var.assign(starts[i])
            opt.reset()  # after the assignments: slots that start as a copy of the variable copy the start
            assert opt.hyperparameters == fresh, f"{name} {setting}: set {opt.hyperparameters}, created {fresh}"
        return True


def optreg_trajectories(name: str, settings: Sequence[dict], cases: list) -> tuple[Trajectories, list[bool]]:
    """Every setting of the named optimizer on every (start, gradients) of ``cases``.

    Returns:
        The trajectories, and for each setting whether it ran on a reused optimizer (for the
        failure messages).

    Example:
        >>> runs, reused = optreg_trajectories("sgd", [{"learning_rate": 0.1}], problems([(2,)], 3))
        >>> len(runs[0][0]), reused
        (3, [False])
    """
    starts = [start for start, _ in cases]
    built: list[tuple[list, _Built]] = []
    runs: Trajectories = []
    reused = []
    for setting in settings:
        key = _creation_key(name, setting)
        match = next((b for k, b in built if k == key and b.retarget(name, setting, starts)), None)
        reused.append(match is not None)
        if match is None:
            match = _Built(name, setting, starts)
            built.append((key, match))
        runs.append(_run(match, cases))
    return runs, reused


def _run(built: _Built, cases: list) -> list[list[np.ndarray]]:
    """Every group's steps; [shape][step] → the variable after the step."""
    out: list[list[np.ndarray]] = [[] for _ in cases]
    steps = len(cases[0][1])
    for opt, group, variables in built.groups:
        for step in range(steps):
            opt.apply_gradients([(tf.constant(cases[i][1][step]), var) for i, var in zip(group, variables)])
            for i, var in zip(group, variables):
                out[i].append(var.numpy().copy())
    return out


def keras_trajectories(factory: Callable[[dict], Any], settings: Sequence[dict], cases: list) -> Trajectories:
    """Every setting of a Keras optimizer, one built per setting, on every shape at once (Keras's
    optimizers update each variable on their own unless clipping by the global norm, which no
    row's setting does).

    Example:
        >>> from tests.optimizer_table import keras_factory
        >>> len(keras_trajectories(keras_factory("SGD"), [{"learning_rate": 0.1}], problems([(2,)], 3))[0][0])
        3
    """
    runs: Trajectories = []
    for setting in settings:
        assert "global_clipnorm" not in setting, "one Keras optimizer per shape is needed for global_clipnorm"
        variables = [tf.Variable(start) for start, _ in cases]
        opt = factory(setting)
        out: list[list[np.ndarray]] = [[] for _ in cases]
        for step in range(len(cases[0][1])):
            opt.apply_gradients([(tf.constant(grads[step]), var) for (_, grads), var in zip(cases, variables)])
            for trajectory, var in zip(out, variables):
                trajectory.append(var.numpy().copy())
        runs.append(out)
    return runs


def failures(
    name: str, settings: Sequence[dict], shapes: Sequence[tuple], ours: Trajectories, theirs: Trajectories,
    rtol: float, atol: float, reused: Sequence[bool] = (),
) -> list[str]:
    """One line per (setting, shape) whose trajectories differ: the first step that differs
    and NumPy's account of it. Empty when all agree.

    Example:
        >>> failures("sgd", [{}], [(1,)], [[[np.ones(1)]]], [[[np.ones(1)]]], 1e-6, 1e-6)
        []
    """
    lines = []
    for index, setting in enumerate(settings):
        note = " (an optimizer reused after reset())" if index < len(reused) and reused[index] else ""
        for shape, a_run, b_run in zip(shapes, ours[index], theirs[index], strict=True):
            if len(a_run) != len(b_run):
                lines.append(f"{name} {setting} shape {shape}: {len(a_run)} steps against {len(b_run)}")
            for step, (a, b) in enumerate(zip(a_run, b_run), start=1):
                try:
                    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
                except AssertionError as error:
                    detail = " ".join(str(error).split())
                    lines.append(f"{name} {setting} shape {shape}{note}: differs from step {step}: {detail}")
                    break
    return lines
