"""Static values and folding: what an expression's literals decide before TensorFlow sees it.

:func:`static_value` computes an expression of literals in Python; :func:`fold` puts fixed
hyperparameter values into a rule and keeps only the live branch of each decided ``where``;
:func:`decide_has` decides ``has(slot)`` from the slots that exist. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from optreg.lang.functions import CREATION_FACTS, FUNCTIONS
from optreg.lang.tree import Binary, Call, Compare, Const, Node, Ref, Unary, map_children


def static_value(node: Node) -> float | bool | None:
    """The value of an expression made only of literals, computed in Python, or None.

    Used to decide ``where`` conditions at load and build time; arithmetic that fails
    (overflow, division by zero) leaves the expression undecided.

    Example:
        >>> static_value(Compare(">=", Binary("*", Const(2.0), Const(3.0)), Const(6.0))), static_value(Ref("x"))
        (True, None)
    """
    try:
        return _static(node)
    except (ArithmeticError, ValueError, TypeError):
        return None


def _static(node: Node) -> float | bool | None:
    """static_value without the error handling."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Unary):
        operand = _static(node.operand)
        return None if operand is None else (-operand if node.op == "-" else operand)
    if isinstance(node, (Binary, Compare)):
        left, right = _static(node.left), _static(node.right)
        if left is None or right is None:
            return None
        return PYTHON_OPS[node.op](left, right)
    return None


def _real_power(base: float, exponent: float) -> float | None:
    """``base ** exponent`` when it is a real number, else None."""
    result = base**exponent
    return None if isinstance(result, complex) else result


#: Each binary operator and comparison of the language on Python numbers.
PYTHON_OPS: Mapping[str, Callable[[float, float], float | bool | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: _real_power(float(a), b),
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def constant_float(node: Node) -> float:
    """The value of an expression without names in float64, through every function that has a
    float version (:attr:`~optreg.lang.functions.Function.constant`).

    Raises:
        ArithmeticError, ValueError, TypeError, LookupError: on overflow, a domain error, or a
            function without a float version.

    Example:
        >>> constant_float(Call("sqrt", (Const(16.0),)))
        4.0
    """
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Unary):
        operand = constant_float(node.operand)
        return -operand if node.op == "-" else operand
    if isinstance(node, (Binary, Compare)):
        value = PYTHON_OPS[node.op](constant_float(node.left), constant_float(node.right))
        if value is None:  # a power that is not a real number
            raise ValueError(f"not a real number: {node!r}")
        return float(value)
    if isinstance(node, Call):
        constant = FUNCTIONS[node.function].constant
        if constant is None:
            raise TypeError(f"{node.function} has no constant value")
        return float(constant(*map(constant_float, node.args)))
    raise TypeError(f"not a constant: {node!r}")


def finite_constant(node: Node) -> float | None:
    """:func:`constant_float` when it is finite, else None (overflow, undefined).

    Example:
        >>> finite_constant(Unary("-", Const(6.0))), finite_constant(Binary("**", Const(10.0), Const(1000.0))) is None
        (-6.0, True)
    """
    try:
        value = constant_float(node)
    except (ArithmeticError, LookupError, ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


def fold(node: Node, values: Mapping[str, float | int | bool]) -> Node:
    """Replace names by constant values and keep only the live branch of decided ``where`` s.

    Arithmetic on the constants is left to the compiler (so numbers round exactly as they
    would unfolded); only ``where`` conditions are evaluated here, and a negated literal
    becomes a negative literal (negation is exact), so ``-learning_rate_power`` with the power
    fixed is a literal when traced.

    Args:
        node: an expression.
        values: name → value for the names to fold (fixed hyperparameters).

    Returns:
        The folded expression.

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> fold(parse_expression("where(centered, a, b) * 2"), {"centered": False})
        Binary(op='*', left=Ref(name='b'), right=Const(value=2.0))
    """
    if isinstance(node, Ref):
        return Const(float(values[node.name])) if node.name in values else node
    if isinstance(node, Call) and node.function == "where":
        condition = fold(node.args[0], values)
        decided = static_value(condition)
        if decided is not None:
            return fold(node.args[1] if decided else node.args[2], values)
        return Call("where", (condition, fold(node.args[1], values), fold(node.args[2], values)))
    folded = map_children(node, lambda child: fold(child, values))
    if isinstance(folded, Unary) and folded.op == "-" and isinstance(folded.operand, Const):
        return Const(-folded.operand.value)
    return folded


def decide_has(node: Node, absent: Iterable[str]) -> Node:
    """Replace every ``has(slot)`` by 1 or 0: 0 for the absent slots.

    Example:
        >>> from optreg.lang.parse import parse_expression
        >>> decide_has(parse_expression("where(has(velocity), velocity, grad)"), {"velocity"})
        Call(function='where', args=(Const(value=0.0), Ref(name='velocity'), Ref(name='grad')))
    """
    if isinstance(node, Call) and node.function in CREATION_FACTS:
        return Const(0.0 if node.args[0].name in absent else 1.0)  # type: ignore[union-attr]
    return map_children(node, lambda child: decide_has(child, absent))
