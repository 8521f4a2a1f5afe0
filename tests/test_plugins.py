"""Plugins in-process: the example plugins' optimizers against NumPy, each hook exercised,
failures isolated per plugin, and the plugin guide's hook reference (docs/plugins.md) kept in sync."""

from __future__ import annotations

import inspect
import re
import sys
import time

import attrs
import numpy as np
import pytest
import tensorflow as tf

import optreg
import optreg.plugins.host
from optreg import hookspecs
from optreg.catalog.registry import Registry
from optreg.plugins.host import PluginHost, PluginInfo
from optreg.problems import Problem
from tests.helpers import REPO

sys.path[:0] = [str(REPO / "plugins" / "optreg-sam"), str(REPO / "plugins" / "optreg-classics")]
import optreg_classics  # noqa: E402  (the example plugins, from the source tree)
import optreg_sam  # noqa: E402

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("optreg_"))
NO_AUTOLOAD = {"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"}


def registry_with(*plugins) -> Registry:
    """A registry of the built-in plugin and the given (object, name, distribution) plugins."""
    pairs = [(plugin, PluginInfo(name, dist, "1.0")) for plugin, name, dist in plugins]
    return Registry(host=lambda: PluginHost(environ=NO_AUTOLOAD, plugins=pairs))


@pytest.fixture(scope="module")
def examples():
    return registry_with((optreg_classics, "classics", "optreg-classics"), (optreg_sam, "sam", "optreg-sam"))


# --- the example plugins' optimizers --------------------------------------------------------


def numpy_sam(x, grad_fn, steps, lr, rho, momentum):
    """Foret et al. 2021, Algorithm 1, with an SGD-with-momentum base."""
    velocity, out = np.zeros_like(x), []
    for _ in range(steps):
        g = grad_fn(x)
        eps = rho * g / (np.linalg.norm(g) + 1e-12)
        velocity = momentum * velocity - lr * grad_fn(x + eps)
        x = x + velocity
        out.append(x)
    return out


def test_sam_matches_the_papers_algorithm(examples):
    scales = np.array([1.0, 3.0, 0.5])
    grad_fn = lambda x: 2 * scales * x + np.cos(x)  # noqa: E731  (loss: Σ sᵢxᵢ² + sin xᵢ)
    start = np.array([1.0, -2.0, 0.5])
    var = tf.Variable(start)
    opt = examples.create("sam", learning_rate=0.05, rho=0.1, momentum=0.5)
    loss = lambda: tf.reduce_sum(scales * var**2 + tf.sin(var))  # noqa: E731
    ours = []
    for _ in range(20):
        opt.minimize(loss, [var])
        ours.append(var.numpy().copy())
    reference = numpy_sam(start, grad_fn, 20, 0.05, 0.1, 0.5)
    np.testing.assert_allclose(ours, reference, rtol=1e-10)


def test_sam_refuses_a_step_without_the_loss(examples):
    with pytest.raises(optreg.OptregError, match=r"call minimize\(loss_fn, variables\)"):
        examples.create("sam").apply_gradients([(tf.constant([1.0]), tf.Variable([0.0]))])


def test_qhm_and_adabound_match_their_papers(examples, rng):
    start = rng.normal(size=(4,))
    grads = [rng.normal(size=(4,)) for _ in range(30)]
    x, buffer = start.copy(), np.zeros(4)
    x2, m, v = start.copy(), np.zeros(4), np.zeros(4)
    expected_qhm, expected_adabound = [], []
    for t, g in enumerate(grads, start=1):
        buffer = 0.9 * buffer + 0.1 * g
        x = x - 0.1 * (0.3 * g + 0.7 * buffer)
        expected_qhm.append(x)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        step_size = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        bounds = 0.1 * (1 - 1 / (1e-3 * t + 1)), 0.1 * (1 + 1 / (1e-3 * t))
        x2 = x2 - np.clip(step_size / (np.sqrt(v) + 1e-8), *bounds) * m
        expected_adabound.append(x2)
    for name, settings, expected in [
        # qhm is a built-in too: the short name is ambiguous, the qualified one is the plugin's
        ("optreg-classics:qhm", {"learning_rate": 0.1, "beta": 0.9, "nu": 0.7}, expected_qhm),
        ("adabound", {"learning_rate": 0.01}, expected_adabound),
    ]:
        var, opt = tf.Variable(start), examples.create(name, **settings)
        ours = []
        for g in grads:
            opt.apply_gradients([(tf.constant(g), var)])
            ours.append(var.numpy().copy())
        np.testing.assert_allclose(ours, expected, rtol=1e-12, err_msg=name)


def test_a_plugin_optimizer_named_as_a_builtin_needs_its_qualified_name(examples):
    with pytest.raises(optreg.errors.AmbiguousNameError, match="builtin and optreg-classics"):
        examples.create("qhm")
    assert examples.get("builtin:qhm").source == "builtin"
    assert examples.get("optreg-classics:qhm").source == "optreg-classics"


def test_plugin_problem_and_optimizers_are_qualified_by_distribution(examples):
    assert examples.get("sam").qualified_name == "optreg-sam:sam"
    assert examples.get("optreg-classics:qhm").source == "optreg-classics"
    camel = examples.problems.get("three_hump_camel")
    assert camel.source == "optreg-classics" and camel.minimum == (0.0, 0.0)
    assert float(camel.loss(tf.constant([0.0, 0.0]))) == 0.0


# --- each hook, and failures isolated per plugin -------------------------------------------


class SpecPathsPlugin:
    """optreg_spec_paths: a folder with one spec."""

    def __init__(self, folder):
        self.folder = folder

    @optreg.hookimpl
    def optreg_spec_paths(self):
        return [self.folder]


class OptimizersPlugin:
    """optreg_register_optimizers: a Python optimizer by import path."""

    @optreg.hookimpl
    def optreg_register_optimizers(self, register):
        register(
            optreg.PythonOptimizer(
                "sam_again", "SAM under another name", "optreg_sam.optimizer:SAM", optreg_sam.HYPERPARAMETERS
            )
        )


class ProblemsPlugin:
    """optreg_register_problems: one problem, and one registration of the wrong type."""

    @optreg.hookimpl
    def optreg_register_problems(self, register):
        register(Problem("bowl", "x²", (1.0,), lambda x: x[..., 0] ** 2, minimum=(0.0,)))
        register("not a problem")


def test_every_hook_registers_what_it_names(tmp_path):
    spec = optreg.registry.get("gradient_descent").spec
    text = open(spec.source, encoding="utf-8").read().replace('"gradient_descent"', '"plain"')
    (tmp_path / "plain.toml").write_text(text, encoding="utf-8")
    registry = registry_with(
        (SpecPathsPlugin(tmp_path), "paths", "optreg-paths"),
        (OptimizersPlugin(), "pyopt", "optreg-pyopt"),
        (ProblemsPlugin(), "probs", "optreg-probs"),
    )
    with pytest.warns(
        optreg.PluginWarning, match=r"plugin 'probs' \(optreg-probs 1.0\): .*takes an optreg.problems.Problem"
    ):
        names = registry.names()
    assert {"plain", "sam_again"} <= set(names)
    assert registry.problems.get("optreg-probs:bowl").start == (1.0,)
    assert isinstance(registry.create("sam_again"), optreg_sam.optimizer.SAM)
    reports = {r.name: r for r in registry.discovery.plugins}
    assert reports["paths"].hooks == ("optreg_spec_paths",)
    assert reports["pyopt"].registered == ("optreg-pyopt:sam_again",)


def test_strict_mode_raises_plugin_error():
    registry = Registry(
        environ={**NO_AUTOLOAD, "OPTREG_STRICT_PLUGINS": "1"},
        host=lambda: PluginHost(
            environ=NO_AUTOLOAD, plugins=[(ProblemsPlugin(), PluginInfo("probs", "optreg-probs", "1.0"))]
        ),
    )
    with pytest.raises(optreg.PluginError, match="plugin 'probs'"):
        registry.names()


def test_a_python_optimizer_whose_class_disagrees_is_refused_on_create():
    class Mismatched:
        @optreg.hookimpl
        def optreg_register_optimizers(self, register):
            register(
                optreg.PythonOptimizer(
                    "odd", "declares less", "optreg_sam.optimizer:SAM", optreg_sam.HYPERPARAMETERS[:1]
                )
            )

    registry = registry_with((Mismatched(), "odd", "optreg-odd"))
    with pytest.raises(optreg.PluginError, match="disagree: registered hyperparameters"):
        registry.create("odd")


def test_a_python_optimizer_registered_with_other_defaults_or_bounds_is_refused_on_create():
    """Same names, other numbers: ``optreg show`` would show the registration's default while
    the class trained with its own, and a bench would accept values the class refuses."""
    learning_rate, *rest = optreg_sam.HYPERPARAMETERS
    loose = attrs.evolve(learning_rate, default=0.5, max=10.0)

    class Loose:
        @optreg.hookimpl
        def optreg_register_optimizers(self, register):
            register(optreg.PythonOptimizer("loose", "other bounds", "optreg_sam.optimizer:SAM", (loose, *rest)))

    registry = registry_with((Loose(), "loose", "optreg-loose"))
    with pytest.raises(
        optreg.PluginError,
        match="learning_rate is registered with default=0.5, max=10.0, but the class declares default=0.01, max=None",
    ):
        registry.create("loose")


# --- plugin code isolated: time limits, SystemExit, prints -----------------------------------


def host_with(environ: dict, *plugins) -> Registry:
    """A registry like :func:`registry_with`, its host reading the given extra environment."""
    pairs = [(plugin, PluginInfo(name, dist, "1.0")) for plugin, name, dist in plugins]
    return Registry(host=lambda: PluginHost(environ={**NO_AUTOLOAD, **environ}, plugins=pairs))


class SleepingPlugin:
    """A hook that sleeps far past the time limit the tests set."""

    @optreg.hookimpl
    def optreg_register_problems(self, register):
        time.sleep(2.0)
        register(Problem("late", "x²", (1.0,), lambda x: x[..., 0] ** 2))


class ExitingPlugin:
    """A hook that ends the process, or tries to."""

    @optreg.hookimpl
    def optreg_spec_paths(self):
        sys.exit(3)


class PrintingPlugin:
    """A hook that prints to stdout."""

    @optreg.hookimpl
    def optreg_register_optimizers(self, register):
        print("hello from a plugin")


def test_a_hook_past_its_time_limit_is_one_warning_and_discovery_goes_on():
    registry = host_with(
        {"OPTREG_HOOK_TIMEOUT": "0.3"},
        (SleepingPlugin(), "sleepy", "optreg-sleepy"),
        (OptimizersPlugin(), "pyopt", "optreg-pyopt"),
    )
    started = time.monotonic()
    with pytest.warns(
        optreg.PluginWarning,
        match=r"plugin 'sleepy' \(optreg-sleepy 1.0\): optreg_register_problems still running after 0.3 s",
    ) as caught:
        names = registry.names()
    assert time.monotonic() - started < 1.9  # the hook sleeps 2 s
    assert len(caught) == 1 and "sam_again" in names
    assert "late" not in registry.problems.names()


def test_the_hook_time_limit_must_be_a_positive_number():
    with pytest.raises(
        optreg.PluginError, match="OPTREG_HOOK_TIMEOUT must be a positive number of seconds, got 'soon'"
    ):
        host_with({"OPTREG_HOOK_TIMEOUT": "soon"}, (OptimizersPlugin(), "pyopt", "optreg-pyopt")).names()


def test_a_hook_calling_sys_exit_is_a_failure_of_its_plugin():
    registry = host_with(
        {}, (ExitingPlugin(), "exiting", "optreg-exiting"), (OptimizersPlugin(), "pyopt", "optreg-pyopt")
    )
    with pytest.warns(
        optreg.PluginWarning, match=r"plugin 'exiting' \(optreg-exiting 1.0\): optreg_spec_paths raised SystemExit: 3"
    ):
        assert "sam_again" in registry.names()


def test_ctrl_c_in_a_hook_passes_through():
    class Interrupted:
        @optreg.hookimpl
        def optreg_spec_paths(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        host_with({}, (Interrupted(), "interrupted", "optreg-interrupted")).names()


def test_what_a_hook_prints_goes_to_stderr(capsys):
    registry = host_with({}, (PrintingPlugin(), "printing", "optreg-printing"))
    assert "adam" in registry.names()
    out, err = capsys.readouterr()
    assert out == "" and "hello from a plugin" in err


def test_what_a_plugin_prints_on_import_goes_to_stderr(monkeypatch, capsys):
    class Point:
        name, value, group = "noisy", "optreg_noisy", "optreg"
        dist = attrs.make_class(
            "Dist", {"name": attrs.field(default="optreg-noisy"), "version": attrs.field(default="1.0")}
        )()

        def load(self):
            print("imported, loudly")
            return PrintingPlugin()

    monkeypatch.setattr(optreg.plugins.host, "entry_points", lambda group: [Point()])
    host = PluginHost(environ={})
    assert [info.name for info in host.infos][-1] == "noisy"
    out, err = capsys.readouterr()
    assert out == "" and "imported, loudly" in err


# --- docs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_full(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    for part in ("Returns:", "Example:"):
        assert part in doc, f"{hook} docstring lacks {part}"


def test_plugin_guide_has_one_section_per_hook_headed_by_its_signature():
    guide = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = guide.split("## The hooks", 1)[1].split("\n## ", 1)[0]
    headings = re.findall(r"^### `(.+)`$", section, flags=re.M)
    expected = [hook + str(inspect.signature(getattr(hookspecs, hook))).replace("'", "") for hook in HOOKS]
    assert sorted(headings) == sorted(expected)


def test_every_hook_has_a_test():
    """Each hook is implemented by a plugin that some test file defines and exercises."""
    tests = "".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py"))
    assert [hook for hook in HOOKS if f"def {hook}(self, " not in tests and f"def {hook}(self)" not in tests] == []


def test_a_hook_left_behind_prints_to_stderr_not_to_stdout(capsys):
    """A hook still running after its time limit that prints later cannot reach stdout (where
    ``optreg list --format json`` writes); the main thread's output still does."""
    import threading

    from optreg.plugins.host import HookTimeout, call_isolated

    release, printed = threading.Event(), threading.Event()

    def late_printer():
        release.wait(5)
        print("printed after the limit")
        printed.set()

    with pytest.raises(HookTimeout):
        call_isolated(late_printer, {}, time_limit=0.05)
    release.set()
    assert printed.wait(5)
    print("the command's own output")
    out, err = capsys.readouterr()
    assert "printed after the limit" in err
    assert out == "the command's own output\n"
