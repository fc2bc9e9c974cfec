"""Static figures: the tutorial's λ row, sweep curves, and the drawing helpers the widgets share."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import hypermorph_nb as hnb
from hypermorph_nb import metrics
from hypermorph_nb.data import Dataset
from hypermorph_nb.viz.drawing import format_lam, grid_lines, label_colors, label_outlines, set_lam_axis
from hypermorph_nb.viz.plotting import lambda_row_figure, plot_sweep, plot_sweep_panels
from hypermorph_nb.registration.pairs import Registrar

from tests.conftest import SHAPE, TINY_FEATURES

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model():
    return hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)


@pytest.fixture(scope="module")
def sweep(model, small_data):
    return hnb.lambda_sweep(model, small_data, [0.0, 0.5, 0.9, 0.99, 1.0], n_pairs=4, progress=False)


def test_lambda_row_shows_the_model_output_per_lambda(model, small_data):
    lams = [0.0, 0.9, 0.995]
    fig = lambda_row_figure(model, small_data.images[0], small_data.images[1], lams)
    assert [ax.get_title() for ax in fig.axes] == ["moving", "fixed", "λ = 0", "λ = 0.9", "λ = 0.995"]
    moved, _ = Registrar.for_model(model).predict(np.repeat(small_data.images[:1], 3, 0),
                                                  np.repeat(small_data.images[1:2], 3, 0), lams)
    for ax, image in zip(fig.axes[2:], moved):
        np.testing.assert_allclose(ax.images[0].get_array(), image[..., 0])
    plt.close(fig)


def test_lambda_row_with_labels_and_differences(model, small_data):
    moving, fixed = small_data.images[2], small_data.images[3]
    fig = lambda_row_figure(model, moving, fixed, [0.5], moving_labels=small_data.labels[2],
                            fixed_labels=small_data.labels[3], show_difference=True)
    assert len(fig.axes) == 6  # two rows of three
    registrar = Registrar.for_model(model)
    _, flow = registrar.predict(moving[None], fixed[None], 0.5)
    warped = registrar.warp(small_data.labels[2][None], flow, interp="nearest")[0]
    expected = metrics.mean_dice(warped, small_data.labels[3])
    assert fig.axes[2].get_xlabel() == f"Dice {expected:.3f}"
    identity = metrics.mean_dice(small_data.labels[2], small_data.labels[3])
    assert fig.axes[0].get_xlabel() == f"Dice {identity:.3f} (unregistered)"
    difference = fig.axes[5].images[0].get_array()
    moved, _ = registrar.predict(moving[None], fixed[None], 0.5)
    np.testing.assert_allclose(difference, np.abs(moved[0] - fixed)[..., 0], atol=1e-6)
    plt.close(fig)


def test_lambda_row_rejects_bad_input(model, small_data, tiny_vxm):
    image = small_data.images[0]
    with pytest.raises(ValueError, match="needs a HyperMorph model"):
        lambda_row_figure(tiny_vxm, image, image)
    with pytest.raises(ValueError, match=r"moving has shape \(16, 16\)"):
        lambda_row_figure(model, np.zeros((16, 16)), image)
    with pytest.raises(ValueError, match="both moving_labels and fixed_labels"):
        lambda_row_figure(model, image, image, moving_labels=small_data.labels[0])
    with pytest.raises(ValueError, match="lams is empty"):
        lambda_row_figure(model, image, image, [])
    with pytest.raises(ValueError, match="label maps must hold whole numbers"):
        lambda_row_figure(model, image, image, moving_labels=np.full(SHAPE, 0.5), fixed_labels=np.zeros(SHAPE))


def test_lam_axis_gives_each_decade_near_one_the_same_length():
    ax = Figure().subplots()
    set_lam_axis(ax)
    ax.set_xlim(0, 1)
    to_axes = ax.transScale.transform
    x = [to_axes([[lam, 0]])[0, 0] for lam in (0.9, 0.99, 0.999)]
    assert x[1] - x[0] == pytest.approx(x[2] - x[1], rel=0.05)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0", "0.5", "0.9", "0.99", "0.999", "1"]
    with pytest.raises(ValueError, match="axis must be"):
        set_lam_axis(ax, axis="z")


def test_format_lam_keeps_the_digits_near_one():
    assert [format_lam(x) for x in (0.0, 0.97, 0.9999, 1.0)] == ["0", "0.97", "0.9999", "1"]


def test_label_outlines_marks_borders_in_each_structure_colour():
    labels = np.zeros((8, 8), int)
    labels[1:4, 1:7] = 1
    labels[4:7, 1:7] = 2
    lut = label_colors(2)
    rgba = label_outlines(labels, lut=lut)
    assert rgba.shape == (8, 8, 4) and rgba.dtype == np.uint8
    assert (rgba[labels == 0] == 0).all()  # background stays transparent
    np.testing.assert_array_equal(rgba[3, 3], lut[1])  # 1 touches 2 below
    np.testing.assert_array_equal(rgba[4, 3], lut[2])
    assert rgba[2, 3, 3] == 0  # interior
    with pytest.raises(ValueError, match="2D integer label map"):
        label_outlines(labels.astype(float))
    with pytest.raises(ValueError, match="lut has 2 colours"):
        label_outlines(labels, lut=lut[:2])


def test_grid_lines_follow_the_displacement():
    flow = np.zeros((16, 24, 2))
    x, y = grid_lines(flow, step=8)
    breaks = np.flatnonzero(np.isnan(x))
    assert len(breaks) == 2 + 3  # two row lines, three column lines
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(y[25:49], 8.0)  # the second row line, y = 8
    np.testing.assert_array_equal(x[25:49], np.arange(24))
    flow[..., 0], flow[..., 1] = 1.5, -2.0  # shift down 1.5, left 2
    shifted_x, shifted_y = grid_lines(flow, step=8)
    points = ~np.isnan(x)
    np.testing.assert_allclose((shifted_x - x)[points], -2.0)
    np.testing.assert_allclose((shifted_y - y)[points], 1.5)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        grid_lines(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="step"):
        grid_lines(flow, step=0)


def test_sweep_panels_mark_the_optima(sweep):
    fig = plot_sweep_panels(sweep, figure=Figure())
    dice_ax, mse_ax, folding_ax = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Dice", "image MSE", "% folding voxels"]
    mean_line = [line for line in dice_ax.lines if line.get_label() == "mean"][0]
    np.testing.assert_allclose(mean_line.get_ydata(), sweep.mean_dice)
    stars = [line for line in dice_ax.lines if line.get_marker() == "*"]
    assert len(stars) == len(sweep.optimal_lam_per_label)
    for ax in fig.axes:
        vertical = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert vertical[0].get_xdata()[0] == sweep.optimal_lam
        assert ax.get_xscale() == "function"
    np.testing.assert_allclose(folding_ax.lines[0].get_ydata(), 100 * sweep.folding.mean(1))


def test_sweep_panels_without_labels(model, small_data):
    data = Dataset(images=small_data.images[:4])
    result = hnb.lambda_sweep(model, data, [0.0, 1.0], n_pairs=3, progress=False)
    fig = plot_sweep_panels(result, figure=Figure(), near_one=False)
    assert [ax.get_title() for ax in fig.axes] == ["image MSE", "% folding voxels"]
    assert fig.axes[0].get_xscale() == "linear"


def test_plot_sweep_single_axes(sweep):
    ax = plot_sweep(sweep)
    assert ax.get_ylabel() == "mean Dice" and ax.get_xscale() == "function"
    plt.close(ax.figure)
