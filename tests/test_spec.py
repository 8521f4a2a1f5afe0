"""Spec loading: the built-in specs, a corpus of malformed specs, hostile specs, and
hyperparameter checking."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import optreg
from optreg.errors import HyperparameterError
from optreg.model.hyperparameters import Hyperparameter, resolve_hyperparameters
from optreg.plugins import builtin

SPEC_DIR = builtin.builtin_spec_dir()
BUILTIN_SPECS = sorted(SPEC_DIR.glob("*.toml"))

# --- building spec texts ----------------------------------------------------------------

HEADER = """\
[optimizer]
name = "probe"
summary = "a probe optimizer"
references = ["nobody 2024"]
"""

HYPERPARAMETERS = """\
[hyperparameters]
learning_rate = { default = 0.1, min = 0.0, doc = "step size" }
beta_1 = { default = 0.9, min = 0.0, max = 1.0 }
"""

SLOTS = """\
[slots]
m = { init = "zeros" }
"""

RULE = ["m = beta_1 * m + grad", "var = var - learning_rate * m"]


def rule_table(*lines) -> str:
    """An [update] table whose rule is the given lines, each a TOML basic string."""
    body = "".join(f"  {json.dumps(line)},\n" for line in lines)
    return f"[update]\nrule = [\n{body}]\n"


def spec_text(header=HEADER, hyperparameters=HYPERPARAMETERS, slots=SLOTS, update=None, extra="") -> str:
    """A spec from its four tables; the defaults make a valid spec."""
    update = rule_table(*RULE) if update is None else update
    return "\n".join(part for part in (header, hyperparameters, slots, update, extra) if part)


def with_rule(*lines) -> str:
    """The valid spec with its rule replaced."""
    return spec_text(update=rule_table(*lines))


def with_hyperparameter(entry: str) -> str:
    """The valid spec with one more hyperparameter line."""
    return spec_text(hyperparameters=HYPERPARAMETERS + entry + "\n")


def with_slot(entry: str) -> str:
    """The valid spec with one more slot line."""
    return spec_text(slots=SLOTS + entry + "\n")


def with_header(**fields) -> str:
    """The valid spec with [optimizer] fields replaced (value None drops the field)."""
    values = {"name": '"probe"', "summary": '"a probe optimizer"', "references": '["nobody 2024"]', **fields}
    lines = "".join(f"{key} = {value}\n" for key, value in values.items() if value is not None)
    return spec_text(header="[optimizer]\n" + lines)


def balanced_sum(depth: int) -> str:
    """``(grad+grad)`` nested ``depth`` times on both sides: 2**depth terms."""
    return "grad" if depth == 0 else f"({balanced_sum(depth - 1)}+{balanced_sum(depth - 1)})"


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- built-in specs -----------------------------------------------------------------------


def test_builtin_spec_folder_is_not_empty():
    assert {p.stem for p in BUILTIN_SPECS} >= {"adam", "gradient_descent", "momentum", "sgd"}


@pytest.mark.parametrize("path", BUILTIN_SPECS, ids=lambda p: p.stem)
def test_builtin_spec_loads_with_summary_and_references(path):
    spec = optreg.load_spec(path)
    assert spec.name == path.stem
    assert spec.source == str(path)
    assert spec.summary and "\n" not in spec.summary
    assert spec.references and all(isinstance(r, str) and r for r in spec.references)
    assert any(a.target == "var" for a in spec.rule.assignments)


@pytest.mark.parametrize("path", BUILTIN_SPECS, ids=lambda p: p.stem)
def test_builtin_spec_defaults_pass_their_own_checks(path):
    spec = optreg.load_spec(path)
    for hyper in spec.hyperparameters:
        assert hyper.check(hyper.default) == hyper.default


def test_valid_probe_spec_loads():
    spec = optreg.load_spec_text(spec_text())
    assert spec.defaults() == {"learning_rate": 0.1, "beta_1": 0.9}
    assert [s.name for s in spec.slots] == ["m"]


def test_loading_specs_and_listing_the_registry_never_imports_tensorflow():
    script = (
        "import sys, optreg\n"
        f"optreg.load_spec({str(SPEC_DIR / 'adam.toml')!r})\n"
        "assert 'adam' in optreg.registry.names()\n"
        "optreg.registry.get('sgd').defaults()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- malformed specs ------------------------------------------------------------------------

# (id, spec text, expected .key, fragment of the message)
MALFORMED = [
    # TOML and the top level
    ("toml-syntax", "[optimizer\nname = 1\n", "", "TOML syntax error"),
    ("toml-missing-value", HEADER + "extra = \n", "", "TOML syntax error"),
    ("unknown-top-level-key", spec_text(extra="[extras]\nx = 1\n"), "extras", "unknown key 'extras'"),
    ("missing-optimizer", spec_text(header=""), "optimizer", "missing required key 'optimizer'"),
    ("missing-update", spec_text(update=""), "update", "missing required key 'update'"),
    ("optimizer-not-a-table", spec_text(header='optimizer = "adam"\n'), "optimizer", "must be a table"),
    # [optimizer]
    ("missing-name", with_header(name=None), "optimizer.name", "missing required key 'name'"),
    ("missing-summary", with_header(summary=None), "optimizer.summary", "missing required key 'summary'"),
    ("unknown-optimizer-key", with_header(author='"me"'), "optimizer.author", "unknown key 'author'"),
    ("name-not-a-string", with_header(name="3"), "optimizer.name", "must be a non-empty string"),
    ("name-bad-characters", with_header(name='"Adam!"'), "optimizer.name", "lower-case letters"),
    ("summary-blank", with_header(summary='"   "'), "optimizer.summary", "must be a non-empty string"),
    ("references-not-a-list", with_header(references='"Kingma"'), "optimizer.references", "must be a list"),
    ("reference-not-a-string", with_header(references='["ok", 7]'), "optimizer.references[1]", "non-empty string"),
    ("notes-not-a-list", with_header(notes='"eps outside"'), "optimizer.notes", "must be a list"),
    ("note-blank", with_header(notes='["ok", " "]'), "optimizer.notes[1]", "non-empty string"),
    # [hyperparameters]
    ("hyper-unknown-key", with_hyperparameter("eps = { default = 1.0, maximum = 2.0 }"),
     "hyperparameters.eps.maximum", "unknown key 'maximum'"),
    ("hyper-not-a-table", with_hyperparameter("eps = 1e-7"), "hyperparameters.eps", "must be a table"),
    ("hyper-missing-default", with_hyperparameter("eps = { min = 0.0 }"),
     "hyperparameters.eps.default", "missing required key 'default'"),
    ("default-above-max", with_hyperparameter("eps = { default = 1.5, max = 1.0 }"),
     "hyperparameters.eps", "at most 1.0"),
    ("default-below-min", with_hyperparameter("eps = { default = -1.0, min = 0.0 }"),
     "hyperparameters.eps", "at least 0.0"),
    ("min-greater-than-max", with_hyperparameter("eps = { default = 0.5, min = 1.0, max = 0.0 }"),
     "hyperparameters.eps", "min (1.0) is greater than max (0.0)"),
    ("bool-with-bounds", with_hyperparameter("flag = { default = true, min = 0 }"),
     "hyperparameters.flag", "a bool hyperparameter has no min"),
    ("min-a-string", with_hyperparameter('eps = { default = 0.5, min = "0" }'),
     "hyperparameters.eps", "min must be a finite number"),
    ("max-infinite", with_hyperparameter("eps = { default = 0.5, max = inf }"),
     "hyperparameters.eps", "max must be a finite number"),
    ("unknown-type", with_hyperparameter('eps = { default = 0.5, type = "complex" }'),
     "hyperparameters.eps", "type must be one of"),
    ("default-a-string", with_hyperparameter('eps = { default = "0.5" }'),
     "hyperparameters.eps", "must be a number"),
    ("default-nan", with_hyperparameter("eps = { default = nan }"), "hyperparameters.eps", "must be finite"),
    ("int-default-not-whole", with_hyperparameter('k = { default = 1.5, type = "int" }'),
     "hyperparameters.k", "whole number"),
    ("bool-type-number-default", with_hyperparameter('flag = { default = 1, type = "bool" }'),
     "hyperparameters.flag", "must be true or false"),
    ("doc-not-a-string", with_hyperparameter("eps = { default = 0.5, doc = 3 }"),
     "hyperparameters.eps", "doc must be a string"),
    ("reserved-grad", with_hyperparameter("grad = { default = 1.0 }"), "hyperparameters.grad", "'grad' is reserved"),
    ("reserved-clipnorm", with_hyperparameter("clipnorm = { default = 1.0 }"),
     "hyperparameters.clipnorm", "'clipnorm' is reserved"),
    ("reserved-function-name", with_hyperparameter("sqrt = { default = 1.0 }"),
     "hyperparameters.sqrt", "'sqrt' is reserved"),
    ("hyper-name-upper-case", with_hyperparameter("Beta = { default = 1.0 }"),
     "hyperparameters.Beta", "lower-case identifier"),
    # [slots]
    ("slot-bad-init", spec_text(slots='[slots]\nm = { init = "random" }\n'), "slots.m", "init must be"),
    ("slot-init-bool", spec_text(slots="[slots]\nm = { init = true }\n"), "slots.m", "init must be"),
    ("slot-bad-dtype", spec_text(slots='[slots]\nm = { dtype = "int32" }\n'), "slots.m", "dtype must be one of"),
    ("slot-unknown-key", spec_text(slots="[slots]\nm = { size = 3 }\n"), "slots.m.size", "unknown key 'size'"),
    ("slot-bad-shape", spec_text(slots="[slots]\nm = { shape = 3 }\n"), "slots.m", "shape must be one of var, scalar"),
    ("slot-var-init-needs-var-shape", spec_text(slots='[slots]\nm = { init = "var", shape = "rows" }\n'), "slots.m",
     "init 'var' needs shape 'var'"),
    ("slot-named-like-hyper", with_slot("beta_1 = {}"), "slots.beta_1", "'beta_1' is already a hyperparameter"),
    ("slot-reserved-step", with_slot("step = {}"), "slots.step", "'step' is reserved"),
    # [update]: the list itself
    ("rule-empty", spec_text(update="[update]\nrule = []\n"), "update.rule", "non-empty list"),
    ("rule-not-a-list", spec_text(update='[update]\nrule = "var = var - grad"\n'), "update.rule", "non-empty list"),
    ("rule-line-not-a-string", spec_text(update="[update]\nrule = [1]\n"), "update.rule[0]", "must be a string"),
    ("update-unknown-key", spec_text(update=rule_table(*RULE) + "order = 1\n"), "update.order", "unknown key 'order'"),
    ("measuring-steps-negative", spec_text(update=rule_table(*RULE) + "measuring_steps = -1\n"),
     "update.measuring_steps", "whole number >= 0"),
    ("measuring-steps-not-whole", spec_text(update=rule_table(*RULE) + "measuring_steps = 1.5\n"),
     "update.measuring_steps", "whole number >= 0"),
    ("measuring-steps-bool", spec_text(update=rule_table(*RULE) + "measuring_steps = true\n"), "update.measuring_steps",
     "whole number >= 0"),
    # [update]: names and assignments
    ("undefined-name", with_rule("m = grad", "var = var - lr * m"), "update.rule[1]", "undefined name 'lr'"),
    ("local-used-before-assigned", with_rule("var = var - d", "d = grad"), "update.rule[0]", "undefined name 'd'"),
    ("assign-grad", with_rule("grad = 2 * grad", "var = var - grad"), "update.rule[0]", "cannot assign to 'grad'"),
    ("assign-step", with_rule("step = step + 1", "var = var - grad"), "update.rule[0]", "cannot assign to 'step'"),
    ("assign-hyperparameter", with_rule("var = var - grad", "beta_1 = 0.5"),
     "update.rule[1]", "cannot assign to hyperparameter 'beta_1'"),
    ("assign-function", with_rule("sqrt = grad", "var = var - grad"), "update.rule[0]", "names a function"),
    ("local-assigned-twice", with_rule("d = grad", "d = 2 * grad", "var = var - d"),
     "update.rule[1]", "local 'd' is assigned twice"),
    ("never-assigns-var", with_rule("m = grad"), "update.rule", "never assigns 'var'"),
    ("comparison-in-slot", with_rule("m = grad > 0", "var = var - grad"),
     "update.rule[0]", "cannot store a comparison in 'm'"),
    ("comparison-in-var", with_rule("var = var > grad"), "update.rule[0]", "cannot store a comparison in 'var'"),
    ("comparison-in-arithmetic", with_rule("var = var - (grad > 0) * grad"),
     "update.rule[0]", "a comparison cannot be an operand of '*'"),
    ("bool-local-in-arithmetic", with_rule("up = grad > 0", "var = var - up"),
     "update.rule[1]", "a comparison cannot be an operand of '-'"),
    ("bool-local-in-function", with_rule("up = grad > 0", "var = sqrt(up)"),
     "update.rule[1]", "a comparison cannot be an operand of 'sqrt'"),
    ("comparison-as-where-branch", with_rule("var = where(grad > 0, grad > 1, var)"),
     "update.rule[0]", "operand of 'where'"),
    ("function-arity", with_rule("var = sqrt(grad, var)"), "update.rule[0]", "sqrt takes 1 argument(s), got 2"),
    ("function-as-value", with_rule("var = var - sqrt"), "update.rule[0]", "used as a value"),
    # [update]: constructs outside the grammar
    ("attribute-call-statement", with_rule("var.assign(0)"), "update.rule[0]", "expected one assignment"),
    ("attribute-call", with_rule("var = var.assign(0)"), "update.rule[0]", "not attribute access"),
    ("attribute-access", with_rule("var = var - grad.real"), "update.rule[0]", "attribute access"),
    ("subscript", with_rule("var = var - grad[0]"), "update.rule[0]", "subscripts"),
    ("subscript-target", with_rule("var[0] = grad"), "update.rule[0]", "single plain name"),
    ("lambda", with_rule("var = var - (lambda: grad)"), "update.rule[0]", "lambdas"),
    ("lambda-called", with_rule("var = (lambda: grad)()"), "update.rule[0]", "not lambdas"),
    ("comprehension", with_rule("var = var - [g for g in grad]"), "update.rule[0]", "comprehensions"),
    ("generator", with_rule("var = maximum(var, (g for g in grad))"), "update.rule[0]", "comprehensions"),
    ("f-string", with_rule('var = var - f"{grad}"'), "update.rule[0]", "f-strings"),
    ("string-literal", with_rule("var = var - 'grad'"), "update.rule[0]", "strings are not allowed"),
    ("bytes-literal", with_rule("var = var - b'x'"), "update.rule[0]", "strings are not allowed"),
    ("bool-literal", with_rule("var = var - True"), "update.rule[0]", "bool literals"),
    ("complex-literal", with_rule("var = var - 1j"), "update.rule[0]", "complex literals"),
    ("huge-integer", with_rule("var = var - 99999999999999999999999"), "update.rule[0]", "too large"),
    ("keyword-argument", with_rule("var = clip(grad, lo=0, hi=1)"), "update.rule[0]", "keyword arguments"),
    ("starred-argument", with_rule("var = maximum(*grad)"), "update.rule[0]", "starred arguments"),
    ("walrus", with_rule("var = (d := grad)"), "update.rule[0]", "walrus"),
    ("conditional-expression", with_rule("var = grad if step > 1 else var"), "update.rule[0]", "use where"),
    ("boolean-operator", with_rule("var = grad or var"), "update.rule[0]",
     "operator 'or' is not in the language; use where"),
    ("tuple", with_rule("var = (grad, var)"), "update.rule[0]", "tuples"),
    ("dunder-name", with_rule("var = var - __builtins__"), "update.rule[0]", "names starting with '_'"),
    ("dunder-target", with_rule("__d = grad", "var = var - grad"), "update.rule[0]", "names starting with '_'"),
    ("dunder-import", with_rule("var = __import__('os')"), "update.rule[0]", "unknown function '__import__'"),
    ("call-eval", with_rule("var = eval('grad')"), "update.rule[0]", "unknown function 'eval'"),
    ("call-open", with_rule("var = open('x')"), "update.rule[0]", "unknown function 'open'"),
    ("floor-division", with_rule("var = grad // 2"), "update.rule[0]", "operator '//' is not in the language"),
    ("invert", with_rule("var = ~grad"), "update.rule[0]", "operator '~' is not in the language"),
    ("comparison-is", with_rule("var = where(grad is var, grad, var)"), "update.rule[0]",
     "comparison 'is' is not in the language"),
    ("chained-comparison", with_rule("var = where(0 < grad < 1, grad, var)"), "update.rule[0]", "chained comparisons"),
    ("two-statements", with_rule("var = grad; m = grad"), "update.rule[0]", "exactly one assignment"),
    ("newline-in-line", with_rule("m = grad\nvar = m"), "update.rule[0]", "exactly one assignment"),
    ("augmented-assignment", with_rule("var -= grad"), "update.rule[0]", "expected one assignment"),
    ("chained-assignment", with_rule("var = m = grad"), "update.rule[0]", "single plain name"),
    ("tuple-assignment", with_rule("var, m = grad, grad"), "update.rule[0]", "single plain name"),
    ("python-syntax-error", with_rule("var = var -"), "update.rule[0]", "syntax error"),
    ("too-long", with_rule("var = " + " + ".join(["grad"] * 300)), "update.rule[0]", "longer than 2000 characters"),
    ("too-deep", with_rule("var = " + "abs(" * 45 + "grad" + ")" * 45), "update.rule[0]", "nested deeper than 40"),
    # a balanced sum of 256 terms: 511 nodes, only 8 deep, under 2000 characters
    ("too-many-parts", with_rule("var = " + balanced_sum(8)), "update.rule[0]", "more than 400 parts"),
    ("absurd-exponent", with_rule("var = grad ** 100000"), "update.rule[0]", "constant exponent beyond"),
    ("absurd-negative-exponent", with_rule("var = grad ** -5000"), "update.rule[0]", "constant exponent beyond"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_spec_raises_spec_error_naming_file_and_key(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec(path)
    error = caught.value
    assert error.source == str(path)
    assert error.key == key
    assert fragment in error.message
    assert str(error).startswith(str(path))


def test_malformed_corpus_ids_are_unique():
    ids = [case[0] for case in MALFORMED]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


def test_spec_error_from_text_names_the_given_source():
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(with_rule("var = nope"), source="mine.toml")
    assert caught.value.source == "mine.toml"
    assert str(caught.value).startswith("mine.toml:")


def test_modulo_is_in_the_language():
    """A Lookahead-style period: every fifth step does something else."""
    spec = optreg.load_spec_text(with_rule("m = where(step % 5 == 0, grad, m)", "var = var - learning_rate * m"))
    assert spec.rule.assignments[0].expression.args[0].left.op == "%"


HUGE = "1" + "0" * 400  # TOML allows integers of any size; float() of this overflows


@pytest.mark.parametrize(
    "text",
    [
        with_hyperparameter(f"eps = {{ default = {HUGE} }}"),
        with_hyperparameter(f"eps = {{ default = 1, max = {HUGE} }}"),
        spec_text(slots=f"[slots]\nm = {{ init = {HUGE} }}\n"),
    ],
    ids=["default", "max", "slot-init"],
)
def test_huge_integer_in_spec_is_a_spec_error(text):
    with pytest.raises(optreg.SpecError):
        optreg.load_spec_text(text)


def test_unreadable_spec_file_is_a_spec_error(tmp_path):
    missing = tmp_path / "absent.toml"
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec(missing)
    assert caught.value.source == str(missing)
    assert "cannot read the spec" in caught.value.message


def test_non_utf8_spec_file_is_a_spec_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(spec_text().replace("a probe", "caf\u00e9").encode("latin-1"))
    with pytest.raises(optreg.SpecError, match="cannot read the spec"):
        optreg.load_spec(path)


# --- line numbers ---------------------------------------------------------------------------


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_undefined_name_in_second_rule_line_points_at_its_line(tmp_path):
    text = with_rule("m = beta_1 * m + grad", "var = var - lr * m")
    path = write(tmp_path, text)
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec(path)
    assert caught.value.key == "update.rule[1]"
    assert caught.value.line == _line_of(text, "var = var - lr * m")
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: [update.rule[1]]")


def test_rule_error_line_in_a_multi_line_file_with_comments():
    text = textwrap.dedent(
        """\
        [optimizer]
        name = "x"
        summary = "y"

        [update]
        rule = [
          # a comment mentioning var = var - grad
          "d = grad",
          "var = var - oops * d",
        ]
        """
    )
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert (caught.value.key, caught.value.line) == ("update.rule[1]", 9)


def test_hyperparameter_error_points_at_its_line():
    text = with_hyperparameter("eps = { default = 2.0, max = 1.0 }")
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert caught.value.line == _line_of(text, "eps = {")


def test_slot_error_points_at_its_line():
    text = with_slot('v = { dtype = "int8" }')
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert caught.value.key == "slots.v"
    assert caught.value.line == _line_of(text, "v = {")


def test_toml_syntax_error_sets_the_line():
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text('[optimizer]\nname = "x"\nsummary = \n')
    assert caught.value.key == ""
    assert caught.value.line == 3


def test_toml_syntax_error_at_the_end_of_the_file_names_the_last_line(tmp_path):
    """tomllib says "(at end of document)" for an array left open; the error still has a line."""
    text = spec_text(update='[update]\nrule = [\n  "var = var - grad",\n')
    path = write(tmp_path, text)
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec(path)
    assert caught.value.line == len(text.splitlines())
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: TOML syntax error: ")


def test_repeated_rule_line_error_points_at_the_second_copy():
    text = with_rule("d = grad", "d = grad", "var = var - d")
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert caught.value.key == "update.rule[1]"
    first = _line_of(text, '"d = grad"')
    assert caught.value.line == first + 1


def test_toml_syntax_error_message_names_the_position():
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text('[optimizer]\nname = "x"\nsummary = \n')
    assert "line 3" in caught.value.message


# --- every error of a file -------------------------------------------------------------------


def test_every_error_of_a_spec_is_reported_in_file_order():
    text = spec_text(
        hyperparameters=HYPERPARAMETERS + "eps = { default = -1.0, min = 0.0 }\n",
        update=rule_table("m = beta_1 * m + gard", "d = m // 2", "var = var - learning_rate * m * nope"),
    )
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text, source="x.toml")
    found = [(error.key, error.line) for error in caught.value.errors]
    assert found == [
        ("hyperparameters.eps", _line_of(text, "eps = {")),
        ("update.rule[0]", _line_of(text, "gard")),
        ("update.rule[1]", _line_of(text, "m // 2")),
        ("update.rule[2]", _line_of(text, "nope")),
    ]
    assert str(caught.value) == str(caught.value.errors[0]) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # a hyperparameter entry at fault is still a name the rule may read
        (spec_text(hyperparameters=HYPERPARAMETERS + "eps = { default = 1.0, min = 2.0 }\n",
                   update=rule_table("var = var - eps * grad")), "hyperparameters.eps"),
        # so is a slot entry at fault
        (with_slot('v = { dtype = "int8" }').replace("var = var - learning_rate * m", "var = var - v"), "slots.v"),
        # a line at fault still assigns its target for the lines after it
        (with_rule("d = nope * grad", "var = var - d"), "update.rule[0]"),
        # a line that does not parse may be the one assigning var
        (with_rule("m = grad", "var = var - (m"), "update.rule[1]"),
    ],
    ids=["hyperparameter", "slot", "rule-line", "unparsed-var-line"],
)
def test_an_error_does_not_cascade_into_others(text, key):
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert [error.key for error in caught.value.errors] == [key]


# --- shape errors found without running ----------------------------------------------------

@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (["var = var - matmul(sum(grad), grad)"],
         "matmul(sum(grad), grad): matmul needs arguments of rank >= 2, but sum(grad) has rank 0 "
         "for a variable of any rank"),
        (["var = var - where(rank(var) == 1, matmul(grad, grad), grad)"],
         "matmul(grad, grad): matmul needs arguments of rank >= 2, but grad has rank 1 "
         "wherever it is built (variables of rank 1)"),
        (["small = rank(var) < 2", "var = var - where(small, matmul(grad, transpose(grad)), grad)"],
         "but grad has rank 0 or 1 wherever it is built (variables of rank 0, 1)"),
        (["var = var - col_mean(learning_rate) * grad"],
         "col_mean needs arguments of rank >= 2, but learning_rate has rank 0"),
        (["var = var - where(rank(var) == 0, row_mean(grad), grad)"], "row_mean needs arguments of rank >= 1"),
        # a branch on a hyperparameter's value is built whatever the value: the error is certain
        (["var = var - where(learning_rate > 1, matmul(mean(grad), grad), grad)"], "but mean(grad) has rank 0"),
        (["var = var - col_max(sum(grad)) * grad"], "col_max needs arguments of rank >= 2, but sum(grad) has rank 0"),
        (["var = var - where(rank(var) < 2, col_max(grad), grad)"],
         "col_max needs arguments of rank >= 2, but grad has rank 0 or 1"),
        (["var = var - row_max(learning_rate) * grad"],
         "row_max needs arguments of rank >= 1, but learning_rate has rank 0"),
    ],
    ids=["reduction", "guarded-vector", "guard-in-a-local", "col-mean-of-a-scalar", "row-mean-of-a-scalar",
         "hyperparameter-branch", "col-max-of-a-reduction", "col-max-below-rank-2", "row-max-of-a-scalar"],
)
def test_a_shape_error_certain_for_every_variable_rank_is_a_spec_error(lines, fragment):
    text = with_rule(*lines)
    with pytest.raises(optreg.SpecError) as caught:
        optreg.load_spec_text(text)
    assert fragment in caught.value.message
    assert caught.value.line == _line_of(text, lines[-1]) and caught.value.key == f"update.rule[{len(lines) - 1}]"


@pytest.mark.parametrize(
    "lines",
    [
        ["var = var - matmul(grad, transpose(grad))"],  # fine on matrices; a vector fails when traced, not here
        ["var = var - where(rank(var) >= 2, matmul(grad, transpose(grad)), grad)"],
        ["big = rank(var) > 2", "var = var - where(big, grad, matmul(grad, transpose(grad)))"],  # fails below 2 only
        ["h = row_mean(grad)", "var = var - where(rank(var) == 0, row_mean(h), h)"],  # h already failed there
    ],
    ids=["unguarded", "guarded", "guarded-below", "no-cascade"],
)
def test_a_shape_error_only_some_variable_ranks_meet_is_left_to_trace_time(lines):
    optreg.load_spec_text(with_rule(*lines))


# --- hostile specs ----------------------------------------------------------------------------

HOSTILE_RULES = [
    "var = open('{canary}', 'w')",
    "var = var - open('{canary}', 'w').write('x')",
    "var = __import__('os').system('touch {canary}')",
    "var = __import__('pathlib').Path('{canary}').touch()",
    "var = exec(\"open('{canary}', 'w')\")",
    "var = eval(\"open('{canary}', 'w')\")",
    "var = compile(\"open('{canary}', 'w')\", 'x', 'exec')",
    "var = (lambda: open('{canary}', 'w'))()",
    "var = var - (lambda f=open('{canary}', 'w'): 0)",
    "var = [open('{canary}', 'w') for _ in (1,)]",
    "var = f\"{{open('{canary}', 'w')}}\"",
    "var = maximum(grad, open('{canary}', 'w'))",
    "var = where(grad > 0, __import__('os').system('touch {canary}'), var)",
    "var = grad.__class__.__init__.__globals__['__builtins__']['open']('{canary}', 'w')",
    "var = ().__class__.__base__.__subclasses__()",
    "var = (__builtins__ := open('{canary}', 'w'))",
    "var = breakpoint()",
    "var = var; open('{canary}', 'w')",
    "var = var\nopen('{canary}', 'w')",
    "open('{canary}', 'w')",
    "import os",
    "var = grad if open('{canary}', 'w') else var",
    "var = var - getattr(__import__('os'), 'system')('touch {canary}')",
]


@pytest.mark.parametrize("template", HOSTILE_RULES, ids=range(len(HOSTILE_RULES)))
def test_hostile_rule_is_refused_without_running_anything(tmp_path, monkeypatch, template):
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "CANARY"
    relative = spec_text(update=rule_table(template.format(canary="CANARY")))
    absolute = spec_text(update=rule_table(template.format(canary=canary.as_posix())))
    for index, text in enumerate((relative, absolute)):
        path = write(tmp_path, text, name=f"hostile{index}.toml")
        with pytest.raises(optreg.SpecError) as caught:
            optreg.load_spec(path)
        assert caught.value.key.startswith("update.rule")
        assert not canary.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile0.toml", "hostile1.toml"]


def test_hostile_values_outside_the_rule_are_plain_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = with_header(
        name='"probe"', summary="\"__import__('os').system('touch CANARY')\"", references="[\"open('CANARY', 'w')\"]"
    )
    spec = optreg.load_spec_text(text)
    assert spec.summary == "__import__('os').system('touch CANARY')"
    assert not (tmp_path / "CANARY").exists()


# --- Hyperparameter.check and resolve_hyperparameters -----------------------------------------

BETA = Hyperparameter("beta_1", 0.9, "float", 0.0, 1.0, "decay")
STEPS = Hyperparameter("steps", 10, "int", 1.0, None)
FLAG = Hyperparameter("nesterov", False, "bool")


def test_check_converts_to_the_declared_type():
    assert BETA.check(1) == 1.0 and type(BETA.check(1)) is float
    assert STEPS.check(3.0) == 3 and type(STEPS.check(3.0)) is int
    assert FLAG.check(True) is True


def test_check_accepts_numpy_scalars():
    np = pytest.importorskip("numpy")
    assert type(BETA.check(np.float32(0.5))) is float
    assert STEPS.check(np.int64(4)) == 4


@pytest.mark.parametrize(
    ("hyper", "value", "fragment"),
    [
        (BETA, 2, "beta_1 must be at most 1.0, got 2"),
        (BETA, -0.5, "beta_1 must be at least 0.0, got -0.5"),
        (STEPS, 0, "steps must be at least 1.0"),
        (STEPS, 2.5, "steps must be a whole number"),
        (BETA, math.nan, "beta_1 must be finite"),
        (BETA, math.inf, "beta_1 must be finite"),
        (STEPS, -math.inf, "steps must be finite"),
        (BETA, "0.5", "beta_1 must be a number"),
        (BETA, None, "beta_1 must be a number"),
        (BETA, True, "beta_1 must be a number"),
        (STEPS, False, "steps must be a number"),
        (FLAG, 1, "nesterov must be true or false"),
        (FLAG, 0.0, "nesterov must be true or false"),
        (FLAG, "true", "nesterov must be true or false"),
    ],
)
def test_check_rejects_bad_values_with_a_precise_message(hyper, value, fragment):
    with pytest.raises(HyperparameterError) as caught:
        hyper.check(value)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, optreg.OptregError) and isinstance(caught.value, ValueError)


def test_check_rejects_a_huge_integer_as_a_hyperparameter_error():
    with pytest.raises(HyperparameterError):
        BETA.check(10**400)


def test_check_bounds_are_inclusive():
    assert BETA.check(0.0) == 0.0
    assert BETA.check(1.0) == 1.0


def test_resolve_merges_given_values_over_defaults():
    values = resolve_hyperparameters([BETA, STEPS, FLAG], {"steps": 4.0, "nesterov": True})
    assert values == {"beta_1": 0.9, "steps": 4, "nesterov": True}
    assert type(values["steps"]) is int


def test_resolve_rejects_unknown_names_listing_the_accepted_ones():
    with pytest.raises(HyperparameterError) as caught:
        resolve_hyperparameters([BETA, STEPS], {"beta1": 0.5}, optimizer="adam")
    message = str(caught.value)
    assert "'adam'" in message and "'beta1'" in message
    assert message.endswith("it accepts: beta_1, steps")


def test_resolve_with_no_hyperparameters_says_none():
    with pytest.raises(HyperparameterError, match="it accepts: none$"):
        resolve_hyperparameters([], {"learning_rate": 0.1})


def test_resolve_checks_given_values():
    with pytest.raises(HyperparameterError, match="at most 1.0"):
        resolve_hyperparameters([BETA], {"beta_1": 1.5})


# --- slot conditions: one pass over the rule, refusing what the exhaustive check refused ------

import random  # noqa: E402

from optreg.errors import ExpressionError, SpecError  # noqa: E402
from optreg.spec import slot_check  # noqa: E402
from optreg.spec.conditions import specialize_rule  # noqa: E402


def exhaustive_slot_errors(spec) -> list[tuple[int | None, str]]:
    """The check the loader made before the one-pass check: the rule specialised for every
    setting of the conditions; each failing line once, with the first setting it fails in."""
    conditions = sorted({slot.when for slot in spec.slots if slot.when})
    names = {h.name for h in spec.hyperparameters}
    found, lines = [], set()
    for truths in slot_check.possible_truths(conditions, spec.hyperparameters):
        fold = {name: bit for name, bit in truths.items() if name in names}
        try:
            specialize_rule(spec.rule, spec.hyperparameters, spec.slots, fold, truths)
        except ExpressionError as error:
            if error.line_index not in lines:
                lines.add(error.line_index)
                found.append((error.line_index, f"{error.message} (with {slot_check.describe_setting(truths)})"))
    return found


def one_pass_slot_errors(spec) -> list[tuple[int | None, str]]:
    """The loader's check, as (line, message) pairs."""
    conditions = sorted({slot.when for slot in spec.slots if slot.when})
    failures = slot_check.slot_condition_errors(spec.rule, spec.hyperparameters, spec.slots, conditions)
    described = [(error, slot_check.describe_setting(truths)) for error, truths in failures]
    return [(error.line_index, f"{error.message} (with {setting})") for error, setting in described]


CONDITIONED_HYPERPARAMETERS = (
    "[hyperparameters]\nlr = { default = 0.1, min = 0.0 }\nmomentum = { default = 0.0, min = 0.0, max = 1.0 }\n"
    + "".join(f"f{i} = {{ default = false, fixed = true }}\n" for i in range(4))
)
CONDITIONED_SLOTS = (
    "[slots]\n"
    + "".join(f's{i} = {{ when = "f{i}" }}\n' for i in range(4))
    + 's4 = { when = "momentum > 0" }\ns5 = { when = "momentum > 0.5" }\ns6 = { when = "momentum <= 0" }\n'
)


def _random_rule(seed: int) -> list[str]:
    """A random rule over four fixed bools, three compared slots and locals, guarded or not."""
    chooser = random.Random(seed)
    slots = [f"s{i}" for i in range(7)]
    guards = [f"f{i}" for i in range(4)] + [f"has({s})" for s in slots] + ["lr > 0"]
    # a where inside a condition, a division by zero in some settings only (undecided there), a name
    guards += ["where(f1, f0, has(s4)) > 0", "1 / f0 > 0.5", "where(lr > 0, f2, 1)", "(f3 - 1) ** 0.5 > 0"]
    known, lines = ["grad"], []

    def value(depth: int) -> str:
        pick = chooser.random()
        if depth > 2 or pick < 0.35:
            return chooser.choice(known + slots + ["1", "lr"])
        if pick < 0.7:
            guard = chooser.choice(guards)
            if chooser.random() < 0.3:
                guard = f"{guard} * {chooser.choice(guards)} + {chooser.choice(guards)} > 0"
            return f"where({guard}, {value(depth + 1)}, {value(depth + 1)})"
        return f"{value(depth + 1)} * {value(depth + 1)}"

    for index in range(chooser.randint(1, 6)):
        if chooser.random() < 0.3:
            lines.append(f"{chooser.choice(slots)} = {value(0)}")
        else:
            lines.append(f"d{index} = {value(0)}")
            known.append(f"d{index}")
    targets = [line.split(" = ")[0] for line in lines]
    kept = [line for index, line in enumerate(lines) if targets[index] not in targets[:index]]
    return kept + [f"var = var - lr * {value(0)}"]


def _unchecked_spec(lines):
    """The spec with these lines, read without its slot-condition check (so both checks can run)."""
    from unittest import mock

    text = spec_text(hyperparameters=CONDITIONED_HYPERPARAMETERS, slots=CONDITIONED_SLOTS, update=rule_table(*lines))
    with mock.patch("optreg.spec.rules.slot_condition_errors", return_value=[]):
        return optreg.load_spec_text(text)


SEEDS = 300


def test_the_one_pass_slot_check_refuses_exactly_what_the_exhaustive_check_refused():
    refused = 0
    for seed in range(SEEDS):
        try:
            spec = _unchecked_spec(_random_rule(seed))
        except SpecError:
            continue  # a random rule at fault for some other reason
        expected = exhaustive_slot_errors(spec)
        assert one_pass_slot_errors(spec) == expected, (seed, [a.text for a in spec.rule.assignments])
        refused += bool(expected)
    assert SEEDS // 10 < refused < SEEDS * 9 // 10  # both kinds were tried


@pytest.mark.parametrize(
    "lines, fragment",
    [
        # only f0 = f1 = true leaves s2 unread: every other setting but one guards it
        (["var = var - where(f0 * f1, grad, where(f2, s2, grad))"], None),
        (["var = var - where(f0 * f1 + f3 > 0, grad, s2)"], "(with f0 = false, f1 = false, f2 = false, f3 = false"),
        # the local is absent in one setting only; its reader is named
        (["d = where(f0, grad, where(f1, grad, s2))", "var = var - lr * d"], "it reads 's2'"),
        # momentum > 0.5 needs momentum > 0: s4 is present whenever s5 is
        (["var = var - where(has(s5), s4, grad)"], None),
        (["var = var - where(has(s4), s5, grad)"],
         "reads 's5', which is absent: slot 's5' exists only when 'momentum > 0.5' holds"),
        (["s0 = s1", "var = var - grad"], "(with f0 = true, f1 = false"),
    ],
)
def test_refusals_where_only_one_setting_is_wrong_match_the_exhaustive_check(lines, fragment):
    spec = _unchecked_spec(lines)
    expected = exhaustive_slot_errors(spec)
    assert one_pass_slot_errors(spec) == expected
    if fragment is None:
        assert not expected
        optreg.load_spec_text(spec.text)
    else:
        assert fragment in expected[0][1]
        with pytest.raises(SpecError) as caught:
            optreg.load_spec_text(spec.text)
        assert caught.value.message == expected[0][1] and caught.value.key == f"update.rule[{expected[0][0]}]"


def _eight_condition_spec(lines_per_condition: int) -> str:
    flags = "".join(f"f{i} = {{ default = false, fixed = true }}\n" for i in range(8))
    hypers = "[hyperparameters]\nlr = { default = 0.1 }\n" + flags
    slots = "[slots]\n" + "".join(f's{i} = {{ when = "f{i}" }}\n' for i in range(8))
    lines, last = [], "grad"
    for index in range(8 * lines_per_condition):
        lines.append(f"d{index} = where(f{index % 8}, s{index % 8} + {last}, {last})")
        last = f"d{index}"
    lines += [f"s{i} = where(has(s{i}), 0.9 * s{i} + {last}, 0)" for i in range(8)] + [f"var = var - lr * {last}"]
    return spec_text(hyperparameters=hypers, slots=slots, update=rule_table(*lines))


def test_the_slot_check_of_an_eight_condition_spec_costs_a_few_evaluations_per_where_not_two_to_the_eight(monkeypatch):
    """No specialisation at all for a valid spec, and each distinct ``where`` condition evaluated
    once per setting of the one condition it reads: 2 for each of the 16 (``f0`` ... ``f7``,
    ``has(s0)`` ... ``has(s7)``), however long the rule, where the exhaustive check made 256
    specialisations of the whole rule."""
    import optreg.spec.conditions as conditions

    def refuse(*args, **kwargs):
        raise AssertionError("the loader specialised the rule")

    monkeypatch.setattr(conditions, "specialize_rule", refuse)
    counts = []
    original = slot_check._Settings.split

    def counted(self, condition, index):
        counts.append(condition)
        return original(self, condition, index)

    monkeypatch.setattr(slot_check._Settings, "split", counted)
    evaluations = []
    original_check = slot_check._check

    def check(settings, rule):
        result = original_check(settings, rule)
        evaluations.append(settings.evaluations)
        return result

    monkeypatch.setattr(slot_check, "_check", check)
    for per_condition in (1, 4):
        counts.clear()
        spec = optreg.load_spec_text(_eight_condition_spec(per_condition))
        wheres = 8 * per_condition + 8
        assert len(spec.slots) == 8 and len(counts) == wheres
        assert evaluations[-1] == 2 * 16  # two per distinct condition, whatever the rule's length


def test_a_where_condition_reading_too_many_slot_conditions_is_refused_with_its_line():
    guard = " + ".join(f"f{i}" for i in range(slot_check.MAX_CONDITIONS_PER_WHERE)) + " + has(s4) > 2"
    text = spec_text(
        hyperparameters=CONDITIONED_HYPERPARAMETERS,
        slots=CONDITIONED_SLOTS,
        update=rule_table("d = 2 * grad", f"var = var - where({guard}, d, grad)"),
    )
    with pytest.raises(SpecError, match="a where condition reads 5 slot conditions") as caught:
        optreg.load_spec_text(text)
    assert caught.value.key == "update.rule[1]" and caught.value.line == _line_of(text, "var = var - where(")
