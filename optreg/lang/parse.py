"""Parsing the rule language: Python's :mod:`ast` (which only *parses*; nothing is ever evaluated)
turned into the tree of :mod:`optreg.lang.tree`, node by whitelisted node, under size limits.

The grammar:

* numbers (``1``, ``0.5``, ``1e-7``), names, parentheses;
* ``+ - * / % **`` (``%`` is floor modulo, as Python's and ``tf.math.floormod``) and unary
  ``-`` / ``+``;
* one comparison ``< <= > >= == !=`` (yielding a boolean, usable only as ``where``'s condition
  or in a local);
* calls of the functions in :data:`optreg.lang.functions.FUNCTIONS`, with positional arguments only;
  ``repeat(count, start, body)`` takes a whole literal from 0 to ``MAX_REPEAT`` or a name as its
  count (the loader requires a fixed int hyperparameter with bounds within that), is not nested,
  and its body alone reads ``it``.

Names resolve to ``grad``, ``var``, ``step`` (the 1-based step count), ``weight_decay`` (the
optimizer's ``weight_decay`` option, 0 when unset: a rule that reads it applies weight decay
itself, and the optimizer then does not), the hyperparameters, the slots, and locals assigned
earlier in the rule. Checking a whole rule lives in :mod:`optreg.lang.check`, compiling it to
TensorFlow in :mod:`optreg.runtime.compile`; this module never imports TensorFlow.
"""

from __future__ import annotations

import ast
import re
import warnings

from optreg.errors import ExpressionError
from optreg.lang.fold import finite_constant
from optreg.lang.functions import CREATION_FACTS, FUNCTIONS, GIVEN, ITERATIONS, MAX_REPEAT, REPEATED, VARIABLE_FACTS
from optreg.lang.tree import Assignment, Binary, Call, Compare, Const, Node, Ref, Unary, functions_in, names_in, unparse

#: Size limits that keep a hostile spec from costing anything to check or compile.
MAX_EXPRESSION_CHARS = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_CONSTANT_EXPONENT = 1024.0


_BINARY_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}
_UNARY_OPS = {ast.USub: "-", ast.UAdd: "+"}
_COMPARE_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}

_CONSTRUCT_NAMES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "the walrus operator",
    ast.IfExp: "conditional expressions (use where(cond, a, b))",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


#: Python's operators outside the language, as they are written, with a hint where the
#: language has another way to say it.
_REFUSED_OPERATORS = {
    ast.FloorDiv: ("//", ""),
    ast.MatMult: ("@", "; use matmul(a, b)"),
    ast.LShift: ("<<", ""),
    ast.RShift: (">>", ""),
    ast.BitOr: ("|", ""),
    ast.BitXor: ("^", "; use ** for powers"),
    ast.BitAnd: ("&", ""),
    ast.Invert: ("~", ""),
    ast.Not: ("not", "; use where(cond, 0, 1)"),
    ast.And: ("and", "; use where(cond, a, b)"),
    ast.Or: ("or", "; use where(cond, a, b)"),
    ast.Is: ("is", "; use =="),
    ast.IsNot: ("is not", "; use !="),
    ast.In: ("in", ""),
    ast.NotIn: ("not in", ""),
}


def _describe(node: ast.AST) -> str:
    """A reader's name for a Python construct outside the grammar."""
    return _CONSTRUCT_NAMES.get(type(node), type(node).__name__)


def refused_operator(operator: ast.AST, kind: str = "operator") -> ExpressionError:
    """The error for a Python operator outside the language, naming it as written.

    Args:
        operator: the operator's AST node (``ast.FloorDiv()``, ``ast.And()``, ``ast.Is()``, ...).
        kind: ``"operator"`` or ``"comparison"``.

    Returns:
        An :class:`ExpressionError` to raise.

    Example:
        >>> refused_operator(ast.FloorDiv()).message
        "operator '//' is not in the language"
    """
    written, hint = _REFUSED_OPERATORS.get(type(operator), (type(operator).__name__, ""))
    return ExpressionError(f"{kind} {written!r} is not in the language{hint}")


def parse_expression(text: str) -> Node:
    """Parse one expression of the language into its tree.

    Args:
        text: the expression, e.g. ``"beta_1 * m + (1 - beta_1) * grad"``.

    Returns:
        The expression's tree of :class:`Const`, :class:`Ref`, :class:`Unary`,
        :class:`Binary`, :class:`Compare` and :class:`Call` records.

    Raises:
        ExpressionError: the text is not an expression of the language.

    Example:
        >>> parse_expression("2 * grad")
        Binary(op='*', left=Const(value=2.0), right=Ref(name='grad'))
    """
    parsed = _parse_python(text, mode="eval")
    assert isinstance(parsed, ast.Expression)
    return _convert(parsed.body, depth=0, budget=[MAX_NODES])


def parse_assignment(text: str) -> Assignment:
    """Parse one rule line, ``target = expression``.

    Args:
        text: the line, e.g. ``"m = beta_1 * m + (1 - beta_1) * grad"``.

    Returns:
        An :class:`Assignment` holding the target name and the expression's tree.

    Raises:
        ExpressionError: the line is not a single assignment to a plain name, or its
            expression is outside the language.

    Example:
        >>> parse_assignment("var = var - learning_rate * grad").target
        'var'
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a rule line must be a string, got {type(text).__name__}")
    module = _parse_python(text, mode="exec")
    assert isinstance(module, ast.Module)
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assign):
        raise ExpressionError(f"expected one assignment 'name = expression', got {text!r}")
    statement = module.body[0]
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        raise ExpressionError(f"the left-hand side must be a single plain name in {text!r}")
    target = statement.targets[0].id
    _check_identifier(target)
    expression = _convert(statement.value, depth=0, budget=[MAX_NODES])
    return Assignment(target=target, expression=expression, text=text.strip())


def assignment_target(text: object) -> str | None:
    """The name a rule line assigns, read from its text even when the line does not parse.

    Example:
        >>> assignment_target("m = beta * m +"), assignment_target("var == grad")
        ('m', None)
    """
    found = _TARGET.match(text) if isinstance(text, str) else None
    return found.group(1) if found else None


_TARGET = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")


def _parse_python(text: str, mode: str) -> ast.AST:
    """Parse text with Python's parser after the size check; never evaluates anything."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if "\n" in text.strip() or "\r" in text or ";" in text:
        raise ExpressionError(f"a rule line holds exactly one assignment, got {text!r}")
    try:
        with warnings.catch_warnings():
            # what Python only warns about ("1if", "'\\d'") is a syntax error in a rule
            warnings.simplefilter("error", SyntaxWarning)
            return ast.parse(text.strip(), mode=mode)
    except SyntaxError as error:
        raise ExpressionError(f"syntax error in {text!r}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExpressionError(f"cannot parse {text!r}: {type(error).__name__}") from None


def _check_identifier(name: str) -> None:
    """Refuse dunder and private names anywhere in a rule."""
    if name.startswith("_"):
        raise ExpressionError(f"names starting with '_' are not allowed: {name!r}")


def _convert(node: ast.AST, depth: int, budget: list[int]) -> Node:
    """Turn a whitelisted Python AST node into the language's tree."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ExpressionError(f"expression has more than {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        return _convert_constant(node.value)
    if isinstance(node, ast.Name):
        _check_identifier(node.id)
        if node.id in FUNCTIONS:
            raise ExpressionError(f"function {node.id!r} used as a value; call it as {node.id}(...)")
        return Ref(node.id)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return Unary(_UNARY_OPS[type(node.op)], _convert(node.operand, depth + 1, budget))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        return _convert_binary(node, depth, budget)
    if isinstance(node, ast.Compare):
        return _convert_compare(node, depth, budget)
    if isinstance(node, ast.Call):
        return _convert_call(node, depth, budget)
    if isinstance(node, (ast.UnaryOp, ast.BinOp, ast.BoolOp)):
        raise refused_operator(node.op)
    raise ExpressionError(f"{_describe(node)} are not allowed in expressions")


def _convert_constant(value: object) -> Const:
    """Accept plain int and float literals only (no strings, bools, complex or bytes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "strings" if isinstance(value, (str, bytes)) else f"{type(value).__name__} literals"
        raise ExpressionError(f"{kind} are not allowed in expressions")
    if isinstance(value, int) and abs(value) > 2**63:
        raise ExpressionError(f"integer literal {value} is too large")
    return Const(float(value))


def _convert_binary(node: ast.BinOp, depth: int, budget: list[int]) -> Binary:
    """Convert ``a OP b``, refusing absurd constant exponents."""
    op = _BINARY_OPS[type(node.op)]
    left = _convert(node.left, depth + 1, budget)
    right = _convert(node.right, depth + 1, budget)
    if op == "**" and not names_in(right):
        exponent = finite_constant(right)
        if exponent is None:
            raise ExpressionError(
                f"constant exponent {unparse(right)} overflows or is undefined (limit ±{MAX_CONSTANT_EXPONENT:g})"
            )
        if abs(exponent) > MAX_CONSTANT_EXPONENT:
            raise ExpressionError(f"constant exponent beyond ±{MAX_CONSTANT_EXPONENT:g}")
    return Binary(op, left, right)


def _convert_compare(node: ast.Compare, depth: int, budget: list[int]) -> Compare:
    """Convert a single comparison; chains such as ``a < b < c`` are refused."""
    if len(node.ops) != 1:
        raise ExpressionError("chained comparisons are not allowed; compare two values at a time")
    op = _COMPARE_OPS.get(type(node.ops[0]))
    if op is None:
        raise refused_operator(node.ops[0], "comparison")
    left = _convert(node.left, depth + 1, budget)
    right = _convert(node.comparators[0], depth + 1, budget)
    return Compare(op, left, right)


def _convert_call(node: ast.Call, depth: int, budget: list[int]) -> Call:
    """Convert a call of a function-table entry with positional arguments."""
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(f"only functions of the table may be called, not {_describe(node.func)}")
    name = node.func.id
    function = FUNCTIONS.get(name)
    if function is None:
        raise ExpressionError(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}")
    if node.keywords:
        raise ExpressionError(f"keyword arguments are not allowed (in the call of {name})")
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ExpressionError(f"starred arguments are not allowed (in the call of {name})")
    if len(node.args) != function.arity:
        raise ExpressionError(f"{name} takes {function.arity} argument(s), got {len(node.args)}")
    args = tuple(_convert(arg, depth + 1, budget) for arg in node.args)
    if name in VARIABLE_FACTS and args != (Ref("var"),):
        raise ExpressionError(f"{name} is a fact about the variable being updated; call it as {name}(var)")
    if name in CREATION_FACTS and not isinstance(args[0], Ref):
        raise ExpressionError(f"{name} takes the name of a slot, as in {name}(velocity)")
    if name == GIVEN and not isinstance(args[0], Ref):
        raise ExpressionError(f"{name} takes the name of a hyperparameter, as in {name}(rms_rate)")
    if name in ITERATIONS:
        _check_repeat(name, args)
    return Call(name, args)


def _check_repeat(name: str, args: tuple[Node, ...]) -> None:
    """``repeat(count, start, body)``: a count that is a whole literal within bounds or a name (the
    loader requires a fixed int hyperparameter with a max within bounds), and no repeat inside."""
    count, start, body = args
    if isinstance(count, Const):
        if not (count.value.is_integer() and 0 <= count.value <= MAX_REPEAT):
            raise ExpressionError(f"{name}'s count must be a whole number from 0 to {MAX_REPEAT}, got {unparse(count)}")
    elif not isinstance(count, Ref) or count.name == REPEATED:
        raise ExpressionError(
            f"{name}'s count must be a whole literal or a fixed int hyperparameter, got {unparse(count)}"
        )
    if any(ITERATIONS & functions_in(arg) for arg in args):
        raise ExpressionError(f"{name} cannot be nested inside another {name}")
    if REPEATED in names_in(start):
        raise ExpressionError(f"{REPEATED!r} is the previous value inside {name}'s body only, not in its start")
