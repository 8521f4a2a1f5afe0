"""Run optimizers on problems: the tutorial's convergence test, compiled.

Each run follows the TensorFlow Core tutorial's test: from the problem's start, step until

* **converged**: a step leaves every parameter exactly where it was;
* **exploded**: the gradient holds a NaN, or the parameters are no longer finite (an
  infinite gradient sends them to infinity, and the next step reports it — the tutorial
  reports the same iteration, through the NaN gradient that follows); with
  ``skip_nonfinite=True`` the optimizer refuses the infinite gradient's step instead, and the
  run explodes at that step;
* **exceeded**: ``max_iters`` steps passed with neither.

A run is one ``tf.function`` loop, not a Python loop of eager steps. All runs of one optimizer
on one problem share one traced loop: hyperparameters are variables, so a new learning rate
is an assignment, not a retrace.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import attrs

from optreg.entries import OptimizerEntry
from optreg.errors import OptionError
from optreg.gradients import OPTION_NAMES, GradientOptions
from optreg.problems import Problem
from optreg.registry import Registry
from optreg.spec import resolve_hyperparameters

STATUSES = ("converged", "exceeded", "exploded")
_CONVERGED, _EXCEEDED, _EXPLODED = range(3)
_RUNNING = -1


@attrs.frozen
class RunResult:
    """What one run did.

    Attributes:
        optimizer: the optimizer's name.
        problem: the problem's name.
        hyperparameters: every hyperparameter's value in this run.
        settings: the hyperparameters and options set explicitly (the rest are defaults).
        status: ``converged``, ``exceeded`` or ``exploded``.
        iterations: the iteration the run ended at.
        final_loss: the loss at the final parameters.
        final_params: the final parameters.
        seconds: wall time of the run (the first run of a loop includes its tracing).
    """

    optimizer: str
    problem: str
    hyperparameters: Mapping[str, Any]
    settings: Mapping[str, Any]
    status: str
    iterations: int
    final_loss: float
    final_params: tuple[float, ...]
    seconds: float

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready dict of the result."""
        return {
            "optimizer": self.optimizer,
            "problem": self.problem,
            "hyperparameters": dict(self.hyperparameters),
            "status": self.status,
            "iterations": self.iterations,
            "final_loss": self.final_loss,
            "final_params": list(self.final_params),
            "seconds": self.seconds,
        }


@attrs.frozen
class BenchPlan:
    """The validated runs to make: each optimizer entry with its settings."""

    problem: Problem
    runs: tuple[tuple[OptimizerEntry, tuple[dict, ...]], ...]
    max_iters: int


def plan_bench(
    registry: Registry, optimizers: Sequence[str], problem: str, settings: Sequence[dict], max_iters: int = 2000
) -> BenchPlan:
    """Look everything up and check every setting before anything runs (no TensorFlow).

    Args:
        registry: where the optimizers and problems are registered.
        optimizers: optimizer names.
        problem: a problem name.
        settings: one dict of explicitly set hyperparameters per run.
        max_iters: the iteration limit.

    Returns:
        A :class:`BenchPlan`.

    Raises:
        UnknownNameError: an unknown optimizer or problem.
        HyperparameterError: a setting an optimizer does not accept.

    Example:
        >>> from optreg import registry
        >>> plan = plan_bench(registry, ["momentum"], "quartic", [{"learning_rate": 0.01}])
        >>> len(plan.runs[0][1])
        1
    """
    if max_iters < 1:
        raise OptionError(f"max_iters must be at least 1, got {max_iters}")
    found = registry.problems.get(problem)
    runs = []
    for name in optimizers:
        entry = registry.get(name)
        for setting in settings:
            hyperparameters, options = split_setting(setting)
            resolve_hyperparameters(entry.hyperparameters, hyperparameters, entry.name)
            GradientOptions(**options)
        runs.append((entry, tuple(settings)))
    return BenchPlan(problem=found, runs=tuple(runs), max_iters=max_iters)


def split_setting(setting: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split a run's settings into hyperparameters and optimizer options (``clipnorm``, …).

    Example:
        >>> split_setting({"learning_rate": 0.1, "clipnorm": 2.0})
        ({'learning_rate': 0.1}, {'clipnorm': 2.0})
    """
    hyperparameters = {k: v for k, v in setting.items() if k not in OPTION_NAMES}
    options = {k: v for k, v in setting.items() if k in OPTION_NAMES}
    return hyperparameters, options


def run_bench(plan: BenchPlan, jit_compile: bool = True) -> list[RunResult]:
    """Make every run of a plan.

    Args:
        plan: from :func:`plan_bench`.
        jit_compile: compile each loop with XLA.

    Returns:
        One :class:`RunResult` per (optimizer, setting), in plan order.
    """
    results = []
    for entry, settings in plan.runs:
        runners: dict[tuple, _LoopRunner] = {}
        for setting in settings:
            options = split_setting(setting)[1]
            key = tuple(sorted(options.items()))
            if key not in runners:
                runners[key] = _LoopRunner(entry, plan.problem, plan.max_iters, jit_compile, options)
            results.append(runners[key].run(setting))
    return results


class _LoopRunner:
    """One optimizer on one problem: the variable, the optimizer and the traced loop."""

    def __init__(self, entry: OptimizerEntry, problem: Problem, max_iters: int, jit_compile: bool, options: Mapping):
        import tensorflow as tf

        self.entry = entry
        self.problem = problem
        self.max_iters = max_iters
        self.params = tf.Variable(problem.start, dtype=tf.float32, name="params")
        self.optimizer = entry.build(**options)
        self.optimizer.build([self.params])
        self.loop = tf.function(self._loop, jit_compile=jit_compile, autograph=False)

    def _loop(self, max_iters):
        """The whole run as one graph: a while loop whose body is one tutorial iteration."""
        import tensorflow as tf

        running = tf.constant(_RUNNING)

        def keep_going(iteration, status):
            return tf.logical_and(tf.equal(status, running), iteration < max_iters)

        def one_iteration(iteration, status):
            status = tf.cond(tf.reduce_all(tf.math.is_finite(self.params)), self._step, lambda: tf.constant(_EXPLODED))
            return iteration + 1, status

        iteration, status = tf.while_loop(keep_going, one_iteration, (tf.constant(0), running))
        return tf.where(tf.equal(status, running), _EXCEEDED, status), iteration

    def _step(self):
        """Take the gradient; explode on NaN, else apply it and check whether anything moved."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self.problem.loss(self.params)
        grad = tape.gradient(loss, self.params)

        def apply():
            before = tf.identity(self.params.read_value())
            skipped_before = self.optimizer.skipped_steps.read_value()
            self.optimizer.minimize(lambda: self.problem.loss(self.params), [self.params], grads=[grad])
            unchanged = tf.reduce_all(tf.equal(self.params.read_value(), before))
            refused = tf.not_equal(self.optimizer.skipped_steps.read_value(), skipped_before)
            return tf.where(refused, _EXPLODED, tf.where(unchanged, _CONVERGED, _RUNNING))

        return tf.cond(tf.reduce_any(tf.math.is_nan(grad)), lambda: tf.constant(_EXPLODED), apply)

    def run(self, setting: Mapping[str, Any]) -> RunResult:
        """One run from the start point with the given hyperparameters."""
        import tensorflow as tf

        values = resolve_hyperparameters(self.entry.hyperparameters, split_setting(setting)[0], self.entry.name)
        self.params.assign(self.problem.start)
        for name, value in values.items():
            self.optimizer.set_hyperparameter(name, value)
        self.optimizer.reset()
        started = time.perf_counter()
        status, iteration = self.loop(tf.constant(self.max_iters, tf.int32))
        status, iteration = int(status), int(iteration)
        seconds = time.perf_counter() - started
        final = self.params.numpy()
        return RunResult(
            optimizer=self.entry.name,
            problem=self.problem.name,
            hyperparameters=values,
            settings=dict(setting),
            status=STATUSES[status],
            iterations=iteration,
            final_loss=float(self.problem.loss(tf.constant(final))),
            final_params=tuple(float(v) for v in final),
            seconds=seconds,
        )
