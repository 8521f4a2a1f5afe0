"""The [update] table of a spec: each rule line parsed and checked on its own, then the whole rule
checked against the slot conditions (:mod:`optreg.spec.slot_check`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optreg.errors import ExpressionError, SpecError
from optreg.lang import check as expr_check
from optreg.lang import functions, parse, tree
from optreg.lang import ranks as expr_ranks
from optreg.model.definitions import MAX_SLOT_CONDITIONS, Slot
from optreg.model.hyperparameters import Hyperparameter, show_value
from optreg.spec.locations import rule_line_needle
from optreg.spec.reading import ReaderBase
from optreg.spec.slot_check import describe_setting, slot_condition_errors


class RuleReading(ReaderBase):
    """Reading the rule (a part of :class:`~optreg.spec.document.SpecReader`).

    Example:
        >>> reader = RuleReading("", "<string>")
        >>> [a.target for a in reader.read_rule({"rule": ["var = var - grad"]}, [], []).assignments]
        ['var']
    """

    def read_rule(
        self, table: Any, hyperparameters: Sequence[Hyperparameter], slots: Sequence[Slot], names_known: bool = True
    ) -> expr_check.CheckedRule | None:
        """The [update] table: an ordered, non-empty list of assignments, each line parsed and
        checked on its own. None when any line is at fault (each is recorded); ``names_known``
        False (the hyperparameter or slot table is not a table) checks only the parsing."""
        if not self.table_keys("update", table, required={"rule"}, optional={"measuring_steps"}):
            return None
        lines = table["rule"]
        self.raw_lines = lines
        if not isinstance(lines, list) or not lines:
            raise self.fail("update.rule", f"must be a non-empty list of assignments, got {show_value(lines)}")
        parsed: list[tree.Assignment | None] = []
        faults: dict[int, list[SpecError]] = {}  # line index (len(lines) for the whole rule) → its errors
        for index, line in enumerate(lines):
            try:
                parsed.append(self.parse_line(index, line))
            except SpecError as error:
                parsed.append(None)
                faults[index] = [error]
        if names_known:
            self.check_lines(lines, parsed, hyperparameters, slots, faults)
        self.errors.extend(error for index in sorted(faults) for error in faults[index])  # in line order
        return (
            None
            if faults or not names_known
            else expr_check.check_rule([a for a in parsed if a is not None], *self.rule_names(hyperparameters, slots))
        )

    def check_lines(
        self,
        lines: list[Any],
        parsed: list[tree.Assignment | None],
        hyperparameters: Sequence[Hyperparameter],
        slots: Sequence[Slot],
        faults: dict[int, list[SpecError]],
    ) -> None:
        """Check the parsed rule lines (None for those that did not parse): names and assignments,
        then the shape errors certain for every variable rank (on the lines without a fault yet).
        Each error goes into ``faults`` by line index."""
        unparsed = [parse.assignment_target(line) for line, assignment in zip(lines, parsed) if assignment is None]
        errors = expr_check.rule_errors(
            parsed, *self.rule_names(hyperparameters, slots), assumed=[t for t in unparsed if t]
        )
        for error in errors:
            # a line that does not parse may be the one assigning var: say nothing of the whole rule then
            if error.line_index is not None or not unparsed:
                faults.setdefault(len(lines) if error.line_index is None else error.line_index, []).append(
                    self.rule_error(error, error.message)
                )
        for index, assignment in enumerate(parsed):
            problem = None if assignment is None else (
                repeat_count_problem(assignment.expression, hyperparameters)
                or seed_problem(assignment.expression, hyperparameters)
            )
            if problem and index not in faults:
                faults[index] = [self.rule_error(ExpressionError(problem, line_index=index), problem)]
        unfaulted = [None if index in faults else assignment for index, assignment in enumerate(parsed)]
        hyperparameter_names = [h.name for h in hyperparameters] + self.unread_hyperparameters
        for error in expr_ranks.rank_errors(unfaulted, hyperparameter_names, {s.name: s.shape for s in slots}):
            index = len(lines) if error.line_index is None else error.line_index  # rank errors are all on a line
            faults.setdefault(index, []).append(self.rule_error(error, error.message))

    def rule_names(
        self, hyperparameters: Sequence[Hyperparameter], slots: Sequence[Slot]
    ) -> tuple[list[str], list[str], list[str]]:
        """The names the rule checker needs: hyperparameters and slots (those at fault included,
        so reading them is no error of the rule) and the scalar slots."""
        return (
            [h.name for h in hyperparameters] + self.unread_hyperparameters,
            [s.name for s in slots] + self.unread_slots,
            [s.name for s in slots if s.shape == "scalar"],
        )

    def parse_line(self, index: int, line: Any) -> tree.Assignment:
        """Rule line ``index`` parsed, or its SpecError."""
        try:
            return parse.parse_assignment(line)
        except ExpressionError as error:
            raise self.fail(
                f"update.rule[{index}]", error.message, rule_line_needle(line), self.raw_lines[:index].count(line)
            ) from None

    def rule_error(self, error: ExpressionError, message: str) -> SpecError:
        """A SpecError for an ExpressionError raised while checking the rule."""
        index = error.line_index
        key = "update.rule" if index is None else f"update.rule[{index}]"
        needle = None if index is None else rule_line_needle(self.raw_lines[index])
        occurrence = 0 if index is None else self.raw_lines[:index].count(self.raw_lines[index])
        return self.fail(key, message, needle, occurrence)

    def check_slot_conditions(
        self, rule: expr_check.CheckedRule, hyperparameters: Sequence[Hyperparameter], slots: Sequence[Slot]
    ) -> None:
        """Check the rule under every combination of the conditions that decide slots that some
        hyperparameter values can produce (in one pass: see :mod:`optreg.spec.slot_check`)."""
        conditions = sorted({slot.when for slot in slots if slot.when})
        if len(conditions) > MAX_SLOT_CONDITIONS:
            raise self.fail("slots", f"at most {MAX_SLOT_CONDITIONS} conditions may decide slots")
        try:
            failures = slot_condition_errors(rule, hyperparameters, slots, conditions)
        except ExpressionError as error:
            raise self.rule_error(error, error.message) from None
        for failure, truths in failures:
            self.errors.append(self.rule_error(failure, f"{failure.message} (with {describe_setting(truths)})"))


def repeat_count_problem(node: tree.Node, hyperparameters: Sequence[Hyperparameter]) -> str | None:
    """What is wrong with the count of a ``repeat`` in an expression, or None: a hyperparameter
    count must be a fixed int one whose ``min`` and ``max`` keep it within 0 … ``MAX_REPEAT``, so
    the unrolled rule is bounded before anything is built.

    Example:
        >>> repeat_count_problem(parse.parse_expression("repeat(n, grad, 2 * it)"), [Hyperparameter("n", 3, "int")])
        "repeat's count 'n' must be a fixed int hyperparameter (fixed = true)"
    """
    if isinstance(node, tree.Call) and node.function in functions.ITERATIONS and isinstance(node.args[0], tree.Ref):
        name = node.args[0].name
        hyper = next((h for h in hyperparameters if h.name == name), None)
        if hyper is None:
            return None  # the checker reports the undefined name
        if hyper.type != "int" or not hyper.fixed:
            return f"repeat's count {name!r} must be a fixed int hyperparameter (fixed = true)"
        if hyper.min is None or hyper.min < 0 or hyper.max is None or hyper.max > functions.MAX_REPEAT:
            bound = functions.MAX_REPEAT
            return f"repeat's count {name!r} needs min >= 0 and max <= {bound}, so the rule it unrolls is bounded"
    return next(filter(None, (repeat_count_problem(child, hyperparameters) for child in tree.children(node))), None)


def seed_problem(node: tree.Node, hyperparameters: Sequence[Hyperparameter]) -> str | None:
    """What is wrong with the seed of an expression's random numbers, or None: a rule that calls
    ``normal_like`` or ``rademacher_like`` draws them from the int hyperparameter ``seed``, which
    the spec must declare with ``min >= 0``.

    Example:
        >>> seed_problem(parse.parse_expression("grad + normal_like(grad)"), [])
        "normal_like draws random numbers from the int hyperparameter 'seed', which the spec does not declare"
    """
    drawn = sorted(tree.functions_in(node) & functions.RANDOM)
    if not drawn:
        return None
    seed = next((h for h in hyperparameters if h.name == functions.SEED), None)
    if seed is None:
        return (
            f"{drawn[0]} draws random numbers from the int hyperparameter {functions.SEED!r}, "
            "which the spec does not declare"
        )
    if seed.type != "int" or seed.min is None or seed.min < 0:
        return (
            f"{drawn[0]} draws random numbers from {functions.SEED!r}, "
            "which must be an int hyperparameter with min >= 0"
        )
    return None
