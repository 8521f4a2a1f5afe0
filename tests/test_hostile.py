"""A generated corpus of hostile specs: payloads that would touch a canary file if anything
evaluated them, placed everywhere a spec holds text. Each must be refused with a SpecError
naming the file and key, and none may execute: the canary is never written, and a Python audit
hook sees no event that runs code or touches files, processes or the network, other than
reading the spec file."""

from __future__ import annotations

import json
import sys

import pytest

import optreg

PAYLOADS = [
    "open('CANARY', 'w')",
    "open('CANARY', 'w').write('x')",
    "__import__('os').system('touch CANARY')",
    "__import__('subprocess').run(['touch', 'CANARY'])",
    "__import__('pathlib').Path('CANARY').touch()",
    "exec(\"open('CANARY', 'w')\")",
    "eval(\"open('CANARY', 'w')\")",
    "compile(\"open('CANARY', 'w')\", 'f', 'exec')",
    "(lambda: open('CANARY', 'w'))()",
    "[open('CANARY', 'w') for i in range(1)]",
    "{open('CANARY', 'w') for i in range(1)}",
    "(open('CANARY', 'w') for i in range(1))",
    "f\"{open('CANARY', 'w')}\"",
    "grad.__class__.__init__.__globals__",
    "().__class__.__base__.__subclasses__()",
    "getattr(grad, 'assign')(0)",
    "globals()['__builtins__']",
    "vars()",
    "locals()",
    "type('X', (), {})",
    "(x := open('CANARY', 'w'))",
    "breakpoint()",
    "input()",
    "print('CANARY')",
    "grad if open('CANARY', 'w') else var",
    "sqrt(*[open('CANARY', 'w')])",
    "sqrt(x=open('CANARY', 'w'))",
    "__builtins__",
    "os.system('touch CANARY')",
    "grad[open('CANARY', 'w')]",
    "'CANARY'",
    "b'CANARY'",
]

# Where the payload goes, and the key the error must name.
PLACEMENTS = {
    "rule": (lambda p: rule_spec(f"var = {p}"), "update.rule[0]"),
    "arithmetic": (lambda p: rule_spec(f"var = var - 0.1 * ({p})"), "update.rule[0]"),
    "argument": (lambda p: rule_spec(f"var = maximum(grad, {p})"), "update.rule[0]"),
    "condition": (lambda p: rule_spec(f"var = where({p}, var, grad)"), "update.rule[0]"),
    "exponent": (lambda p: rule_spec(f"var = var - grad ** ({p})"), "update.rule[0]"),
    "later line": (lambda p: rule_spec("m = grad", f"n = {p}", "var = var - m"), "update.rule[1]"),
    "default": (lambda p: value_spec(hyper=json.dumps(p)), "hyperparameters.lr"),
    "slot init": (lambda p: value_spec(init=json.dumps(p)), "slots.m"),
}


def rule_spec(*lines: str) -> str:
    """A spec whose rule is the given lines."""
    rule = ",\n  ".join(json.dumps(line) for line in lines)
    return f"""[optimizer]
name = "hostile"
summary = "tries to run code"

[hyperparameters]
lr = {{ default = 0.1 }}

[slots]
m = {{ init = "zeros" }}

[update]
rule = [
  {rule},
]
"""


def value_spec(hyper: str = "0.1", init: str = '"zeros"') -> str:
    """A spec with text where a hyperparameter default or a slot init belongs."""
    return f"""[optimizer]
name = "hostile"
summary = "tries to run code"

[hyperparameters]
lr = {{ default = {hyper} }}

[slots]
m = {{ init = {init} }}

[update]
rule = ["var = var - lr * grad"]
"""


class AuditLog:
    """Records the audit events raised while it is switched on (hooks cannot be removed)."""

    def __init__(self):
        self.recording = False
        self.events: list[tuple[str, tuple]] = []
        sys.addaudithook(self)

    def __call__(self, event, args):
        if self.recording:
            self.events.append((event, args))


AUDIT = AuditLog()

#: Audit events that mean code ran or the outside world was touched. (Harmless events such as
#: ``builtins.id`` may come from finalizers the garbage collector runs meanwhile.)
OUTSIDE_EVENTS = (
    "exec", "import", "open", "os.", "subprocess.", "shutil.", "socket.", "ctypes.", "glob.",
    "builtins.input", "builtins.breakpoint", "pathlib.", "tempfile.", "urllib.", "http.",
)


def touches_the_outside(event: str, args: tuple, spec_path) -> bool:
    """True for an event that runs code or touches files, processes or the network — except
    reading the spec file itself."""
    if event == "open" and args and str(args[0]) == str(spec_path):
        return False
    return event.startswith(OUTSIDE_EVENTS)
CASES = [(placement, payload) for placement in PLACEMENTS for payload in PAYLOADS]


def test_the_corpus_is_large():
    assert len(CASES) >= 200


@pytest.mark.parametrize(("placement", "payload"), CASES, ids=[f"{p}-{PAYLOADS.index(x)}" for p, x in CASES])
def test_hostile_spec_is_refused_and_runs_nothing(tmp_path, monkeypatch, placement, payload):
    monkeypatch.chdir(tmp_path)
    build, key = PLACEMENTS[placement]
    path = tmp_path / "hostile.toml"
    path.write_text(build(payload), encoding="utf-8")
    AUDIT.events.clear()
    AUDIT.recording = True
    try:
        with pytest.raises(optreg.SpecError) as caught:
            optreg.load_spec(path)
    finally:
        AUDIT.recording = False
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert caught.value.line is not None
    assert not (tmp_path / "CANARY").exists()
    assert [(event, args) for event, args in AUDIT.events if touches_the_outside(event, args, path)] == []


# --- the cost of checking slot conditions stays bounded ---------------------------------------


def _conditioned_spec(lines: list[str]) -> str:
    hypers = "".join(f"f{i} = {{ default = false, fixed = true }}\n" for i in range(8))
    slots = "".join(f's{i} = {{ when = "f{i}" }}\n' for i in range(8))
    rule = ",\n".join(f'  "{line}"' for line in lines)
    return (
        '[optimizer]\nname = "costly"\nsummary = "s"\n\n[hyperparameters]\nlr = { default = 0.1 }\n'
        f"{hypers}\n[slots]\n{slots}\n[update]\nrule = [\n{rule}\n]\n"
    )


def test_where_conditions_reading_the_most_slot_conditions_cost_sixteen_evaluations_each(monkeypatch):
    """Eight conditions, and every where condition different and reading four of them: each is
    evaluated once per setting of its four (16), never per setting of all eight (256)."""
    from optreg.spec import slot_check

    assert slot_check.MAX_CONDITIONS_PER_WHERE == 4
    counts = []
    original = slot_check._check

    def check(settings, rule):
        result = original(settings, rule)
        counts.append(settings.evaluations)
        return result

    monkeypatch.setattr(slot_check, "_check", check)
    lines, last = [], "grad"
    for index in range(200):
        first = index % 8
        guard = " + ".join(f"has(s{(first + j) % 8})" for j in range(4))
        lines.append(f"d{index} = where({guard} > {3 + index / 1000}, s{first} * s{(first + 1) % 8} + {last}, {last})")
        last = f"d{index}"
    spec = optreg.load_spec_text(_conditioned_spec([*lines, f"var = var - lr * {last}"]))
    assert len(spec.rule.assignments) == 201
    assert counts[-1] == 16 * 200


def test_a_where_condition_reading_five_slot_conditions_is_refused_naming_file_and_key(tmp_path):
    guard = " + ".join(f"has(s{i})" for i in range(5))
    path = tmp_path / "costly.toml"
    path.write_text(_conditioned_spec([f"var = var - lr * where({guard} > 4, 1, 0) * grad"]), encoding="utf-8")
    with pytest.raises(optreg.SpecError, match="reads 5 slot conditions .* at most 4 may decide one") as caught:
        optreg.load_spec(path)
    assert (caught.value.source, caught.value.key) == (str(path), "update.rule[0]") and caught.value.line is not None
