"""The compiled bench loop: the runs of one or more optimizers on one problem, side by side.

Each optimizer in a loop (a :class:`~optreg.bench.loop_records.LoopMember`) owns one
parameter variable of shape ``[dimension, runs]``, one column per run, and holds one value per
run for each hyperparameter (``[1, runs]``); the problem's loss sees the parameters as
``[runs, dimension]`` and maps them to one loss per run. The runs lie on the minor axis because
what the loop reduces per run (finiteness, the largest gradient entry, whether a step moved the
parameters) then runs across rows, which XLA vectorises, where a reduction along each short row
does not (a warm 10,000-run sweep on the 10-dimensional ``quadratic`` took 2.5 times as long
so; docs/benchmarking.md). An optimizer whose updates are not elementwise makes one run at a
time on the problem's own vector ``[dimension]``. One ``tf.function`` while-loop (XLA-compiled
by default) steps every member; each run keeps its own status and stops on its own, its
parameters frozen from then on, and the loop ends when every run has stopped. Each iteration
follows the TensorFlow Core tutorial's convergence test, per run:

* **exploded**: the parameters are no longer finite, or the gradient holds a NaN (any
  non-finite value with ``skip_nonfinite``);
* **reached** (with ``stop_at_tolerance``): the loss is within the problem's tolerance of its
  known minimum; the run's iterations are the steps it took to get there;
* **converged**: a step leaves every parameter exactly where it was while the gradient is near
  zero (its largest entry at most :data:`GRADIENT_DROP` times the first step's largest entry, or
  at most :data:`GRADIENT_DROP` itself when that was below 1) — counting only the steps meant to move them (see
  :meth:`~optreg.runtime.optimizer.Optimizer.moves_on_call`: not a call that only accumulates its
  gradient, nor ADOPT's first step, which only measures it);
* **stalled**: such a step left the parameters where they were with the gradient not near zero
  (a mask that zeroes the step, steps below the parameters' float32 resolution) and they never
  moved again before ``max_iters``: the run keeps going while it may move again, and
  ``stalled_at`` says from which iteration it stood still;
* **exceeded**: ``max_iters`` iterations passed with none of those.

Besides its status, each run notes the last iteration its loss was outside the tolerance
(``left_at``, one int32 per run, elementwise so a run in a shared loop stays the run made alone);
with the loss at its final parameters this gives ``settled_at``, the iteration from which it
stayed within tolerance to its end (-1 when it ended outside): a run that touches the tolerance
and leaves again has not solved the problem.

The while-loop runs in chunks: one compiled call advances a given number of iterations
(:data:`FIRST_CHUNK_ITERATIONS`, then about :data:`CHUNK_SECONDS` worth), carrying the loop's
state in variables to the next call of the same compiled function, so Ctrl-C stops a long bench
between chunks instead of after its last iteration; the results are those of one loop, bit for bit.
The loop's first call advances no iteration (a chunk that ends at iteration 0): it traces and
compiles the chunk, so a run's outcome reports the compilation and the calls that ran the
iterations apart (``compile_seconds``, ``run_seconds``; see :mod:`optreg.bench.loop_timing`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from optreg.bench.loop_records import LoopMember, LoopOutcome
from optreg.bench.run_status import (
    CONVERGED,
    EXCEEDED,
    EXPLODED,
    GRADIENT_DROP,
    RUNNING,
    STALLED,
    check_tolerance,
    ended_within,
)
from optreg.bench.runner import history_points
from optreg.problems import Problem
from optreg.runtime.optimizer import Optimizer

#: How many iterations the first compiled call of a loop run advances at most: the whole of the
#: tutorial's 2000-iteration table in one call (about 2 ms), so it pays no extra call (besides
#: the loop's very first, which only compiles it); Ctrl-C during a first chunk is seen when it ends.
FIRST_CHUNK_ITERATIONS = 2000
#: The per-run counters the loop carries, one row each of one int32 tensor, in this order, with
#: the value each starts at; the status is row 0, which the loop's condition reads.
PER_RUN = {"status": RUNNING, "iterations": 0, "reached_at": -1, "stalled_at": -1, "left_at": -1}
#: How long each later call aims to run, in seconds: its length is set from the iterations per
#: second measured so far, so Ctrl-C is seen within about this long.
CHUNK_SECONDS = 0.25


class StackedLoop:
    """Optimizers on one problem, all their runs side by side; traced once, reusable.

    Every member owns one parameter variable: ``[dimension, runs]`` for an optimizer whose
    updates are elementwise, the problem's own vector ``[dimension]`` for one that is not (so
    Muon takes its AdamW branch and Adafactor does not factor, as they would outside the bench).
    One while-loop steps every member and stops when every run has stopped, so several
    optimizers share one trace and one compilation.

    Args:
        members: the optimizers and their runs, in the order of the loop's runs.
        problem: the problem.
        max_iters: the iteration limit.
        jit_compile: compile the loop with XLA; ignored (the loop is traced, not XLA-compiled)
            when a member's optimizer must not be (``compiles_with_xla`` False).
        stop_at_tolerance: stop each run once it reaches the problem's tolerance.
        history_every: record loss and parameters every this many iterations (0: never).

    Example:
        >>> loop = StackedLoop([LoopMember(opt, runs=3)], problem, max_iters=2000)  # doctest: +SKIP
        >>> loop.run().status  # doctest: +SKIP
    """

    def __init__(
        self,
        members: Sequence[LoopMember],
        problem: Problem,
        max_iters: int,
        jit_compile: bool = True,
        stop_at_tolerance: bool = False,
        history_every: int = 0,
    ):
        self.members, self.problem, self.max_iters = tuple(members), problem, max_iters
        self.stop_at_tolerance, self.history_every = stop_at_tolerance, history_every
        for member in self.members:
            if member.one_vector and member.runs != 1:
                raise ValueError(f"{member.optimizer.optimizer_name} cannot stack runs; make one run per loop")
        self.runs = sum(member.runs for member in self.members)
        self.start = np.tile(np.asarray(problem.start, np.float32), (self.runs, 1))
        self.variables = [
            tf.Variable(self.start[0] if m.one_vector else _columns(self.start[: m.runs]), name=f"params_{k}")
            for k, m in enumerate(self.members)
        ]
        for member, variable in zip(self.members, self.variables):
            with member.stepping():
                member.optimizer.build([variable])
        # the rows plan_bench sized; the last, spare, takes the writes of iterations not recorded
        rows = history_points(max_iters, history_every) if history_every else 1
        self.history_loss = tf.Variable(tf.zeros([rows, self.runs]), name="history_loss")
        self.history_params = tf.Variable(tf.zeros([rows, self.runs, problem.dimension]), name="history_params")
        # the while-loop's state between chunks: the iteration, the per-run counters (PER_RUN,
        # one row each) and each run's first gradient; set back to initial before a run
        self.loop_state = [tf.Variable(value, name=f"loop_state_{k}") for k, value in enumerate(self._initial_state())]
        #: The iteration the next chunk stops at (set from Python, so the chunk computes no end).
        self.chunk_end = tf.Variable(min(FIRST_CHUNK_ITERATIONS, max_iters), name="chunk_end")
        self._end = int(self.chunk_end.numpy())  # what chunk_end holds, kept to skip needless assigns
        self._state_initial = True  # loop_state holds the initial state
        self._compiled = False  # the chunk has been traced and compiled (by _compile)
        # A partial, not the bound method: TensorFlow counts traces by the function's code, so
        # one trace per loop of a many-problem bench would read as needless retracing and warn.
        #: Whether the loop is XLA-compiled: as asked, unless an optimizer declares it must not be.
        self.jit_compile = jit_compile and all(member.optimizer.compiles_with_xla for member in self.members)
        self._chunk = tf.function(
            functools.partial(StackedLoop._next_chunk, self), jit_compile=self.jit_compile, autograph=False
        )

    @property
    def optimizers(self) -> tuple[Optimizer, ...]:
        """The members' optimizers, in the order of the loop's runs."""
        return tuple(member.optimizer for member in self.members)

    def run(self, starts: np.ndarray | None = None) -> LoopOutcome:
        """Every run with the optimizers' current hyperparameters.

        Args:
            starts: ``[runs, dimension]``, each run's start point (seeded starts); None: every
                run from the problem's own start.
        """
        starts = self.start if starts is None else np.asarray(starts, np.float32).reshape(self.start.shape)
        offset = 0
        for member, variable in zip(self.members, self.variables):
            rows = starts[offset : offset + member.runs]
            offset += member.runs
            variable.assign(rows[0] if member.one_vector else _columns(rows))
            with member.stepping():
                member.optimizer.reset()
        compile_seconds = self._compile()
        self._reset_state()
        started = time.perf_counter()
        loop_iterations, (status, iterations, reached_at, stalled_at, left_at) = self._run_in_chunks()
        run_seconds = time.perf_counter() - started
        unfinished = np.where(stalled_at >= 0, STALLED, EXCEEDED)
        status = np.where(status == RUNNING, unfinished, status).astype(status.dtype)
        final = np.concatenate([np.reshape(v.numpy().T, (-1, self.problem.dimension)) for v in self.variables])
        final_loss = self.problem.loss(tf.constant(final))
        recorded = (
            min(self.max_iters, int(iterations.max(initial=0))) // self.history_every + 1 if self.history_every else 0
        )
        settled = ended_within(self.problem, status, iterations, left_at, final_loss, tf.constant(final))
        return LoopOutcome(
            status=status,
            iterations=iterations,
            reached_at=reached_at,
            stalled_at=np.where(status == STALLED, stalled_at, -1),
            settled_at=np.where(settled, left_at + 1, -1).astype(np.int32),
            final_params=final,
            final_loss=final_loss.numpy(),
            history_iterations=np.arange(recorded) * self.history_every,
            history_loss=self.history_loss.numpy()[:recorded],
            history_params=self.history_params.numpy()[:recorded],
            loop_iterations=loop_iterations,
            compile_seconds=compile_seconds,
            run_seconds=run_seconds,
        )

    def _compile(self) -> float:
        """Trace and compile the chunk, the first time, by a call that advances no iteration
        (a chunk that ends at iteration 0), so the calls that run iterations are timed without it.

        Returns:
            The wall time of that call; 0 when the loop was compiled before.
        """
        if self._compiled:
            return 0.0
        self._set_chunk_end(0)
        started = time.perf_counter()
        int(self._chunk()[0])  # a chunk that ends at iteration 0 leaves loop_state as it was
        self._compiled = True
        return time.perf_counter() - started

    def _run_in_chunks(self) -> tuple[int, tuple[np.ndarray, ...]]:
        """Call the compiled chunk, from the initial state (:meth:`_reset_state`), until every
        run has stopped; Ctrl-C is seen between calls.

        Returns:
            The iterations the loop ran, and ``(status, iterations, reached_at, stalled_at,
            left_at)`` per run, as the last chunk left them.
        """
        self._set_chunk_end(min(FIRST_CHUNK_ITERATIONS, self.max_iters))
        self._state_initial, done = False, 0
        while True:
            started = time.perf_counter()
            reached, per_run = self._chunk()
            reached, rows = int(reached), per_run.numpy()
            if reached >= self.max_iters or not np.any(rows[0] == RUNNING):
                return reached, tuple(rows)
            elapsed, advanced = time.perf_counter() - started, reached - done
            self._set_chunk_end(min(reached + chunk_length(advanced, elapsed, self.max_iters), self.max_iters))
            done = reached

    def _reset_state(self) -> None:
        """Put the initial state back in :attr:`loop_state` if an earlier run, finished or
        interrupted, left its own there."""
        if not self._state_initial:
            for variable, value in zip(self.loop_state, self._initial_state()):
                variable.assign(value)
            self._state_initial = True

    def _set_chunk_end(self, end: int) -> None:
        """Make the next chunk stop at iteration ``end`` (an assignment only when it changes)."""
        if end != self._end:
            self.chunk_end.assign(end)
            self._end = end

    def _initial_state(self) -> tuple[np.ndarray, ...]:
        """The while-loop's state before the first iteration, as :attr:`loop_state` holds it.

        Returns:
            ``(iteration, per-run counters, first_gradient)``, the counters ``[PER_RUN, runs]``:
            every run running, nothing counted, nothing reached, stalled or left.
        """
        per_run = np.repeat(np.array([[start] for start in PER_RUN.values()], np.int32), self.runs, axis=1)
        return np.int32(0), per_run, np.zeros(self.runs, np.float32)

    def _next_chunk(self) -> tuple[tf.Tensor, ...]:
        """Advance the loop from :attr:`loop_state` until iteration :attr:`chunk_end` or until
        every run has stopped, and leave :attr:`loop_state` where it got to (the caller decides
        whether to go on, and sets it back to initial for the next run, so the chunk computes
        neither: XLA would make each a kernel of its own to compile).

        Returns:
            ``(the iteration reached, the per-run counters [PER_RUN, runs])``.
        """
        state = tuple(variable.read_value() for variable in self.loop_state)
        end = self.chunk_end.read_value()

        def keep_going(i: tf.Tensor, per_run: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
            return tf.logical_and(i < end, tf.reduce_any(tf.equal(per_run[0], RUNNING)))

        state = tf.while_loop(keep_going, self._packed_iteration, state)
        for variable, value in zip(self.loop_state, state):
            variable.assign(value)
        return state[0], state[1]

    def _packed_iteration(
        self, i: tf.Tensor, per_run: tf.Tensor, first_gradient: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """:meth:`_iteration` on the counters held as one ``[PER_RUN, runs]`` tensor: XLA
        computes them in one kernel, where five tensors of their own took five to compile."""
        status, iterations, reached_at, stalled_at, left_at = tf.unstack(per_run)
        i, *counters, first_gradient = self._iteration(
            i, status, iterations, reached_at, stalled_at, left_at, first_gradient
        )
        return i, tf.stack(counters), first_gradient

    def _stacked(self, values: Sequence[tf.Tensor]) -> tf.Tensor:
        """One tensor ``[dimension, runs]`` from one tensor per member (a one-vector member's
        ``[dimension]`` gains a run axis)."""
        columns = [value[:, None] if member.one_vector else value for member, value in zip(self.members, values)]
        return columns[0] if len(columns) == 1 else tf.concat(columns, 1)

    def _member_columns(self, columns: tf.Tensor) -> list[tf.Tensor]:
        """Split a ``[dimension, runs]`` tensor into the members' runs."""
        if len(self.members) == 1:
            return [columns]
        split: list[tf.Tensor] = tf.split(columns, [member.runs for member in self.members], axis=1)
        return split

    def _iteration(
        self,
        i: tf.Tensor,
        status: tf.Tensor,
        iterations: tf.Tensor,
        reached_at: tf.Tensor,
        stalled_at: tf.Tensor,
        left_at: tf.Tensor,
        first_gradient: tf.Tensor,
    ) -> tuple[tf.Tensor, ...]:
        """One iteration of the tutorial's test for every run still running.

        The parameters and gradients are ``[dimension, runs]`` here, so what is reduced per run
        (finiteness, the largest gradient entry, whether a step moved) runs across rows, which
        XLA vectorises; the problem sees ``[runs, dimension]``.
        """
        was_running = tf.equal(status, RUNNING)
        columns = self._stacked([v.read_value() for v in self.variables])
        # the gradient with respect to the columns themselves: the same numbers as the members'
        # own gradients put side by side, without tracing the gradient of the concatenation
        with tf.GradientTape() as tape:
            tape.watch(columns)
            params = tf.transpose(columns)
            losses = self.problem.training_loss(params, i)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, columns)
        finite = tf.reduce_all(tf.math.is_finite(columns), axis=0)
        status = tf.where(was_running & ~finite, EXPLODED, status)
        full_losses = losses if self.problem.batch_loss is None else self.problem.loss(params)
        self._record(i, params, full_losses)
        status, reached_at, left_at, counted = check_tolerance(
            self.problem, self.stop_at_tolerance, i, params, full_losses, status, reached_at, left_at, was_running
        )
        status = tf.where(tf.equal(status, RUNNING) & self._bad_gradients(grads), EXPLODED, status)
        running = tf.equal(status, RUNNING)
        unmoved = self._step(i, columns, grads, running)
        stood_still = running & unmoved & self._moving(i)
        iterations = iterations + tf.cast(counted, tf.int32)
        # max |g| as max(max g, -min g): XLA fuses the two reductions with the gradient, not an abs
        largest = tf.cast(tf.maximum(tf.reduce_max(grads, axis=0), -tf.reduce_min(grads, axis=0)), tf.float32)
        first_gradient = tf.where(tf.equal(i, 0), largest, first_gradient)
        near_zero = largest <= GRADIENT_DROP * tf.maximum(first_gradient, 1.0)
        status = tf.where(stood_still & near_zero, CONVERGED, status)
        stalled_at = tf.where(stood_still & ~near_zero & (stalled_at < 0), iterations, stalled_at)
        stalled_at = tf.where(running & ~unmoved, -1, stalled_at)
        return i + 1, status, iterations, reached_at, stalled_at, left_at, first_gradient

    def _bad_gradients(self, grads: tf.Tensor) -> tf.Tensor:
        """Per run: a NaN in its gradient (any non-finite value for members with skip_nonfinite)."""
        skips = {member.skip_nonfinite for member in self.members}
        if len(skips) == 1:
            bad = ~tf.math.is_finite(grads) if skips.pop() else tf.math.is_nan(grads)
            return tf.reduce_any(bad, axis=0)
        return tf.concat(
            [
                tf.reduce_any(~tf.math.is_finite(g) if m.skip_nonfinite else tf.math.is_nan(g), axis=0)
                for m, g in zip(self.members, self._member_columns(grads))
            ],
            0,
        )

    def _step(self, i: tf.Tensor, before: tf.Tensor, grads: tf.Tensor, running: tf.Tensor) -> tf.Tensor:
        """Step the runs still running and freeze the rest (``before`` and ``grads`` are
        ``[dimension, runs]``); returns, per run, whether the step left its parameters exactly
        where they were."""
        grads = tf.where(running[None, :], grads, tf.zeros_like(grads))
        stepped = self._stacked(
            [
                self._step_member(i, member, variable, grad)
                for member, variable, grad in zip(self.members, self.variables, self._member_columns(grads))
            ]
        )
        after = tf.where(running[None, :], stepped, before)
        for variable, columns in zip(self.variables, self._member_columns(after)):
            variable.assign(tf.reshape(columns, variable.shape))
        return tf.reduce_all(tf.equal(after, before), axis=0)

    def _moving(self, i: tf.Tensor) -> tf.Tensor | bool:
        """Per run: whether this iteration's call is meant to move its parameters."""
        moves = [member.optimizer.moves_on_call(i) for member in self.members]
        if all(move is True for move in moves):
            return True
        return tf.concat([tf.fill([m.runs], tf.convert_to_tensor(move)) for m, move in zip(self.members, moves)], 0)

    def _step_member(self, i: tf.Tensor, member: LoopMember, variable: tf.Variable, grad: tf.Tensor) -> tf.Tensor:
        """One member's step from its runs' gradients (``[dimension, runs]``); returns its new
        value (a one-vector member's as it is, before the run axis is added back)."""
        grad = grad[:, 0] if member.one_vector else grad

        def loss() -> tf.Tensor:  # read when called: an optimizer may take its own gradients of it
            seen = variable if member.one_vector else tf.transpose(variable)
            return tf.reduce_sum(self.problem.training_loss(seen, i))

        # every member is stepped at every iteration, so its call count is the loop's iteration
        with member.stepping(), member.optimizer.counting_from(i):
            member.optimizer.minimize(loss, [variable], grads=[grad])
        return variable.read_value()

    def _record(self, i: tf.Tensor, params: tf.Tensor, losses: tf.Tensor) -> None:
        """Write the losses and parameters before this iteration's step, every ``history_every``."""
        if not self.history_every:
            return
        spare = self.history_loss.shape[0] - 1
        row = tf.where(tf.equal(i % self.history_every, 0), i // self.history_every, spare)
        self.history_loss.scatter_nd_update([[row]], losses[None])
        self.history_params.scatter_nd_update([[row]], params[None])


def _columns(rows: np.ndarray) -> np.ndarray:
    """``[runs, dimension]`` start points as the loop's variables hold them, ``[dimension, runs]``."""
    return np.ascontiguousarray(np.asarray(rows).T)


def chunk_length(advanced: int, elapsed: float, max_iters: int) -> int:
    """How many iterations the next chunk makes: about :data:`CHUNK_SECONDS` at the rate seen.

    Args:
        advanced: iterations the last chunk made.
        elapsed: the seconds it took (never its compilation, made by a call of its own).
        max_iters: the loop's iteration limit, the most a chunk needs.

    Returns:
        A number of iterations, at least 1 and at most ``max_iters``.

    Example:
        >>> chunk_length(advanced=2000, elapsed=1.0, max_iters=10_000)
        500
    """
    rate = advanced / max(elapsed, 1e-6)
    return int(min(max(rate * CHUNK_SECONDS, 1), max_iters))
