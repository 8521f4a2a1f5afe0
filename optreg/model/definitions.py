"""Optimizer specs: the attrs records a spec file is read into (by :mod:`optreg.spec.reader`),
and what creating an optimizer decides from them.

A spec is one TOML file describing one optimizer::

    [optimizer]
    name = "momentum"
    summary = "Gradient descent with momentum"
    references = ["Polyak 1964"]

    [hyperparameters]
    learning_rate = { default = 1e-3, min = 0.0, doc = "step size" }
    momentum      = { default = 0.7, min = 0.0, max = 1.0, doc = "how much of the last step to keep" }

    [slots]
    delta = { init = "zeros" }

    [update]
    rule = [
      "delta = learning_rate * grad + momentum * delta",
      "var = var - delta",
    ]

Nothing here imports TensorFlow. Every problem raises :class:`~optreg.errors.SpecError`
naming the file, the key and, where it can be found, the line (:mod:`optreg.spec.locations`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from optreg.lang import check as expr_check
from optreg.lang import functions
from optreg.model.hyperparameters import Hyperparameter
from optreg.model.options import ALL_OPTION_NAMES

#: Names a hyperparameter or slot may not take: the rule's builtins, the function table,
#: and the options every optimizer accepts.
RESERVED_NAMES = (
    frozenset(functions.BUILTIN_NAMES)
    | frozenset(functions.FUNCTIONS)
    | frozenset({"name", "iterations", "skipped_steps", *ALL_OPTION_NAMES})
)


SLOT_INITS = ("zeros", "ones", "var")


SLOT_DTYPES = ("float16", "bfloat16", "float32", "float64")


#: What a slot holds per variable: a tensor shaped like it, one number, the row or column
#: statistics of its last two axes (kept as size-1 axes; one number for rank < 2), one
#: number per entry of its last axis, the output channel (the other axes kept as size-1 axes;
#: a vector's slot is shaped like the vector, a scalar's is one number), or the row or column
#: Gram matrix of its last two axes (``[..., m, m]`` / ``[..., n, n]`` for ``[..., m, n]``, as
#: ``matmul(grad, transpose(grad))`` / ``matmul(transpose(grad), grad)``; one number for rank < 2).
SLOT_SHAPES = ("var", "scalar", "rows", "columns", "channels", "row_gram", "col_gram")

#: The largest side of a Gram slot's matrices (``"row_gram"`` / ``"col_gram"``): 16384 x 16384
#: float32 numbers are 1 GiB. A larger one is refused when the slot would be created.
MAX_GRAM_DIM = 16384


#: At most this many conditions (fixed bools or comparisons) may decide slots (the rule is checked for every
#: setting of them at once: see optreg.spec.slot_check).
MAX_SLOT_CONDITIONS = 8


OPTIMIZER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]*$")


@attrs.frozen
class Slot:
    """Per-variable state: how it starts and, optionally, its dtype.

    ``init`` is ``"zeros"``, ``"ones"``, ``"var"`` (a copy of the variable), a number to fill
    with, or the name of a number hyperparameter (its value when the slot is created or reset,
    as Keras's Adagrad starts from ``initial_accumulator_value``). ``dtype`` of None means the
    variable's own dtype. ``when`` names a fixed bool hyperparameter, or compares a number
    hyperparameter with a literal (``"momentum > 0"``, decided by the value the optimizer is
    created with): the slot exists only when it holds. ``shape`` is one of
    :data:`SLOT_SHAPES`.
    """

    name: str
    init: str | float = "zeros"
    dtype: str | None = None
    doc: str = ""
    when: str | None = None
    shape: str = "var"


@attrs.frozen
class OptimizerSpec:
    """A validated optimizer spec.

    Attributes:
        name: the short name, e.g. ``"adam"``.
        summary: one line saying what it is.
        references: papers or books, as free text.
        notes: conventions where implementations differ (where ε goes, which library's form
            of a decay it follows), as free text; ``optreg show`` prints them.
        hyperparameters: in file order.
        slots: in file order.
        rule: the checked update rule.
        source: the file it came from, or ``"<string>"``.
        text: the TOML text it was loaded from.
        measuring_steps: how many first updates only measure the gradient and leave the
            variables where they are, by design (ADOPT: 1).
    """

    name: str
    summary: str
    references: tuple[str, ...]
    hyperparameters: tuple[Hyperparameter, ...]
    slots: tuple[Slot, ...]
    rule: expr_check.CheckedRule
    source: str = "<string>"
    #: The TOML text it was loaded from, so a saved optimizer can be rebuilt without the file.
    text: str = attrs.field(default="", repr=False, eq=False)
    #: Defaults for the optimizer options (``weight_decay``, ``clipnorm``, …) from ``[options]``,
    #: as sorted (name, value) pairs; what the caller passes overrides them.
    options: tuple[tuple[str, Any], ...] = ()
    measuring_steps: int = 0
    notes: tuple[str, ...] = ()

    def option_defaults(self) -> dict[str, Any]:
        """The ``[options]`` table's defaults, by name.

        Example:
            >>> load_spec("specs/adamw.toml").option_defaults()  # doctest: +SKIP
            {'weight_decay': 0.004}
        """
        return dict(self.options)

    def defaults(self) -> dict[str, float | int | bool]:
        """Every hyperparameter's default, by name.

        Example:
            >>> from optreg.spec.reader import load_spec_text
            >>> load_spec_text('''
            ... [optimizer]
            ... name = "gd"
            ... summary = "plain steps"
            ... [hyperparameters]
            ... learning_rate = { default = 0.1 }
            ... [update]
            ... rule = ["var = var - learning_rate * grad"]
            ... ''').defaults()
            {'learning_rate': 0.1}
        """
        return {h.name: h.default for h in self.hyperparameters}


def _check_factory(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: a ``"module:attribute"`` import path."""
    module, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not sep or not module.strip() or not name.strip():
        raise ValueError(f"factory must be 'module:attribute', got {value!r}")


def _check_optimizer_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: an optimizer name as specs allow it."""
    if not isinstance(value, str) or not OPTIMIZER_NAME_PATTERN.match(value):
        raise ValueError(f"name must be lower-case letters, digits, '_', '.' or '-', got {value!r}")


@attrs.frozen
class InnerOptimizer:
    """How a wrapper optimizer (Lookahead) takes the optimizer it wraps: by registered name,
    through one keyword, and every hyperparameter the wrapper lacks goes to the inner one.

    Attributes:
        keyword: the keyword argument naming the inner optimizer (``inner``).
        default: the registered name used when none is given.

    Example:
        >>> InnerOptimizer("inner", "adam").default
        'adam'
    """

    keyword: str
    default: str


def _hyperparameter_tuple(values: Iterable[Hyperparameter]) -> tuple[Hyperparameter, ...]:
    """attrs converter: any iterable of hyperparameters as a tuple (typed, for mypy's attrs plugin)."""
    return tuple(values)


def _string_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """attrs converter: any iterable of strings as a tuple."""
    return tuple(values)


@attrs.frozen
class PythonOptimizer:
    """An optimizer written in Python, as a plugin registers it.

    The class itself is named by import path and imported only when the optimizer is
    created, so discovering and listing plugins never imports TensorFlow.

    Attributes:
        name: the short name.
        summary: one line saying what it is.
        factory: ``"module:attribute"`` of an :class:`optreg.Optimizer` subclass.
        hyperparameters: what it accepts, with defaults and bounds (must match the class).
        references: papers or books, as free text.
        inner: for a wrapper of another optimizer, how it names that one; None otherwise.

    Example:
        >>> PythonOptimizer("sam", "Sharpness-aware minimization", "optreg_sam.optimizer:SAM").factory
        'optreg_sam.optimizer:SAM'
    """

    name: str = attrs.field(validator=_check_optimizer_name)
    summary: str
    factory: str = attrs.field(validator=_check_factory)
    hyperparameters: tuple[Hyperparameter, ...] = attrs.field(default=(), converter=_hyperparameter_tuple)
    references: tuple[str, ...] = attrs.field(default=(), converter=_string_tuple)
    inner: InnerOptimizer | None = None
