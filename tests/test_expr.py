"""The update-rule language: parse trees, rule checking, and compiled evaluation checked
against an independent NumPy evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import optreg
from optreg.errors import ExpressionError
from optreg.lang.check import check_rule
from optreg.lang.parse import parse_assignment, parse_expression
from optreg.lang.tree import Assignment, Binary, Call, Compare, Const, Ref, Unary, names_in
from optreg.plugins import builtin
from optreg.runtime.compile import CompiledRule, compute_dtype
from optreg.runtime.step_scalars import cast_scalars

ADAM = builtin.builtin_spec_dir() / "adam.toml"

# --- parse trees ------------------------------------------------------------------------------

x, a, b, c, grad = Ref("x"), Ref("a"), Ref("b"), Ref("c"), Ref("grad")

TREES = [
    ("2 * grad", Binary("*", Const(2.0), grad)),
    ("1e-7", Const(1e-7)),
    ("3", Const(3.0)),
    ("(x)", x),
    ("+x", Unary("+", x)),
    ("-1", Unary("-", Const(1.0))),
    ("-x ** 2", Unary("-", Binary("**", x, Const(2.0)))),
    ("(-x) ** 2", Binary("**", Unary("-", x), Const(2.0))),
    ("2 ** -x", Binary("**", Const(2.0), Unary("-", x))),
    ("a ** b ** c", Binary("**", a, Binary("**", b, c))),
    ("a - b - c", Binary("-", Binary("-", a, b), c)),
    ("a - (b - c)", Binary("-", a, Binary("-", b, c))),
    ("a / b / c", Binary("/", Binary("/", a, b), c)),
    ("a + b * c", Binary("+", a, Binary("*", b, c))),
    ("(a + b) * c", Binary("*", Binary("+", a, b), c)),
    ("a * b ** c", Binary("*", a, Binary("**", b, c))),
    ("a + b > c", Compare(">", Binary("+", a, b), c)),
    ("a % b", Binary("%", a, b)),
    ("a * b % c", Binary("%", Binary("*", a, b), c)),
    ("a + b % c", Binary("+", a, Binary("%", b, c))),
    ("a != -b", Compare("!=", a, Unary("-", b))),
    ("sqrt(x)", Call("sqrt", (x,))),
    ("clip(x, -1, 1)", Call("clip", (x, Unary("-", Const(1.0)), Const(1.0)))),
    (
        "where(grad > 0, a, -b)",
        Call("where", (Compare(">", grad, Const(0.0)), a, Unary("-", b))),
    ),
    (
        "m / (sqrt(v) + epsilon)",
        Binary("/", Ref("m"), Binary("+", Call("sqrt", (Ref("v"),)), Ref("epsilon"))),
    ),
]


@pytest.mark.parametrize(("text", "tree"), TREES, ids=[t for t, _ in TREES])
def test_parse_expression_tree(text, tree):
    assert parse_expression(text) == tree


def test_constants_are_floats():
    assert type(parse_expression("3").value) is float


def test_parse_assignment_tree_and_text():
    line = parse_assignment("  m = beta_1 * m + (1 - beta_1) * grad  ")
    assert line == Assignment(
        target="m",
        expression=Binary(
            "+",
            Binary("*", Ref("beta_1"), Ref("m")),
            Binary("*", Binary("-", Const(1.0), Ref("beta_1")), grad),
        ),
        text="m = beta_1 * m + (1 - beta_1) * grad",
    )


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (3, "must be a string, got int"),
        ("var", "expected one assignment"),
        ("var == grad", "expected one assignment"),
        ("var: float = grad", "expected one assignment"),
        ("var = grad; m = 1", "exactly one assignment"),
        ("var.x = grad", "single plain name"),
        ("_v = grad", "names starting with '_'"),
    ],
)
def test_parse_assignment_rejects(line, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse_assignment(line)
    assert fragment in caught.value.message
    assert caught.value.line_index is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x.y", "attribute access"),
        ("x[0]", "subscripts"),
        ("sqrt", "used as a value"),
        ("sqrt(x, x)", "takes 1 argument(s), got 2"),
        ("where(x, x)", "takes 3 argument(s), got 2"),
        ("x ** 1025", "constant exponent"),
        ("x ** -1025", "constant exponent"),
        ("x ** (10 ** 10 ** 10)", "constant exponent beyond ±1024"),
        ("x ** (1e300 ** 4)", "constant exponent 1e+300 ** 4 overflows or is undefined (limit ±1024)"),
        ("x ** (2 ** 11)", "constant exponent beyond ±1024"),
        ("x ** (512 * 3)", "constant exponent beyond ±1024"),
        ("x ** -sqrt(exp(20))", "constant exponent beyond ±1024"),
        ("x ** (1 / 0)", "constant exponent 1 / 0 overflows or is undefined"),
        ("x < y < z", "chained"),
        ("x in y", "comparison 'in' is not in the language"),
        ("x not in y", "comparison 'not in' is not in the language"),
        ("x is y", "comparison 'is' is not in the language"),
        ("x is not y", "comparison 'is not' is not in the language"),
        ("x @ y", "operator '@' is not in the language; use matmul(a, b)"),
        ("x // y", "operator '//' is not in the language"),
        ("x << y", "operator '<<' is not in the language"),
        ("x >> y", "operator '>>' is not in the language"),
        ("x | y", "operator '|' is not in the language"),
        ("x & y", "operator '&' is not in the language"),
        ("x ^ 2", "operator '^' is not in the language; use ** for powers"),
        ("~x", "operator '~' is not in the language"),
        ("not x", "operator 'not' is not in the language"),
        ("x and y", "operator 'and' is not in the language; use where"),
        ("x or y", "operator 'or' is not in the language; use where"),
        ("None", "NoneType literals"),
        ("...", "ellipsis literals"),
    ],
)
def test_parse_expression_rejects(text, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert fragment in caught.value.message


def test_modulo_is_floor_modulo_when_decided_statically():
    from optreg.lang.fold import static_value

    assert [static_value(parse_expression(t)) for t in ("7 % 3", "-7 % 3", "7 % -3", "1 % 0")] == [1.0, 2.0, -2.0, None]


def test_constant_exponent_at_the_limit_is_accepted():
    assert parse_expression("x ** 1024") == Binary("**", x, Const(1024.0))
    assert parse_expression("x ** -1024") == Binary("**", x, Unary("-", Const(1024.0)))
    assert parse_expression("x ** (2 ** 10)") == Binary("**", x, Binary("**", Const(2.0), Const(10.0)))
    assert parse_expression("x ** sqrt(4)") == Binary("**", x, Call("sqrt", (Const(4.0),)))


def test_names_in():
    assert names_in(parse_expression("where(g > lr, sqrt(v), 2 * m)")) == {"g", "lr", "v", "m"}
    assert names_in(parse_expression("1 + 2")) == set()


# --- check_rule -------------------------------------------------------------------------------


def checked(lines, hyperparameters=("lr", "b"), slots=("m",)):
    return check_rule([parse_assignment(line) for line in lines], hyperparameters, slots)


def test_adam_alpha_is_the_only_scalar_local():
    spec = optreg.load_spec(ADAM)
    assert spec.rule.scalar_locals == frozenset({"alpha"})
    assert spec.rule.bool_locals == frozenset()


def test_local_using_grad_is_not_scalar():
    rule = checked(["g2 = square(grad)", "var = var - lr * g2"])
    assert rule.scalar_locals == frozenset()


def test_scalar_locals_propagate_through_scalar_locals_only():
    rule = checked(["s = lr * 2", "t = s + step", "u = t * m", "w = u + s", "var = var - w"])
    assert rule.scalar_locals == frozenset({"s", "t"})


def test_local_using_var_or_a_slot_is_not_scalar():
    rule = checked(["p = var * lr", "q = m + 1", "var = p - q"])
    assert rule.scalar_locals == frozenset()


def test_bool_local_usable_in_where():
    rule = checked(["up = grad > 0", "var = where(up, var - lr, var + lr)"])
    assert rule.bool_locals == frozenset({"up"})
    assert rule.scalar_locals == frozenset()


def test_bool_local_of_step_is_scalar_and_bool():
    rule = checked(["warm = step > 10", "var = where(warm, var - lr * grad, var)"])
    assert rule.bool_locals == frozenset({"warm"})
    assert rule.scalar_locals == frozenset({"warm"})


def test_assigned_slot_is_neither_local_kind():
    rule = checked(["m = b * m + grad", "var = var - lr * m"])
    assert rule.scalar_locals == frozenset() and rule.bool_locals == frozenset()
    assert [line.target for line in rule.assignments] == ["m", "var"]


@pytest.mark.parametrize(
    ("lines", "index", "fragment"),
    [
        (["var = var - nope"], 0, "undefined name 'nope'"),
        (["m = grad", "var = var - later", "later = 1"], 1, "undefined name 'later'"),
        (["up = grad > 0", "var = var - up"], 1, "a comparison cannot be an operand of '-'"),
        (["m = grad > 0", "var = var"], 0, "cannot store a comparison in 'm'"),
        (["d = 1", "d = 2", "var = d"], 1, "assigned twice"),
        (["var = grad", "lr = 1"], 1, "cannot assign to hyperparameter 'lr'"),
        (["step = 1", "var = grad"], 0, "cannot assign to 'step'"),
    ],
)
def test_check_rule_errors_carry_the_line_index(lines, index, fragment):
    with pytest.raises(ExpressionError) as caught:
        checked(lines)
    assert caught.value.line_index == index
    assert fragment in caught.value.message


def test_check_rule_without_var_has_no_line_index():
    with pytest.raises(ExpressionError, match="never assigns 'var'") as caught:
        checked(["m = grad"])
    assert caught.value.line_index is None


def test_var_may_be_reassigned_and_read_after():
    rule = checked(["var = var - grad", "m = var", "var = var * b"])
    assert [line.target for line in rule.assignments] == ["var", "m", "var"]


# --- compiled evaluation vs NumPy -------------------------------------------------------------

HYPER = {"lr": 0.3, "b": 0.9, "eps": 1e-3, "flag": True}
STEP = 5  # iterations is set to STEP - 1 before the one applied step

PROBE_SPEC = """\
[optimizer]
name = "probe"
summary = "one expression"

[hyperparameters]
lr = {{ default = 0.1, min = 0.0 }}
b = {{ default = 0.5, min = 0.0, max = 1.0 }}
eps = {{ default = 1e-8, min = 0.0 }}
flag = {{ default = false }}

[slots]
m = {{ init = "zeros" }}

[update]
rule = {rule}
"""


# (rule expression, the same computation written independently in NumPy)
EXPRESSIONS = [
    ("var - lr * grad", lambda n: n.var - n.lr * n.grad),
    ("sqrt(abs(grad)) * sign(var)", lambda n: np.sqrt(np.abs(n.grad)) * np.sign(n.var)),
    (
        "where(grad > 0, maximum(m, grad), minimum(m, -grad))",
        lambda n: np.where(n.grad > 0, np.maximum(n.m, n.grad), np.minimum(n.m, -n.grad)),
    ),
    ("clip(grad, -0.5, 0.5)", lambda n: np.minimum(np.maximum(n.grad, -0.5), 0.5)),
    ("exp(-square(var)) + log(1 + abs(m))", lambda n: np.exp(-(n.var**2)) + np.log(1 + np.abs(n.m))),
    ("tanh(grad) * rsqrt(1 + square(m))", lambda n: np.tanh(n.grad) / np.sqrt(1 + n.m**2)),
    ("lr * (1 - b ** step) * grad", lambda n: n.lr * (1 - n.b**n.step) * n.grad),
    ("-grad ** 2", lambda n: -(n.grad**2)),
    ("var - m - grad", lambda n: (n.var - n.m) - n.grad),
    ("var / (1 + square(m)) / 2", lambda n: (n.var / (1 + n.m * n.m)) / 2),
    ("2 ** -abs(grad)", lambda n: 2.0 ** (-np.abs(n.grad))),
    ("abs(grad) ** 2 ** 0.5", lambda n: np.abs(n.grad) ** (2**0.5)),
    ("where(var >= m, var, m) - where(grad != 0, eps, 0)", lambda n: np.maximum(n.var, n.m) - (n.grad != 0) * n.eps),
    ("where(flag, var - grad, var + grad)", lambda n: n.var - n.grad),
    ("where(grad, var, m)", lambda n: np.where(n.grad != 0, n.var, n.m)),
    ("where(step > 3, var * b, var)", lambda n: n.var * n.b),
    ("where(step < 3, var * b, var)", lambda n: n.var),
    ("maximum(var, 0) + minimum(grad, 0) * +m", lambda n: np.maximum(n.var, 0) + np.minimum(n.grad, 0) * n.m),
    ("sign(grad - var) * abs(m) ** 1.5", lambda n: np.sign(n.grad - n.var) * np.abs(n.m) ** 1.5),
    ("clip(var, -lr, lr) + 1e-3 * grad", lambda n: np.clip(n.var, -n.lr, n.lr) + 0.001 * n.grad),
    ("(var + grad) * (var - grad) / (1 + exp(m))", lambda n: (n.var**2 - n.grad**2) / (1 + np.exp(n.m))),
    (
        "var - lr * sqrt(1 - b ** step) / (1 - b ** step) * m / (sqrt(square(m)) + eps)",
        lambda n: n.var - n.lr / np.sqrt(1 - n.b**n.step) * n.m / (np.abs(n.m) + n.eps),
    ),
    pytest.param("lr", lambda n: np.full_like(n.var, n.lr)),
    ("step / 10 + m", lambda n: n.step / 10 + n.m),
    # floor modulo: the divisor's sign
    ("grad % 0.3 + var % -0.7", lambda n: np.mod(n.grad, 0.3) + np.mod(n.var, -0.7)),
    ("where(step % 5 == 0, var - grad, var)", lambda n: n.var - n.grad),  # STEP is 5
    ("where(step % 2 == 0, var - grad, var)", lambda n: n.var),
]


class Namespace:
    def __init__(self, **values):
        self.__dict__.update(values)


@pytest.fixture(scope="module")
def values():
    rng = np.random.default_rng(20240601)
    grad, var, m = (rng.normal(size=(3, 4)) for _ in range(3))
    grad[0, 0] = 0.0  # exercise sign(0), where on a numeric zero, != 0
    return Namespace(grad=grad, var=var, m=m, step=float(STEP), **HYPER)


def probe_spec(*lines):
    return optreg.load_spec_text(PROBE_SPEC.format(rule=json.dumps(list(lines))))


def apply_once(spec, values, **hyper):
    """Build the optimizer, set the slot, apply one step at STEP; return (var, slots) after."""
    opt = optreg.SpecOptimizer(spec, **{**HYPER, **hyper})
    var = tf.Variable(values.var, dtype=tf.float64)
    opt.build([var])
    opt.slots_for(var)["m"].assign(values.m)
    opt.iterations.assign(STEP - 1)
    opt.apply_gradients([(tf.constant(values.grad, tf.float64), var)])
    assert int(opt.iterations.numpy()) == STEP
    return var.numpy(), {name: slot.numpy() for name, slot in opt.slots_for(var).items()}


def _expression_id(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize(("text", "reference"), EXPRESSIONS, ids=[_expression_id(c) for c in EXPRESSIONS])
def test_compiled_expression_matches_numpy(values, text, reference):
    new_var, slots = apply_once(probe_spec(f"var = {text}"), values)
    expected = reference(values)
    assert new_var.dtype == np.float64 and new_var.shape == values.var.shape
    np.testing.assert_allclose(new_var, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(slots["m"], values.m)  # not assigned, so untouched


def test_bool_hyperparameter_false_takes_the_other_branch(values):
    new_var, _ = apply_once(probe_spec("var = where(flag, var - grad, var + grad)"), values, flag=False)
    np.testing.assert_allclose(new_var, values.var + values.grad, rtol=1e-12)


def test_multi_line_rule_with_locals_and_slot(values):
    spec = probe_spec(
        "m = b * m + (1 - b) * grad",
        "up = m > 0",
        "scale = lr / (1 - b ** step)",
        "var = where(up, var - scale * m, var + eps)",
    )
    new_var, slots = apply_once(spec, values)
    m = values.b * values.m + (1 - values.b) * values.grad
    scale = values.lr / (1 - values.b**STEP)
    np.testing.assert_allclose(slots["m"], m, rtol=1e-12)
    np.testing.assert_allclose(new_var, np.where(m > 0, values.var - scale * m, values.var + values.eps), rtol=1e-12)


def test_rule_reads_var_after_reassigning_it(values):
    new_var, slots = apply_once(probe_spec("var = var - grad", "m = var * 2", "var = var + m"), values)
    np.testing.assert_allclose(slots["m"], 2 * (values.var - values.grad), rtol=1e-12)
    np.testing.assert_allclose(new_var, 3 * (values.var - values.grad), rtol=1e-12)


def test_adam_one_step_matches_numpy(values):
    spec = optreg.load_spec(ADAM)
    opt = optreg.SpecOptimizer(spec, learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-6)
    var = tf.Variable(values.var, dtype=tf.float64)
    opt.build([var])
    v0 = np.abs(values.m)
    opt.slots_for(var)["m"].assign(values.m)
    opt.slots_for(var)["v"].assign(v0)
    opt.iterations.assign(STEP - 1)
    opt.apply_gradients([(tf.constant(values.grad, tf.float64), var)])
    m = 0.8 * values.m + 0.2 * values.grad
    v = 0.95 * v0 + 0.05 * values.grad**2
    m_hat, v_hat = m / (1 - 0.8**STEP), v / (1 - 0.95**STEP)
    expected = values.var - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-6 / np.sqrt(1 - 0.95**STEP))
    np.testing.assert_allclose(opt.slots_for(var)["m"].numpy(), m, rtol=1e-12)
    np.testing.assert_allclose(opt.slots_for(var)["v"].numpy(), v, rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12)


# --- CompiledRule directly: the step program ----------------------------------------------------


def compiled(spec):
    return CompiledRule(spec.rule, [h.name for h in spec.hyperparameters], [s.name for s in spec.slots])


def hyper_tensors(spec, **values):
    merged = {**spec.defaults(), **values}
    return {name: tf.constant(float(value), tf.float64) for name, value in merged.items()}


def test_adam_step_program_holds_only_hyperparameter_expressions():
    spec = optreg.load_spec(ADAM)
    expressions = compiled(spec).step_expressions
    for node in expressions:
        assert not names_in(node) & {"grad", "var", "m", "v"}, node
    assert parse_expression("1 - beta_1") in expressions
    assert parse_expression("1 - beta_2") in expressions
    # alpha, the folded bias correction, is computed by the step program and read as one value
    assert Ref("alpha") in expressions
    assert len(expressions) == len(set(expressions))


def test_adam_step_program_computes_the_bias_corrected_step_size():
    spec = optreg.load_spec(ADAM)
    rule = compiled(spec)
    scalars = rule.step_scalars(hyper_tensors(spec, learning_rate=0.01), tf.constant(3.0, tf.float64))
    alpha = scalars[rule.step_expressions.index(Ref("alpha"))]
    assert alpha.dtype == tf.float64
    assert float(alpha) == pytest.approx(0.01 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3), rel=1e-14)


def test_inline_bias_correction_is_hoisted_whole():
    spec = probe_spec("m = b * m + grad", "var = var - lr * sqrt(1 - b ** step) / (1 - b ** step) * m")
    expressions = compiled(spec).step_expressions
    assert parse_expression("lr * sqrt(1 - b ** step) / (1 - b ** step)") in expressions
    assert all(not names_in(node) & {"grad", "var", "m"} for node in expressions)


def test_repeated_scalar_subexpression_is_hoisted_once():
    spec = probe_spec("var = var - lr * grad + lr * m")
    assert compiled(spec).step_expressions == (Ref("lr"),)


def test_expression_with_no_scalar_part_hoists_nothing():
    spec = probe_spec("var = var - grad * m")
    assert compiled(spec).step_expressions == ()


def test_compiled_update_returns_var_and_assigned_slots_only(values):
    spec = probe_spec("m = grad", "tmp = m * 2", "var = var - lr * tmp")
    rule = compiled(spec)
    scalars = rule.step_scalars(hyper_tensors(spec, lr=0.5), tf.constant(1.0, tf.float64))
    grad = tf.constant(values.grad)
    out = rule.update(grad, tf.constant(values.var), {"m": tf.constant(values.m)}, scalars)
    assert set(out) == {"var", "m"}
    np.testing.assert_allclose(out["m"].numpy(), values.grad, rtol=1e-12)
    np.testing.assert_allclose(out["var"].numpy(), values.var - values.grad, rtol=1e-12)


def test_scalar_slot_result_is_broadcast_to_the_variable_shape(values):
    spec = probe_spec("m = lr * step", "var = var - m")
    rule = compiled(spec)
    scalars = rule.step_scalars(hyper_tensors(spec, lr=0.25), tf.constant(4.0, tf.float64))
    out = rule.update(tf.constant(values.grad), tf.constant(values.var), {"m": tf.constant(values.m)}, scalars)
    assert out["m"].shape == values.var.shape
    np.testing.assert_array_equal(out["m"].numpy(), np.full((3, 4), 1.0))
    np.testing.assert_allclose(out["var"].numpy(), values.var - 1.0, rtol=1e-12)


def test_scalar_var_result_is_broadcast_to_the_variable_shape(values):
    spec = probe_spec("var = lr * step")
    rule = compiled(spec)
    scalars = rule.step_scalars(hyper_tensors(spec, lr=0.25), tf.constant(4.0, tf.float64))
    out = rule.update(tf.constant(values.grad), tf.constant(values.var), {"m": tf.constant(values.m)}, scalars)
    assert out["var"].shape == values.var.shape
    np.testing.assert_array_equal(out["var"].numpy(), np.full((3, 4), 1.0))


def test_update_runs_in_the_widest_dtype(values):
    spec = probe_spec("var = var + m")
    rule = compiled(spec)
    scalars = rule.step_scalars(hyper_tensors(spec), tf.constant(1.0, tf.float64))
    var16 = tf.constant(values.var, tf.float16)
    out = rule.update(tf.constant(values.grad, tf.float16), var16, {"m": tf.constant(values.m, tf.float32)}, scalars)
    assert out["var"].dtype == tf.float32
    assert compute_dtype(tf.bfloat16, [tf.float32, tf.float16]) == tf.float32
    assert compute_dtype(tf.float64, []) == tf.float64


# --- reductions, shape facts and matrix operations -------------------------------------------

WHOLE = [
    ("var - sum(grad)", lambda n: n.var - n.grad.sum()),
    ("var - mean(grad) * m", lambda n: n.var - n.grad.mean() * n.m),
    ("var - lr * grad / norm(grad)", lambda n: n.var - n.lr * n.grad / np.sqrt((n.grad**2).sum())),
    ("var / max_abs(grad - 3)", lambda n: n.var / np.abs(n.grad - 3).max()),
    ("var - row_mean(square(grad))", lambda n: n.var - (n.grad**2).mean(axis=-1, keepdims=True)),
    ("var - col_mean(grad) * 2", lambda n: n.var - 2 * n.grad.mean(axis=-2, keepdims=True)),
    ("var - rank(var) - size(grad) * rows(var) + cols(m)", lambda n: n.var - 2 - 12 * 3 + 4),
    ("var - lr * matmul(matmul(grad, transpose(grad)), m)", lambda n: n.var - n.lr * (n.grad @ n.grad.T) @ n.m),
    (
        "var - transpose(matmul(transpose(m), matmul(grad, transpose(grad))))",
        lambda n: n.var - (n.m.T @ n.grad @ n.grad.T).T,
    ),
    ("where(rank(var) >= 2, var - sqrt(size(var)), var)", lambda n: n.var - np.sqrt(12)),
    ("where(rows(var) > cols(var), var, var + 1)", lambda n: n.var + 1),
]


@pytest.mark.parametrize(("text", "reference"), WHOLE, ids=[case[0] for case in WHOLE])
def test_reductions_shape_facts_and_matrix_operations_match_numpy(values, text, reference):
    new_var, _ = apply_once(probe_spec(f"var = {text}"), values)
    np.testing.assert_allclose(new_var, reference(values), rtol=1e-12, atol=1e-14)


def test_reductions_are_per_variable():
    spec = probe_spec("var = var - grad / norm(grad)")
    opt = optreg.SpecOptimizer(spec, **HYPER)
    a, b = tf.Variable([3.0, 4.0], dtype=tf.float64), tf.Variable([[1.0]], dtype=tf.float64)
    opt.apply_gradients([(tf.constant([3.0, 4.0], tf.float64), a), (tf.constant([[2.0]], tf.float64), b)])
    np.testing.assert_allclose(a.numpy(), [3.0 - 0.6, 4.0 - 0.8], rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), [[0.0]], atol=1e-15)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4)])
def test_shape_fact_conditions_build_only_the_branch_taken(shape):
    """col_mean and matmul need rank 2; the rank test is decided when traced, so scalars and
    vectors never build them (they would fail if built)."""
    spec = probe_spec("var = where(rank(var) >= 2, var - matmul(grad, transpose(col_mean(grad))), var - grad)")
    opt = optreg.SpecOptimizer(spec, **HYPER)
    rng = np.random.default_rng(7)
    start, grad = rng.normal(size=shape), rng.normal(size=shape)
    var = tf.Variable(start)
    tf.function(lambda: opt.apply_gradients([(tf.constant(grad), var)]))()
    if len(shape) >= 2:
        expected = start - grad @ np.swapaxes(grad.mean(axis=-2, keepdims=True), -1, -2)
    else:
        expected = start - grad
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12)


def test_a_condition_on_values_still_builds_both_branches(values):
    new_var, _ = apply_once(probe_spec("var = where(norm(grad) > 100, var, var - grad)"), values)
    np.testing.assert_allclose(new_var, values.var - values.grad, rtol=1e-12)


@pytest.mark.parametrize(
    "lines, elementwise",
    [
        (["var = var - lr * sqrt(abs(grad)) * where(grad > 0, 1, -1)"], True),
        (["m = b * m + grad", "var = var - m"], True),
        (["var = var - grad / norm(grad)"], False),
        (["var = where(rank(var) >= 2, var, var - grad)"], False),
        (["n = size(var)", "var = var - grad / n"], False),
        (["var = var - transpose(grad)"], False),
    ],
)
def test_compiled_rule_says_whether_it_is_elementwise(lines, elementwise):
    assert compiled(probe_spec(*lines)).elementwise is elementwise


def test_builtin_elementwise_specs_say_so():
    assert compiled(optreg.load_spec(ADAM)).elementwise


SCALAR_SLOT_SPEC = """\
[optimizer]
name = "probe"
summary = "a scalar slot"
[hyperparameters]
lr = {{ default = 0.1 }}
[slots]
total = {{ init = "zeros", shape = "scalar" }}
[update]
rule = {rule}
"""


def test_scalar_slot_holds_one_number_per_variable():
    spec = optreg.load_spec_text(
        SCALAR_SLOT_SPEC.format(rule=json.dumps(["total = total + norm(grad) * lr", "var = var - total * grad"]))
    )
    opt = optreg.SpecOptimizer(spec)
    var = tf.Variable(np.ones((3, 4)))
    for _ in range(2):
        opt.apply_gradients([(tf.constant(np.full((3, 4), 0.5)), var)])
    total = opt.slots_for(var)["total"]
    assert total.shape == ()
    np.testing.assert_allclose(total.numpy(), 2 * 0.1 * np.sqrt(12 * 0.25), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), 1 - 0.5 * 0.1 * np.sqrt(3) * (1 + 2), rtol=1e-12)


@pytest.mark.parametrize("value", ["total + grad", "row_mean(grad)", "var"])
def test_scalar_slot_refuses_a_tensor_value(value):
    text = SCALAR_SLOT_SPEC.format(rule=json.dumps([f"total = {value}", "var = var - total"]))
    with pytest.raises(optreg.SpecError, match="holds one number per variable") as caught:
        optreg.load_spec_text(text)
    assert caught.value.key == "update.rule[0]"


@pytest.mark.parametrize("text", ["var = var - 1if grad else 2", "var = var - 0x1for"])
def test_what_python_only_warns_about_is_one_clear_syntax_error(text):
    """Python accepts "1if" with a SyntaxWarning on stderr; a rule refuses it, quietly."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ExpressionError, match="syntax error.*literal"):
            parse_assignment(text)
    assert not caught


# --- errors raised when a rule line is traced -------------------------------------------------

MATRIX_SPEC = """\
[optimizer]
name = "squared"
summary = "a matrix product, fine on square matrices only"

[hyperparameters]
learning_rate = { default = 0.01 }

[slots]
r = { shape = "rows" }

[update]
rule = [
  "r = r + square(grad)",
  "g2 = matmul(grad, grad)",
  "var = var - learning_rate * g2",
]
"""


@pytest.fixture
def matrix_spec_path(tmp_path):
    path = tmp_path / "squared.toml"
    path.write_text(MATRIX_SPEC.replace('  "r = r + square(grad)",\n', ""), encoding="utf-8")
    return path


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "eager"])
def test_a_shape_error_when_traced_is_a_rule_error_naming_the_line(matrix_spec_path, jit_compile):
    opt = optreg.Registry(spec_paths=[matrix_spec_path]).create("squared", jit_compile=jit_compile)
    opt.apply_gradients([(tf.ones([2, 2]), tf.Variable(tf.ones([2, 2])))])  # a square matrix is fine
    with pytest.raises(optreg.RuleError) as caught:
        opt.apply_gradients([(tf.ones([3]), tf.Variable(tf.ones([3])))])
    error = caught.value
    assert (error.source, error.line, error.rule_line, error.text) == (
        str(matrix_spec_path), 13, 1, "g2 = matmul(grad, grad)"
    )
    assert str(error).startswith(
        f'{matrix_spec_path}:13: [update] rule line 1 "g2 = matmul(grad, grad)": matmul(grad, grad): '
    )
    assert str(error).endswith("(for a float32 variable of shape [3])")
    assert "\n" not in str(error) and "{{" not in str(error) and "[Op:" not in str(error)
    assert isinstance(error, optreg.SpecError) and error.exit_code == 1


def test_a_rule_error_surfaces_from_inside_a_tf_function(matrix_spec_path):
    opt = optreg.Registry(spec_paths=[matrix_spec_path]).create("squared")
    var = tf.Variable(tf.ones([2, 3]))

    @tf.function
    def step():
        opt.apply_gradients([(tf.ones([2, 3]), var)])

    with pytest.raises(optreg.RuleError, match=r'rule line 1 "g2 = matmul\(grad, grad\)": .*\[2, 3\]'):
        step()


def test_a_slot_given_a_value_of_another_shape_is_a_rule_error():
    spec = optreg.load_spec_text(MATRIX_SPEC.replace("matmul(grad, grad)", "grad"), source="squared.toml")
    with pytest.raises(optreg.RuleError) as caught:
        optreg.SpecOptimizer(spec).apply_gradients([(tf.ones([2, 3]), tf.Variable(tf.ones([2, 3])))])
    assert (caught.value.line, caught.value.rule_line) == (13, 1)
    assert "slot 'r' has shape [2, 1], but the value assigned has shape [2, 3]" in caught.value.problem


# --- the one function table ---------------------------------------------------------------


def test_every_function_tensorflow_computes_has_exactly_one_implementation_and_every_implementation_a_function():
    from optreg.lang import functions
    from optreg.runtime.tf_functions import TF_FUNCTIONS

    computed = [
        name for name, function in functions.FUNCTIONS.items() if function.kind in functions.TENSORFLOW_COMPUTED_KINDS
    ]
    assert sorted(TF_FUNCTIONS) == sorted(computed) == sorted(functions.TENSORFLOW_COMPUTED)
    # the others are facts, each answered without TensorFlow, repeat, unrolled by the compiler,
    # and the random draws, keyed per variable by optreg.runtime.noise
    others = functions.TRACE_FACTS | functions.CREATION_FACTS | functions.ITERATIONS | functions.RANDOM
    assert set(functions.FUNCTIONS) - set(TF_FUNCTIONS) == others


def test_the_function_sets_are_derived_from_the_table_kinds():
    from optreg.lang import functions

    kinds = {name: function.kind for name, function in functions.FUNCTIONS.items()}
    assert functions.REDUCTIONS == {n for n, k in kinds.items() if k in ("reduction", "axis_reduction")}
    assert functions.NOT_ELEMENTWISE == {
        n for n, k in kinds.items() if k not in ("elementwise", "select", "creation_fact", "iteration")
    }
    assert functions.ONE_NUMBER == functions.TRACE_FACTS | (functions.REDUCTIONS - functions.of_kind("axis_reduction"))
    assert all(len(function.doc) > 10 and function.arity >= 1 for function in functions.FUNCTIONS.values())
    with pytest.raises(ValueError, match="unknown function kinds"):
        functions.of_kind("elementwize")


def test_a_tensor_to_a_scalar_power_matches_numpy_in_and_out_of_xla():
    """``**`` of a tensor by a scalar known only when the step runs takes sqrt at 0.5 (XLA's pow is
    slow on a CPU) and pow otherwise; both agree with NumPy, compiled or not."""
    from optreg.runtime.tf_functions import BINARY

    base = np.array([[0.3, 2.0, 7.5], [1e-4, 1.0, 40.0]], np.float32)
    compiled = tf.function(lambda x, y: BINARY["**"](x, y), jit_compile=True)
    traced = tf.function(lambda x, y: BINARY["**"](x, y), jit_compile=False)  # the run-time tf.cond
    for exponent in (0.5, 1.5, -0.5):
        expected = base.astype(np.float64) ** exponent
        eager = BINARY["**"](tf.constant(base), tf.constant(exponent))  # the exponent known: no tf.cond
        for result in (eager, compiled(base, tf.constant(exponent)), traced(base, tf.constant(exponent))):
            np.testing.assert_allclose(result.numpy(), expected, rtol=2e-7)
    for power in (compiled, traced):
        np.testing.assert_array_equal(power(base, tf.constant(0.5)).numpy(), np.sqrt(base))
        # which branch ran: sqrt keeps the sign of -0.0, pow gives +0.0 (two elements: a base of
        # one element always takes pow)
        signs = [np.signbit(power(tf.constant([-0.0, 1.0]), tf.constant(y)).numpy()[0]) for y in (0.5, 1.5)]
        assert signs == [True, False]


def test_the_step_programs_results_are_cast_together_per_shape_with_each_casts_values():
    """Inside a trace, the scalars to cast are cast as one tensor per dtype and shape (one kernel
    where XLA hoists them out of a loop), as an optimizer's traced step does; literals and bools
    are left to casts of their own, and eagerly each is cast alone. Every value is the one its
    own cast gives."""
    values = [0.1, 1 / 3, 0.9, 2.0**-30, float("inf")]
    per_run = np.array([[0.1, 0.7, 1e-9]])
    expected = [np.float32(v) for v in values] + [per_run.astype(np.float32), np.float32(0.5), True]

    def cast_all(hypers, column, flag):
        return cast_scalars([*hypers, column, tf.constant(0.5, tf.float64), flag], tf.float32)

    args = ([tf.constant(v, tf.float64) for v in values], tf.constant(per_run), tf.constant(True))
    traced = tf.function(cast_all, autograph=False)
    ops = traced.get_concrete_function(*args).graph.get_operations()
    casts = [op for op in ops if op.type == "Cast"]
    # one cast of the five stacked scalars, one of the per-run column, one folded literal
    assert [tuple(op.inputs[0].shape.as_list()) for op in casts] == [(5,), (1, 3), ()]
    for results in (traced(*args), cast_all(*args)):
        assert [r.dtype for r in results] == [tf.float32] * 7 + [tf.bool]
        for result, want in zip(results, expected):
            np.testing.assert_array_equal(result.numpy(), want)
    # an optimizer's traced step casts its step scalars so: Adam's, one stacked float64 tensor
    opt, var = optreg.registry.create("adam", jit_compile=False), tf.Variable([1.0, 2.0])
    step = tf.function(lambda g: opt.apply_gradients([(g, var)]))
    graph = step.get_concrete_function(tf.constant([0.5, 0.5])).graph
    stacked = [op for op in graph.get_operations() if op.type == "Cast" and op.inputs[0].op.type == "Pack"]
    assert len(stacked) == 1 and stacked[0].inputs[0].dtype == tf.float64


def test_an_eager_step_casts_its_step_scalars_once_per_dtype_and_a_traced_one_per_variable(monkeypatch):
    """Op by op, the variables of one compute dtype read one cast of the step scalars (a cast is
    an eager op per scalar); each step casts its own, so a changed learning rate is read at the
    next step. Inside a trace each variable casts its own, as the graph's branches need."""
    import optreg.runtime.step_scalars as step_scalars

    calls = []
    original = step_scalars.cast_scalars
    monkeypatch.setattr(step_scalars, "cast_scalars", lambda s, d: calls.append(d) or original(s, d))
    starts = [np.full(3, 1.0, np.float32), np.full(2, 2.0, np.float32), np.full(4, 3.0, np.float64)]
    variables = [tf.Variable(s) for s in starts]
    grads = [tf.constant(np.full_like(s, 0.5)) for s in starts]
    opt = optreg.registry.create("sgd", learning_rate=0.1, momentum=0.5, jit_compile=False)
    opt.apply_gradients(zip(grads, variables))
    assert calls == [tf.float32, tf.float64]  # two float32 variables, one cast
    opt.learning_rate = 0.2
    opt.apply_gradients(zip(grads, variables))
    assert calls[2:] == [tf.float32, tf.float64]
    # momentum 0.5: first step -0.05, second -(0.5 * 0.05 + 0.1) with the new learning rate
    for var, start in zip(variables, starts):
        np.testing.assert_allclose(var.numpy(), start - 0.05 - 0.125, rtol=1e-6)
    calls.clear()
    tf.function(lambda: opt.apply_gradients(zip(grads, variables)), autograph=False)()
    assert calls == [tf.float32, tf.float32, tf.float64]
