"""Compile a checked update rule to TensorFlow ops.

The rule is split in two programs once, when the optimizer is built:

* the **step program** holds every sub-expression that depends only on hyperparameters and
  ``step`` (bias corrections such as ``1 - beta_1 ** step``, scalar locals such as Adam's
  ``alpha``). It runs once per step, in float64, shared by every variable;
* the **variable program** holds the rest. It runs once per variable, in the variable's
  compute dtype, reading the step program's results cast to that dtype.

Nothing here evaluates user text: the tree was built from a whitelisted parse, and each node
maps to one fixed TensorFlow function.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import attrs
import tensorflow as tf

from optreg import expr

_FLOAT_WIDTH = {tf.float16: 16, tf.bfloat16: 16, tf.float32: 32, tf.float64: 64}

_BINARY: Mapping[str, Callable] = {
    "+": tf.add,
    "-": tf.subtract,
    "*": tf.multiply,
    "/": tf.divide,
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


def _where(cond, a, b):
    """where(cond, a, b) with a numeric condition meaning 'non-zero'."""
    return tf.where(_as_bool(cond), a, b)


def _as_bool(value):
    """A boolean tensor from a comparison or a number (non-zero is true)."""
    if value.dtype == tf.bool:
        return value
    return tf.not_equal(value, tf.zeros([], value.dtype))


#: The TensorFlow implementation of every entry of :data:`optreg.expr.FUNCTIONS`.
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
}
assert set(TF_FUNCTIONS) == set(expr.FUNCTIONS), "every function of the table needs a TF implementation"


@attrs.frozen
class _Hoisted:
    """A reference to the k-th result of the step program."""

    index: int


class CompiledRule:
    """A checked rule, split into its step program and its variable program.

    Args:
        rule: the checked rule from the spec.
        hyperparameters: the spec's hyperparameter names.
        slots: the spec's slot names.

    Example:
        >>> from optreg.spec import load_spec_text
        >>> spec = load_spec_text(open("specs/adam.toml").read())  # doctest: +SKIP
        >>> rule = CompiledRule(spec.rule, ["learning_rate", ...], ["m", "v"])  # doctest: +SKIP
        >>> scalars = rule.step_scalars(hyper_values, step)  # doctest: +SKIP
        >>> new = rule.update(grad, var, {"m": m, "v": v}, scalars)  # doctest: +SKIP
    """

    def __init__(self, rule: expr.CheckedRule, hyperparameters: Sequence[str], slots: Sequence[str]):
        self._scalar_names = frozenset(hyperparameters) | {"step"} | rule.scalar_locals
        self._slots = frozenset(slots)
        self._step_locals = tuple(a for a in rule.assignments if a.target in rule.scalar_locals)
        self._hoisted: list[expr.Node] = []
        self._hoisted_index: dict[expr.Node, int] = {}
        self._variable_lines = tuple(
            (a.target, self._hoist(a.expression)) for a in rule.assignments if a.target not in rule.scalar_locals
        )

    @property
    def step_expressions(self) -> tuple[expr.Node, ...]:
        """The sub-expressions computed once per step (for inspection and tests)."""
        return tuple(self._hoisted)

    def _hoist(self, node: expr.Node):
        """Replace every maximal scalar sub-expression by a reference into the step program."""
        if expr.names_in(node) <= self._scalar_names:
            if node not in self._hoisted_index:
                self._hoisted_index[node] = len(self._hoisted)
                self._hoisted.append(node)
            return _Hoisted(self._hoisted_index[node])
        if isinstance(node, expr.Unary):
            return attrs.evolve(node, operand=self._hoist(node.operand))
        if isinstance(node, (expr.Binary, expr.Compare)):
            return attrs.evolve(node, left=self._hoist(node.left), right=self._hoist(node.right))
        if isinstance(node, expr.Call):
            return attrs.evolve(node, args=tuple(self._hoist(arg) for arg in node.args))
        return node

    def step_scalars(self, hyperparameters: Mapping[str, tf.Tensor], step: tf.Tensor) -> list[tf.Tensor]:
        """Run the step program.

        Args:
            hyperparameters: name → float64 scalar tensor.
            step: the 1-based step number as a float64 scalar tensor.

        Returns:
            One float64 (or bool) scalar per hoisted sub-expression.
        """
        env = dict(hyperparameters)
        env["step"] = step
        for assignment in self._step_locals:
            env[assignment.target] = _evaluate(assignment.expression, env, _float64_constant)
        return [_evaluate(node, env, _float64_constant) for node in self._hoisted]

    def update(
        self,
        grad: tf.Tensor,
        var: tf.Tensor,
        slots: Mapping[str, tf.Tensor],
        scalars: Sequence[tf.Tensor],
    ) -> dict[str, tf.Tensor]:
        """Run the variable program for one variable.

        Args:
            grad: the (already hooked) gradient.
            var: the variable's current value.
            slots: slot name → the slot's current value.
            scalars: the step program's results.

        Returns:
            target → new value for ``var`` and each assigned slot, in the compute dtype
            (the widest of the variable's and the slots' dtypes), shaped like the variable.
        """
        dtype = compute_dtype(var.dtype, [value.dtype for value in slots.values()])
        cast_scalars = [s if s.dtype == tf.bool else tf.cast(s, dtype) for s in scalars]
        env = {name: tf.cast(value, dtype) for name, value in slots.items()}
        env["grad"] = tf.cast(grad, dtype)
        env["var"] = tf.cast(var, dtype)
        constant = _constant_in(dtype)
        shape_of = env["var"]
        assigned: dict[str, tf.Tensor] = {}
        for target, node in self._variable_lines:
            value = _evaluate(node, env, constant, cast_scalars)
            env[target] = value
            if target == "var" or target in self._slots:
                assigned[target] = _broadcast_like(value, shape_of)
        return assigned


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


def _evaluate(node, env: Mapping[str, tf.Tensor], constant: Callable, scalars: Sequence[tf.Tensor] = ()):
    """Evaluate a tree to a tensor, node by node, with fixed TensorFlow functions."""
    if isinstance(node, _Hoisted):
        return scalars[node.index]
    if isinstance(node, expr.Const):
        return constant(node.value)
    if isinstance(node, expr.Ref):
        return env[node.name]
    if isinstance(node, expr.Unary):
        operand = _evaluate(node.operand, env, constant, scalars)
        return tf.negative(operand) if node.op == "-" else operand
    if isinstance(node, expr.Binary):
        left = _evaluate(node.left, env, constant, scalars)
        right = _evaluate(node.right, env, constant, scalars)
        return _BINARY[node.op](left, right)
    if isinstance(node, expr.Compare):
        left = _evaluate(node.left, env, constant, scalars)
        right = _evaluate(node.right, env, constant, scalars)
        return _COMPARE[node.op](left, right)
    args = [_evaluate(arg, env, constant, scalars) for arg in node.args]
    return TF_FUNCTIONS[node.function](*args)
