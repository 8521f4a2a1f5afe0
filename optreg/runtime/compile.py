"""Compile a checked update rule to TensorFlow ops.

The rule is split in two programs once, when the optimizer is built:

* the **step program** holds every sub-expression that depends only on hyperparameters and
  ``step`` (bias corrections such as ``1 - beta_1 ** step``, scalar locals such as Adam's
  ``alpha``). It runs once per step, in float64, shared by every variable;
* the **variable program** holds the rest. It runs once per variable, in the variable's
  compute dtype, reading the step program's results cast to that dtype.

Nothing here evaluates user text: the tree was built from a whitelisted parse, and each node
maps to one fixed TensorFlow function. Each rule line is built inside
:func:`optreg.runtime.rule_errors.building`, so what TensorFlow raises while building it (a shape that
does not fit this variable) is a :class:`~optreg.errors.RuleError` naming the spec's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import tensorflow as tf

from optreg.lang import fold, functions, tree
from optreg.lang.check import CheckedRule
from optreg.runtime import linalg
from optreg.runtime.noise import draw, noise_key
from optreg.runtime.rule_errors import applied, building, locate
from optreg.spec.locations import RuleLocation
from optreg.spec.variable_slots import SlotPlan, SlotPlanner, fact_values

_FLOAT_WIDTH = {tf.float16: 16, tf.bfloat16: 16, tf.float32: 32, tf.float64: 64}

_BINARY: Mapping[str, Callable] = {
    "+": tf.add,
    "-": tf.subtract,
    "*": tf.multiply,
    "/": tf.divide,
    "%": tf.math.floormod,
    "**": tf.pow,
}
_COMPARE: Mapping[str, Callable] = {
    "<": tf.less,
    "<=": tf.less_equal,
    ">": tf.greater,
    ">=": tf.greater_equal,
    "==": tf.equal,
    "!=": tf.not_equal,
}


def _where(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """where(cond, a, b) with a numeric condition meaning 'non-zero'."""
    return tf.where(_as_bool(cond), a, b)


def _as_bool(value: tf.Tensor) -> tf.Tensor:
    """A boolean tensor from a comparison or a number (non-zero is true)."""
    if value.dtype == tf.bool:
        return value
    return tf.not_equal(value, tf.zeros([], value.dtype))


def _transpose(x: tf.Tensor) -> tf.Tensor:
    """The last two axes swapped; tensors of rank < 2 unchanged."""
    rank = x.shape.rank
    if rank < 2:
        return x
    return tf.transpose(x, [*range(rank - 2), rank - 1, rank - 2])


def _over(reduce: Callable, axis: int) -> Callable:
    """A reduction over one axis, kept as a size-1 axis."""
    return lambda x: reduce(x, axis=axis, keepdims=True)


def _per_channel(reduce: Callable) -> Callable:
    """A reduction over every axis but the last, each kept as a size-1 axis: one number per
    output channel of a kernel (a vector or a scalar is returned unreduced)."""

    def reduced(x: tf.Tensor) -> tf.Tensor:
        return reduce(x, axis=list(range(x.shape.rank - 1)), keepdims=True) if x.shape.rank >= 2 else x

    return reduced


def _norm(x: tf.Tensor, axis: int | list[int] | None = None, keepdims: bool = False) -> tf.Tensor:
    """The L2 norm over some axes (every axis when None)."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims))


def _channel_norm(x: tf.Tensor) -> tf.Tensor:
    """The L2 norm per output channel; for a vector or scalar, its absolute value."""
    return _per_channel(_norm)(x) if x.shape.rank >= 2 else tf.abs(x)


def _shape_facts(x: tf.Tensor) -> dict[str, int]:
    """rank, size, rows and cols of a tensor whose shape is known when the rule is traced."""
    dims = x.shape.as_list()
    if None in dims:
        raise ValueError(f"shape facts need a static shape, got {dims}")
    return fact_values(dims)


#: The TensorFlow implementation of every function of :data:`optreg.lang.functions.FUNCTIONS` whose kind
#: TensorFlow computes (:data:`optreg.lang.functions.TENSORFLOW_COMPUTED`): one each, keyed by name. The
#: facts (shape, variable, creation) are answered without TensorFlow: from static shapes, from the
#: variable's name, and when the optimizer is created.
TF_FUNCTIONS: Mapping[str, Callable] = {
    "sqrt": tf.sqrt,
    "rsqrt": tf.math.rsqrt,
    "square": tf.square,
    "abs": tf.abs,
    "sign": tf.sign,
    "exp": tf.exp,
    "log": tf.math.log,
    "tanh": tf.tanh,
    "maximum": tf.maximum,
    "minimum": tf.minimum,
    "clip": lambda x, lo, hi: tf.minimum(tf.maximum(x, lo), hi),
    "where": _where,
    "given": lambda x: tf.cast(tf.logical_not(tf.math.is_nan(x)), x.dtype),
    "sum": tf.reduce_sum,
    "mean": tf.reduce_mean,
    "norm": _norm,
    "max_abs": lambda x: tf.reduce_max(tf.abs(x)),
    "row_mean": _over(tf.reduce_mean, -1),
    "col_mean": _over(tf.reduce_mean, -2),
    "row_max": _over(tf.reduce_max, -1),
    "col_max": _over(tf.reduce_max, -2),
    "channel_sum": _per_channel(tf.reduce_sum),
    "channel_mean": _per_channel(tf.reduce_mean),
    "channel_norm": _channel_norm,
    "channel_max": _per_channel(tf.reduce_max),
    "matmul": tf.linalg.matmul,
    "transpose": _transpose,
    "eye_like": linalg.eye_like,
    "inverse_root": linalg.inverse_root,
    "eigvecs": linalg.eigvecs,
}
if set(TF_FUNCTIONS) != functions.TENSORFLOW_COMPUTED:  # pragma: no cover - a table edited on one side only
    raise ImportError(
        f"TF_FUNCTIONS and the function table disagree on {sorted(set(TF_FUNCTIONS) ^ functions.TENSORFLOW_COMPUTED)}"
    )


@attrs.frozen
class _Hoisted:
    """A reference to the k-th result of the step program."""

    index: int


class CompiledRule:
    """A checked rule, split into its step program and its variable program.

    Args:
        rule: the checked rule from the spec.
        hyperparameters: the spec's hyperparameter names.
        slots: the present slots' names, or name → shape kind (``"var"`` unless a mapping
            says otherwise).
        locations: where the spec's rule lines are (:func:`optreg.spec.locations.rule_locations`), for
            the errors raised when a line cannot be built; without them errors name the line's
            position in ``rule``.

    Example:
        >>> from optreg.spec.reader import load_spec_text
        >>> spec = load_spec_text(open("specs/adam.toml").read())  # doctest: +SKIP
        >>> rule = CompiledRule(spec.rule, ["learning_rate", ...], ["m", "v"])  # doctest: +SKIP
        >>> scalars = rule.step_scalars(hyper_values, step)  # doctest: +SKIP
        >>> new = rule.update(grad, var, {"m": m, "v": v}, scalars)  # doctest: +SKIP
    """

    def __init__(
        self,
        rule: CheckedRule,
        hyperparameters: Sequence[str],
        slots: Sequence[str] | Mapping[str, str],
        locations: Sequence[RuleLocation] = (),
    ):
        self._scalar_names = frozenset(hyperparameters) | functions.SCALAR_BUILTINS | rule.scalar_locals
        self._slots = frozenset(slots)
        #: The slots shaped like the variable (the others keep their own shape).
        self._var_shaped = frozenset(
            slots if not isinstance(slots, Mapping) else (n for n, k in slots.items() if k == "var")
        )
        #: The rule's lines, as checked and specialised.
        self.assignments = rule.assignments
        lines = tuple(zip(rule.assignments, locate(rule.assignments, locations)))
        self._step_locals = tuple((a, where) for a, where in lines if a.target in rule.scalar_locals)
        self._hoisted: list[tree.Node] = []
        self._hoisted_index: dict[tree.Node, int] = {}
        #: Where each hoisted sub-expression comes from: the first line it was hoisted from.
        self._hoisted_locations: list[RuleLocation] = []
        self._variable_lines = tuple(
            (index, a.target, self._hoist(a.expression, where), where)
            for index, (a, where) in enumerate(lines)
            if a.target not in rule.scalar_locals
        )
        self._planner = SlotPlanner(rule, slots if isinstance(slots, Mapping) else dict.fromkeys(slots, "var"))
        self._uses = frozenset().union(*(tree.functions_in(a.expression) for a in rule.assignments))
        self._reads = frozenset().union(*(tree.names_in(a.expression) for a in rule.assignments))

    @property
    def draws(self) -> bool:
        """True when the rule draws random numbers (``normal_like``, ``rademacher_like``): the
        step program then ends with the step's noise key (:func:`optreg.runtime.noise.noise_key`),
        and :meth:`update` needs the variable's index."""
        return bool(self._uses & functions.RANDOM)

    @property
    def applies_weight_decay(self) -> bool:
        """True when the rule reads ``weight_decay``: it decays the variable itself, so the
        optimizer must not decay it before the update as well."""
        return "weight_decay" in self._reads

    @property
    def variable_facts(self) -> frozenset[str]:
        """The variable facts (``excluded``, ``decayed``) the rule calls; the optimizer computes
        them per variable and passes them to :meth:`update`."""
        return self._uses & functions.VARIABLE_FACTS

    @property
    def elementwise(self) -> bool:
        """True when every element of the result depends only on the same element of the inputs:
        no reduction, shape fact or matrix operation. Such a rule may run on several variables
        stacked along a leading axis and give each the same result as on its own."""
        return not (self._uses & functions.NOT_ELEMENTWISE)

    @property
    def runs_without_xla(self) -> bool:
        """True when the rule calls a function built on an eigendecomposition
        (:data:`optreg.lang.functions.NOT_XLA`): XLA's is far less accurate than the one
        TensorFlow runs op by op, so such a rule's step is never compiled with XLA."""
        return bool(self._uses & functions.NOT_XLA)

    def slot_plan(self, shape: Sequence[int | None] | None, excluded: bool | None = None) -> SlotPlan:
        """Which slots a variable of this shape keeps and which lines its step builds (see
        :mod:`optreg.spec.variable_slots`).

        Args:
            shape: the variable's static shape (None: not known).
            excluded: ``excluded(var)`` for the variable, or None when the rule does not call it.

        Example:
            >>> sorted(adafactor_rule.slot_plan((4, 3)).slots)  # doctest: +SKIP
            ['c', 'r']
        """
        return self._planner.plan(shape, excluded)

    @property
    def step_expressions(self) -> tuple[tree.Node, ...]:
        """The sub-expressions computed once per step (for inspection and tests)."""
        return tuple(self._hoisted)

    def _hoist(self, node: tree.Node, location: RuleLocation):
        """Replace every maximal scalar sub-expression by a reference into the step program."""
        # a draw is per variable: it is never moved into the step program
        if tree.names_in(node) <= self._scalar_names and not tree.functions_in(node) & functions.RANDOM:
            if node not in self._hoisted_index:
                self._hoisted_index[node] = len(self._hoisted)
                self._hoisted.append(node)
                self._hoisted_locations.append(location)
            return _Hoisted(self._hoisted_index[node])
        return tree.map_children(node, lambda child: self._hoist(child, location))

    def step_scalars(
        self, hyperparameters: Mapping[str, tf.Tensor], step: tf.Tensor, weight_decay: float | None = None
    ) -> list[tf.Tensor]:
        """Run the step program.

        Args:
            hyperparameters: name → float64 scalar tensor.
            step: the 1-based step number as a float64 scalar tensor.
            weight_decay: the optimizer's ``weight_decay`` option (None reads as 0).

        Returns:
            One float64 (or bool) scalar per hoisted sub-expression; when the rule
            :attr:`draws`, then the step's int64 noise key, read from the ``seed`` hyperparameter.
        """
        env = dict(hyperparameters)
        env["step"] = step
        env["weight_decay"] = tf.constant(float(weight_decay or 0.0), tf.float64)
        trace = _Trace(env, _float64_constant)
        for assignment, location in self._step_locals:
            with building(location):
                env[assignment.target] = _evaluate(assignment.expression, trace)
        values = [self._step_value(k, trace) for k in range(len(self._hoisted))]
        if self.draws:
            values.append(noise_key(env[functions.SEED], step))
        return values

    def _step_value(self, index: int, trace: _Trace) -> tf.Tensor:
        """The k-th hoisted sub-expression's value, built as part of its line."""
        with building(self._hoisted_locations[index]):
            return _evaluate(self._hoisted[index], trace)

    def update(
        self,
        grad: tf.Tensor,
        var: tf.Tensor,
        slots: Mapping[str, tf.Tensor],
        scalars: Sequence[tf.Tensor],
        facts: Mapping[str, bool] | None = None,
        plan: SlotPlan | None = None,
        index: int | tf.Tensor = 0,
    ) -> dict[str, tf.Tensor]:
        """Run the variable program for one variable.

        Args:
            grad: the (already hooked) gradient.
            var: the variable's current value.
            slots: slot name → the slot's current value.
            scalars: the step program's results.
            facts: the variable facts the rule calls (see :attr:`variable_facts`), by name;
                missing ones read as not excluded and decayed.
            plan: the variable's :meth:`slot_plan`: only its lines are built, and ``slots``
                holds only its slots; None builds every line.
            index: the variable's index among the optimizer's variables, which keys its random
                numbers when the rule :attr:`draws`.

        Returns:
            target → new value for ``var`` and each assigned slot, in the compute dtype
            (the widest of the variable's and the slots' dtypes), shaped like the variable.
        """
        dtype = compute_dtype(var.dtype, [value.dtype for value in slots.values()])
        noise = None
        if self.draws:
            *scalars, key = scalars
            noise = _Noise(key, index)
        cast_scalars = [s if s.dtype == tf.bool else tf.cast(s, dtype) for s in scalars]
        env = {name: tf.cast(value, dtype) for name, value in slots.items()}
        env["grad"] = tf.cast(grad, dtype)
        env["var"] = tf.cast(var, dtype)
        trace = _Trace(env, _constant_in(dtype), cast_scalars, self._hoisted, dict(facts or {}), noise=noise)
        like = env["var"]  # the shape every var-shaped result takes
        assigned: dict[str, tf.Tensor] = {}
        for index, target, node, location in self._variable_lines:
            if plan is not None and index not in plan.lines:
                continue
            with building(location, variable=var):
                assigned.update(self._run_line(target, node, trace, like, slots))
        return assigned

    def _run_line(
        self, target: str, node: tree.Node | _Hoisted, trace: _Trace, like: tf.Tensor, slots: Mapping[str, tf.Tensor]
    ) -> dict:
        """Build one line of the variable program: a local (remembered when known when traced),
        or the new value of ``var`` or a slot, shaped as it must be (returned as ``{target: value}``)."""
        value = _evaluate(node, trace)
        trace.env[target] = value
        if target != "var" and target not in self._slots:  # a local later lines may branch on
            decided = _static(node, trace)
            if decided is not None:
                trace.known[target] = decided
        if target == "var" or target in self._var_shaped:
            return {target: _broadcast_like(value, like)}
        if target in self._slots:
            if not slots[target].shape.is_compatible_with(value.shape):
                shapes = slots[target].shape.as_list(), value.shape.as_list()
                raise ValueError(f"slot {target!r} has shape {shapes[0]}, but the value assigned has shape {shapes[1]}")
            return {target: value}
        return {}


def compute_dtype(var_dtype: tf.DType, slot_dtypes: Sequence[tf.DType]) -> tf.DType:
    """The dtype a variable's update is computed in: the widest of it and its slots.

    Example:
        >>> compute_dtype(tf.bfloat16, [tf.float32])
        tf.float32
    """
    dtypes = [var_dtype, *slot_dtypes]
    return max(dtypes, key=lambda d: _FLOAT_WIDTH.get(d, 0))


def _float64_constant(value: float) -> tf.Tensor:
    """A float64 literal for the step program."""
    return tf.constant(value, tf.float64)


def _constant_in(dtype: tf.DType) -> Callable[[float], tf.Tensor]:
    """A literal maker for the variable program's dtype."""
    return lambda value: tf.constant(value, dtype)


def _broadcast_like(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Give a result the variable's shape (a scalar, or one value per stacked run, broadcasts)."""
    if value.shape != like.shape:
        return tf.broadcast_to(value, tf.shape(like))
    return value


@attrs.define
class _Noise:
    """What a variable's draws are keyed by: the step's key, the variable's index, and how many
    random calls have been built so far."""

    key: tf.Tensor
    index: int | tf.Tensor
    calls: int = 0


@attrs.define
class _Trace:
    """What evaluating a rule's tree needs: the values of names, a literal maker, the step
    program's results (and their expressions), the variable facts, and the locals whose value
    was known when traced."""

    env: dict
    constant: Callable
    scalars: Sequence[tf.Tensor] = ()
    hoisted: Sequence = ()
    facts: Mapping[str, bool] = attrs.field(factory=dict)
    known: dict = attrs.field(factory=dict)
    #: Inside a repeat's body: each sub-expression's tensor, built once per pass.
    memo: dict | None = None
    #: The key of the variable's random numbers (None in the step program).
    noise: _Noise | None = None


def _evaluate(node: tree.Node | _Hoisted, trace: _Trace) -> tf.Tensor:
    """Evaluate a tree to a tensor, node by node, with fixed TensorFlow functions.

    A ``where`` whose condition is known when traced (from literals, shape and variable facts,
    and locals computed from them) builds only the branch it takes; ``trace.hoisted`` holds
    the step program's expressions, so literals moved there still count as known.
    """
    if isinstance(node, tree.Call) and node.function == "where":
        decided = _static(node.args[0], trace)
        if decided is not None:
            return _evaluate(node.args[1] if decided else node.args[2], trace)
    if isinstance(node, tree.Call) and node.function in functions.ITERATIONS:
        return _repeat(node, trace)
    if isinstance(node, tree.Call) and node.function in functions.TRACE_FACTS:
        fact = _static(node, trace)
        assert fact is not None  # a trace fact is always known when traced
        return trace.constant(float(fact))
    if isinstance(node, _Hoisted):
        return trace.scalars[node.index]
    if isinstance(node, tree.Const):
        return trace.constant(node.value)
    if isinstance(node, tree.Ref):
        return trace.env[node.name]
    if isinstance(node, tree.Unary):
        operand = _evaluate(node.operand, trace)
        return tf.negative(operand) if node.op == "-" else operand
    assert isinstance(node, (tree.Binary, tree.Compare, tree.Call))
    if trace.memo is not None and isinstance(node, (tree.Binary, tree.Call)):
        if node not in trace.memo:
            trace.memo[node] = _build(node, trace)
        return trace.memo[node]
    return _build(node, trace)


def _build(node: tree.Binary | tree.Compare | tree.Call, trace: _Trace) -> tf.Tensor:
    """An operator or function node's tensor, from its operands' (see :func:`_evaluate`)."""
    if isinstance(node, tree.Binary):
        return applied(node, _BINARY[node.op], _evaluate(node.left, trace), _evaluate(node.right, trace))
    if isinstance(node, tree.Compare):
        return applied(node, _COMPARE[node.op], _evaluate(node.left, trace), _evaluate(node.right, trace))
    args = [_evaluate(arg, trace) for arg in node.args]
    if node.function in functions.RANDOM:
        return applied(node, _next_draw(node.function, trace), *args)
    return applied(node, TF_FUNCTIONS[node.function], *args)


def _next_draw(function: str, trace: _Trace) -> Callable[[tf.Tensor], tf.Tensor]:
    """The next random call's draw, shaped like its argument: each call built (every pass of a
    ``repeat`` too) takes the next place in the variable's key."""
    noise = trace.noise
    assert noise is not None  # draws are never hoisted into the step program
    call, noise.calls = noise.calls, noise.calls + 1
    return lambda like: draw(function, like, noise.key, noise.index, call)


def _repeat(node: tree.Call, trace: _Trace) -> tf.Tensor:
    """``repeat(count, start, body)`` unrolled: the body built ``count`` times, each reading the
    previous value as :data:`optreg.lang.functions.REPEATED`. The count is known when traced (a
    literal, or a fixed hyperparameter folded in when the optimizer was created)."""
    count = _static(node.args[0], trace)
    if count is None or not float(count).is_integer() or not 0 <= count <= functions.MAX_REPEAT:
        raise ValueError(f"repeat's count must be a whole number from 0 to {functions.MAX_REPEAT} known when traced")
    value = _evaluate(node.args[1], trace)
    outer = trace.env.get(functions.REPEATED)
    for _ in range(int(count)):
        trace.env[functions.REPEATED] = value
        trace.memo = {}  # a sub-expression written twice in the body is built once per pass
        value = _evaluate(node.args[2], trace)
    trace.memo = None
    if outer is None:
        trace.env.pop(functions.REPEATED, None)
    else:
        trace.env[functions.REPEATED] = outer
    return value


def _static(node: tree.Node | _Hoisted, trace: _Trace) -> float | bool | None:
    """The value of an expression of literals, facts and known locals when traced, or None."""
    if isinstance(node, _Hoisted):
        return fold.static_value(trace.hoisted[node.index]) if trace.hoisted else None
    if isinstance(node, tree.Call) and node.function in functions.VARIABLE_FACTS:
        return bool(trace.facts.get(node.function, node.function == "decayed"))
    if isinstance(node, tree.Call) and node.function in functions.SHAPE_FACTS:
        return _shape_facts(_evaluate(node.args[0], trace))[node.function]
    if isinstance(node, tree.Ref):
        return trace.known.get(node.name)
    if isinstance(node, tree.Const):
        return node.value
    if isinstance(node, tree.Call) and node.function == "where":
        decided = _static(node.args[0], trace)
        return None if decided is None else _static(node.args[1] if decided else node.args[2], trace)
    if not isinstance(node, (tree.Unary, tree.Binary, tree.Compare)):
        return None
    values = [_static(part, trace) for part in tree.children(node)]
    known = [value for value in values if value is not None]
    if len(known) < len(values):
        return None
    return fold.static_value(_rebuild_with_constants(node, known))


def _rebuild_with_constants(node: tree.Unary | tree.Binary | tree.Compare, values: Sequence[float | bool]) -> tree.Node:
    """The node with its operands replaced by literals, for :func:`optreg.lang.fold.static_value`."""
    constants = [tree.Const(float(value)) for value in values]
    if isinstance(node, tree.Unary):
        return attrs.evolve(node, operand=constants[0])
    return attrs.evolve(node, left=constants[0], right=constants[1])
