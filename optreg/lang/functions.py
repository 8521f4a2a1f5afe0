"""The one function table of the rule language, and the builtin names every rule can read.

Each function is one :class:`Function` record: its name, arity, kind and what it computes, and
its float version for constant expressions. Every set of functions the parser, checker, ranker
and compiler need is derived from the kinds here; the TensorFlow implementations, in
:data:`optreg.runtime.tf_functions.TF_FUNCTIONS`, are keyed to the functions whose kind TensorFlow
computes (:data:`TENSORFLOW_COMPUTED`). Growing the language means adding a row here and, for
such a kind, its implementation there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import attrs

#: The names every rule can read besides hyperparameters, slots and locals.
BUILTIN_NAMES = ("grad", "var", "step", "weight_decay")
#: The builtin names holding one number per step (the others are shaped like the variable).
SCALAR_BUILTINS = frozenset({"step", "weight_decay"})
#: The name ``repeat``'s body reads its previous value by (defined only inside that body).
REPEATED = "it"
#: The function whose one argument names a hyperparameter that may be None.
GIVEN = "given"
#: The most times a ``repeat`` may apply its body (its count's largest value).
MAX_REPEAT = 16
#: The int hyperparameter a rule that draws random numbers must declare: the numbers' seed.
SEED = "seed"

#: What a function is, for the checker, the ranker and the compiler:
#:
#: * ``elementwise``: each element of the result from the same element of the arguments;
#: * ``select``: ``where``, element-wise, its condition decided by folding when it can be;
#: * ``reduction``: the whole variable to one number;
#: * ``axis_reduction``: a reduction over some axes, each kept as a size-1 axis (``row_*`` over
#:   the last, ``col_*`` over the second-to-last, ``channel_*`` over every axis but the last);
#: * ``matrix``: mixes elements along the last two axes;
#: * ``eigen``: a symmetric eigendecomposition of the last two axes (``tf.linalg.eigh``): a rule that
#:   calls one runs its step without XLA (:data:`NOT_XLA`), since XLA's eigendecomposition is far
#:   less accurate than LAPACK's;
#: * ``shape_fact``: a fact about a tensor's shape, known when the rule is traced;
#: * ``variable_fact``: a fact about the variable being updated (its one argument is ``var``);
#: * ``creation_fact``: decided when the optimizer is created, from the slots that exist;
#: * ``iteration``: ``repeat(count, start, body)``, unrolled when traced: ``body`` applied ``count``
#:   times, reading the previous value as :data:`REPEATED` (``count`` a whole literal or a fixed int
#:   hyperparameter, at most :data:`MAX_REPEAT`);
#: * ``random``: random numbers shaped like the argument (its values unused), drawn with
#:   TensorFlow's stateless generator from the spec's int hyperparameter :data:`SEED`, the step,
#:   the variable's index and the call's place in the rule (:mod:`optreg.runtime.noise`): the same
#:   numbers on every run, after a checkpoint's resume and on every replica.
KINDS = (
    "elementwise",
    "select",
    "iteration",
    "reduction",
    "axis_reduction",
    "matrix",
    "eigen",
    "shape_fact",
    "variable_fact",
    "creation_fact",
    "random",
)


@attrs.frozen
class Function:
    """One entry of the function table.

    Attributes:
        name: what a rule calls it.
        arity: how many positional arguments it takes.
        kind: one of :data:`KINDS`.
        doc: what it computes.
        constant: its value on plain floats (for constant exponents), or None when a constant
            cannot go through it.

    Example:
        >>> FUNCTIONS["sqrt"].arity, FUNCTIONS["sqrt"].kind, FUNCTIONS["sqrt"].constant(16.0)
        (1, 'elementwise', 4.0)
    """

    name: str
    arity: int
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    doc: str
    constant: Callable[..., float] | None = None


def _same(x: float) -> float:
    """A constant as it is (its sum, mean, transpose)."""
    return x


#: The fixed function table.
FUNCTIONS: Mapping[str, Function] = {
    f.name: f
    for f in (
        Function("sqrt", 1, "elementwise", "square root, element-wise", math.sqrt),
        Function("rsqrt", 1, "elementwise", "1 / sqrt(x), element-wise", lambda x: 1.0 / math.sqrt(x)),
        Function("square", 1, "elementwise", "x * x, element-wise", lambda x: x * x),
        Function("abs", 1, "elementwise", "absolute value, element-wise", abs),
        Function(
            "sign", 1, "elementwise", "-1, 0 or 1 by the sign of x, element-wise", lambda x: float((x > 0) - (x < 0))
        ),
        Function("exp", 1, "elementwise", "e ** x, element-wise", math.exp),
        Function("log", 1, "elementwise", "natural logarithm, element-wise", math.log),
        Function("tanh", 1, "elementwise", "hyperbolic tangent, element-wise", math.tanh),
        Function("maximum", 2, "elementwise", "the larger of a and b, element-wise", max),
        Function("minimum", 2, "elementwise", "the smaller of a and b, element-wise", min),
        Function(
            "clip", 3, "elementwise", "x limited to [lo, hi], element-wise", lambda x, lo, hi: min(max(x, lo), hi)
        ),
        Function(
            "where",
            3,
            "select",
            "a where cond holds (or is non-zero), else b, element-wise",
            lambda cond, a, b: a if cond else b,
        ),
        Function("sum", 1, "reduction", "the sum of every element: one number per variable", _same),
        Function("mean", 1, "reduction", "the mean of every element: one number per variable", _same),
        Function("norm", 1, "reduction", "the L2 norm of every element: one number per variable", abs),
        Function("max_abs", 1, "reduction", "the largest absolute value: one number per variable", abs),
        Function("row_mean", 1, "axis_reduction", "the mean over the last axis, kept as a size-1 axis", _same),
        Function(
            "col_mean", 1, "axis_reduction", "the mean over the second-to-last axis, kept as a size-1 axis", _same
        ),
        Function(
            "row_max", 1, "axis_reduction", "the largest element along the last axis, kept as a size-1 axis", _same
        ),
        Function(
            "col_max",
            1,
            "axis_reduction",
            "the largest element along the second-to-last axis, kept as a size-1 axis",
            _same,
        ),
        Function(
            "channel_sum",
            1,
            "axis_reduction",
            "the sum over every axis but the last (per output channel), each kept as a size-1 axis",
            _same,
        ),
        Function(
            "channel_mean",
            1,
            "axis_reduction",
            "the mean over every axis but the last (per output channel), each kept as a size-1 axis",
            _same,
        ),
        Function(
            "channel_norm",
            1,
            "axis_reduction",
            "the L2 norm over every axis but the last (per output channel; abs(x) for a vector), kept as size-1 axes",
            abs,
        ),
        Function(
            "channel_max",
            1,
            "axis_reduction",
            "the largest element over every axis but the last (per output channel), each kept as a size-1 axis",
            _same,
        ),
        Function("rank", 1, "shape_fact", "the number of axes (known when the rule is traced)", lambda x: 0.0),
        Function("size", 1, "shape_fact", "the number of elements (known when the rule is traced)", lambda x: 1.0),
        Function(
            "rows",
            1,
            "shape_fact",
            "the length of the second-to-last axis, 1 below rank 2 (known when traced)",
            lambda x: 1.0,
        ),
        Function(
            "cols", 1, "shape_fact", "the length of the last axis, 1 for a scalar (known when traced)", lambda x: 1.0
        ),
        Function(
            "matmul", 2, "matrix", "matrix product over the last two axes (batched over the others)", lambda a, b: a * b
        ),
        Function("transpose", 1, "matrix", "the last two axes swapped (unchanged below rank 2)", _same),
        Function(
            "eye_like",
            1,
            "matrix",
            "x's shape, with ones on the diagonal of the last two axes and zeros elsewhere (rank >= 2)",
        ),
        Function(
            "inverse_root",
            2,
            "eigen",
            "x ** (-1 / p) for symmetric positive semi-definite matrices x over the last two axes, from their "
            "eigendecomposition, eigenvalues floored at the largest times the dtype's machine epsilon and at "
            "EIGEN_FLOOR (rank >= 2; p a number)",
        ),
        Function(
            "eigvecs",
            1,
            "eigen",
            "the eigenvectors of symmetric matrices x over the last two axes, as columns, by ascending eigenvalue "
            "(rank >= 2)",
        ),
        Function(
            "excluded",
            1,
            "variable_fact",
            "1 when var's name matches the exclude_layers option (or, with exclude_embeddings, holds 'embedding'), "
            "else 0",
        ),
        Function("decayed", 1, "variable_fact", "1 unless exclude_from_weight_decay excludes var, else 0"),
        Function(
            "given",
            1,
            "elementwise",
            "1 when the named hyperparameter (declared none = true) has a value, 0 when it is None",
            lambda x: float(not math.isnan(x)),
        ),
        Function(
            "repeat",
            3,
            "iteration",
            "body applied count times to start, each time reading the previous value as it (unrolled when traced)",
        ),
        Function(
            "normal_like",
            1,
            "random",
            "standard normal numbers shaped like x (its values unused), from seed, step, the variable and the call",
        ),
        Function(
            "rademacher_like",
            1,
            "random",
            "-1 or 1 with equal chance, shaped like x (its values unused), from seed, step, the variable and the call",
        ),
        Function(
            "has",
            1,
            "creation_fact",
            "1 when the named slot exists (its when holds), else 0; decided when the optimizer is created",
        ),
    )
}


def of_kind(*kinds: str) -> frozenset[str]:
    """The names of the functions of these kinds.

    Example:
        >>> sorted(of_kind("matrix"))
        ['eye_like', 'matmul', 'transpose']
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown function kinds: {sorted(unknown)}")
    return frozenset(name for name, function in FUNCTIONS.items() if function.kind in kinds)


#: Functions that reduce a whole variable to one number or to row or column statistics.
REDUCTIONS = of_kind("reduction", "axis_reduction")
#: Functions whose value is a fact about a tensor's shape, known when the rule is traced.
SHAPE_FACTS = of_kind("shape_fact")
#: Functions whose value is a fact about the variable itself (its name), known when traced;
#: their one argument must be ``var``.
VARIABLE_FACTS = of_kind("variable_fact")
#: Functions decided when the optimizer is created (and folded out of the rule then).
CREATION_FACTS = of_kind("creation_fact")
#: Every function whose value is known when the rule is traced.
TRACE_FACTS = SHAPE_FACTS | VARIABLE_FACTS
#: Functions that mix elements along matrix axes.
MATRIX_OPS = of_kind("matrix")
#: Functions built on a symmetric eigendecomposition: a rule calling one runs without XLA.
NOT_XLA = of_kind("eigen")
#: The least eigenvalue ``inverse_root`` ever raises to ``-1 / p``; its floor is the largest
#: eigenvalue times the dtype's machine epsilon when that is larger (smaller eigenvalues are
#: rounding noise, and rounding can leave one of a positive semi-definite matrix negative).
EIGEN_FLOOR = 1e-30
#: ``repeat``: its body unrolled when traced.
ITERATIONS = of_kind("iteration")
#: Functions that draw random numbers (computed by :mod:`optreg.runtime.noise`, not TF_FUNCTIONS).
RANDOM = of_kind("random")
#: The functions after which an element of the result depends on other elements (or shapes,
#: or which variable it is); random numbers too: runs stacked in one variable would draw other
#: numbers than each run alone.
NOT_ELEMENTWISE = REDUCTIONS | TRACE_FACTS | MATRIX_OPS | NOT_XLA | RANDOM
#: Functions whose result is one number per variable, whatever their argument.
ONE_NUMBER = of_kind("reduction", "shape_fact", "variable_fact")
#: The functions TensorFlow computes (each has one implementation in
#: :data:`optreg.runtime.tf_functions.TF_FUNCTIONS`); the facts are answered without it.
TENSORFLOW_COMPUTED_KINDS = ("elementwise", "select", "reduction", "axis_reduction", "matrix", "eigen")
TENSORFLOW_COMPUTED = of_kind(*TENSORFLOW_COMPUTED_KINDS)
