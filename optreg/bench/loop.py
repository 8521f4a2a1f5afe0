"""The compiled bench loop: every run of one optimizer on one problem, side by side.

The runs of a sweep share one parameter variable of shape ``[runs, dimension]`` — the problem's
loss maps it to one loss per run — and one optimizer whose hyperparameters hold one value per
run. One ``tf.function`` while-loop (XLA-compiled by default) steps them all; each run keeps
its own status and stops on its own, its parameters frozen from then on. Each iteration
follows the TensorFlow Core tutorial's convergence test, per run:

* **exploded**: the parameters are no longer finite, or the gradient holds a NaN (any
  non-finite value with ``skip_nonfinite``);
* **reached** (with ``stop_at_tolerance``): the loss is within the problem's tolerance of its
  known minimum; the run's iterations are the steps it took to get there;
* **converged**: a step leaves every parameter exactly where it was;
* **exceeded**: ``max_iters`` iterations passed with none of those.
"""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np
import tensorflow as tf

from optreg.optimizer import Optimizer
from optreg.problems import Problem

STATUSES = ("converged", "exceeded", "exploded", "reached")
CONVERGED, EXCEEDED, EXPLODED, REACHED = range(4)
RUNNING = -1


@attrs.frozen
class RowOptions:
    """Gradient options the loop applies to each run's gradient on its own (the optimizer's
    hooks would treat the stacked variable as one tensor)."""

    clipnorm: float | None = None
    skip_nonfinite: bool = False


@attrs.frozen
class LoopOutcome:
    """What every run of one loop did, one row per run (NumPy arrays).

    Attributes:
        status: index into :data:`STATUSES`.
        iterations: iterations each run took.
        reached_at: the first iteration whose loss was within the tolerance (-1: never).
        final_params: ``[runs, dimension]``.
        final_loss: the problem's loss at the final parameters.
        history_iterations: the recorded iterations (empty without history).
        history_loss: ``[recorded, runs]`` losses before each recorded iteration's step.
        history_params: ``[recorded, runs, dimension]`` parameters at the same moments.
    """

    status: np.ndarray
    iterations: np.ndarray
    reached_at: np.ndarray
    final_params: np.ndarray
    final_loss: np.ndarray
    history_iterations: np.ndarray
    history_loss: np.ndarray
    history_params: np.ndarray


class StackedLoop:
    """One optimizer on one problem for a fixed number of stacked runs; traced once, reusable.

    Args:
        optimizer: built with the runs' options; its hyperparameters already stacked, or plain
            scalars when there is one run.
        problem: the problem.
        runs: how many runs are stacked.
        max_iters: the iteration limit.
        jit_compile: compile the loop with XLA.
        stop_at_tolerance: stop each run once it reaches the problem's tolerance.
        history_every: record loss and parameters every this many iterations (0: never).
        row_options: per-run gradient clipping and the non-finite policy.

    Example:
        >>> loop = StackedLoop(opt, problem, runs=3, max_iters=2000)  # doctest: +SKIP
        >>> loop.run().status  # doctest: +SKIP
    """

    def __init__(
        self,
        optimizer: Optimizer,
        problem: Problem,
        runs: int,
        max_iters: int,
        jit_compile: bool = True,
        stop_at_tolerance: bool = False,
        history_every: int = 0,
        row_options: RowOptions = RowOptions(),
    ):
        self.optimizer, self.problem, self.runs, self.max_iters = optimizer, problem, runs, max_iters
        self.stop_at_tolerance, self.history_every, self.row_options = stop_at_tolerance, history_every, row_options
        self.start = np.tile(np.asarray(problem.start, np.float32), (runs, 1))
        self.params = tf.Variable(self.start, name="params")
        # An optimizer whose update is not elementwise (norms, shape facts, matrix products)
        # makes one run at a time on the problem's own parameter vector, so it sees a vector
        # (Muon takes its AdamW branch, Adafactor does not factor) as it would outside the bench.
        self.one_vector = not optimizer.supports_stacked_runs
        if self.one_vector and runs != 1:
            raise ValueError(f"{optimizer.optimizer_name} cannot stack runs; make one run per loop")
        self.vector = tf.Variable(self.start[0], name="vector") if self.one_vector else None
        self.optimizer.build([self.vector if self.one_vector else self.params])
        slots = max_iters // history_every + 1 if history_every else 0
        # one spare row at the end takes the writes of iterations that are not recorded
        self.history_loss = tf.Variable(tf.zeros([slots + 1, runs]), name="history_loss")
        self.history_params = tf.Variable(tf.zeros([slots + 1, runs, problem.dimension]), name="history_params")
        self._loop = tf.function(self._whole_run, jit_compile=jit_compile, autograph=False)

    def run(self) -> LoopOutcome:
        """Every run from the start point with the optimizer's current hyperparameters."""
        self.params.assign(self.start)
        self.optimizer.reset()
        status, iterations, reached_at = (t.numpy() for t in self._loop())
        final = self.params.numpy()
        recorded = min(self.max_iters, int(iterations.max(initial=0))) // self.history_every + 1 if self.history_every else 0
        return LoopOutcome(
            status=status,
            iterations=iterations,
            reached_at=reached_at,
            final_params=final,
            final_loss=self.problem.loss(tf.constant(final)).numpy(),
            history_iterations=np.arange(recorded) * self.history_every,
            history_loss=self.history_loss.numpy()[:recorded],
            history_params=self.history_params.numpy()[:recorded],
        )

    def _whole_run(self):
        """The loop: iterate while any run is running and the limit is not reached."""
        initial = (
            tf.constant(0),
            tf.fill([self.runs], RUNNING),
            tf.zeros([self.runs], tf.int32),
            tf.fill([self.runs], -1),
        )

        def keep_going(i, status, iterations, reached_at):
            return tf.logical_and(i < self.max_iters, tf.reduce_any(tf.equal(status, RUNNING)))

        i, status, iterations, reached_at = tf.while_loop(keep_going, self._iteration, initial)
        return tf.where(tf.equal(status, RUNNING), EXCEEDED, status), iterations, reached_at

    def _iteration(self, i, status, iterations, reached_at):
        """One iteration of the tutorial's test for every run still running."""
        was_running = tf.equal(status, RUNNING)
        finite = tf.reduce_all(tf.math.is_finite(self.params), axis=-1)
        status = tf.where(was_running & ~finite, EXPLODED, status)
        with tf.GradientTape() as tape:
            losses = self.problem.training_loss(self.params, i)
            total = tf.reduce_sum(losses)
        grad = tape.gradient(total, self.params)
        full_losses = losses if self.problem.batch_loss is None else self.problem.loss(self.params)
        self._record(i, full_losses)
        status, reached_at, counted = self._check_tolerance(i, full_losses, status, reached_at, was_running)
        bad = tf.math.is_nan(grad) if not self.row_options.skip_nonfinite else ~tf.math.is_finite(grad)
        status = tf.where(tf.equal(status, RUNNING) & tf.reduce_any(bad, axis=-1), EXPLODED, status)
        status = self._step(i, grad, status)
        return i + 1, status, iterations + tf.cast(counted, tf.int32), reached_at

    def _check_tolerance(self, i, losses, status, reached_at, was_running):
        """Note the first iteration each run is within tolerance; stop it there if asked.
        Returns the new status, ``reached_at`` and which runs count this iteration."""
        if self.problem.minimum_loss is None:
            return status, reached_at, was_running
        within = losses - self.problem.minimum_loss <= self.problem.tolerance
        reached_at = tf.where((reached_at < 0) & within & was_running, i, reached_at)
        if not self.stop_at_tolerance:
            return status, reached_at, was_running
        stops = tf.equal(status, RUNNING) & within
        return tf.where(stops, REACHED, status), reached_at, was_running & ~stops

    def _step(self, i, grad, status):
        """Step the runs still running; freeze the rest; mark those a step left unmoved converged."""
        running = tf.equal(status, RUNNING)
        grad = tf.where(running[:, None], grad, tf.zeros_like(grad))
        if self.row_options.clipnorm is not None:
            limit = tf.constant(self.row_options.clipnorm, grad.dtype)
            norms = tf.norm(grad, axis=-1, keepdims=True)
            grad = grad * limit / tf.maximum(norms, limit)
        before = self.params.read_value()
        if self.one_vector:
            self.vector.assign(before[0])
            self.optimizer.minimize(lambda: self.problem.training_loss(self.vector, i), [self.vector], grads=[grad[0]])
            moved = self.vector.read_value()[None]
        else:
            self.optimizer.minimize(lambda: tf.reduce_sum(self.problem.training_loss(self.params, i)), [self.params], grads=[grad])
            moved = self.params.read_value()
        after = tf.where(running[:, None], moved, before)
        self.params.assign(after)
        unmoved = tf.reduce_all(tf.equal(after, before), axis=-1)
        return tf.where(running & unmoved, CONVERGED, status)

    def _record(self, i, losses):
        """Write the losses and parameters before this iteration's step, every ``history_every``."""
        if not self.history_every:
            return
        spare = self.history_loss.shape[0] - 1
        row = tf.where(tf.equal(i % self.history_every, 0), i // self.history_every, spare)
        self.history_loss.scatter_nd_update([[row]], losses[None])
        self.history_params.scatter_nd_update([[row]], self.params.read_value()[None])


def row_options(options: Mapping) -> tuple[RowOptions, dict]:
    """Split optimizer options into those the loop applies per run and those the optimizer keeps.

    ``clipnorm`` and ``global_clipnorm`` coincide for one run's single parameter vector.

    Example:
        >>> row_options({"clipnorm": 2.0, "clipvalue": None})
        (RowOptions(clipnorm=2.0, skip_nonfinite=False), {'clipvalue': None})
    """
    rest = dict(options)
    clipnorm = rest.pop("clipnorm", None)
    global_clipnorm = rest.pop("global_clipnorm", None)
    skip = bool(rest.pop("skip_nonfinite", False))
    return RowOptions(clipnorm=clipnorm if clipnorm is not None else global_clipnorm, skip_nonfinite=skip), rest
