"""Checking a rule against its slot conditions in one pass: every setting of the conditions at once.

Which slots exist is decided when an optimizer is created, by the ``when`` of each slot (a fixed
bool, or a comparison of a number hyperparameter with a literal). The loader must refuse a rule
that, for some setting values can produce, runs a line reading an absent slot. Specialising the
rule for each setting (what :func:`~optreg.spec.conditions.specialize_rule` does at creation)
costs ``2 ** conditions`` passes over the rule; here each setting is one bit of a Python int, and
the rule is walked once, each name read carrying the mask of the settings in which it is read:

* a ``where`` whose condition the settings decide (it reads fixed bools and ``has(slot)``) is
  split: its condition is evaluated once per setting *of the conditions it reads* (two for one
  condition), giving the masks in which each branch is live;
* a local is missing in the settings where its line reads something missing, a slot in those
  where its condition fails; a line assigning ``var`` or a slot fails in the settings where it
  reads something missing.

The refusals, and their messages, are those of the exhaustive check: each failing line once,
with the first setting (in :func:`possible_truths` order) in which it is the first failing line.
Re-checking a specialised rule (``check_rule`` at the end of ``specialize``) can refuse nothing the
first check accepted (folding and pruning only remove names), so it is not repeated here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from optreg.errors import ExpressionError
from optreg.lang import fold, functions, parse, tree
from optreg.lang.check import CheckedRule
from optreg.model.definitions import Slot
from optreg.model.hyperparameters import Hyperparameter
from optreg.spec.conditions import condition_holds, condition_hyperparameter

#: At most this many slot conditions may decide one ``where`` condition (each of their settings is
#: evaluated, so ``2 ** 4`` evaluations of that condition at most).
MAX_CONDITIONS_PER_WHERE = 4


def possible_truths(conditions: Sequence[str], hyperparameters: Sequence[Hyperparameter]) -> list[dict[str, bool]]:
    """Every combination of the slot conditions that values within the bounds can produce: a
    fixed bool is either, and the comparisons of one hyperparameter are tried at each literal
    and on either side of it (so ``momentum > 0`` and ``momentum <= 0`` never both hold).

    Example:
        >>> possible_truths(["centered"], [Hyperparameter("centered", False, "bool", fixed=True)])
        [{'centered': False}, {'centered': True}]
    """
    bounds = {h.name: h for h in hyperparameters}
    by_name: dict[str, list[str]] = {}
    for when in conditions:
        by_name.setdefault(condition_hyperparameter(when) or when, []).append(when)
    choices = []
    for name, whens in by_name.items():
        if whens == [name]:  # a fixed bool
            choices.append([{name: False}, {name: True}])
            continue
        literals = [_literal(when) for when in whens]
        candidates = {v + step for v in literals for step in (-max(1.0, abs(v)) * 1e-6, 0.0, max(1.0, abs(v)) * 1e-6)}
        hyper = bounds[name]
        inside = [
            v for v in candidates if (hyper.min is None or v >= hyper.min) and (hyper.max is None or v <= hyper.max)
        ]
        outcomes = {tuple(condition_holds(when, {name: v}) for when in whens) for v in inside or candidates}
        choices.append([dict(zip(whens, outcome)) for outcome in sorted(outcomes)])  # type: ignore[arg-type]
    return [dict(kv for part in combination for kv in part.items()) for combination in itertools.product(*choices)]


def _literal(when: str) -> float:
    """The literal a comparison ``when`` compares with (``"momentum > 0"`` → ``0.0``)."""
    node = parse.parse_expression(when)
    assert isinstance(node, tree.Compare) and isinstance(node.right, tree.Const)
    return node.right.value


def describe_setting(truths: Mapping[str, bool]) -> str:
    """A setting of the conditions in words: ``centered = true`` for a bool's value,
    ``(momentum > 0) is false`` for a comparison.

    Example:
        >>> describe_setting({"centered": True, "momentum > 0": False})
        'centered = true, (momentum > 0) is false'
    """
    return ", ".join(
        f"{when} = {str(holds).lower()}"
        if condition_hyperparameter(when) is None
        else f"({when}) is {str(holds).lower()}"
        for when, holds in truths.items()
    )


class _Settings:
    """The possible settings of a spec's slot conditions, as bits: setting ``i`` is bit ``i``."""

    def __init__(self, conditions: Sequence[str], hyperparameters: Sequence[Hyperparameter], slots: Sequence[Slot]):
        self.truths = possible_truths(conditions, hyperparameters)
        self.all = (1 << len(self.truths)) - 1
        #: condition → the settings in which it holds
        self.holds = {when: sum(1 << i for i, truths in enumerate(self.truths) if truths[when]) for when in conditions}
        names = {h.name for h in hyperparameters}
        #: the conditions that are fixed bools: folded into the rule as values
        self.bools = {when for when in conditions if when in names}
        self.slot_when = {slot.name: slot.when for slot in slots if slot.when}
        self.slots = {slot.name for slot in slots}
        #: conditional slot → the settings in which it is absent
        self.absent = {name: self.all & ~self.holds[when] for name, when in self.slot_when.items()}
        #: how many times a where condition was evaluated (for the tests that bound the work)
        self.evaluations = 0
        #: where condition → its split, for the conditions met again (``has(m)`` on many lines)
        self.splits: dict[tree.Node, tuple[int, int, int]] = {}

    def deciding(self, node: tree.Node) -> set[str]:
        """The conditions an expression's folded value depends on: the fixed bools it reads and the
        conditions of the slots it asks ``has`` about."""
        if isinstance(node, tree.Ref):
            return {node.name} & self.bools
        if isinstance(node, tree.Call) and node.function in functions.CREATION_FACTS:
            when = self.slot_when.get(node.args[0].name)  # type: ignore[union-attr]
            return set() if when is None else {when}
        return set().union(*(self.deciding(child) for child in tree.children(node)))

    def split(self, condition: tree.Node, index: int) -> tuple[int, int, int]:
        """The settings in which a ``where`` condition folds to true, to false, and stays undecided
        (exactly as :func:`~optreg.lang.fold.fold` decides it)."""
        known = self.splits.get(condition)
        if known is not None:
            return known
        deciding = sorted(self.deciding(condition))
        if len(deciding) > MAX_CONDITIONS_PER_WHERE:
            raise ExpressionError(
                f"a where condition reads {len(deciding)} slot conditions ({', '.join(map(repr, deciding))}); "
                f"at most {MAX_CONDITIONS_PER_WHERE} may decide one condition, so that the rule can be checked "
                "for each of their settings",
                line_index=index,
            )
        true = false = undecided = 0
        for bits in itertools.product((False, True), repeat=len(deciding)):
            mask = self.all
            for when, bit in zip(deciding, bits):
                mask &= self.holds[when] if bit else ~self.holds[when]
            if not mask:
                continue  # no value gives this setting
            self.evaluations += 1
            setting = dict(zip(deciding, bits))
            decided = _folded_value(condition, setting, self.slot_when)
            if decided is None:
                undecided |= mask
            elif decided:
                true |= mask
            else:
                false |= mask
        self.splits[condition] = (true, false, undecided)
        return true, false, undecided

    def reads(self, node: tree.Node, live: int, found: dict[str, int], index: int) -> None:
        """Add to ``found`` each slot or local the node reads once folded, with the settings in
        which it reads it (``live``: the settings in which the node itself is kept)."""
        stack = [(node, live)]
        while stack:
            node, live = stack.pop()
            if not live:
                continue
            if isinstance(node, tree.Ref):
                found[node.name] = found.get(node.name, 0) | live
            elif isinstance(node, tree.Call) and node.function in functions.CREATION_FACTS:
                continue  # has(slot) is decided: it reads nothing
            elif isinstance(node, tree.Call) and node.function == "where":
                true, false, undecided = self.split(node.args[0], index)
                stack += [(node.args[0], live & undecided), (node.args[1], live & (true | undecided))]
                stack.append((node.args[2], live & (false | undecided)))
            else:
                stack += [(child, live) for child in tree.children(node)]


def _folded_value(node: tree.Node, setting: Mapping[str, bool], slot_when: Mapping[str, str]) -> float | bool | None:
    """``static_value(fold(decide_has(node, absent), values))`` for one setting of the conditions the
    node reads, computed without building the folded tree (``setting``: condition → whether it
    holds; the fixed bools among them are the folded values, the slots whose condition fails absent).

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> _folded_value(parse_expression("on * has(h) + 1 > 1"), {"on": True}, {"h": "on"})
        True
    """
    try:
        return _folded(node, setting, slot_when)
    except (ArithmeticError, ValueError, TypeError):
        return None


def _folded(node: tree.Node, setting: Mapping[str, bool], slot_when: Mapping[str, str]) -> float | bool | None:
    """:func:`_folded_value` without the error handling (as :func:`~optreg.lang.fold.static_value`)."""
    if isinstance(node, tree.Const):
        return node.value
    if isinstance(node, tree.Ref):
        return float(setting[node.name]) if node.name in setting else None  # a fixed bool folds to 0 or 1
    if isinstance(node, tree.Call) and node.function in functions.CREATION_FACTS:
        slot = node.args[0]
        assert isinstance(slot, tree.Ref)
        when = slot_when.get(slot.name)
        return 1.0 if when is None or setting[when] else 0.0
    if isinstance(node, tree.Call) and node.function == "where":
        decided = _folded_value(node.args[0], setting, slot_when)  # fold decides it on its own
        if decided is None:
            return None  # the where stays: a call has no static value
        return _folded(node.args[1] if decided else node.args[2], setting, slot_when)
    if isinstance(node, tree.Unary):
        operand = _folded(node.operand, setting, slot_when)
        return None if operand is None else (-operand if node.op == "-" else operand)
    if isinstance(node, (tree.Binary, tree.Compare)):
        left, right = _folded(node.left, setting, slot_when), _folded(node.right, setting, slot_when)
        if left is None or right is None:
            return None
        return fold.PYTHON_OPS[node.op](left, right)
    return None


def slot_condition_errors(
    rule: CheckedRule, hyperparameters: Sequence[Hyperparameter], slots: Sequence[Slot], conditions: Sequence[str]
) -> list[tuple[ExpressionError, dict[str, bool]]]:
    """The lines of a rule that read an absent slot in some setting of the slot conditions.

    Args:
        rule: the checked rule.
        hyperparameters: the spec's hyperparameters.
        slots: the spec's slots.
        conditions: the distinct ``when`` of the slots.

    Returns:
        ``(error, setting)`` for each failing line, in the order the exhaustive check finds them:
        ``error.line_index`` is the line, ``setting`` the first condition setting (condition →
        whether it holds) in which it is the first line to fail.

    Raises:
        ExpressionError: a ``where`` condition reads more than :data:`MAX_CONDITIONS_PER_WHERE`
            slot conditions (``line_index`` set).

    Example:
        >>> rule = CheckedRule((parse.parse_assignment("var = var - h"),), frozenset(), frozenset())
        >>> hypers = [Hyperparameter("on", False, "bool", fixed=True)]
        >>> [(e.message, s) for e, s in slot_condition_errors(rule, hypers, [Slot("h", when="on")], ["on"])]
        [("reads 'h', which is absent: slot 'h' exists only when 'on' is true", {'on': False})]
    """
    return _check(_Settings(conditions, hyperparameters, slots), rule)


def _check(settings: _Settings, rule: CheckedRule) -> list[tuple[ExpressionError, dict[str, bool]]]:
    """:func:`slot_condition_errors` for settings already worked out."""
    missing = dict(settings.absent)  # name → the settings in which it is missing
    reads: list[dict[str, int]] = []  # per line: slot or local → the settings in which it is read
    defined: dict[str, int] = {}  # local → the line assigning it
    remaining = settings.all  # the settings in which no line has failed yet
    failures: list[tuple[int, int]] = []  # (setting, line)
    for index, assignment in enumerate(rule.assignments):
        found: dict[str, int] = {}
        kept = settings.all & ~settings.absent.get(assignment.target, 0)  # a line assigning an absent slot is dropped
        settings.reads(assignment.expression, kept, found, index)
        reads.append(found)
        fails = 0
        for name, live in found.items():
            fails |= live & missing.get(name, 0)
        if not fails:
            continue
        if assignment.target != "var" and assignment.target not in settings.slots:
            missing[assignment.target] = fails
            defined[assignment.target] = index
            continue
        first = fails & remaining
        if first:
            failures.append(((first & -first).bit_length() - 1, index))
        remaining &= ~fails
    errors = []
    for setting, index in sorted(failures):
        name = _first_missing(reads[index], missing, setting)
        message = f"reads {name!r}, which is absent: {_why(name, setting, settings, reads, defined, missing)}"
        errors.append((ExpressionError(message, line_index=index), settings.truths[setting]))
    return errors


def _first_missing(found: Mapping[str, int], missing: Mapping[str, int], setting: int) -> str:
    """The first name (in sorted order) a line reads that is missing in a setting."""
    bit = 1 << setting
    return min(name for name, live in found.items() if live & missing.get(name, 0) & bit)


def _why(
    name: str,
    setting: int,
    settings: _Settings,
    reads: Sequence[Mapping[str, int]],
    defined: Mapping[str, int],
    missing: Mapping[str, int],
) -> str:
    """Why a name is missing in a setting: ``it reads 'd': it reads 'h': slot 'h' exists only when ...``."""
    chain = []
    while name in defined:
        name = _first_missing(reads[defined[name]], missing, setting)
        chain.append(f"it reads {name!r}: ")
    when = settings.slot_when[name]
    reason = f"slot {name!r} exists only when {when!r} " + (
        "is true" if condition_hyperparameter(when) is None else "holds"
    )
    return "".join(chain) + reason
