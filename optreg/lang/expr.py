"""The update-rule expression language: grammar and parsing.

A rule line is one assignment, ``target = expression``. Expressions are parsed with Python's
:mod:`ast` (which only *parses*; nothing is ever evaluated by Python) and every node is checked
against a whitelist, then turned into the small tree of :mod:`attrs` records below. Checking
a whole rule lives in :mod:`optreg.lang.check`, compiling a checked rule to TensorFlow ops in
:mod:`optreg.runtime.compile`; this module never imports TensorFlow.

The grammar:

* numbers (``1``, ``0.5``, ``1e-7``), names, parentheses;
* ``+ - * / % **`` (``%`` is floor modulo, as Python's and ``tf.math.floormod``) and unary
  ``-`` / ``+``;
* one comparison ``< <= > >= == !=`` (yielding a boolean, usable only as ``where``'s condition
  or in a local);
* calls of the functions in :data:`FUNCTIONS`, with positional arguments only.

Names resolve to ``grad``, ``var``, ``step`` (the 1-based step count), ``weight_decay`` (the
optimizer's ``weight_decay`` option, 0 when unset: a rule that reads it applies weight decay
itself, and the optimizer then does not), the hyperparameters, the slots, and locals assigned
earlier in the rule.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from typing import Iterable, Mapping, Union

import attrs

from optreg.errors import ExpressionError

#: The names every rule can read besides hyperparameters, slots and locals.
BUILTIN_NAMES = ("grad", "var", "step", "weight_decay")
#: The builtin names holding one number per step (the others are shaped like the variable).
SCALAR_BUILTINS = frozenset({"step", "weight_decay"})

#: Size limits that keep a hostile spec from costing anything to check or compile.
MAX_EXPRESSION_CHARS = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_CONSTANT_EXPONENT = 1024.0


@attrs.frozen
class Function:
    """One entry of the function table: its arity and what it computes."""

    name: str
    arity: int
    doc: str


#: The fixed function table. Growing the language means adding a row here and its
#: TensorFlow implementation in :mod:`optreg.runtime.compile`.
FUNCTIONS: Mapping[str, Function] = {
    f.name: f
    for f in (
        Function("sqrt", 1, "square root, element-wise"),
        Function("rsqrt", 1, "1 / sqrt(x), element-wise"),
        Function("square", 1, "x * x, element-wise"),
        Function("abs", 1, "absolute value, element-wise"),
        Function("sign", 1, "-1, 0 or 1 by the sign of x, element-wise"),
        Function("exp", 1, "e ** x, element-wise"),
        Function("log", 1, "natural logarithm, element-wise"),
        Function("tanh", 1, "hyperbolic tangent, element-wise"),
        Function("maximum", 2, "the larger of a and b, element-wise"),
        Function("minimum", 2, "the smaller of a and b, element-wise"),
        Function("clip", 3, "x limited to [lo, hi], element-wise"),
        Function("where", 3, "a where cond holds (or is non-zero), else b, element-wise"),
        Function("sum", 1, "the sum of every element: one number per variable"),
        Function("mean", 1, "the mean of every element: one number per variable"),
        Function("norm", 1, "the L2 norm of every element: one number per variable"),
        Function("max_abs", 1, "the largest absolute value: one number per variable"),
        Function("row_mean", 1, "the mean over the last axis, kept as a size-1 axis"),
        Function("col_mean", 1, "the mean over the second-to-last axis, kept as a size-1 axis"),
        Function("rank", 1, "the number of axes (known when the rule is traced)"),
        Function("size", 1, "the number of elements (known when the rule is traced)"),
        Function("rows", 1, "the length of the second-to-last axis, 1 below rank 2 (known when traced)"),
        Function("cols", 1, "the length of the last axis, 1 for a scalar (known when traced)"),
        Function("matmul", 2, "matrix product over the last two axes (batched over the others)"),
        Function("transpose", 1, "the last two axes swapped (unchanged below rank 2)"),
        Function("excluded", 1, "1 when var's name matches the exclude_layers option (or, with exclude_embeddings, holds 'embedding'), else 0"),
        Function("decayed", 1, "1 unless exclude_from_weight_decay excludes var, else 0"),
        Function("has", 1, "1 when the named slot exists (its when holds), else 0; decided when the optimizer is created"),
    )
}

#: Functions that reduce a whole variable to one number or to row or column statistics.
REDUCTIONS = frozenset({"sum", "mean", "norm", "max_abs", "row_mean", "col_mean"})
#: Functions whose value is a fact about a tensor's shape, known when the rule is traced.
SHAPE_FACTS = frozenset({"rank", "size", "rows", "cols"})
#: Functions whose value is a fact about the variable itself (its name), known when traced;
#: their one argument must be ``var``.
VARIABLE_FACTS = frozenset({"excluded", "decayed"})
#: Functions decided when the optimizer is created (and folded out of the rule then).
CREATION_FACTS = frozenset({"has"})
#: Every function whose value is known when the rule is traced.
TRACE_FACTS = SHAPE_FACTS | VARIABLE_FACTS
#: Functions that mix elements along matrix axes.
MATRIX_OPS = frozenset({"matmul", "transpose"})
#: The functions after which an element of the result depends on other elements (or shapes,
#: or which variable it is).
NOT_ELEMENTWISE = REDUCTIONS | TRACE_FACTS | MATRIX_OPS


def functions_in(node: Node) -> set[str]:
    """Every function an expression calls.

    Example:
        >>> sorted(functions_in(parse_expression("sqrt(sum(square(grad)))")))
        ['sqrt', 'square', 'sum']
    """
    own = {node.function} if isinstance(node, Call) else set()
    return own.union(*(functions_in(child) for child in children(node)))


# --- the tree ---------------------------------------------------------------------------


@attrs.frozen
class Const:
    """A numeric literal."""

    value: float


@attrs.frozen
class Ref:
    """A name: a builtin, a hyperparameter, a slot or a local."""

    name: str


@attrs.frozen
class Unary:
    """``-x`` or ``+x``."""

    op: str
    operand: "Node"


@attrs.frozen
class Binary:
    """``a OP b`` for ``+ - * / % **``."""

    op: str
    left: "Node"
    right: "Node"


@attrs.frozen
class Compare:
    """``a OP b`` for ``< <= > >= == !=``; a boolean."""

    op: str
    left: "Node"
    right: "Node"


@attrs.frozen
class Call:
    """A call of a function from :data:`FUNCTIONS`."""

    function: str
    args: tuple["Node", ...]


Node = Union[Const, Ref, Unary, Binary, Compare, Call]


@attrs.frozen
class Assignment:
    """One rule line: ``target = expression``, with the text it was parsed from."""

    target: str
    expression: Node
    text: str


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


# --- parsing ----------------------------------------------------------------------------


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
    tree = _parse_python(text, mode="eval")
    return _convert(tree.body, depth=0, budget=[MAX_NODES])


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
        exponent = _constant_exponent(right)
        if exponent is None:
            raise ExpressionError(f"constant exponent {unparse(right)} overflows or is undefined (limit ±{MAX_CONSTANT_EXPONENT:g})")
        if abs(exponent) > MAX_CONSTANT_EXPONENT:
            raise ExpressionError(f"constant exponent beyond ±{MAX_CONSTANT_EXPONENT:g}")
    return Binary(op, left, right)


def _constant_exponent(node: Node) -> float | None:
    """The value of a constant exponent (no names) in float64, or None when it overflows or
    is undefined. Every exponent inside it was bounded when it was converted (trees are
    built bottom-up), and the arithmetic is on floats, so no large integer is ever computed.

    Example:
        >>> _constant_exponent(parse_expression("-(2 * 3)")), _constant_exponent(parse_expression("sqrt(16)"))
        (-6.0, 4.0)
        >>> _constant_exponent(parse_expression("10.0 ** 1000")) is None
        True
    """
    try:
        value = _constant_float(node)
    except (ArithmeticError, LookupError, ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


#: Float versions of the functions a constant can go through: a reduction, transpose or
#: shape fact of a number is the number itself, its magnitude, or its shape's (0 or 1).
_CONSTANT_FUNCTIONS = {
    "sqrt": math.sqrt,
    "rsqrt": lambda x: 1.0 / math.sqrt(x),
    "square": lambda x: x * x,
    "abs": abs,
    "sign": lambda x: float((x > 0) - (x < 0)),
    "exp": math.exp,
    "log": math.log,
    "tanh": math.tanh,
    "maximum": max,
    "minimum": min,
    "clip": lambda x, lo, hi: min(max(x, lo), hi),
    "where": lambda cond, a, b: a if cond else b,
    "sum": lambda x: x,
    "mean": lambda x: x,
    "row_mean": lambda x: x,
    "col_mean": lambda x: x,
    "norm": abs,
    "max_abs": abs,
    "transpose": lambda x: x,
    "matmul": lambda a, b: a * b,
    "rank": lambda x: 0.0,
    "size": lambda x: 1.0,
    "rows": lambda x: 1.0,
    "cols": lambda x: 1.0,
}


def _constant_float(node: Node) -> float:
    """_constant_exponent without the error handling (raises on overflow, a domain error, or
    a function it cannot compute)."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Unary):
        operand = _constant_float(node.operand)
        return -operand if node.op == "-" else operand
    if isinstance(node, (Binary, Compare)):
        return float(_PYTHON_OPS[node.op](_constant_float(node.left), _constant_float(node.right)))
    if isinstance(node, Call):
        return float(_CONSTANT_FUNCTIONS[node.function](*map(_constant_float, node.args)))
    raise TypeError(f"not a constant: {node!r}")


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
    return Call(name, args)


# --- walking the tree ---------------------------------------------------------------------


#: How tightly each operator binds, as in Python: comparisons, + -, * / %, unary, **.
_PRECEDENCE = {"<": 1, "<=": 1, ">": 1, ">=": 1, "==": 1, "!=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "%": 3, "**": 5}
_UNARY_PRECEDENCE, _ATOM_PRECEDENCE = 4, 6


def unparse(node: Node) -> str:
    """An expression written back as text, with only the parentheses it needs (for messages).

    Example:
        >>> unparse(parse_expression("(a + b) * -(c ** 2) / matmul(x, (y))"))
        '(a + b) * -c ** 2 / matmul(x, y)'
    """
    if isinstance(node, Const):
        return str(int(node.value)) if node.value.is_integer() and abs(node.value) < 1e15 else repr(node.value)
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Call):
        return f"{node.function}({', '.join(unparse(arg) for arg in node.args)})"
    if isinstance(node, Unary):
        return node.op + _wrapped(node.operand, _precedence(node.operand) < _UNARY_PRECEDENCE)
    own = _PRECEDENCE[node.op]
    right_assoc = node.op == "**"
    chains = isinstance(node, Compare)  # a < b < c would be a chain: wrap a comparison in a comparison
    left = _wrapped(node.left, _precedence(node.left) < own or ((right_assoc or chains) and _precedence(node.left) <= own))
    right_needs = _precedence(node.right) < own if right_assoc else _precedence(node.right) <= own
    right = _wrapped(node.right, right_needs and not (right_assoc and isinstance(node.right, Unary)))
    return f"{left} {node.op} {right}"


def _precedence(node: Node) -> int:
    """How tightly a node binds (a negative literal as tightly as unary minus)."""
    if isinstance(node, (Binary, Compare)):
        return _PRECEDENCE[node.op]
    if isinstance(node, Unary) or (isinstance(node, Const) and node.value < 0):
        return _UNARY_PRECEDENCE
    return _ATOM_PRECEDENCE


def _wrapped(node: Node, parenthesize: bool) -> str:
    """A node's text, in parentheses when asked."""
    text = unparse(node)
    return f"({text})" if parenthesize else text


def names_in(node: Node) -> set[str]:
    """Every name an expression reads.

    Example:
        >>> sorted(names_in(parse_expression("m / (sqrt(v) + epsilon)")))
        ['epsilon', 'm', 'v']
    """
    if isinstance(node, Ref):
        return {node.name}
    return set().union(*(names_in(child) for child in children(node)))


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, (Binary, Compare)):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def map_children(node: Node, transform) -> Node:
    """The node with ``transform`` applied to each direct sub-expression (leaves unchanged).

    Example:
        >>> map_children(parse_expression("a + b"), lambda child: Ref("c"))
        Binary(op='+', left=Ref(name='c'), right=Ref(name='c'))
    """
    if isinstance(node, Unary):
        return attrs.evolve(node, operand=transform(node.operand))
    if isinstance(node, (Binary, Compare)):
        return attrs.evolve(node, left=transform(node.left), right=transform(node.right))
    if isinstance(node, Call):
        return attrs.evolve(node, args=tuple(transform(arg) for arg in node.args))
    return node


# --- specializing: fixed hyperparameters folded in, absent slots pruned -------------------


def static_value(node: Node) -> float | bool | None:
    """The value of an expression made only of literals, computed in Python, or None.

    Used to decide ``where`` conditions at load and build time; arithmetic that fails
    (overflow, division by zero) leaves the expression undecided.

    Example:
        >>> static_value(parse_expression("2 * 3 >= 6")), static_value(parse_expression("x + 1"))
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
        return _PYTHON_OPS[node.op](left, right)
    return None


_PYTHON_OPS = {
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


def _real_power(base: float, exponent: float) -> float | None:
    """``base ** exponent`` when it is a real number, else None."""
    result = base**exponent
    return None if isinstance(result, complex) else result


def fold(node: Node, values: Mapping[str, float | int | bool]) -> Node:
    """Replace names by constant values and keep only the live branch of decided ``where`` s.

    Arithmetic on the constants is left to the compiler (so numbers round exactly as they
    would unfolded); only ``where`` conditions are evaluated here.

    Args:
        node: an expression.
        values: name → value for the names to fold (fixed hyperparameters).

    Returns:
        The folded expression.

    Example:
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
    return map_children(node, lambda child: fold(child, values))


def decide_has(node: Node, absent: Iterable[str]) -> Node:
    """Replace every ``has(slot)`` by 1 or 0: 0 for the absent slots.

    Example:
        >>> decide_has(parse_expression("where(has(velocity), velocity, grad)"), {"velocity"})
        Call(function='where', args=(Const(value=0.0), Ref(name='velocity'), Ref(name='grad')))
    """
    if isinstance(node, Call) and node.function in CREATION_FACTS:
        return Const(0.0 if node.args[0].name in absent else 1.0)
    return map_children(node, lambda child: decide_has(child, absent))
