"""The rule language's public names in one place, for code that reads ``expr.parse_assignment``.

The language lives in :mod:`optreg.lang.tree` (the node records), :mod:`optreg.lang.functions`
(the one function table), :mod:`optreg.lang.parse` (text → tree under limits) and
:mod:`optreg.lang.fold` (static values and folding); this module only re-exports them.

Example:
    >>> parse_assignment("var = var - grad").target
    'var'
"""

from __future__ import annotations

from optreg.lang.fold import decide_has, fold, static_value
from optreg.lang.functions import (
    BUILTIN_NAMES,
    CREATION_FACTS,
    FUNCTIONS,
    MATRIX_OPS,
    NOT_ELEMENTWISE,
    REDUCTIONS,
    SCALAR_BUILTINS,
    SHAPE_FACTS,
    TRACE_FACTS,
    VARIABLE_FACTS,
    Function,
)
from optreg.lang.parse import (
    MAX_CONSTANT_EXPONENT,
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    MAX_NODES,
    assignment_target,
    parse_assignment,
    parse_expression,
    refused_operator,
)
from optreg.lang.tree import (
    Assignment,
    Binary,
    Call,
    Compare,
    Const,
    Node,
    Ref,
    Unary,
    children,
    functions_in,
    map_children,
    names_in,
    unparse,
)

__all__ = [
    "BUILTIN_NAMES",
    "CREATION_FACTS",
    "FUNCTIONS",
    "MATRIX_OPS",
    "NOT_ELEMENTWISE",
    "REDUCTIONS",
    "SCALAR_BUILTINS",
    "SHAPE_FACTS",
    "TRACE_FACTS",
    "VARIABLE_FACTS",
    "Function",
    "MAX_CONSTANT_EXPONENT",
    "MAX_DEPTH",
    "MAX_EXPRESSION_CHARS",
    "MAX_NODES",
    "assignment_target",
    "parse_assignment",
    "parse_expression",
    "refused_operator",
    "Assignment",
    "Binary",
    "Call",
    "Compare",
    "Const",
    "Node",
    "Ref",
    "Unary",
    "children",
    "functions_in",
    "map_children",
    "names_in",
    "unparse",
    "decide_has",
    "fold",
    "static_value",
]
