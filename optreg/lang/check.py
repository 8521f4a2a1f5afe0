"""Checking update rules: every name resolves, every assignment is allowed, and a rule
specialised for fixed hyperparameters and absent slots is still whole.

Parsing lives in :mod:`optreg.lang.parse`, the tree in :mod:`optreg.lang.tree`; this module, like it, never imports
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from optreg.errors import ExpressionError
from optreg.lang.fold import decide_has, fold
from optreg.lang.functions import (
    BUILTIN_NAMES,
    CREATION_FACTS,
    FUNCTIONS,
    GIVEN,
    ITERATIONS,
    ONE_NUMBER,
    REPEATED,
    SCALAR_BUILTINS,
)
from optreg.lang.tree import Assignment, Binary, Call, Compare, Const, Node, Ref, Unary, children, names_in


@attrs.frozen
class CheckedRule:
    """A rule whose names all resolve, with what the compiler needs to know about it.

    Attributes:
        assignments: the rule lines in order.
        scalar_locals: locals that depend only on hyperparameters and ``step``; they are
            computed once per step in float64.
        bool_locals: locals holding a comparison's result.
    """

    assignments: tuple[Assignment, ...]
    scalar_locals: frozenset[str]
    bool_locals: frozenset[str]


def check_rule(
    assignments: Iterable[Assignment],
    hyperparameters: Iterable[str],
    slots: Iterable[str],
    scalar_slots: Iterable[str] = (),
) -> CheckedRule:
    """Check that every name in a rule resolves and every assignment is allowed.

    Args:
        assignments: the parsed rule lines, in order.
        hyperparameters: the spec's hyperparameter names.
        slots: the spec's slot names.
        scalar_slots: the slots holding one number per variable; what they are assigned
            must be one number too (built from hyperparameters, ``step``, reductions, shape
            facts and other such slots).

    Returns:
        A :class:`CheckedRule`.

    Raises:
        ExpressionError: the first error, with ``.line_index`` set to the offending line's
            index (see :func:`rule_errors` for all of them).

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> rule = [parse_assignment("var = var - lr * grad")]
        >>> check_rule(rule, ["lr"], []).scalar_locals
        frozenset()
    """
    assignments = tuple(assignments)
    checker, errors = _check_lines(assignments, hyperparameters, slots, scalar_slots)
    if errors:
        raise errors[0]
    return CheckedRule(assignments, frozenset(checker.scalar_locals), frozenset(checker.bool_locals))


def rule_errors(
    lines: Sequence[Assignment | None],
    hyperparameters: Iterable[str],
    slots: Iterable[str],
    scalar_slots: Iterable[str] = (),
    assumed: Iterable[str] = (),
) -> list[ExpressionError]:
    """Every error of a rule, line after line: a line at fault is reported and its target
    still counts as assigned, so the lines after it are checked as if it were right.

    Args:
        lines: the parsed rule lines, in order; None for a line that did not parse (its
            error is reported elsewhere; the other lines keep their indices).
        hyperparameters, slots, scalar_slots: as for :func:`check_rule`.
        assumed: names that count as assigned although no line checked here assigns them
            (the targets of the lines that did not parse).

    Returns:
        The errors in line order, each with ``line_index``; the rule's own ("never assigns
        'var'") last, without one. Empty when the rule is valid.

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = [parse_assignment("d = nope * grad"), None, parse_assignment("var = var - d - e")]
        >>> [(e.line_index, e.message) for e in rule_errors(lines, [], [], assumed=["e"])]
        [(0, "undefined name 'nope'")]
    """
    return _check_lines(tuple(lines), hyperparameters, slots, scalar_slots, assumed)[1]


def _check_lines(
    lines: Sequence[Assignment | None],
    hyperparameters: Iterable[str],
    slots: Iterable[str],
    scalar_slots: Iterable[str],
    assumed: Iterable[str] = (),
) -> tuple[_RuleChecker, list[ExpressionError]]:
    """Check every line (skipping None), collecting the errors; the checker is returned too."""
    checker = _RuleChecker(frozenset(hyperparameters), frozenset(slots), frozenset(scalar_slots))
    for name in assumed:
        checker.assume(name)
    errors = []
    for index, assignment in enumerate(lines):
        if assignment is None:
            continue
        try:
            checker.check(assignment)
        except ExpressionError as error:
            errors.append(ExpressionError(error.message, line_index=index))
            checker.assume(assignment.target)
    if not checker.assigns_var:
        errors.append(ExpressionError("the rule never assigns 'var', so it would not update anything"))
    return checker, errors


class _RuleChecker:
    """Walks a rule in order, tracking which locals exist and what kind of value they hold."""

    def __init__(
        self, hyperparameters: frozenset[str], slots: frozenset[str], scalar_slots: frozenset[str] = frozenset()
    ):
        self.hyperparameters = hyperparameters
        self.slots = slots
        #: Names holding one number per variable (scalar slots and locals computed from them).
        self.one_number = set(scalar_slots)
        self.locals: set[str] = set()
        self.scalar_locals: set[str] = set()
        self.bool_locals: set[str] = set()
        #: Names taken as assigned without being checked: targets of lines at fault.
        self.assumed: set[str] = set()
        self.assigns_var = False
        #: True while a repeat's body is checked (where REPEATED is defined).
        self.repeating = False

    def assume(self, target: str) -> None:
        """Take a line's target as assigned although the line was not checked (it is at fault),
        so later lines reading it raise no error of their own."""
        self.assumed.add(target)
        self.assigns_var = self.assigns_var or target == "var"

    def check(self, assignment: Assignment) -> None:
        """Check one line and record the local it defines, if any."""
        is_bool = self._kind(assignment.expression) == "bool"
        target = assignment.target
        self._check_target(target, is_bool)
        one_number = self.is_one_number(assignment.expression)
        if target in self.one_number and target in self.slots and not one_number:
            raise ExpressionError(
                f"slot {target!r} holds one number per variable; reduce the value first (sum, mean, norm, ...)"
            )
        if target == "var":
            self.assigns_var = True
        elif target not in self.slots:
            if one_number:
                self.one_number.add(target)
            self.locals.add(target)
            if is_bool:
                self.bool_locals.add(target)
            if self.is_scalar(assignment.expression):
                self.scalar_locals.add(target)

    def _check_target(self, target: str, is_bool: bool) -> None:
        """Refuse assignments to read-only names, reassigned locals and boolean slots."""
        if target in ("grad", "step", "weight_decay", REPEATED):
            raise ExpressionError(f"cannot assign to {target!r}; it is read-only")
        if target in self.hyperparameters:
            raise ExpressionError(f"cannot assign to hyperparameter {target!r}")
        if target in FUNCTIONS:
            raise ExpressionError(f"cannot assign to {target!r}; it names a function")
        if target in self.locals:
            raise ExpressionError(f"local {target!r} is assigned twice; give the new value another name")
        if is_bool and (target == "var" or target in self.slots):
            raise ExpressionError(f"cannot store a comparison in {target!r}; use where(cond, a, b)")

    def is_one_number(self, node: Node) -> bool:
        """True when the node is one number per variable (no element-wise tensor in it)."""
        if isinstance(node, Call) and node.function in ONE_NUMBER:
            return True
        if isinstance(node, Ref):
            return (
                node.name in self.one_number
                or node.name in self.hyperparameters
                or node.name in SCALAR_BUILTINS
                or node.name in self.scalar_locals
            )
        return all(self.is_one_number(child) for child in children(node))

    def is_scalar(self, node: Node) -> bool:
        """True when the node depends only on hyperparameters, ``step``, ``weight_decay`` and
        scalar locals."""
        scalar_names = self.hyperparameters | SCALAR_BUILTINS | self.scalar_locals
        return names_in(node) <= scalar_names

    def _kind(self, node: Node) -> str:
        """'bool' or 'number'; refuses undefined names and booleans used as numbers."""
        if isinstance(node, Const):
            return "number"
        if isinstance(node, Ref):
            return self._ref_kind(node.name)
        if isinstance(node, Compare):
            self._number(node.left, node.op)
            self._number(node.right, node.op)
            return "bool"
        if isinstance(node, Call) and node.function in CREATION_FACTS:
            slot = node.args[0]
            assert isinstance(slot, Ref)  # the parser refuses anything else
            if slot.name not in self.slots:
                raise ExpressionError(
                    f"{node.function}({slot.name}) names no slot; slots: {', '.join(sorted(self.slots)) or 'none'}"
                )
            return "number"
        if isinstance(node, Call) and node.function == GIVEN:
            named = node.args[0]
            assert isinstance(named, Ref)  # the parser refuses anything else
            if named.name not in self.hyperparameters:
                raise ExpressionError(f"{GIVEN}({named.name}) names no hyperparameter")
            return "number"
        if isinstance(node, Call) and node.function in ITERATIONS:
            count, start, body = node.args
            if isinstance(count, Ref) and count.name not in self.hyperparameters:
                raise ExpressionError(f"{node.function}'s count {count.name!r} is not a hyperparameter")
            self._number(start, node.function)
            outer, self.repeating = self.repeating, True
            try:
                self._number(body, node.function)
            finally:
                self.repeating = outer
            return "number"
        if isinstance(node, Call) and node.function == "where":
            self._kind(node.args[0])
            self._number(node.args[1], "where")
            self._number(node.args[2], "where")
            return "number"
        label = node.op if isinstance(node, (Unary, Binary)) else node.function
        for child in children(node):
            self._number(child, label)
        return "number"

    def _number(self, node: Node, context: str) -> None:
        """Require a numeric operand."""
        if self._kind(node) == "bool":
            raise ExpressionError(f"a comparison cannot be an operand of {context!r}; use where(cond, a, b)")

    def _ref_kind(self, name: str) -> str:
        """The kind of a name, or an error when it is undefined."""
        if name in self.bool_locals:
            return "bool"
        if name == REPEATED:
            if self.repeating:
                return "number"
            raise ExpressionError(f"undefined name {name!r} (it is the previous value inside repeat's body only)")
        if (
            name in BUILTIN_NAMES
            or name in self.hyperparameters
            or name in self.slots
            or name in self.locals | self.assumed
        ):
            return "number"
        raise ExpressionError(f"undefined name {name!r}")


# --- specializing: fixed hyperparameters folded in, absent slots pruned -------------------


def specialize(
    rule: CheckedRule,
    hyperparameters: Iterable[str],
    slots: Iterable[str],
    values: Mapping[str, float | int | bool],
    absent: Mapping[str, str],
    scalar_slots: Iterable[str] = (),
) -> CheckedRule:
    """A rule with some names fixed to values and some slots absent.

    Every expression is folded with ``values``. A line assigning an absent slot is dropped; a
    local whose value reads something absent is absent too (and dropped); any other line
    that still reads something absent is an error.

    Args:
        rule: the checked rule.
        hyperparameters: every hyperparameter name.
        slots: every slot name, present or not.
        values: name → value to fold in.
        absent: absent slot → why it is absent (for messages).
        scalar_slots: as for :func:`check_rule`.

    Returns:
        The specialized, re-checked rule.

    Raises:
        ExpressionError: a line that must run reads an absent slot; ``line_index`` is the
            index of that line in the original rule.

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = [parse_assignment(t) for t in ("h = 2 * h", "var = where(on, var - h, var - grad)")]
        >>> rule = check_rule(lines, ["on"], ["h"])
        >>> [a.target for a in specialize(rule, ["on"], ["h"], {"on": False}, {"h": "off"}).assignments]
        ['var']
    """
    slots = tuple(slots)
    missing = dict(absent)
    kept: list[Assignment] = []
    for index, assignment in enumerate(rule.assignments):
        expression = fold(decide_has(assignment.expression, absent), values)
        if assignment.target in absent:
            continue
        read = sorted(names_in(expression) & missing.keys())
        if not read:
            kept.append(attrs.evolve(assignment, expression=expression))
        elif assignment.target != "var" and assignment.target not in slots:
            missing[assignment.target] = f"it reads {read[0]!r}: {missing[read[0]]}"
        else:
            raise ExpressionError(f"reads {read[0]!r}, which is absent: {missing[read[0]]}", line_index=index)
    present = [slot for slot in slots if slot not in absent]
    return check_rule(kept, hyperparameters, present, [slot for slot in scalar_slots if slot not in absent])
