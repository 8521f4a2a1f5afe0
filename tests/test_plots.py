"""The bench figures read as a paper's figures: keys outside the data, colours that stand out,
no silent floors, exploded runs marked, windows on the landscape, axes that say what they show.

The runs are made by hand (no optimizer runs), so each figure takes a fraction of a second.
"""

from __future__ import annotations

import itertools

import attrs
import numpy as np
import pytest
from matplotlib import colormaps

from optreg.bench import plots
from optreg.bench.runner import RunResult
from optreg.problems.analytic import BOOTH, QUARTIC, ROSENBROCK
from optreg.problems.regression import mlp_regression

LEARNING_RATES = [float(v) for v in np.logspace(-4, 0, 20)]
FIFTEEN = [f"optimizer{i:02d}" for i in range(15)]


def _rosenbrock(points):
    x, y = points[:, 0], points[:, 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _run(optimizer, params, loss, status="exceeded", problem="rosenbrock", metrics=None, **settings):
    params = np.asarray(params, np.float64)
    iterations = list(range(len(params)))
    return RunResult(optimizer, problem, {}, settings, status, iterations[-1], float(loss[-1]), tuple(params[-1]), 0.0,
                     metrics=metrics or {},
                     history={"iterations": iterations, "loss": [float(v) for v in loss], "params": params.tolist()})


def _valley_run(optimizer, reach=0.0, **settings):
    """A Rosenbrock run from the start along the valley floor y = x² up to x = ``reach``."""
    x = np.linspace(-1.2, reach, 30)
    params = np.stack([x, x**2], axis=1)
    params[0] = ROSENBROCK.start
    return _run(optimizer, params, _rosenbrock(params), **settings)


def _exploded_rosenbrock(optimizer, **settings):
    params = [ROSENBROCK.start, (-3.0, 5.0), (-1e29, 1e19), (np.inf, np.inf), (np.nan, np.nan)]
    return _run(optimizer, params, [24.2, 1.6e4, 1e34, np.inf, np.nan], status="exploded", **settings)


def _quartic_run(optimizer, end, status="exceeded", **settings):
    path = np.concatenate([np.linspace(2.0, end, 40), [end] * 5])
    if status == "exploded":
        path = np.array([2.0, -40.0, 3e9, np.inf, np.nan])
    loss = 2 * path**4 + 3 * path**3 + 2
    return _run(optimizer, path[:, None], loss, status=status, problem="quartic", **settings)


def _quartic_sweep(optimizer):
    return [
        _quartic_run(optimizer, 0.1, learning_rate=1e-3),
        _quartic_run(optimizer, -1.125, "converged", learning_rate=1e-2),
        _quartic_run(optimizer, 0.0, "exploded", learning_rate=1e-1),
    ]


def _loss_run(optimizer, losses, status="exceeded", problem="booth", metrics=None, **settings):
    return _run(
        optimizer, np.zeros((len(losses), 2)), np.asarray(losses, np.float64), status, problem, metrics, **settings
    )


def _decaying(rate, steps=50, start=74.0):
    return start * np.exp(-rate * np.arange(steps))


def _booth_sweep():
    runs = []
    for name, scale in (("adam", 1.0), ("sgd", 3.0)):
        for lr in LEARNING_RATES[:12]:
            exploded = name == "sgd" and lr > 0.005
            losses = [74.0, np.nan] if exploded else [74.0, scale * lr]
            runs.append(_loss_run(name, losses, "exploded" if exploded else "exceeded", learning_rate=lr))
    return runs


FIGURES = {
    "paths, few runs": lambda: plots.path_figure(_quartic_sweep("momentum"), QUARTIC),
    "paths, three optimizers": lambda: plots.path_figure(
        [r for name in ("gradient_descent", "momentum", "adam") for r in _quartic_sweep(name)], QUARTIC
    ),
    "contours, few runs": lambda: plots.contour_figure(
        [_valley_run("adam", 0.8), _valley_run("sgd", -0.5), _exploded_rosenbrock("momentum")], ROSENBROCK
    ),
    "contours, 20 runs": lambda: plots.contour_figure(
        [_valley_run("adam", -1.2 + 2 * i / 20, learning_rate=lr) for i, lr in enumerate(LEARNING_RATES)], ROSENBROCK
    ),
    "contours, 15 optimizers": lambda: plots.contour_figure(
        [_valley_run(name, -1.2 + 0.1 * i) for i, name in enumerate(FIFTEEN)], ROSENBROCK
    ),
    "contours, 5 optimizers x 3 rates": lambda: plots.contour_figure(
        [
            _valley_run(name, -1.0 + 0.5 * j, learning_rate=lr)
            for name in FIFTEEN[:5]
            for j, lr in enumerate((1e-3, 1e-2, 1e-1))
        ],
        ROSENBROCK,
    ),
    "loss, 20 runs": lambda: plots.loss_figure(
        [_loss_run("adam", _decaying(i / 40), learning_rate=lr) for i, lr in enumerate(LEARNING_RATES)], BOOTH
    ),
    "loss, 9 optimizers x 5 rates": lambda: plots.loss_figure(
        [
            _loss_run(name, _decaying(0.05 * j + 0.01 * i), learning_rate=lr)
            for i, name in enumerate(FIFTEEN[:9])
            for j, lr in enumerate((1e-4, 1e-3, 1e-2, 1e-1, 1.0))
        ],
        BOOTH,
    ),
    "sweep": lambda: plots.sweep_figure(_booth_sweep(), BOOTH),
}


def _panels(figure):
    """The data axes (colorbars are axes too, with no lines of runs)."""
    return [axes for axes in figure.axes if any(line.get_gid() == "path" for line in axes.lines)]


def _colorbar_labels(figure):
    return [axes.get_xlabel() or axes.get_ylabel() for axes in figure.axes if axes not in _panels(figure)]


def _gid(figure, gid):
    return [line for axes in _panels(figure) for line in axes.lines if line.get_gid() == gid]


def _colour_gap(colour, colours):
    return float(np.min(np.linalg.norm(np.asarray(colours)[:, :3] - np.asarray(colour)[:3], axis=1)))


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_key_lies_outside_the_panels_and_inside_the_image(name):
    drawn = FIGURES[name]()
    drawn.canvas.draw()
    renderer = drawn.canvas.get_renderer()
    legends = list(drawn.legends) + [axes.get_legend() for axes in drawn.axes if axes.get_legend()]
    assert legends
    image = drawn.bbox
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(axes.get_window_extent(renderer)) for axes in drawn.axes)
        assert image.x0 <= box.x0 and box.x1 <= image.x1 and image.y0 <= box.y0 and box.y1 <= image.y1


def test_every_axis_says_what_it_measures():
    mlp = {"baseline_train_loss": 5900.0, "test_loss": 3400.0, "baseline_test_loss": 5954.0}
    regression = _loss_run("adam", [2.9e4, 8e3, 3e3], problem="mlp-regression", metrics=mlp, learning_rate=0.01)
    expected = [
        (plots.path_figure(_quartic_sweep("momentum"), QUARTIC), "iteration", "parameter value x"),
        (FIGURES["contours, few runs"](), "x", "y"),
        (FIGURES["loss, 20 runs"](), "iteration", "loss − known minimum"),
        (plots.loss_figure([regression], mlp_regression()), "iteration", "train loss"),
        (plots.sweep_figure(_booth_sweep(), BOOTH), "learning_rate", "final loss − known minimum"),
        (plots.sweep_figure([regression, attrs.evolve(regression, settings={"learning_rate": 0.1})], mlp_regression()),
         "learning_rate", "test loss (final parameters)"),
    ]
    for figure, xlabel, ylabel in expected:
        axes = _panels(figure)[0]
        assert (axes.get_xlabel(), axes.get_ylabel()) == (xlabel, ylabel)


def _inside(mark) -> bool:
    """Whether a marker's point lies in its axes' frame (within a pixel)."""
    x, y = mark.get_transform().transform((mark.get_xdata()[0], mark.get_ydata()[0]))
    box = mark.axes.get_window_extent()
    return box.x0 - 1 <= x <= box.x1 + 1 and box.y0 - 1 <= y <= box.y1 + 1


def _sane_limits(axes, span: float) -> bool:
    """Finite, increasing limits; on a log axis at most ``span`` decades, else at most ``span`` wide."""
    limits = [axes.get_xlim(), axes.get_ylim()]
    ok = all(np.isfinite(pair).all() and pair[0] < pair[1] for pair in limits)
    low, high = axes.get_ylim()
    return ok and (np.log10(high / low) if axes.get_yscale() == "log" else high - low) <= span


@pytest.mark.parametrize("name", ["contours, 20 runs", "loss, 20 runs"])
def test_many_runs_get_a_colorbar_of_the_swept_value(name):
    figure = FIGURES[name]()
    assert "learning_rate" in _colorbar_labels(figure)


def test_small_multiples_one_panel_per_optimizer_with_the_tutorials_map():
    figure = FIGURES["paths, three optimizers"]()
    panels = _panels(figure)
    assert [axes.get_title() for axes in panels] == ["gradient_descent", "momentum", "adam"]
    assert all(len(axes.collections) == 1 for axes in panels)  # each the log-loss colour map
    assert [len([line for line in axes.lines if line.get_gid() == "path"]) for axes in panels] == [3, 3, 3]


@pytest.mark.parametrize("name", ["contours, 15 optimizers", "contours, 20 runs"])
def test_run_colours_are_distinct_and_apart_from_the_landscape_map(name):
    figure = FIGURES[name]()
    colours = [line.get_color() for line in _gid(figure, "path")]
    landscape = colormaps["viridis"](np.linspace(0, 1, 256))
    assert min(_colour_gap(colour, landscape) for colour in colours) > 0.1
    if name == "contours, 15 optimizers":
        assert min(_colour_gap(a, [b]) for a, b in itertools.combinations(colours, 2)) > 0.1


def test_sweep_colours_by_optimizer():
    adam, sgd = _gid(plots.sweep_figure(_booth_sweep(), BOOTH), "path")
    assert _colour_gap(adam.get_color(), [sgd.get_color()]) > 0.3


def test_losses_are_not_floored_silently():
    tiny = _loss_run("adam", [74.0, 1e-6, 1.7e-18])
    figure = plots.loss_figure([tiny, _loss_run("sgd", [74.0, 1.0, 1e-3])], BOOTH)
    (axes,) = _panels(figure)
    assert min(np.nanmin(line.get_ydata()) for line in _gid(figure, "path")) == pytest.approx(1.7e-18)
    assert axes.get_ylim()[0] <= 1.7e-18 and "≤ 0" not in axes.get_ylabel()
    exact = plots.loss_figure([_loss_run("momentum", [74.0, 1e-6, 0.0], "converged")], BOOTH)
    (axes,) = _panels(exact)
    (floor,) = _gid(exact, "floor")
    assert "≤ 0 drawn at 1e-7" in axes.get_ylabel() and floor.get_ydata()[0] == pytest.approx(1e-7)
    assert _gid(exact, "path")[0].get_ydata()[-1] == pytest.approx(1e-7)


@pytest.mark.parametrize("name, span", [("contours, few runs", 10), ("paths, few runs", 10), ("sweep", 12)])
def test_exploded_runs_are_marked_in_a_frame_set_by_the_finite_data(name, span):
    figure = FIGURES[name]()
    figure.canvas.draw()
    assert _gid(figure, "exploded") and all(_inside(mark) for mark in _gid(figure, "exploded"))
    assert all(_sane_limits(axes, span) for axes in _panels(figure))


def test_an_exploded_loss_curve_does_not_set_the_scale():
    exploded = _loss_run("momentum", [74.0, 1e8, 1e34, np.inf, np.nan], "exploded")
    figure = plots.loss_figure([_loss_run("adam", _decaying(0.1)), exploded], BOOTH)
    figure.canvas.draw()
    (axes,) = _panels(figure)
    assert _sane_limits(axes, 8) and axes.get_ylim()[1] < 1e3
    (mark,) = _gid(figure, "exploded")
    assert mark.get_xdata()[0] == 2.0 and mark.get_ydata()[0] == axes.get_ylim()[1] and _inside(mark)


def test_the_contour_window_shows_start_minimum_and_valley():
    figure = plots.contour_figure([_valley_run("adam", -1.0)], ROSENBROCK)
    (axes,) = _panels(figure)
    ((start,), (minimum,)) = _gid(figure, "start"), _gid(figure, "minimum")
    assert (start.get_xdata()[0], start.get_ydata()[0]) == (-1.2, 1.0)
    assert (minimum.get_xdata()[0], minimum.get_ydata()[0]) == (1.0, 1.0)
    (x_low, x_high), (y_low, y_high) = axes.get_xlim(), axes.get_ylim()
    assert x_low < -1.2 and x_high > 1.0 and y_low < 0.0 < 2.0 < y_high  # the valley y = x² from (0, 0) up to (±1.4, 2)
    assert (y_high - y_low) / (x_high - x_low) == pytest.approx(1.0)


def test_the_path_figure_draws_the_minimum():
    (minimum,) = _gid(FIGURES["paths, few runs"](), "minimum")
    assert list(minimum.get_ydata()) == [-1.125, -1.125]


def test_regression_loss_is_drawn_against_the_constant_prediction():
    metrics = {"baseline_train_loss": 5900.0, "test_loss": 3400.0, "baseline_test_loss": 5954.0}
    figure = plots.loss_figure([_loss_run("adam", [2.9e4, 8e3, 3e3], problem="mlp-regression", metrics=metrics)],
                               mlp_regression())
    (baseline,) = _gid(figure, "baseline")
    assert baseline.get_ydata()[0] == 5900.0


def test_analytic_losses_show_the_problems_tolerance():
    (tolerance,) = _gid(FIGURES["loss, 20 runs"](), "tolerance")
    assert tolerance.get_ydata()[0] == BOOTH.tolerance
