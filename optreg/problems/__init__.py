"""Loss problems for the bench runner: records that describe a function to minimise.

A problem's ``loss`` takes parameters of shape ``[..., dimension]`` (float32 tensors) and
returns the loss of each parameter vector, of shape ``[...]``: a vector gives a scalar, and a
batch of runs ``[runs, dimension]`` gives one loss per run, so a sweep runs side by side. It
is only called by code that already runs TensorFlow, so defining a problem never imports it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from optreg.errors import OptionError
from optreg.problems.targets import Target

#: The most parameters a configured problem may have (``quadratic``'s ``dimension``,
#: ``mlp-regression``'s weights): 1,000,000 float32 numbers per run, 4 MB.
MAX_DIMENSION = 1_000_000
#: The standard deviation of the seeded start perturbation of a problem without a ``seed``
#: option: seed ``s`` starts at ``start + N(0, START_NOISE²)`` in every coordinate (seed 0 at
#: ``start`` itself), drawn with the standard library's generator seeded with ``s``.
START_NOISE = 0.1
#: A TensorFlow tensor, as losses take and return them (TensorFlow has no stubs: it is Any to mypy).
Tensor = Any


def _floats(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _optional_floats(values: Iterable[float] | None) -> tuple[float, ...] | None:
    return None if values is None else _floats(values)


def _options(values: Mapping[str, Any]) -> dict[str, Any]:
    return dict(values)


@attrs.frozen
class Problem:
    """A loss function with a start point and, where known, its minimum.

    Attributes:
        name: the registered name, e.g. ``"quartic"``.
        summary: one line saying what it is.
        start: the starting parameter values.
        loss: parameters (tensor of shape ``[..., len(start)]``) → loss tensor of shape ``[...]``.
        minimum: a minimising point, where known.
        minimum_loss: the loss at the minimum, where known (a problem with several equal
            minima, like Himmelblau's, states their common loss).
        tolerance: a run has solved the problem once its loss is within this of ``minimum_loss``.
        batch_loss: ``(parameters, iteration)`` → the loss on that iteration's minibatch, for
            stochastic problems; None when every iteration sees ``loss``.
        metrics: parameters ``[runs, dimension]`` → name → one figure per run (for example a
            held-out test loss), reported beside the final loss.
        judged_by: the metric that judges a run instead of its training loss (e.g. a held-out
            ``test_loss``); None: the loss.
        baseline: the metric holding the judged loss of a trivial solution (the constant
            prediction's), which a run must beat to count as converged; None: no baseline.
        target: for a problem with no known minimum, the figure a run counts as reaching (a
            workload's held-out accuracy); the bench loop checks it every iteration, as it
            checks the tolerance of a known minimum, to find when a run met it and stayed.
        target_figure: parameters ``[runs, dimension]`` → the target's metric, one per run, in
            TensorFlow operations the compiled loop runs (the same figure ``metrics`` reports);
            needed with ``target``.
        options: the problem's options and the values this instance was made with.
        configure: options → a new :class:`Problem`, for problems that take options.
        source: the plugin that registered it (set by the registry).

    Example:
        >>> bowl = Problem("bowl", "x²", (1.0,), lambda x: x[..., 0] ** 2, minimum=(0.0,), minimum_loss=0.0)
        >>> bowl.dimension, bowl.solved_by(1e-4)
        (1, True)
    """

    name: str
    summary: str
    start: tuple[float, ...] = attrs.field(converter=_floats)
    loss: Callable[..., Any] = attrs.field(repr=False)
    minimum: tuple[float, ...] | None = attrs.field(default=None, converter=_optional_floats)
    minimum_loss: float | None = None
    tolerance: float = 1e-3
    batch_loss: Callable[..., Any] | None = attrs.field(default=None, repr=False)
    metrics: Callable[..., Any] | None = attrs.field(default=None, repr=False)
    judged_by: str | None = None
    baseline: str | None = None
    target: Target | None = None
    target_figure: Callable[..., Any] | None = attrs.field(default=None, repr=False)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)
    configure: Callable[..., Problem] | None = attrs.field(default=None, repr=False)
    #: The plugin that registered it; set by the registry.
    source: str = ""

    @property
    def dimension(self) -> int:
        """How many parameters the problem has."""
        return len(self.start)

    def training_loss(self, parameters: Tensor, iteration: Tensor) -> Tensor:
        """The loss the optimizer sees at an iteration: the minibatch loss, or ``loss``.

        Example:
            >>> problem.training_loss(params, tf.constant(0))  # doctest: +SKIP
        """
        if self.batch_loss is None:
            return self.loss(parameters)
        return self.batch_loss(parameters, iteration)

    def seeded_start(self, seed: int) -> tuple[float, ...]:
        """The start point of a run with this seed: a problem with a ``seed`` option draws its
        own (``mlp-regression``'s Glorot-uniform weights); any other starts at
        ``start + N(0, START_NOISE²)`` per coordinate, seed 0 at ``start`` exactly.

        Example:
            >>> from optreg.problems.analytic import QUARTIC
            >>> QUARTIC.seeded_start(0), QUARTIC.seeded_start(1) != QUARTIC.start
            ((2.0,), True)
        """
        if "seed" in self.options:
            return self.with_options(seed=seed).start
        if seed == 0:
            return self.start
        draw = random.Random(seed).gauss
        return tuple(value + draw(0.0, START_NOISE) for value in self.start)

    @property
    def seed_shapes_loss(self) -> bool:
        """Whether the seed changes the training loss itself (the minibatch order), not only
        the start point: runs of different seeds then need loops of their own."""
        return "seed" in self.options and self.batch_loss is not None

    @property
    def judges_runs(self) -> bool:
        """Whether a run can reach something: a known minimum's tolerance, or a target."""
        return self.minimum_loss is not None or self.target is not None

    def solved_by(self, loss: float) -> bool:
        """Whether a loss is within the tolerance of the known minimum (False when none is known).

        Example:
            >>> QUARTIC.solved_by(-1.0)  # doctest: +SKIP
        """
        return self.minimum_loss is not None and loss - self.minimum_loss <= self.tolerance

    def with_options(self, **options: Any) -> Problem:
        """The same problem with some options changed.

        Raises:
            OptionError: an option the problem does not have.

        Example:
            >>> from optreg.problems.analytic import QUADRATIC
            >>> QUADRATIC.with_options(dimension=3).start
            (1.0, 1.0, 1.0)
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            have = ", ".join(sorted(self.options)) or "none"
            raise OptionError(f"problem {self.name!r} has no option {unknown[0]!r} (its options: {have})")
        if not options:
            return self
        if self.configure is None:
            raise OptionError(f"problem {self.name!r} has options but no configure to make it with them")
        checked = {name: check_option(self.name, name, value, self.options[name]) for name, value in options.items()}
        made = self.configure(**{**self.options, **checked})
        return attrs.evolve(made, source=self.source)


def check_option(problem: str, name: str, value: Any, current: Any) -> Any:
    """A problem option's new value, of the type its current value has: a bool stays a bool,
    an int takes a whole number (``3`` or ``3.0``), a float takes a finite number. Ranges are
    the problem's own to check (its ``configure``).

    Args:
        problem: the problem's name, for the message.
        name: the option.
        value: the new value.
        current: the option's current value, whose type the new one must have.

    Returns:
        The value as that type.

    Raises:
        OptionError: a value of another type, not finite, or not whole for an int option.

    Example:
        >>> check_option("quadratic", "dimension", 3.0, 10)
        3
        >>> check_option("quadratic", "dimension", 2.5, 10)
        Traceback (most recent call last):
        ...
        optreg.errors.OptionError: problem 'quadratic' option dimension must be a whole number, got 2.5
    """
    where = f"problem {problem!r} option {name}"
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise OptionError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise OptionError(f"{where} must be finite, got {value!r}")
    if isinstance(current, int):
        if value != int(value):
            raise OptionError(f"{where} must be a whole number, got {value!r}")
        return int(value)
    return float(value)
