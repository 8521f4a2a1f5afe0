"""Compile a checked update rule to TensorFlow ops.

The rule is split in two programs once, when the optimizer is built:

* the **step program** holds every sub-expression that depends only on hyperparameters and
  ``step`` (bias corrections such as ``1 - beta_1 ** step``, scalar locals such as Adam's
  ``alpha``). It runs once per step, in float64, shared by every variable;
* the **variable program** holds the rest. It runs once per variable, in the variable's
  compute dtype, reading the step program's results cast to that dtype.

Nothing here evaluates user text: the tree was built from a whitelisted parse, and each node
maps to one fixed TensorFlow function (:mod:`optreg.runtime.tf_functions`), evaluated by
:mod:`optreg.runtime.rule_eval`. Each rule line is built inside
:func:`optreg.runtime.rule_errors.building`, so what TensorFlow raises while building it (a shape that
does not fit this variable) is a :class:`~optreg.errors.RuleError` naming the spec's line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import tensorflow as tf

from optreg.lang import functions, tree
from optreg.lang.check import CheckedRule
from optreg.lang.sparsity import SparseSupport
from optreg.runtime.noise import noise_key
from optreg.runtime.rule_errors import building, locate
from optreg.runtime.rule_eval import Hoisted, Noise, Trace, evaluate, static
from optreg.runtime.rule_rows import Rows, Split, TouchedRows, evaluate_rows, materialised
from optreg.runtime.step_scalars import StepScalars
from optreg.spec.locations import RuleLocation
from optreg.spec.touched_rows import rule_sparse_support, touched_rows_blocker
from optreg.spec.variable_slots import SlotPlan, SlotPlanner

__all__ = ["CompiledRule", "compute_dtype"]

_FLOAT_WIDTH = {tf.float16: 16, tf.bfloat16: 16, tf.float32: 32, tf.float64: 64}


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
        self._rule = rule
        self._kinds = dict(slots) if isinstance(slots, Mapping) else dict.fromkeys(slots, "var")
        self._planner = SlotPlanner(rule, self._kinds)
        self._touched: dict[tuple[tuple[int, ...], bool | None], bool] = {}
        self._uses = frozenset().union(*(tree.functions_in(a.expression) for a in rule.assignments))
        self._reads = frozenset().union(*(tree.names_in(a.expression) for a in rule.assignments))

    @property
    def draws(self) -> bool:
        """True when the rule draws random numbers (``normal_like``, ``rademacher_like``): the
        step program then ends with the step's noise key (:func:`optreg.runtime.noise.noise_key`),
        and :meth:`update` needs the variable's index."""
        return bool(self._uses & functions.RANDOM)

    @property
    def runs_without_xla(self) -> bool:
        """True when the rule calls a function built on an eigendecomposition
        (:data:`optreg.lang.functions.NOT_XLA`): XLA's is far less accurate than the one
        TensorFlow runs op by op, so such a rule's step is never compiled with XLA."""
        return bool(self._uses & functions.NOT_XLA)

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
        stacked along one axis and give each the same result as on its own."""
        return not (self._uses & functions.NOT_ELEMENTWISE)

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

    @functools.cached_property
    def sparse_support(self) -> SparseSupport:
        """What the rule can do with a sparse gradient: exact, on touched rows, lazy only or dense
        (:func:`optreg.spec.touched_rows.rule_sparse_support`)."""
        return rule_sparse_support(self._rule, self._kinds)

    def runs_on_touched_rows(self, shape: Sequence[int | None] | None, excluded: bool | None = None) -> bool:
        """Whether a variable of this shape may be updated on a sparse gradient's touched rows by
        :meth:`update_touched_rows` (:mod:`optreg.spec.touched_rows`; remembered per shape).

        Example:
            >>> adafactor_rule.runs_on_touched_rows((50_000, 64))  # doctest: +SKIP
            True
        """
        if shape is None or any(d is None for d in shape):
            return False
        key = (tuple(int(d) for d in shape), excluded)  # type: ignore[arg-type]
        if key not in self._touched:
            self._touched[key] = not touched_rows_blocker(self._rule, self._kinds, key[0], excluded)
        return self._touched[key]

    @property
    def step_expressions(self) -> tuple[tree.Node, ...]:
        """The sub-expressions computed once per step (for inspection and tests)."""
        return tuple(self._hoisted)

    def _hoist(self, node: tree.Node, location: RuleLocation) -> tree.Node | Hoisted:
        """Replace every maximal scalar sub-expression by a reference into the step program."""
        # a draw is per variable: it is never moved into the step program
        if tree.names_in(node) <= self._scalar_names and not tree.functions_in(node) & functions.RANDOM:
            if node not in self._hoisted_index:
                self._hoisted_index[node] = len(self._hoisted)
                self._hoisted.append(node)
                self._hoisted_locations.append(location)
            return Hoisted(self._hoisted_index[node])
        # a Hoisted leaf stands where a node stood: evaluate and static read it in either place
        return tree.map_children(node, lambda child: cast(tree.Node, self._hoist(child, location)))

    def step_scalars(
        self, hyperparameters: Mapping[str, tf.Tensor], step: tf.Tensor, weight_decay: float | None = None
    ) -> StepScalars:
        """Run the step program.

        Args:
            hyperparameters: name → float64 scalar tensor.
            step: the 1-based step number as a float64 scalar tensor.
            weight_decay: the optimizer's ``weight_decay`` option (None reads as 0).

        Returns:
            One float64 (or bool) scalar per hoisted sub-expression; when the rule
            :attr:`draws`, then the step's int64 noise key, read from the ``seed`` hyperparameter.
            Their casts to a compute dtype are made once for the step's variables (see
            :class:`~optreg.runtime.step_scalars.StepScalars`).
        """
        env = dict(hyperparameters)
        env["step"] = step
        env["weight_decay"] = tf.constant(float(weight_decay or 0.0), tf.float64)
        trace = Trace(env, _float64_constant)
        for assignment, location in self._step_locals:
            with building(location):
                env[assignment.target] = evaluate(assignment.expression, trace)
        values = [self._step_value(k, trace) for k in range(len(self._hoisted))]
        if self.draws:
            values.append(noise_key(env[functions.SEED], step))
        return StepScalars(values, self.draws)

    def _step_value(self, index: int, trace: Trace) -> tf.Tensor:
        """The k-th hoisted sub-expression's value, built as part of its line."""
        with building(self._hoisted_locations[index]):
            return evaluate(self._hoisted[index], trace)

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
            scalars: the step program's results (:meth:`step_scalars`).
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
        prepared = StepScalars.of(scalars, self.draws)
        noise = Noise(prepared.noise_key, index) if self.draws else None
        cast = prepared.cast(dtype)
        env = {name: tf.cast(value, dtype) for name, value in slots.items()}
        env["grad"] = tf.cast(grad, dtype)
        env["var"] = tf.cast(var, dtype)
        trace = Trace(env, _constant_in(dtype), cast, self._hoisted, dict(facts or {}), noise=noise)
        like = env["var"]  # the shape every var-shaped result takes
        assigned: dict[str, tf.Tensor] = {}
        for index, target, node, location in self._variable_lines:
            if plan is not None and index not in plan.lines:
                continue
            with building(location, variable=var):
                assigned.update(self._run_line(target, node, trace, like, slots))
        return assigned

    def update_touched_rows(
        self,
        grad: tf.IndexedSlices,
        var: tf.Tensor,
        slots: Mapping[str, tf.Tensor],
        scalars: Sequence[tf.Tensor],
        facts: Mapping[str, bool] | None = None,
        plan: SlotPlan | None = None,
    ) -> dict[str, tf.Tensor | Rows]:
        """Run the variable program on a sparse gradient's touched rows (the variable must be one
        :meth:`runs_on_touched_rows` admits; see :mod:`optreg.runtime.rule_rows`).

        Args:
            grad: the hooked gradient, each row once (:func:`optreg.runtime.sparse.summed_rows`).
            var, slots, scalars, facts, plan: as for :meth:`update`.

        Returns:
            target → :class:`~optreg.runtime.rule_rows.Rows` (the new values of the gradient's
            rows; the others keep theirs) for ``var`` and the slots shaped like it that only their
            touched rows change, or the whole new value, in the compute dtype.
        """
        dtype = compute_dtype(var.dtype, [value.dtype for value in slots.values()])
        shape = tuple(var.shape.as_list())
        touched, grad_rows = TouchedRows.of(grad, shape[0])
        env: dict[str, tf.Tensor | Split] = {name: tf.cast(value, dtype) for name, value in slots.items()}
        env["var"] = tf.cast(var, dtype)
        env["grad"] = Split(tf.cast(grad_rows, dtype), None, shape)
        cast = StepScalars.of(scalars, self.draws).cast(dtype)
        trace = Trace(env, _constant_in(dtype), cast, self._hoisted, dict(facts or {}), shapes={"grad": shape})
        like = env["var"]
        assigned: dict[str, tf.Tensor | Rows] = {}
        for index, target, node, location in self._variable_lines:
            if plan is not None and index not in plan.lines:
                continue
            with building(location, variable=var):
                assigned.update(self._run_touched_line(target, node, trace, touched, like, slots))
        return assigned

    def _run_touched_line(
        self, target: str, node: tree.Node | Hoisted, trace: Trace, touched: TouchedRows, like: tf.Tensor,
        slots: Mapping[str, tf.Tensor],
    ) -> dict[str, tf.Tensor | Rows]:
        """One line of :meth:`update_touched_rows`: a local kept as it comes (touched rows or a
        tensor), a target whose untouched rows keep their value as its new rows, any other whole."""
        current = trace.env.get(target)
        value = evaluate_rows(node, trace, touched)
        if target != "var" and target not in self._slots:
            trace.env[target] = value
            if isinstance(value, Split):
                trace.shapes[target] = value.shape
            decided = static(node, trace)
            if decided is not None:
                trace.known[target] = decided
            return {}
        unchanged = current.rest if isinstance(current, Split) else current
        if isinstance(value, Split) and target in self._var_shaped | {"var"} and value.rest is unchanged:
            trace.env[target], trace.shapes[target] = value, value.shape
            rows = tf.broadcast_to(value.rows, tf.concat([tf.shape(value.rows)[:1], tf.shape(like)[1:]], 0))
            return {target: Rows(rows)}
        trace.shapes.pop(target, None)
        return self._run_line_value(target, materialised(value, touched), trace, like, slots)

    def _run_line(
        self, target: str, node: tree.Node | Hoisted, trace: Trace, like: tf.Tensor, slots: Mapping[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        """Build one line of the variable program: a local (remembered when known when traced),
        or the new value of ``var`` or a slot, shaped as it must be (returned as ``{target: value}``)."""
        value = evaluate(node, trace)
        if target != "var" and target not in self._slots:  # a local later lines may branch on
            decided = static(node, trace)
            if decided is not None:
                trace.known[target] = decided
        return self._run_line_value(target, value, trace, like, slots)

    def _run_line_value(
        self, target: str, value: tf.Tensor, trace: Trace, like: tf.Tensor, slots: Mapping[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        """A line's value remembered, and for ``var`` or a slot returned shaped as it must be."""
        trace.env[target] = value
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
