"""Property tests (hypothesis): random expressions of the grammar evaluate as an independent
NumPy evaluator says; random text and random TOML raise nothing but SpecError; ``optreg
validate`` never prints a traceback. Each property runs 1000 examples."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import optreg
from optreg.cli import main
from optreg.runtime.compile import CompiledRule

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- random expressions, rendered as text and evaluated in NumPy --------------------------------

TENSORS = ("grad", "var", "m")
SCALARS = ("lr", "b", "step")
UNARY = {
    "sqrt": np.sqrt, "square": np.square, "abs": np.abs, "sign": np.sign, "exp": np.exp,
    "log": np.log, "tanh": np.tanh, "rsqrt": lambda x: 1 / np.sqrt(x),
}
BINARY_FUNCTIONS = {"maximum": np.maximum, "minimum": np.minimum}
OPERATORS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
COMPARISONS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _literal(v):
    """A literal leaf: its text and its value, ``v`` to 3 decimals."""
    # round(v, 3) + 0.0 turns -0.0 into 0.0: which zero maximum(0.0, -0.0) returns is left open by
    # IEEE 754, and TensorFlow and NumPy choose differently (rsqrt of it is then ±inf)
    value = round(v, 3) + 0.0
    return repr(value), lambda env: np.float64(value)


def leaf():
    numbers = st.floats(-4, 4, allow_nan=False).map(_literal)
    names = st.sampled_from(TENSORS + SCALARS).map(lambda n: (n, lambda env, n=n: env[n]))
    return numbers | names


#: Set when a reference evaluation met maximum or minimum of 0.0 and -0.0: IEEE 754 leaves open
#: which zero they return, TensorFlow and NumPy choose differently (and TensorFlow not always the
#: same way), and 1/x or rsqrt of it is then +inf on one side and -inf on the other.
SIGNED_ZERO_TIES: list[bool] = []


def signed_zero_checked(function, a, b):
    """``function(a, b)``, noting in :data:`SIGNED_ZERO_TIES` whether any pair was 0.0 against -0.0."""
    left, right = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    if np.any((left == 0) & (right == 0) & (np.signbit(left) != np.signbit(right))):
        SIGNED_ZERO_TIES.append(True)
    return function(a, b)


def extend(children):
    def unary(f):
        return children.map(lambda c: (f"{f}({c[0]})", lambda env: UNARY[f](c[1](env))))

    def binary(args):
        (op, (a_text, a_fn), (b_text, b_fn)) = args
        return (f"({a_text} {op} {b_text})", lambda env: OPERATORS[op](a_fn(env), b_fn(env)))

    def function2(args):
        (f, (a_text, a_fn), (b_text, b_fn)) = args
        return (f"{f}({a_text}, {b_text})", lambda env: signed_zero_checked(BINARY_FUNCTIONS[f], a_fn(env), b_fn(env)))

    def power(args):
        ((a_text, a_fn), exponent) = args
        return (f"({a_text}) ** {exponent}", lambda env: np.power(a_fn(env), np.float64(exponent)))

    def where(args):
        (op, (l_text, l_fn), (r_text, r_fn), (a_text, a_fn), (b_text, b_fn)) = args
        text = f"where({l_text} {op} {r_text}, {a_text}, {b_text})"
        return (text, lambda env: np.where(COMPARISONS[op](l_fn(env), r_fn(env)), a_fn(env), b_fn(env)))

    return st.one_of(
        st.sampled_from(sorted(UNARY)).flatmap(unary),
        st.tuples(st.sampled_from(sorted(OPERATORS)), children, children).map(binary),
        st.tuples(st.sampled_from(sorted(BINARY_FUNCTIONS)), children, children).map(function2),
        st.tuples(children, st.integers(0, 3)).map(power),
        st.tuples(st.sampled_from(sorted(COMPARISONS)), children, children, children, children).map(where),
        children.map(lambda c: (f"-({c[0]})", lambda env: -c[1](env))),
    )


EXPRESSIONS = st.recursive(leaf(), extend, max_leaves=8)
PROBE = """
[optimizer]
name = "probe"
summary = "one random expression"
[hyperparameters]
lr = {{ default = 0.1 }}
b = {{ default = 0.9 }}
[slots]
m = {{ init = "zeros" }}
[update]
rule = [{rule}]
"""
VALUES = np.random.default_rng(7).normal(size=(3, 3, 4)) * 2
ENV = {
    "grad": VALUES[0],
    "var": VALUES[1],
    "m": VALUES[2],
    "lr": np.float64(0.1),
    "b": np.float64(0.9),
    "step": np.float64(3),
}


def evaluate_with_optreg(text: str) -> np.ndarray:
    spec = optreg.load_spec_text(PROBE.format(rule=json.dumps(f"var = {text}")))
    rule = CompiledRule(spec.rule, ["lr", "b"], ["m"])
    scalars = rule.step_scalars(
        {"lr": tf.constant(0.1, tf.float64), "b": tf.constant(0.9, tf.float64)}, tf.constant(3.0, tf.float64)
    )
    new = rule.update(tf.constant(ENV["grad"]), tf.constant(ENV["var"]), {"m": tf.constant(ENV["m"])}, scalars)
    return new["var"].numpy()


def test_a_maximum_of_zeros_of_both_signs_is_noted_as_a_tie():
    SIGNED_ZERO_TIES.clear()
    signed_zero_checked(np.maximum, np.float64(0.0), -np.float64(0.0))
    assert SIGNED_ZERO_TIES == [True]
    SIGNED_ZERO_TIES.clear()
    signed_zero_checked(np.maximum, np.float64(0.0), np.float64(0.0))
    assert SIGNED_ZERO_TIES == []


@EXAMPLES
@given(EXPRESSIONS)
def test_random_expressions_evaluate_as_numpy_does(expression):
    text, numpy_fn = expression
    SIGNED_ZERO_TIES.clear()
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(numpy_fn(ENV), VALUES[1].shape)
    assume(not SIGNED_ZERO_TIES)  # which zero is the maximum of 0.0 and -0.0 is left open
    actual = evaluate_with_optreg(text)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=text)


# --- random text and random TOML ------------------------------------------------------------------

KEYS = st.sampled_from(
    ["optimizer", "name", "summary", "references", "hyperparameters", "slots", "update", "rule", "default",
     "type", "min", "max", "doc", "init", "dtype", "learning_rate", "m", "var", "grad", "step", "__class__"]
) | st.text(min_size=1, max_size=8)
RULE_TEXT = st.sampled_from(
    ["var = var - lr * grad", "m = grad", "var = open('x')", "var = ", "= var", "var = var.x"]
) | st.text(max_size=30)
SCALAR_VALUES = (
    st.text(max_size=20) | RULE_TEXT | st.integers() | st.floats() | st.booleans()
    | st.sampled_from(["zeros", "ones", "var", "float32", "bool", "int", "float"])
)
VALUES_TREE = st.recursive(
    SCALAR_VALUES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES_TREE, max_size=5)


def toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) and key.isascii() else json.dumps(key)


def toml_value(value) -> str:
    """A TOML inline rendering (nan and inf included) of a random value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(document: dict) -> str:
    lines = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def only_spec_errors(text: str) -> None:
    try:
        optreg.load_spec_text(text, source="random.toml")
    except optreg.SpecError as error:
        assert error.source == "random.toml"


@EXAMPLES
@given(st.text(max_size=400))
def test_random_text_raises_nothing_but_spec_error(text):
    only_spec_errors(text)


@EXAMPLES
@given(DOCUMENTS)
def test_random_toml_raises_nothing_but_spec_error(document):
    only_spec_errors(toml_document(document))


VALID = Path(optreg.registry.get("adam").spec.source).read_text(encoding="utf-8")


@EXAMPLES
@given(st.integers(0, len(VALID)), st.integers(0, 40), st.text(max_size=20))
def test_edited_valid_specs_raise_nothing_but_spec_error(start, length, insert):
    only_spec_errors(VALID[:start] + insert + VALID[start + length :])


SCRATCH = Path(tempfile.mkdtemp(prefix="optreg-validate-"))


@EXAMPLES
@given(DOCUMENTS | st.text(max_size=200))
def test_validate_never_prints_a_traceback(content):
    path = SCRATCH / "random.toml"
    path.write_text(
        content if isinstance(content, str) else toml_document(content), encoding="utf-8", errors="surrogatepass"
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.startswith(str(path))


def test_fuzzing_the_spec_loader_for_ten_seconds_finds_no_crash():
    from tests.fuzz_spec_loader import run

    tried, crashes = run(seconds=10, seed=20261121)
    assert tried > 1000
    assert crashes == [], crashes[0][1]
