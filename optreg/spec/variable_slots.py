"""Which slots one variable keeps: the rule specialised by the facts known when its step is traced.

A rule's ``where`` may branch on the variable's shape (``rank(var) >= 2``) or on the variable
itself (``excluded(var)``). Those facts are fixed for a variable, so its step only ever runs one
branch, and a slot that branch never reads is state kept for nothing: Adafactor's full-size ``v``
on a matrix (whose branch keeps row and column statistics), Muon's ``v`` on the matrices that take
orthogonalised steps. :func:`plan_slots` folds the facts into the rule line by line (as the
compiler does when it traces the step, never deciding more than it does), then keeps what the
new value of ``var`` depends on, step after step:

* ``var`` is live; a line assigning a live name is live, and every slot or local it reads is live;
* a slot is created for the variable only when it is live, and the lines assigning the others,
  or locals that read them, are not built.

Only what the facts make unread goes: a slot no line reads whatever the facts (one a spec keeps
for inspection) is kept on every variable, as the spec wrote it.

A slot that only feeds itself (``v = where(use_adam, ..., v)`` on Muon's other branch) or is only
written (``v = r / col_mean(r) * c`` on Adafactor's matrices) is not live. ``decayed(var)`` is left
undecided (which variables are decayed may change after the slots exist), so its branches keep
what they read. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from optreg.errors import OptionError
from optreg.lang import fold, functions, tree
from optreg.lang.check import CheckedRule
from optreg.model.definitions import MAX_GRAM_DIM

__all__ = ["SlotPlan", "SlotPlanner", "decided_expression", "fact_values", "plan_slots", "slot_dims"]


@attrs.frozen
class SlotPlan:
    """What one variable's step keeps and builds.

    Attributes:
        slots: the slots the variable keeps (the others are never created for it).
        lines: the indices (into the rule's assignments) of the lines its step builds.

    Example:
        >>> SlotPlan(frozenset({"m"}), frozenset({0, 1})).slots
        frozenset({'m'})
    """

    slots: frozenset[str]
    lines: frozenset[int]


def slot_dims(kind: str, dims: Sequence[int]) -> list[int]:
    """The shape of a slot of the given kind (one of :data:`optreg.model.definitions.SLOT_SHAPES`)
    for a variable of shape ``dims``. Row and column statistics keep a size-1 axis; the row and
    column Gram matrices of an ``[..., m, n]`` variable are ``[..., m, m]`` and ``[..., n, n]``;
    each of the four is one number below rank 2. A channels slot keeps the last axis.

    Raises:
        OptionError: a Gram slot whose matrices would be larger than
            :data:`~optreg.model.definitions.MAX_GRAM_DIM` on a side.

    Example:
        >>> slot_dims("rows", [2, 3, 4]), slot_dims("columns", [2, 3, 4]), slot_dims("columns", [7])
        ([2, 3, 1], [2, 1, 4], [])
        >>> slot_dims("row_gram", [3, 4]), slot_dims("col_gram", [3, 4]), slot_dims("channels", [3, 3, 8, 16])
        ([3, 3], [4, 4], [1, 1, 1, 16])
    """
    dims = list(dims)
    if kind == "var":
        return dims
    if kind == "channels":
        return [1] * (len(dims) - 1) + dims[-1:]
    if kind == "scalar" or len(dims) < 2:
        return []
    if kind in ("row_gram", "col_gram"):
        side = dims[-2] if kind == "row_gram" else dims[-1]
        if side > MAX_GRAM_DIM:
            raise OptionError(
                f"a {kind!r} slot of a variable of shape {dims} would hold {side} x {side} matrices, more than "
                f"MAX_GRAM_DIM = {MAX_GRAM_DIM} on a side; branch such variables elsewhere in the rule (as "
                f"'rows(var) <= max_preconditioner_dim' does in specs/shampoo.toml)"
            )
        return dims[:-2] + [side, side]
    return dims[:-1] + [1] if kind == "rows" else dims[:-2] + [1, dims[-1]]


def fact_values(dims: Sequence[int]) -> dict[str, int]:
    """``rank``, ``size``, ``rows`` and ``cols`` of a shape, as the rule language defines them.

    Example:
        >>> fact_values([4096, 1024])
        {'rank': 2, 'size': 4194304, 'rows': 4096, 'cols': 1024}
    """
    size = 1
    for dim in dims:
        size *= dim
    return {
        "rank": len(dims),
        "size": size,
        "rows": dims[-2] if len(dims) >= 2 else 1,
        "cols": dims[-1] if dims else 1,
    }


def plan_slots(
    rule: CheckedRule,
    slot_kinds: Mapping[str, str],
    shape: Sequence[int] | None,
    excluded: bool | None = None,
) -> SlotPlan:
    """The slots and lines one variable's step needs, given what is known of it when traced.

    Args:
        rule: the checked rule (already specialised for the optimizer's fixed hyperparameters).
        slot_kinds: each present slot's name → its shape kind (``"var"``, ``"rows"``, …).
        shape: the variable's static shape, or None when it is not fully known (then no shape
            fact is decided).
        excluded: the value of ``excluded(var)``, or None when it is not known.

    Returns:
        A :class:`SlotPlan`.

    Example:
        >>> from optreg.lang.check import check_rule
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = ["v = where(rank(var) >= 2, v, v + grad)", "var = where(rank(var) >= 2, var - grad, var - v)"]
        >>> rule = check_rule([parse_assignment(t) for t in lines], [], ["v"])
        >>> sorted(plan_slots(rule, {"v": "var"}, [3, 2]).slots), sorted(plan_slots(rule, {"v": "var"}, [3]).slots)
        ([], ['v'])
    """
    facts = _Facts(shape, excluded)
    known: dict[str, float | int | bool] = {}
    reads: list[set[str]] = []
    stateful = set(slot_kinds) | {"var"}
    for assignment in rule.assignments:
        decided = facts.decide(assignment.expression)
        reads.append(_reads(decided, known))
        target = assignment.target
        if target not in stateful and target not in rule.scalar_locals:
            # what the compiler knows of a local when traced: its value when the facts decide it
            value = fold.static_value(fold.fold(decided, known))
            if value is not None:
                known[target] = value
    roots = {"var"}
    if shape is not None or excluded is not None:
        # a slot nothing reads whatever the facts stays, as the spec wrote it: only what the
        # facts make unread goes
        roots |= set(slot_kinds) - plan_slots(rule, slot_kinds, None, None).slots
    live = _live(rule, reads, roots)
    absent = set(slot_kinds) - live
    lines = []
    for index, (assignment, names) in enumerate(zip(rule.assignments, reads)):
        target = assignment.target
        if target in live or (target not in stateful and not names & absent):
            lines.append(index)  # what var depends on, and every local that can still be built
        elif target not in stateful:
            absent.add(target)
    return SlotPlan(frozenset(name for name in slot_kinds if name in live), frozenset(lines))


def decided_expression(node: tree.Node, shape: Sequence[int] | None, excluded: bool | None = None) -> tree.Node:
    """An expression with the facts known of a variable replaced by their values: the shape facts of
    ``var`` and ``grad`` (when ``shape`` is known) and ``excluded(var)`` (when not None).

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> decided_expression(parse_expression("rank(grad) >= 2"), [3, 4])
        Compare(op='>=', left=Const(value=2.0), right=Const(value=2.0))
    """
    return _Facts(shape, excluded).decide(node)


def _live(rule: CheckedRule, reads: Sequence[set[str]], roots: set[str]) -> set[str]:
    """The names the roots depend on, through the lines assigning them, step after step."""
    live = set(roots)
    grown = True
    while grown:
        grown = False
        for assignment, names in zip(rule.assignments, reads):
            if assignment.target in live and not names <= live:
                live |= names
                grown = True
    return live


def _reads(node: tree.Node, known: Mapping[str, float | int | bool]) -> set[str]:
    """The names a line reads when traced: a ``where`` whose condition the known values decide
    reads its condition's names (the compiler looks their values up) and the branch it takes."""
    if isinstance(node, tree.Call) and node.function == "where":
        condition = node.args[0]
        decided = fold.static_value(fold.fold(condition, known))
        if decided is not None:
            return tree.names_in(condition) | _reads(node.args[1] if decided else node.args[2], known)
    if isinstance(node, tree.Ref):
        return {node.name}
    return set().union(*(_reads(child, known) for child in tree.children(node)))


@attrs.frozen
class _Facts:
    """What is known of one variable: its shape (None: not fully known) and ``excluded(var)``
    (None: not known)."""

    shape: Sequence[int] | None
    excluded: bool | None

    def decide(self, node: tree.Node) -> tree.Node:
        """The node with every fact this record decides replaced by its value: shape facts of
        ``var`` and ``grad``, and ``excluded(var)``."""
        if isinstance(node, tree.Call) and node.function in functions.SHAPE_FACTS:
            argument = node.args[0]
            if self.shape is not None and isinstance(argument, tree.Ref) and self._like_var(argument.name):
                return tree.Const(float(fact_values(self.shape)[node.function]))
        if isinstance(node, tree.Call) and node.function == "excluded" and self.excluded is not None:
            return tree.Const(1.0 if self.excluded else 0.0)
        return tree.map_children(node, self.decide)

    def _like_var(self, name: str) -> bool:
        """True for ``var`` and ``grad`` (a slot's shape fact still reads the slot: it is kept)."""
        return name in ("var", "grad")


class SlotPlanner:
    """:func:`plan_slots` for one rule, remembered per distinct shape and ``excluded`` value (a
    model has few), so asking again while tracing costs a lookup.

    Args:
        rule: the checked rule.
        slot_kinds: each present slot's name → its shape kind.

    Example:
        >>> planner = SlotPlanner(rule, {"m": "var", "v": "var"})  # doctest: +SKIP
        >>> planner.plan((1024, 1024), excluded=False).slots  # doctest: +SKIP
        frozenset({'m'})
    """

    def __init__(self, rule: CheckedRule, slot_kinds: Mapping[str, str]):
        self._rule = rule
        self._kinds = dict(slot_kinds)
        self._plans: dict[tuple[Any, ...], SlotPlan] = {}

    def plan(self, shape: Sequence[int | None] | None, excluded: bool | None = None) -> SlotPlan:
        """The plan of a variable of this shape (None or a dimension None: not fully known).

        Returns:
            A :class:`SlotPlan`.
        """
        dims = None if shape is None or any(d is None for d in shape) else tuple(int(d) for d in shape)  # type: ignore[arg-type]
        key = (dims, excluded)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_slots(self._rule, self._kinds, dims, excluded)
        return plan
