"""Slot conditions and rule specialisation: what creating an optimizer decides from its fixed hyperparameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optreg.errors import ExpressionError, HyperparameterError
from optreg.lang import check as expr_check
from optreg.lang import fold, parse, tree
from optreg.model.definitions import OptimizerSpec, Slot
from optreg.model.hyperparameters import Hyperparameter
from optreg.spec.locations import rule_line_error


def condition_hyperparameter(when: str) -> str | None:
    """The hyperparameter a comparison ``when`` reads (``"momentum > 0"`` → ``"momentum"``), or
    None when the text is not ``NAME OP NUMBER`` (a bool's name, or text that does not parse).

    Example:
        >>> condition_hyperparameter("momentum > 0"), condition_hyperparameter("centered")
        ('momentum', None)
    """
    try:
        node = parse.parse_expression(when)
    except ExpressionError:
        return None
    if isinstance(node, tree.Compare) and isinstance(node.left, tree.Ref) and isinstance(node.right, tree.Const):
        return node.left.name
    return None


def condition_holds(when: str, values: Mapping[str, Any]) -> bool | None:
    """Whether a slot's ``when`` holds for these hyperparameter values (None when the value it
    needs is not among them).

    Example:
        >>> condition_holds("momentum > 0", {"momentum": 0.0}), condition_holds("centered", {"centered": True})
        (False, True)
    """
    decided = fold.static_value(fold.fold(parse.parse_expression(when), values))
    return None if decided is None else bool(decided)


def specialize_rule(
    rule: expr_check.CheckedRule,
    hyperparameters: Sequence[Hyperparameter],
    slots: Sequence[Slot],
    values: Mapping[str, float | int | bool],
    truths: Mapping[str, bool],
) -> expr_check.CheckedRule:
    """The rule with fixed hyperparameter values folded in, the slots whose conditions fail
    pruned, and every ``has(slot)`` decided.

    Args:
        rule: the checked rule.
        hyperparameters: the spec's hyperparameters.
        slots: the spec's slots.
        values: fixed hyperparameter name → value, folded into the rule.
        truths: slot condition → whether it holds (a condition missing here keeps its slot).

    Raises:
        ExpressionError: a line that must run reads an absent slot (``line_index`` set).
    """
    absent = {
        slot.name: f"slot {slot.name!r} exists only when {slot.when!r} "
        + ("is true" if condition_hyperparameter(slot.when) is None else "holds")
        for slot in slots
        if slot.when and truths.get(slot.when) is False
    }
    scalar_slots = [s.name for s in slots if s.shape == "scalar"]
    return expr_check.specialize(
        rule, [h.name for h in hyperparameters], [s.name for s in slots], values, absent, scalar_slots
    )


def slot_deciding_hyperparameters(slots: Sequence[Slot]) -> set[str]:
    """The hyperparameters the slots' comparisons read (``momentum`` for ``when = "momentum > 0"``).

    Example:
        >>> slot_deciding_hyperparameters([Slot("velocity", when="momentum > 0"), Slot("h", when="centered")])
        {'momentum'}
    """
    return {name for slot in slots if slot.when for name in [condition_hyperparameter(slot.when)] if name is not None}


def deciding_values(spec: OptimizerSpec, given: Mapping[str, Any]) -> dict[str, float | int]:
    """The creation values of the hyperparameters that slot comparisons read (``momentum`` for
    ``when = "momentum > 0"``): given (and checked) or the defaults.

    Raises:
        HyperparameterError: such a hyperparameter given a schedule; which slots exist is decided
            once, so it takes a number.

    Example:
        >>> deciding_values(load_spec("specs/sgd.toml"), {"momentum": 0.9})  # doctest: +SKIP
        {'momentum': 0.9}
    """
    from optreg.model.schedules import is_schedule

    names = slot_deciding_hyperparameters(spec.slots)
    values = {}
    for hyper in spec.hyperparameters:
        if hyper.name not in names:
            continue
        value = given.get(hyper.name, hyper.default)
        if is_schedule(value):
            conditions = ", ".join(
                repr(s.when) for s in spec.slots if s.when and condition_hyperparameter(s.when) == hyper.name
            )
            raise HyperparameterError(
                f"{hyper.name} decides which slots {spec.name} keeps (when {conditions}), "
                "so it takes a number, not a schedule"
            )
        values[hyper.name] = hyper.check(value)
    return values


def fixed_values(spec: OptimizerSpec, given: Mapping[str, Any]) -> dict[str, float | int | bool]:
    """The values of a spec's fixed hyperparameters: given (and checked) or the defaults.

    Example:
        >>> fixed_values(load_spec("specs/adam.toml"), {"amsgrad": True})  # doctest: +SKIP
        {'amsgrad': True}
    """
    return {h.name: h.check(given[h.name]) if h.name in given else h.default for h in spec.hyperparameters if h.fixed}


def specialize_spec(
    spec: OptimizerSpec, values: Mapping[str, float | int | bool]
) -> tuple[expr_check.CheckedRule, tuple[Slot, ...]]:
    """The rule and the present slots of a spec for given fixed hyperparameter values.

    Args:
        spec: the spec.
        values: every fixed hyperparameter's value (see :func:`fixed_values`), and the creation
            value of every hyperparameter a slot comparison reads (see :func:`deciding_values`).

    Returns:
        ``(rule, slots)``: the folded rule and the slots that exist.

    Raises:
        SpecError: a line that must run reads an absent slot; the message names the line.
    """
    fixed = {h.name for h in spec.hyperparameters if h.fixed}
    folded = {name: value for name, value in values.items() if name in fixed}
    truths = {slot.when: condition_holds(slot.when, values) for slot in spec.slots if slot.when}
    try:
        rule = specialize_rule(
            spec.rule, spec.hyperparameters, spec.slots, folded, {w: t for w, t in truths.items() if t is not None}
        )
    except ExpressionError as error:
        setting = ", ".join(f"{name} = {value!r}" for name, value in values.items())
        raise rule_line_error(spec, error, f"{error.message} (with {setting})") from None
    present = tuple(slot for slot in spec.slots if not slot.when or truths[slot.when] is not False)
    return rule, present
