"""Which variables a rule with reductions can update on a sparse gradient's touched rows alone.

A rule that reduces over the variable (Adafactor's ``mean(square(var))``, its row and column
statistics) is not row-local (:mod:`optreg.lang.sparsity`), so it cannot run on the gathered
rows alone. Yet on an embedding table it often changes only the touched rows of ``var``: its
untouched rows' update is a multiple of their zero gradient, and what it keeps per row or per
column (``r``, ``c``) is a small slot. Such a rule runs **on touched rows**: every value is kept
as its touched rows plus one value for all the untouched ones (usually zero), reductions combine
the two parts, ``var`` and the slots shaped like it are written on their touched rows only, and
the smaller slots whole. The result is the dense update's up to rounding (sums are taken in
another order), with no dense copy of the gradient.

:func:`touched_rows_blocker` decides it for one variable, from its shape and ``excluded(var)``,
on the lines its step builds (:func:`optreg.spec.variable_slots.plan_slots`):

* every function those lines call is element-wise, a ``where``, a reduction or a fact; a shape
  fact reads a name (``rank(var)``, ``size(r)``), not an expression; no matrix operation, random
  draw or ``repeat``;
* folded with ``grad = 0`` line by line, as for exact sparsity, ``var`` and each slot shaped like
  it keep their value (``0 * x = 0`` and ``0 / x = 0`` assume finite values, as there).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from optreg.lang import fold, functions, tree
from optreg.lang.check import CheckedRule
from optreg.lang.sparsity import ROW_LOCAL_KINDS, SparseSupport, sparse_support, zero_gradient_fold
from optreg.spec.variable_slots import decided_expression, plan_slots

__all__ = ["TABLE_SHAPE", "TOUCHED_ROWS_KINDS", "rule_sparse_support", "touched_rows_blocker"]

#: The function kinds a rule run on touched rows may call (shape facts only of a name).
TOUCHED_ROWS_KINDS = ROW_LOCAL_KINDS | {"reduction", "axis_reduction", "shape_fact"}

#: The shape of the embedding table ``optreg show`` describes a rule's sparse updates for.
TABLE_SHAPE = (100_000, 64)


def rule_sparse_support(rule: CheckedRule, slot_kinds: Mapping[str, str]) -> SparseSupport:
    """What a (specialised) rule can do with a sparse gradient: :func:`optreg.lang.sparsity.sparse_support`,
    with ``touched_rows`` set when a :data:`TABLE_SHAPE` embedding table runs on its touched rows.

    Example:
        >>> from optreg.lang.check import check_rule
        >>> from optreg.lang.parse import parse_assignment
        >>> rule = check_rule([parse_assignment("var = var - lr * grad / maximum(1, norm(grad))")], ["lr"], [])
        >>> support = rule_sparse_support(rule, {})
        >>> support.exact, support.touched_rows
        (False, True)
    """
    support = sparse_support(rule.assignments, slot_kinds)
    return attrs.evolve(support, touched_rows=not touched_rows_blocker(rule, slot_kinds, TABLE_SHAPE))


def touched_rows_blocker(
    rule: CheckedRule, slot_kinds: Mapping[str, str], shape: Sequence[int] | None, excluded: bool | None = None
) -> str:
    """Why a variable of this shape cannot be updated on a sparse gradient's touched rows, or ``""``.

    Args:
        rule: the checked rule (specialised for the optimizer's fixed hyperparameters).
        slot_kinds: each present slot's name → its shape kind (``"var"``, ``"rows"``, …).
        shape: the variable's static shape (None: not fully known, which blocks).
        excluded: ``excluded(var)`` for the variable, or None when the rule does not call it.

    Returns:
        A phrase naming what blocks (a function, or the first target a zero gradient changes),
        or ``""`` when the touched rows suffice.

    Example:
        >>> from optreg.lang.check import check_rule
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = ["var = var - lr * grad / maximum(1, norm(grad))"]
        >>> rule = check_rule([parse_assignment(t) for t in lines], ["lr"], [])
        >>> touched_rows_blocker(rule, {}, (1000, 8))
        ''
        >>> touched_rows_blocker(rule, {}, None)
        'needs a variable of known shape with at least one axis'
    """
    if shape is None or len(shape) == 0:
        return "needs a variable of known shape with at least one axis"
    plan = plan_slots(rule, slot_kinds, shape, excluded)
    known: dict[str, float | int | bool] = {}
    zero: dict[str, tree.Node] = {"grad": tree.Const(0.0)}
    for index, assignment in enumerate(rule.assignments):
        if index not in plan.lines:
            continue
        taken = fold.fold(decided_expression(assignment.expression, shape, excluded), known)
        blocker = _function_blocker(taken)
        if blocker:
            return blocker
        value = zero_gradient_fold(taken, zero)
        target = assignment.target
        if target == "var" or slot_kinds.get(target) == "var":
            if value != tree.Ref(target):
                return "var changes" if target == "var" else f"slot {target!r} changes"
        elif target not in slot_kinds:
            zero[target] = value
            decided = fold.static_value(taken)
            if decided is not None and target not in rule.scalar_locals:
                known[target] = decided
    return ""


def _function_blocker(node: tree.Node) -> str:
    """What in an expression keeps it from running on touched rows, or ``""``."""
    if isinstance(node, tree.Call):
        kind = functions.FUNCTIONS[node.function].kind if node.function in functions.FUNCTIONS else "unknown"
        if kind not in TOUCHED_ROWS_KINDS:
            return f"calls {node.function} (a {kind.replace('_', ' ')} function)"
        if kind == "shape_fact" and not isinstance(node.args[0], tree.Ref):
            return f"calls {node.function} of an expression (only of a name)"
    for child in tree.children(node):
        blocker = _function_blocker(child)
        if blocker:
            return blocker
    return ""
