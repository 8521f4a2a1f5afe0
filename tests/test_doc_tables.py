"""The tables in README.md and docs/ that mirror code stay equal to the code, and every relative
link between the pages resolves.

Each check is a function that returns the differences it finds (an empty list when the page and
the code agree); the ``*_is_caught`` tests feed it a page with a row taken out or one added, to
show that the comparison can fail. None of this imports TensorFlow.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import attrs
import click
import pytest

import optreg
from optreg import hookspecs
from optreg.cli import main
from optreg.lang.functions import FUNCTIONS
from optreg.model import option_values
from optreg.model import options as option_model
from tests.test_layers import LAYERS, MAY_IMPORT

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
OPTIONS_START, OPTIONS_END = "<!-- options table: start -->", "<!-- options table: end -->"


def page(name: str) -> str:
    """The text of README.md or of a page of docs/."""
    return (REPO / name).read_text(encoding="utf-8")


# --- reading Markdown -----------------------------------------------------------------------


def without_code_blocks(text: str) -> str:
    """The text with its fenced code blocks blanked out (their lines kept, emptied)."""
    return re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


def split_row(line: str) -> list[str]:
    """The cells of one table row; ``\\|`` is a pipe inside a cell, and stays one."""
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]


def tables(text: str) -> list[list[list[str]]]:
    """Every table of a page, as its rows of cells, the header row first (the ``|---|`` line dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in without_code_blocks(text).splitlines() + [""]:
        if line.lstrip().startswith("|"):
            if not re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?", line.strip()):
                current.append(split_row(line))
        elif current:
            found.append(current)
            current = []
    return found


def table_headed(text: str, *header: str) -> list[list[str]]:
    """The rows (header excluded) of the one table whose header starts with these cells."""
    matching = [table for table in tables(text) if tuple(table[0][: len(header)]) == header]
    assert len(matching) == 1, f"expected one table headed {header}, found {len(matching)}"
    return matching[0][1:]


def without_row(text: str, first_cell: str) -> str:
    """The text with the first table row whose first cell is ``first_cell`` taken out."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.lstrip().startswith("|") and split_row(line)[0] == first_cell:
            return "".join(lines[:index] + lines[index + 1 :])
    raise AssertionError(f"no row {first_cell!r}")


def with_row_after(text: str, first_cell: str, row: str) -> str:
    """The text with ``row`` added after the table row whose first cell is ``first_cell``."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.lstrip().startswith("|") and split_row(line)[0] == first_cell:
            return "".join(lines[: index + 1] + [row + "\n"] + lines[index + 1 :])
    raise AssertionError(f"no row {first_cell!r}")


def code(cell: str) -> list[str]:
    """The backticked spans of a cell."""
    return re.findall(r"`([^`]+)`", cell)


def long_options(text: str) -> set[str]:
    """Every ``--option`` a cell names (``--jit/--no-jit`` gives both)."""
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def compare(kind: str, documented: dict, actual: dict) -> list[str]:
    """The differences between what a page documents and what the code has, by key."""
    problems = [f"{kind} {key!r} is in the code but not on the page" for key in sorted(set(actual) - set(documented))]
    problems += [f"{kind} {key!r} is on the page but not in the code" for key in sorted(set(documented) - set(actual))]
    problems += [
        f"{kind} {key!r}: the page says {documented[key]!r}, the code {actual[key]!r}"
        for key in sorted(set(documented) & set(actual))
        if documented[key] != actual[key]
    ]
    return problems


# --- (a) the command line -------------------------------------------------------------------


def click_options(command: click.Command) -> dict[str, object]:
    """A command's long options, each with its choices (a tuple) or None."""
    found: dict[str, object] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            choices = tuple(param.type.choices) if isinstance(param.type, click.Choice) else None
            for name in [*param.opts, *param.secondary_opts]:
                if name.startswith("--"):
                    found[name] = choices
    return found


def documented_options(cell: str) -> dict[str, object]:
    """The options a table cell lists, each with the choices written after it (``--format a|b``)."""
    found: dict[str, object] = {name: None for name in long_options(cell)}
    for name, choices in re.findall(r"(--[a-z][a-z-]*) ([a-z]+(?:\|[a-z]+)+)", cell):
        found[name] = tuple(choices.split("|"))
    return found


def command_table_problems(text: str) -> list[str]:
    """How the command table of docs/command-line.md differs from the click commands."""
    documented = {}
    for row in table_headed(text, "command", "options"):
        words = code(row[0])[0].split()
        assert words[0] == "optreg", row[0]
        documented[words[1]] = documented_options(row[1])
    actual = {name: click_options(command) for name, command in main.commands.items()}
    problems = compare("command", {name: None for name in documented}, {name: None for name in actual})
    for name in sorted(set(documented) & set(actual)):
        problems += compare(f"optreg {name}: option", documented[name], actual[name])
    return problems


def bench_table_problems(text: str) -> list[str]:
    """How the option table of docs/benchmarking.md differs from ``optreg bench``'s options
    (``--spec``, which every command takes, is documented with the commands)."""
    documented: dict[str, object] = {}
    for row in table_headed(text, "option", "meaning"):
        documented.update(documented_options(row[0]))
    actual = {name: choices for name, choices in click_options(main.commands["bench"]).items() if name != "--spec"}
    return compare("optreg bench option", documented, actual)


def test_the_command_table_is_the_click_commands_and_their_options():
    assert command_table_problems(page("docs/command-line.md")) == []


def test_the_bench_option_table_is_the_bench_command_options():
    assert bench_table_problems(page("docs/benchmarking.md")) == []


def test_a_command_missing_from_the_command_table_is_caught():
    text = without_row(page("docs/command-line.md"), "`optreg problems`")
    assert command_table_problems(text) == ["command 'problems' is in the code but not on the page"]


def test_a_missing_option_or_choice_in_the_command_table_is_caught():
    text = page("docs/command-line.md").replace("`--format table\\|json\\|csv`, `--out`", "`--format table\\|json`, ")
    assert command_table_problems(text) == [
        "optreg bench: option '--out' is in the code but not on the page",
        "optreg bench: option '--format': the page says ('table', 'json'), the code ('table', 'json', 'csv')",
    ]


def test_a_bench_option_missing_from_its_table_is_caught():
    text = without_row(page("docs/benchmarking.md"), "`--stop-at-tolerance`")
    assert bench_table_problems(text) == [
        "optreg bench option '--stop-at-tolerance' is in the code but not on the page"
    ]


# --- (b) the hooks --------------------------------------------------------------------------


def hook_signatures() -> list[str]:
    """Every hook specification of optreg/hookspecs.py, as ``name(arguments) -> result``."""
    return sorted(
        name + str(inspect.signature(function)).replace("'", "")
        for name, function in vars(hookspecs).items()
        if name.startswith("optreg_") and hasattr(function, "optreg_spec")
    )


def hook_table_problems(text: str) -> list[str]:
    """How the hook table of docs/plugins.md differs from the hook specifications."""
    documented = {code(row[0])[0]: None for row in table_headed(text, "hook")}
    return compare("hook", documented, dict.fromkeys(hook_signatures()))


def test_the_hook_table_is_the_hookspecs():
    assert hook_signatures(), "no hook specification found"
    assert hook_table_problems(page("docs/plugins.md")) == []


def test_a_hook_missing_from_the_hook_table_is_caught():
    text = without_row(page("docs/plugins.md"), "`optreg_register_problems(register: Callable[..., Any]) -> None`")
    assert hook_table_problems(text) == [
        "hook 'optreg_register_problems(register: Callable[..., Any]) -> None' is in the code but not on the page"
    ]


def test_a_hook_signature_out_of_date_is_caught():
    text = page("docs/plugins.md").replace(
        "| `optreg_spec_paths() -> Iterable[str]` |", "| `optreg_spec_paths() -> list` |"
    )
    assert len(hook_table_problems(text)) == 2


# --- (c) the built-in optimizers ------------------------------------------------------------


def builtin_summaries() -> dict[str, str]:
    """Every built-in optimizer of the registry, with its summary."""
    builtins = {entry.name: entry.summary for entry in optreg.registry if entry.source == "builtin"}
    assert set(builtins) <= set(optreg.registry.names())
    return builtins


def catalogue_problems(text: str) -> list[str]:
    """How the table of docs/catalogue.md differs from the built-in optimizers and their summaries,
    and whether the page's count ("`optreg list` shows N") is theirs."""
    documented = {code(row[0])[0]: row[1] for row in table_headed(text, "name", "summary")}
    builtins = builtin_summaries()
    problems = compare("built-in optimizer", dict.fromkeys(documented), dict.fromkeys(builtins))
    problems += compare(
        "summary of",
        {k: v for k, v in documented.items() if k in builtins},
        {k: v for k, v in builtins.items() if k in documented},
    )
    counts = re.findall(r"`optreg list` shows (\d+)", text)
    if counts != [str(len(builtins))]:
        problems.append(f"the page counts {counts}, the registry has {len(builtins)} built-ins")
    return problems


def test_the_catalogue_table_is_the_registry_builtins_and_their_summaries():
    assert catalogue_problems(page("docs/catalogue.md")) == []


def test_the_readme_counts_the_builtins():
    assert re.findall(r"\*\*Optimizers\.\*\* (\d+) are built in", page("README.md")) == [str(len(builtin_summaries()))]


def test_the_catalogue_names_the_exact_sparse_built_ins():
    """The list in the catalogue's sparse-gradient paragraph is the built-ins whose rule, created
    with its defaults, is exact-sparse (decided from the rule, ``optreg show``'s line)."""
    from optreg.catalog.show import sparse_gradients

    count, paragraph = page("docs/catalogue.md").split("**Sparse gradients.**")[1].split(":", 1)
    named = set(re.findall(r"`(\w+)`", paragraph.split(".")[0]))
    exact = {e.name for e in optreg.registry if e.source == "builtin" and e.spec and
             sparse_gradients(e.spec).startswith("exact")}
    assert named == exact
    words = "zero one two three four five six seven eight nine".split()
    assert count.split()[0].lower() == (words[len(exact)] if len(exact) < len(words) else str(len(exact)))


def test_a_builtin_missing_from_the_catalogue_or_a_stale_summary_is_caught():
    text = without_row(page("docs/catalogue.md"), "`yogi`")
    assert catalogue_problems(text) == ["built-in optimizer 'yogi' is in the code but not on the page"]
    adam = builtin_summaries()["adam"]
    stale = page("docs/catalogue.md").replace(f"| `adam` | {adam} |", "| `adam` | Adam, as it was |")
    assert catalogue_problems(stale) == [f"summary of 'adam': the page says 'Adam, as it was', the code {adam!r}"]


def test_an_extra_row_in_the_catalogue_is_caught():
    text = with_row_after(page("docs/catalogue.md"), "`yogi`", "| `zeal` | Zeal | Nobody 2099 | nothing |")
    assert catalogue_problems(text) == ["built-in optimizer 'zeal' is on the page but not in the code"]


# --- (d) the options ------------------------------------------------------------------------


def options_block(text: str) -> str:
    """What docs/options.md holds between its options-table markers."""
    assert text.count(OPTIONS_START) == 1 and text.count(OPTIONS_END) == 1
    return text.split(OPTIONS_START, 1)[1].split(OPTIONS_END, 1)[0].strip()


def optimizer_keyword_defaults() -> dict[str, str]:
    """The defaults of ``optreg.Optimizer.__init__``'s keyword options, read from its source (no
    TensorFlow imported), as written in Python."""
    tree = ast.parse((REPO / "optreg" / "runtime" / "optimizer.py").read_text(encoding="utf-8"))
    init = next(
        node
        for cls in tree.body
        if isinstance(cls, ast.ClassDef) and cls.name == "Optimizer"
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    return {
        arg.arg: ast.unparse(default)
        for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults)
        if default is not None
    }


def option_defaults() -> dict[str, str]:
    """Every option an optimizer takes with its default, as Python writes it: the validated
    options' from :mod:`optreg.model.option_values`, ``slot_dtype``'s and ``jit_compile``'s from the
    ``Optimizer`` signature."""
    validated = {  # a tuple default written as the list a user passes
        field.name: repr(list(field.default) if isinstance(field.default, tuple) else field.default)
        for cls in (option_values.GradientOptions, option_values.StepOptions)
        for field in attrs.fields(cls)
    }
    keywords = optimizer_keyword_defaults()
    found = {name: validated.get(name, keywords.get(name)) for name in option_model.ALL_OPTION_NAMES}
    return {name: value.replace("'", '"') if value else value for name, value in found.items()}


def options_table_problems(text: str) -> list[str]:
    """How the hand-written options table differs from the options and their defaults."""
    rows = table_headed(options_block(text), "option", "default")
    documented = {code(row[0])[0]: code(row[1])[0] if code(row[1]) else row[1] for row in rows}
    return compare("option", documented, option_defaults())


def test_the_options_table_is_every_option_with_its_default():
    assert options_table_problems(page("docs/options.md")) == []


def test_a_missing_option_or_a_wrong_default_is_caught():
    text = without_row(page("docs/options.md"), "`loss_scale_factor`")
    assert options_table_problems(text) == ["option 'loss_scale_factor' is in the code but not on the page"]
    wrong = page("docs/options.md").replace("| `ema_momentum` | `0.99` |", "| `ema_momentum` | `0.9` |")
    assert options_table_problems(wrong) == ["option 'ema_momentum': the page says '0.9', the code '0.99'"]


def rendered_options_table():
    """``optreg.model.options.option_table_markdown``, or a skip while it does not exist yet."""
    module = importlib.import_module("optreg.model.options")
    render = getattr(module, "option_table_markdown", None)
    if render is None:
        pytest.skip("optreg.model.options.option_table_markdown does not exist yet")
    return render


def test_the_options_table_is_what_option_table_markdown_renders():
    render = rendered_options_table()
    assert options_block(page("docs/options.md")) == render().strip()


def test_an_options_table_that_differs_from_the_rendering_is_caught():
    render = rendered_options_table()
    assert options_block(without_row(page("docs/options.md"), "`use_ema`")) != render().strip()


# --- the rule language's functions and the layers ------------------------------------------


def function_table_problems(text: str) -> list[str]:
    """How the function table of docs/spec-language.md differs from the language's functions."""
    named = set()
    for row in table_headed(text, "function", "meaning"):
        named.update(re.findall(r"([a-z_]+)\(", row[0]))
    return compare("function", dict.fromkeys(named), dict.fromkeys(FUNCTIONS))


def test_the_function_table_is_the_rule_language_functions():
    assert function_table_problems(page("docs/spec-language.md")) == []


def test_a_function_missing_from_the_function_table_is_caught():
    text = without_row(page("docs/spec-language.md"), "`clip(x, lo, hi)`")
    assert function_table_problems(text) == ["function 'clip' is in the code but not on the page"]


def layer_table_problems(text: str) -> list[str]:
    """How the layer table of docs/design.md differs from the contract of tests/test_layers.py."""
    documented_modules, documented_imports = {}, {}
    for layer, modules, may_import in table_headed(text, "layer", "modules"):
        documented_modules[layer] = frozenset(code(modules))
        documented_imports[layer] = (
            frozenset() if may_import == "—" else frozenset(map(str.strip, may_import.split(",")))
        )
    actual_modules = {layer: frozenset(m for m, of in LAYERS.items() if of == layer) for layer in set(LAYERS.values())}
    actual_imports = {layer: frozenset(may - {layer}) for layer, may in MAY_IMPORT.items()}
    return compare("layer", documented_modules, actual_modules) + compare(
        "layer imports of", documented_imports, actual_imports
    )


def test_the_layer_table_is_the_layers_contract():
    assert layer_table_problems(page("docs/design.md")) == []


def test_a_layer_table_out_of_date_is_caught():
    text = page("docs/design.md").replace(
        "| keras | `optreg.keras` | base, lang, model, spec, runtime, root |",
        "| keras | `optreg.keras` | base, lang, model, spec, runtime, root, catalog |",
    )
    problems = layer_table_problems(text)
    assert len(problems) == 1 and problems[0].startswith("layer imports of 'keras': the page says")


# --- links ----------------------------------------------------------------------------------


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces as
    hyphens, ``-1``, ``-2``… for repeats)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", without_code_blocks(text), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, count = slug, 0
        while candidate in found:
            count += 1
            candidate = f"{slug}-{count}"
        found.add(candidate)
    return found


def broken_links(path: Path, text: str) -> list[str]:
    """The relative links of a page whose file or heading does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code_blocks(text)):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    assert broken_links(path, path.read_text(encoding="utf-8")) == []


def test_a_broken_link_is_caught():
    readme = REPO / "README.md"
    text = (
        "[a](docs/nowhere.md) [b](docs/design.md#no-such-heading)"
        " [c](docs/design.md#the-layers-and-which-way-imports-flow) [d](https://example.org/x)"
    )
    assert broken_links(readme, text) == [
        "README.md: docs/nowhere.md (no such file)",
        "README.md: docs/design.md#no-such-heading (no such heading)",
    ]


def test_anchors_are_githubs():
    assert anchors("# Benchmarking: `optreg bench`\n## A\n## A\n```\n# not a heading\n```\n") == {
        "benchmarking-optreg-bench",
        "a",
        "a-1",
    }


def test_every_docs_page_is_linked_from_the_readme():
    linked = {Path(target).name for target in re.findall(r"\]\(docs/([^)#\s]+)", page("README.md"))}
    assert linked == {p.name for p in DOCS.glob("*.md")}


# --- the design page's module table ---------------------------------------------------------


def documented_modules(text: str) -> dict[str, None]:
    """The module files the design page's "what it holds" table names, as paths inside the
    package (``lang/tree.py``; a top-level module as ``cli.py``)."""
    found: dict[str, None] = {}
    for row in table_headed(text, "module", "what it holds"):
        folder = code(row[0])[0]
        if folder.endswith("/"):
            found.update(dict.fromkeys(f"{folder}{name}" for name in re.findall(r"`([a-z_]+\.py)`", row[1])))
        else:
            found[folder] = None
    return found


def package_modules() -> dict[str, None]:
    """Every module file of the package but the subpackages' ``__init__.py``, as paths inside it."""
    package = REPO / "optreg"
    return {
        str(path.relative_to(package)): None
        for path in sorted(package.rglob("*.py"))
        if not (path.name == "__init__.py" and path.parent != package) and path.name != "__main__.py"
    }


def test_the_design_page_names_every_module_and_no_other():
    assert compare("module", documented_modules(page("docs/design.md")), package_modules()) == []


def test_a_module_missing_from_the_design_page_is_caught():
    text = page("docs/design.md").replace("`loop_records.py` ", "", 1)
    assert compare("module", documented_modules(text), package_modules()) == [
        "module 'bench/loop_records.py' is in the code but not on the page"
    ]
