"""The expression tree of the update-rule language: its node records and how to walk them.

A rule line is one :class:`Assignment`, ``target = expression``; the expression is a tree of the
:mod:`attrs` records below, built by :mod:`optreg.lang.parse`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs


@attrs.frozen
class Const:
    """A numeric literal.

    Example:
        >>> Const(2.0).value
        2.0
    """

    value: float


@attrs.frozen
class Ref:
    """A name: a builtin, a hyperparameter, a slot or a local.

    Example:
        >>> Ref("grad").name
        'grad'
    """

    name: str


@attrs.frozen
class Unary:
    """``-x`` or ``+x``.

    Example:
        >>> unparse(Unary("-", Ref("x")))
        '-x'
    """

    op: str
    operand: Node


@attrs.frozen
class Binary:
    """``a OP b`` for ``+ - * / % **``.

    Example:
        >>> unparse(Binary("*", Const(2.0), Ref("grad")))
        '2 * grad'
    """

    op: str
    left: Node
    right: Node


@attrs.frozen
class Compare:
    """``a OP b`` for ``< <= > >= == !=``; a boolean.

    Example:
        >>> unparse(Compare(">", Ref("momentum"), Const(0.0)))
        'momentum > 0'
    """

    op: str
    left: Node
    right: Node


@attrs.frozen
class Call:
    """A call of a function from :data:`optreg.lang.functions.FUNCTIONS`.

    Example:
        >>> unparse(Call("sqrt", (Ref("v"),)))
        'sqrt(v)'
    """

    function: str
    args: tuple[Node, ...]


Node = Const | Ref | Unary | Binary | Compare | Call


@attrs.frozen
class Assignment:
    """One rule line: ``target = expression``, with the text it was parsed from.

    Example:
        >>> Assignment("var", Ref("grad"), "var = grad").target
        'var'
    """

    target: str
    expression: Node
    text: str


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node.

    Example:
        >>> children(Binary("+", Ref("a"), Const(1.0)))
        (Ref(name='a'), Const(value=1.0))
    """
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, (Binary, Compare)):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def map_children(node: Node, transform: Callable[[Node], Node]) -> Node:
    """The node with ``transform`` applied to each direct sub-expression (leaves unchanged).

    Example:
        >>> map_children(Binary("+", Ref("a"), Ref("b")), lambda child: Ref("c"))
        Binary(op='+', left=Ref(name='c'), right=Ref(name='c'))
    """
    if isinstance(node, Unary):
        return attrs.evolve(node, operand=transform(node.operand))
    if isinstance(node, (Binary, Compare)):
        return attrs.evolve(node, left=transform(node.left), right=transform(node.right))
    if isinstance(node, Call):
        return attrs.evolve(node, args=tuple(transform(arg) for arg in node.args))
    return node


def names_in(node: Node) -> set[str]:
    """Every name an expression reads.

    Example:
        >>> sorted(names_in(Binary("/", Ref("m"), Call("sqrt", (Ref("v"),)))))
        ['m', 'v']
    """
    if isinstance(node, Ref):
        return {node.name}
    return set().union(*(names_in(child) for child in children(node)))


def functions_in(node: Node) -> set[str]:
    """Every function an expression calls.

    Example:
        >>> sorted(functions_in(Call("sqrt", (Call("sum", (Ref("g"),)),))))
        ['sqrt', 'sum']
    """
    own = {node.function} if isinstance(node, Call) else set()
    return own.union(*(functions_in(child) for child in children(node)))


#: How tightly each operator binds, as in Python: comparisons, + -, * / %, unary, **.
_PRECEDENCE = {"<": 1, "<=": 1, ">": 1, ">=": 1, "==": 1, "!=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "%": 3, "**": 5}
_UNARY_PRECEDENCE, _ATOM_PRECEDENCE = 4, 6


def unparse(node: Node) -> str:
    """An expression written back as text, with only the parentheses it needs (for messages).

    Example:
        >>> from optreg.lang.parse import parse_expression
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
    left = _wrapped(
        node.left, _precedence(node.left) < own or ((right_assoc or chains) and _precedence(node.left) <= own)
    )
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
