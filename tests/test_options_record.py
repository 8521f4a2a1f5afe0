"""The options record (optreg.model.options.OPTIONS) is the one description of the optimizer
options: it agrees with the options classes, and the name lists, the docs table, the docstring
paragraph and ``optreg bench --help`` come from it."""

from __future__ import annotations

import re

import attrs
import pytest
from click.testing import CliRunner

from optreg.cli import main
from optreg.errors import OptionError
from optreg.model import options
from optreg.model.option_values import GradientOptions, StepOptions, check_spec_options
from optreg.model.options import ALL_OPTION_NAMES, GRADIENT_OPTION_NAMES, OPTIONS, SPEC_OPTION_NAMES, STEP_OPTION_NAMES

GROUPS = {"gradient": GradientOptions, "step": StepOptions}


def test_every_option_is_described_once():
    names = [record.name for record in OPTIONS]
    assert len(names) == len(set(names))
    assert all(record.doc and record.doc == record.doc.strip() and "\n" not in record.doc for record in OPTIONS)
    assert {record.group for record in OPTIONS} == {"gradient", "step", "runtime"}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_record_agrees_with_the_options_class(group):
    fields = attrs.fields(GROUPS[group])
    records = [record for record in OPTIONS if record.group == group]
    assert [record.name for record in records] == [field.name for field in fields]
    assert {record.name: record.default for record in records} == {field.name: field.default for field in fields}
    # and the class made with no arguments holds those defaults
    made = GROUPS[group]()
    assert {record.name: record.default for record in records} == {f.name: getattr(made, f.name) for f in fields}


def test_the_name_lists_come_from_the_record():
    assert STEP_OPTION_NAMES == tuple(field.name for field in attrs.fields(StepOptions))
    assert GRADIENT_OPTION_NAMES == tuple(field.name for field in attrs.fields(GradientOptions))
    assert set(SPEC_OPTION_NAMES) == {*STEP_OPTION_NAMES, *GRADIENT_OPTION_NAMES}
    assert ALL_OPTION_NAMES == {record.name for record in OPTIONS}
    assert ALL_OPTION_NAMES - set(SPEC_OPTION_NAMES) == {"slot_dtype", "jit_compile", "sparse_updates"}
    assert all(record.in_spec == (record.group != "runtime") for record in OPTIONS)


def test_a_spec_may_set_exactly_the_spec_options():
    for name in SPEC_OPTION_NAMES:
        check_spec_options({name: options.option(name).default})
    for name in ALL_OPTION_NAMES - set(SPEC_OPTION_NAMES):
        with pytest.raises(OptionError, match=f"unknown option '{name}'"):
            check_spec_options({name: options.option(name).default})


def test_unknown_option_record():
    with pytest.raises(OptionError, match="unknown option 'decay'"):
        options.option("decay")


def test_split_options():
    kwargs = {"learning_rate": 0.1, "clipnorm": 1.0, "beta_1": 0.8, "slot_dtype": "float32", "use_ema": True}
    hyperparameters, chosen = options.split_options(kwargs)
    assert hyperparameters == {"learning_rate": 0.1, "beta_1": 0.8}
    assert chosen == {"clipnorm": 1.0, "slot_dtype": "float32", "use_ema": True}
    assert options.split_options(kwargs, names=SPEC_OPTION_NAMES)[1] == {"clipnorm": 1.0, "use_ema": True}


def test_the_markdown_table_has_one_row_per_option():
    lines = options.option_table_markdown().splitlines()
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    rows = [re.match(r"^\| `(\w+)` \| `(.*?)` \| (\w+) \| (yes|no) \| (.+) \|$", line) for line in lines[2:]]
    assert all(rows), lines
    assert [row.group(1) for row in rows] == [record.name for record in OPTIONS]
    assert [row.group(4) == "yes" for row in rows] == [record.in_spec for record in OPTIONS]
    assert "``" not in options.option_table_markdown()


def test_the_docstring_paragraph_has_one_entry_per_option():
    indent = "    "
    text = indent + options.options_docstring(indent=indent, width=90)
    assert all(len(line) <= 90 for line in text.splitlines())
    entries = [line[len(indent):].split(":")[0] for line in text.splitlines() if not line.startswith(indent * 2)]
    assert entries == [record.name for record in OPTIONS]
    assert all(line.startswith(indent) for line in text.splitlines())


def test_the_optimizer_docstring_documents_every_option_from_the_record():
    from optreg import Optimizer

    doc = Optimizer.__doc__
    assert "{options}" not in doc
    for record in OPTIONS:
        assert f"        {record.name}: {record.doc.split()[0]}" in doc, record.name


def _bench_help() -> str:
    result = CliRunner().invoke(main, ["bench", "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_help_lists_every_option_set_accepts():
    words = set(re.findall(r"[a-z_]+", _bench_help()))
    assert set(SPEC_OPTION_NAMES) <= words, sorted(set(SPEC_OPTION_NAMES) - words)


def test_bench_set_takes_every_option_its_help_lists():
    from optreg import registry
    from optreg.bench.runner import plan_bench

    for record in OPTIONS:
        if record.in_spec:
            value = 1.0 if record.default is None else record.default
            if record.name in ("gradient_accumulation_steps", "ema_overwrite_frequency"):
                value = 2
            plan_bench(registry, ["sgd"], "quartic", [{record.name: value}])
