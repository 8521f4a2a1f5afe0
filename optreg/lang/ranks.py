"""Shape errors a rule is certain to raise, found without running it: ranks inferred statically.

A rule runs on variables of every rank (a bias vector, a kernel matrix, a scalar), and may
branch on ``rank(var)``; which branch a variable takes is known when the rule is traced. So the
rule is walked once per variable rank ``r`` in ``0 .. R``, with each value's rank worked out from
the language's rules: hyperparameters, ``step`` and literals are scalars, ``grad`` and ``var``
have rank ``r``, a ``"rows"`` / ``"columns"`` / ``"row_gram"`` / ``"col_gram"`` slot has rank ``r``
from rank 2 (one number below),
a ``"channels"`` slot rank ``r``, reductions give one number, the axis reductions (``row_mean``,
``col_max``, ``channel_norm``, ...) and ``transpose`` keep the rank, and an
element-wise operation takes the highest rank among its operands. A ``where`` whose condition is
decided for that rank (``rank(var) >= 2``, and locals computed from such facts) is walked only
in the branch taken, as the compiler builds it.

A function needing a minimum rank (``matmul``: 2 for both arguments, ``col_mean``, ``col_max``,
``eye_like``, ``eigvecs`` and ``inverse_root``'s matrix: 2, ``row_mean`` and ``row_max``: 1; the
``channel_*`` reductions take any rank; ``inverse_root``'s exponent must be one number)
fails for some ranks. It is reported only when it fails for *every* rank at
which it is built:
``matmul(grad, grad)`` alone is fine (variables of rank 2 and more run it), but inside
``where(rank(var) == 1, ..., ...)`` it can never work, and neither can ``matmul(sum(grad), grad)``
anywhere. Dimensions are never compared: whether two axes have the same length depends on the
variable. (A slot assigned a value of another rank is no such error: every line runs at rank 0,
where every value is one number.) Like the parser, this module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from optreg.errors import ExpressionError
from optreg.lang import fold, functions, tree

#: The least rank each argument of these functions needs.
MINIMUM_RANKS = {
    "matmul": 2,
    "col_mean": 2,
    "col_max": 2,
    "row_mean": 1,
    "row_max": 1,
    "eye_like": 2,
    "inverse_root": 2,
    "eigvecs": 2,
}
#: Arguments that must be one number, by function: their positions.
NUMBER_ARGUMENTS = {"inverse_root": (1,)}
#: Slot shapes whose rank depends on the variable's: rank ``r`` from rank 2, one number below.
FACTORED_SHAPES = {
    "rows": "row statistics",
    "columns": "column statistics",
    "row_gram": "row Gram matrix",
    "col_gram": "column Gram matrix",
}
#: Where a node is in a rule: the index of its line, then the index of each child taken.
NodePath = tuple[int, ...]
#: Variable ranks walked: 0 up to the largest small literal of the rule plus 2, at least 4.
MIN_TOP_RANK, MAX_TOP_RANK = 4, 32


@attrs.frozen
class Value:
    """What the walk knows of a value for one variable rank.

    Attributes:
        rank: its rank, or None when unknown (a name at fault, or a value that already failed:
            nothing built from it is blamed again).
        known: its value when it is known when the rule is traced (literals, shape facts and
            locals computed from them), else None.
    """

    rank: int | None
    known: float | bool | None = None


@attrs.frozen
class Failure:
    """One way a node fails at one variable rank: what it needs and what it got."""

    needs: str
    culprit: str
    rank: int


def rank_errors(
    lines: Sequence[tree.Assignment | None],
    hyperparameters: Iterable[str],
    slot_shapes: Mapping[str, str],
) -> list[ExpressionError]:
    """The shape errors of a rule that fail for every variable rank at which they are built.

    Args:
        lines: the parsed rule lines, in order; None for a line that did not parse.
        hyperparameters: every hyperparameter name (each a scalar).
        slot_shapes: slot name → its ``shape`` (``"var"``, ``"scalar"``, ``"rows"``,
            ``"columns"``, ``"channels"``); a slot missing here (its entry is at fault) has an unknown rank.

    Returns:
        One :class:`ExpressionError` per failing node, with ``line_index``, in line order.

    Example:
        >>> from optreg.lang.parse import parse_assignment
        >>> lines = [parse_assignment("var = var - matmul(sum(grad), grad)")]
        >>> [e.message for e in rank_errors(lines, [], {})]  # doctest: +NORMALIZE_WHITESPACE
        ['matmul(sum(grad), grad): matmul needs arguments of rank >= 2, but sum(grad) has rank 0
          for a variable of any rank']
    """
    lines = tuple(lines)
    if not any(line is not None and tree.functions_in(line.expression) & MINIMUM_RANKS.keys() for line in lines):
        return []
    walk = _Walk(frozenset(hyperparameters), dict(slot_shapes), _ranks_to_walk(lines))
    for rank in walk.ranks:
        walk.run(lines, rank)
    return walk.errors()


def _ranks_to_walk(lines: Sequence[tree.Assignment | None]) -> tuple[int, ...]:
    """0 up to the largest whole literal of the rule (``rank(var) >= 3``) plus 2, within bounds."""
    literals = [0]
    for line in lines:
        if line is not None:
            literals.extend(int(c) for c in _constants(line.expression) if 0 <= c <= MAX_TOP_RANK and c == int(c))
    return tuple(range(max(MIN_TOP_RANK, min(max(literals) + 2, MAX_TOP_RANK)) + 1))


def _constants(node: tree.Node) -> list[float]:
    """Every literal of an expression."""
    own = [node.value] if isinstance(node, tree.Const) else []
    return own + [c for child in tree.children(node) for c in _constants(child)]


class _Walk:
    """Walks a rule at each variable rank, recording where each node is built and where it fails.

    A node is named by its path: the line's index, then the index of each child taken.
    """

    def __init__(self, hyperparameters: frozenset[str], slot_shapes: dict[str, str], ranks: tuple[int, ...]):
        self.hyperparameters = hyperparameters
        self.slot_shapes = slot_shapes
        self.ranks = ranks
        self.built: dict[NodePath, set[int]] = {}
        self.failures: dict[NodePath, dict[int, Failure]] = {}
        self.nodes: dict[NodePath, tree.Node] = {}
        self.env: dict[str, Value] = {}
        self.rank = 0

    def run(self, lines: Sequence[tree.Assignment | None], rank: int) -> None:
        """Walk every line for a variable of this rank."""
        self.rank = rank
        self.env = {"grad": Value(rank), "var": Value(rank), "step": Value(0), "weight_decay": Value(0)}
        self.env.update((name, Value(0)) for name in self.hyperparameters)
        self.env.update((name, Value(self.slot_rank(shape))) for name, shape in self.slot_shapes.items())
        for index, line in enumerate(lines):
            if line is None:
                continue
            value = self.value(line.expression, (index,))
            if line.target != "var" and line.target not in self.slot_shapes:
                self.env[line.target] = value

    def slot_rank(self, shape: str) -> int:
        """The rank of a slot of this shape for a variable of the walked rank."""
        if shape == "scalar" or (shape in FACTORED_SHAPES and self.rank < 2):
            return 0
        return self.rank

    def fail(self, path: NodePath, node: tree.Node, failure: Failure) -> None:
        """Record that the node at ``path`` fails at the walked rank."""
        self.nodes[path] = node
        self.failures.setdefault(path, {})[self.rank] = failure

    def value(self, node: tree.Node, path: NodePath) -> Value:
        """The rank (and known value) of a node at the walked rank, recording failures."""
        self.built.setdefault(path, set()).add(self.rank)
        if isinstance(node, tree.Const):
            return Value(0, node.value)
        if isinstance(node, tree.Ref):
            return self.env.get(node.name, Value(None))
        if isinstance(node, tree.Call) and node.function == "where":
            return self.where(node, path)
        if isinstance(node, tree.Call) and node.function in functions.ITERATIONS:
            return self.repeat(node, path)
        parts = [self.value(child, path + (i,)) for i, child in enumerate(tree.children(node))]
        if isinstance(node, tree.Call):
            return self.call(node, parts, path)
        return Value(_highest(parts), _known(node, parts))

    def where(self, node: tree.Call, path: NodePath) -> Value:
        """``where``: only the branch taken when the condition is decided, else all three."""
        condition = self.value(node.args[0], path + (0,))
        if condition.known is not None:
            taken = 1 if condition.known else 2
            return self.value(node.args[taken], path + (taken,))
        parts = [condition] + [self.value(node.args[i], path + (i,)) for i in (1, 2)]
        return Value(_highest(parts))

    def repeat(self, node: tree.Call, path: NodePath) -> Value:
        """``repeat``: its body walked once, reading the start's rank as the previous value (a body
        that keeps the rank keeps it every time)."""
        self.value(node.args[0], path + (0,))
        start = self.value(node.args[1], path + (1,))
        outer = self.env.get(functions.REPEATED)
        self.env[functions.REPEATED] = Value(start.rank)
        try:
            body = self.value(node.args[2], path + (2,))
        finally:
            if outer is None:
                self.env.pop(functions.REPEATED, None)
            else:
                self.env[functions.REPEATED] = outer
        return Value(_highest([start, body]))

    def call(self, node: tree.Call, parts: list[Value], path: NodePath) -> Value:
        """A function call other than ``where``."""
        ranks = [part.rank for part in parts]
        if None in ranks:
            return Value(None)
        known_ranks = [rank for rank in ranks if rank is not None]
        name = node.function
        needed = MINIMUM_RANKS.get(name, 0)
        numbers = NUMBER_ARGUMENTS.get(name, ())
        for index, (arg, rank) in enumerate(zip(node.args, known_ranks)):
            if index in numbers and rank != 0:
                needs = f"{name} needs a number as argument {index + 1}"
                self.fail(path, node, Failure(needs, tree.unparse(arg), rank))
                return Value(None)
            if index not in numbers and rank < needed:
                self.fail(path, node, Failure(f"{name} needs arguments of rank >= {needed}", tree.unparse(arg), rank))
                return Value(None)
        if name in functions.SHAPE_FACTS:
            return Value(0, _shape_fact(name, known_ranks[0]))
        if name in functions.ONE_NUMBER | functions.CREATION_FACTS:  # shape facts are answered above
            return Value(0)
        return Value(_highest(parts))

    def errors(self) -> list[ExpressionError]:
        """The failures of the nodes that fail at every rank they are built at, in line order."""
        found = []
        for path, by_rank in self.failures.items():
            if set(by_rank) != self.built[path]:
                continue
            failure = by_rank[min(by_rank)]
            ranks = sorted({f.rank for f in by_rank.values()})
            message = (
                f"{tree.unparse(self.nodes[path])}: {failure.needs}, "
                f"but {failure.culprit} has rank {' or '.join(map(str, ranks))} "
                f"{self.describe(set(by_rank))}"
            )
            found.append(ExpressionError(message, line_index=path[0]))
        return sorted(found, key=lambda error: error.line_index or 0)  # every one has its line

    def describe(self, ranks: set[int]) -> str:
        """Which variables a failure is for: all, or the ranks of the branch it is in."""
        if ranks == set(self.ranks):
            return "for a variable of any rank"
        low = min(ranks)
        if ranks == set(range(low, self.ranks[-1] + 1)):
            return f"wherever it is built (variables of rank >= {low})"
        return f"wherever it is built (variables of rank {', '.join(map(str, sorted(ranks)))})"


def _highest(parts: Sequence[Value]) -> int | None:
    """The rank of an element-wise result: the highest of its operands' (None if any is unknown)."""
    ranks = [part.rank for part in parts]
    known = [rank for rank in ranks if rank is not None]
    return None if len(known) < len(ranks) else max(known, default=0)


def _known(node: tree.Node, parts: Sequence[Value]) -> float | bool | None:
    """An operator's value when every operand's is known, computed as the compiler does."""
    values = [part.known for part in parts]
    constants = [tree.Const(float(value)) for value in values if value is not None]
    if len(constants) < len(values):
        return None
    rebuilt: tree.Node
    if isinstance(node, tree.Unary):
        rebuilt = attrs.evolve(node, operand=constants[0])
    elif isinstance(node, (tree.Binary, tree.Compare)):
        rebuilt = attrs.evolve(node, left=constants[0], right=constants[1])
    else:
        return None
    return fold.static_value(rebuilt)


def _shape_fact(name: str, rank: int) -> float | None:
    """``rank``, ``size``, ``rows`` or ``cols`` of a value of this rank, where the rank alone
    decides it (``rows`` of a vector is 1; the size of a matrix depends on its dimensions)."""
    if name == "rank":
        return float(rank)
    if name == "rows":
        return 1.0 if rank < 2 else None
    return 1.0 if rank == 0 else None  # size, cols
