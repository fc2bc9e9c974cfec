"""The λ widgets driven without a browser: set values, let the observers run, check what is shown."""
import io
import threading
import time

import ipywidgets
import matplotlib
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb import metrics
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb.runtime.environment import PAPERMILL_VARIABLE
from hypermorph_nb.networks.losses import smoothness_term
from hypermorph_nb.viz.drawing import label_outlines
from hypermorph_nb.registration.pairs import Registrar
from hypermorph_nb.widgets import (Coalescer, LambdaControls, LambdaExplorer, SweepPanel,
                                   changed_by_frontend, effective_weight)
from hypermorph_nb.widgets.explorer import RegistrationStep
from hypermorph_nb.widgets.live_figure import resolve_mode

from tests.conftest import SHAPE, TINY_FEATURES, record_model_lams

@pytest.fixture(scope="module")
def trained(trained_hypermorph):
    """The session's trained HyperMorph (tests/conftest.py) and its eight subjects."""
    return trained_hypermorph


@pytest.fixture(scope="module")
def untrained():
    return hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)


@pytest.fixture
def explorer(untrained, small_data):
    explorer = LambdaExplorer(untrained, small_data, pair=(0, 1), lam=0.5, display="image")
    yield explorer
    explorer.close()


def test_setting_the_slider_reruns_the_model_and_changes_the_display(explorer, monkeypatch):
    seen = record_model_lams(monkeypatch)
    before = explorer.artists["moved"].get_array().copy()
    updates = explorer.n_updates

    explorer.lam_slider.value = 0.9

    assert seen == [0.9]
    assert explorer.n_updates == updates + 1
    assert explorer.state.lam == 0.9 and explorer.lam == 0.9
    shown = np.asarray(explorer.artists["moved"].get_array())
    np.testing.assert_array_equal(shown, explorer.state.moved)
    assert not np.array_equal(shown, before)
    fixed = explorer.data.images[1, ..., 0]
    np.testing.assert_allclose(explorer.artists["difference"].get_array(), np.abs(shown - fixed))
    np.testing.assert_array_equal(explorer.artists["jacobian"].get_array(), explorer.state.jacobian)
    np.testing.assert_array_equal(explorer.artists["outlines"].get_array(),
                                  label_outlines(explorer.state.warped_labels, lut=explorer._lut))


@pytest.mark.slow
def test_lambda_one_shows_a_smoother_field_than_lambda_zero(trained):
    model, data = trained
    explorer = LambdaExplorer(model, data, pair=(6, 7), lam=0.0, display="image")
    rough = explorer.state
    rough_grid = np.array(explorer.artists["grid"].get_data(), dtype=float)
    explorer.lam_slider.value = 1.0
    smooth = explorer.state
    smooth_grid = np.array(explorer.artists["grid"].get_data(), dtype=float)

    def roughness(flow):
        return float(smoothness_term(flow[None].astype("float32"))[0])

    assert roughness(rough.flow) > 3 * roughness(smooth.flow)
    assert np.std(explorer.artists["jacobian"].get_array()) < np.std(rough.jacobian)

    def grid_bending(xy):  # second differences along the displayed grid lines (NaN between lines)
        return np.nanmean(np.abs(np.diff(xy, 2, axis=1)))

    assert grid_bending(rough_grid) > 2 * grid_bending(smooth_grid)
    explorer.close()


def test_numbers_agree_with_metrics_and_the_sweep(trained):
    model, data = trained
    explorer = LambdaExplorer(model, data, pair=(6, 7), lam=0.3, display="image")
    state = explorer.state
    np.testing.assert_allclose(state.jacobian, metrics.jacobian_determinant(state.flow), atol=1e-12)
    assert state.folding == pytest.approx(metrics.folding_fraction(state.flow))
    assert state.mse == pytest.approx(metrics.image_mse(state.moved, data.images[7, ..., 0]), rel=1e-5)
    sweep = hnb.lambda_sweep(model, data, [0.3], pairs=[[6, 7]], progress=False)
    assert state.dice == pytest.approx(float(sweep.mean_dice[0]))
    np.testing.assert_allclose(state.dice_per_label, sweep.dice[0, 0])
    readout = explorer.readout.value
    assert "0.3" in readout and f"{state.dice:.3f}" in readout and "folding" in readout
    assert explorer.artists["dice_text"].get_text() == f"Dice {state.dice:.3f}"
    assert explorer.artists["folding_text"].get_text() == f"folding {100 * state.folding:.2f}%"
    explorer.close()


def test_fused_model_call_matches_the_registrar(untrained, small_data):
    step = RegistrationStep.for_model(untrained)
    assert RegistrationStep.for_model(untrained) is step  # compiled once per model
    registrar = Registrar.for_model(untrained)
    moved, flow, warped = step(small_data.images[0], small_data.images[1], 0.7, small_data.labels[0])
    expected_moved, expected_flow = registrar.predict(small_data.images[:1], small_data.images[1:2], 0.7)
    np.testing.assert_allclose(moved, expected_moved[0, ..., 0], atol=1e-6)
    np.testing.assert_allclose(flow, expected_flow[0], atol=1e-6)
    expected_labels = registrar.warp(small_data.labels[:1], expected_flow, interp="nearest")[0]
    np.testing.assert_array_equal(warped, expected_labels)
    assert warped.dtype == small_data.labels.dtype
    assert step(small_data.images[0], small_data.images[1], 0.7)[2] is None


def test_log_scale_text_box_and_slider_stay_in_step(explorer):
    controls = explorer.controls
    controls.one_minus_slider.value = 0.01
    assert explorer.lam_slider.value == pytest.approx(0.99)
    assert explorer.state.lam == pytest.approx(0.99)
    assert controls.lam_text.value == pytest.approx(0.99)

    controls.lam_text.value = 0.97531
    assert explorer.lam_slider.value == 0.97531 and explorer.state.lam == 0.97531
    assert controls.one_minus_slider.value == pytest.approx(1 - 0.97531)

    explorer.lam_slider.value = 1.0
    assert controls.one_minus_slider.value == pytest.approx(1e-4)  # clamped; λ stays exactly 1
    assert explorer.lam_slider.value == 1.0 and explorer.state.lam == 1.0
    assert "∞" in controls.weight_label.value


def test_log_slider_snapping_in_the_browser_does_not_move_lambda():
    """The browser snaps 1 − λ onto the log slider's grid and sends it back; found by
    tests/test_browser.py, where the echo dragged λ back to 0.6198 in mid-drag."""
    controls = LambdaControls(lam=0.5)
    controls.lam_slider.value = 0.38
    step = controls.one_minus_slider.step
    snapped = 10 ** (round(np.log10(1 - 0.38) / step) * step)
    assert snapped != pytest.approx(1 - 0.38, abs=1e-6)
    controls.one_minus_slider.value = snapped  # what the browser sends back
    assert controls.lam_slider.value == 0.38
    controls.one_minus_slider.value = 10 ** (np.log10(snapped) - step)  # a real move of one step
    assert controls.lam_slider.value == pytest.approx(1 - 10 ** (np.log10(snapped) - step))


def test_a_late_echo_of_an_earlier_log_slider_value_does_not_move_lambda():
    """Found by tests/test_browser.py on notebook 5: the log slider's view, rendered at λ = 0.9,
    snapped 1 − λ = 0.1 and sent it back; under Run All Cells that message waited until every
    cell had run (λ was 0 by then) and dragged λ back to 0.9."""
    controls = LambdaControls(lam=0.9)
    controls.lam_slider.value = 0.0   # later cells
    controls.lam_slider.value = 1.0
    controls.lam_slider.value = 0.0
    controls.one_minus_slider.set_state({"value": 0.09999999999999998})  # the late echo
    assert controls.lam_slider.value == 0.0 and controls.one_minus_slider.value == 1.0
    controls.one_minus_slider.set_state({"value": 0.01})  # a real move in the browser
    assert controls.lam_slider.value == pytest.approx(0.99)
    controls.one_minus_slider.set_state({"value": 0.1})  # ... and back to an earlier value
    assert controls.lam_slider.value == pytest.approx(0.9)


def test_log_slider_gives_each_decade_near_one_the_same_travel():
    controls = LambdaControls(lam=0.5, min_one_minus=1e-4)
    slider = controls.one_minus_slider
    decade = 1 / (slider.max - slider.min)  # fraction of travel per factor of ten in 1 - λ
    assert decade == pytest.approx(0.25)
    # a linear λ slider gives 0.9 -> 0.99 only 9% of its travel; here it gets 25%
    assert controls.lam_slider.max - controls.lam_slider.min == 1.0


def test_effective_weight():
    assert effective_weight(0.5, 0.05) == pytest.approx(0.0025)
    assert effective_weight(0.0, 0.05) == 0.0
    with pytest.raises(ValueError, match="λ must lie in"):
        effective_weight(1.5, 0.05)
    with pytest.raises(ValueError, match="image_sigma"):
        effective_weight(0.5, 0.0)


def test_play_walks_lambda_on_the_log_scale(explorer):
    controls = explorer.controls
    lams = controls.play_lams
    assert lams[0] == 0.0 and np.all(np.diff(lams) > 0) and lams[-1] == pytest.approx(0.9999)
    assert np.mean(lams >= 0.9) >= 0.7  # most frames where registrations are useful
    controls.play.value = 20
    assert explorer.state.lam == pytest.approx(lams[20])


def test_browser_changes_run_in_the_background_and_coalesce(explorer, monkeypatch):
    gate, started = threading.Event(), threading.Event()
    original = explorer._step
    seen = []

    def slow_step(moving, fixed, lam, moving_labels=None):
        seen.append(float(lam))
        started.set()
        gate.wait(10)
        return original(moving, fixed, lam, moving_labels)

    monkeypatch.setattr(explorer, "_step", slow_step)
    updates = explorer.n_updates
    values = [round(0.6 + 0.01 * k, 2) for k in range(10)]
    start = time.perf_counter()
    explorer.lam_slider.set_state({"value": values[0]})  # as a message from the browser
    assert started.wait(10)
    for value in values[1:]:
        explorer.lam_slider.set_state({"value": value})
    assert time.perf_counter() - start < 1.0  # observers returned without waiting for the model
    gate.set()
    assert explorer.wait(20)
    assert seen == [values[0], values[-1]]  # the eight values in between were skipped
    assert explorer.n_updates == updates + 2
    assert explorer.state.lam == values[-1]


def test_coalescer_runs_at_most_once_more_after_a_burst():
    gate, started = threading.Event(), threading.Event()
    calls = []

    def task():
        calls.append(time.perf_counter())
        started.set()
        gate.wait(10)

    updates = Coalescer(task)
    updates.request()
    assert started.wait(10) and updates.busy
    for _ in range(20):
        updates.request()
    gate.set()
    assert updates.wait(10)
    assert len(calls) == 2 and updates.runs == 2 and not updates.busy


def test_coalescer_survives_a_failing_task():
    errors = []
    outcomes = iter([RuntimeError("first"), None])

    def task():
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    updates = Coalescer(task, on_error=errors.append)
    updates.request()
    assert updates.wait(10)
    updates.request()
    assert updates.wait(10)
    assert [str(err) for err in errors] == ["first"] and updates.runs == 2


def test_changed_by_frontend_tells_browser_values_from_python():
    slider = ipywidgets.FloatSlider()
    other = ipywidgets.FloatSlider()
    seen = []
    slider.observe(lambda change: seen.append(changed_by_frontend(other, slider)), "value")
    slider.value = 0.3
    slider.set_state({"value": 0.4})
    assert seen == [False, True]


def test_errors_are_shown_in_the_widget(explorer, monkeypatch):
    assert explorer.error_box.layout.display == "none"
    shown_lam = explorer.state.lam

    def broken(moving, fixed, lam, moving_labels=None):
        raise RuntimeError("the model exploded at this λ")

    monkeypatch.setattr(explorer, "_step", broken)
    explorer.lam_slider.value = 0.7  # no exception escapes into the cell
    assert isinstance(explorer.last_error, RuntimeError)
    assert "the model exploded" in explorer.error_box.value and "RuntimeError" in explorer.error_box.value
    assert "Traceback" in explorer.error_box.value
    assert explorer.error_box.layout.display != "none"
    assert explorer.state.lam == shown_lam  # the display still shows the last good registration

    explorer.lam_slider.set_state({"value": 0.8})  # from the browser: background thread
    assert explorer.wait(20)
    assert "the model exploded" in explorer.error_box.value

    monkeypatch.undo()
    explorer.lam_slider.value = 0.75
    assert explorer.last_error is None and explorer.error_box.value == ""
    assert explorer.error_box.layout.display == "none" and explorer.state.lam == 0.75


def test_inline_fallback_refreshes_one_image_in_place(trained):
    import matplotlib.pyplot as plt

    model, data = trained
    figures = plt.get_fignums()
    explorer = LambdaExplorer(model, data, pair=(6, 7), lam=0.0, display="image")
    image = explorer.live.widget
    assert isinstance(image, ipywidgets.Image) and image in explorer.children
    assert image.format == "jpeg"
    first = bytes(image.value)
    assert first[:2] == b"\xff\xd8"
    explorer.lam_slider.value = 1.0
    assert explorer.live.widget is image and bytes(image.value) != first
    assert plt.get_fignums() == figures  # nothing handed to pyplot, nothing printed per update
    explorer.close()


def test_png_display_and_savefig(untrained, small_data):
    explorer = LambdaExplorer(untrained, small_data, display="image", image_format="png")
    assert bytes(explorer.live.widget.value)[:4] == b"\x89PNG"
    buffer = io.BytesIO()
    explorer.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    explorer.lam_slider.value = 0.2  # blitting still works after a save
    assert explorer.state.lam == 0.2 and explorer.last_error is None
    snapshot = explorer.snapshot()  # the static picture an executed notebook keeps
    assert snapshot.data[:4] == b"\x89PNG" and snapshot.format == "png"
    with pytest.raises(ValueError, match="image_format"):
        LambdaExplorer(untrained, small_data, display="image", image_format="gif")
    explorer.close()


def test_auto_display_follows_the_matplotlib_backend(monkeypatch):
    from hypermorph_nb.runtime.environment import Environment

    lab = Environment(frontend="jupyterlab", kernel=True, ci=False)
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg")
    assert resolve_mode("auto", where=lab) == "ipympl"
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    assert resolve_mode("auto", where=lab) == "image"
    with pytest.raises(ValueError, match="display must be one of"):
        resolve_mode("svg")


def test_ipympl_canvas_redraws_only_what_lambda_changes(untrained, small_data, monkeypatch):
    import sys

    for name in [name for name in sys.modules if name.split(".")[0] == "ipympl"]:
        monkeypatch.delitem(sys.modules, name)  # so that this test imports ipympl afresh
    backend = matplotlib.get_backend()
    explorer = LambdaExplorer(untrained, small_data, display="ipympl")
    assert matplotlib.get_backend() == backend  # importing ipympl did not switch pyplot's backend
    from ipympl.backend_nbagg import Canvas

    canvas = explorer.live.widget
    assert isinstance(canvas, Canvas) and canvas in explorer.children
    full_draws, blits = [], []
    figure_draw = type(explorer.figure).draw
    monkeypatch.setattr(type(explorer.figure), "draw",
                        lambda self, renderer: (full_draws.append(1), figure_draw(self, renderer)))
    canvas_blit = canvas.blit
    monkeypatch.setattr(canvas, "blit", lambda bbox=None: (blits.append(1), canvas_blit(bbox)))

    explorer.lam_slider.value = 0.8
    assert explorer.state.lam == 0.8
    assert full_draws == [] and blits == [1]  # static panels untouched
    explorer.show_pair(2, 3)
    assert full_draws == [1] and explorer.state.moving_index == 2  # new pair: one full redraw
    np.testing.assert_array_equal(explorer.artists["moving"].get_array(), small_data.images[2, ..., 0])
    canvas.draw()  # a redraw asked by the browser (resize, zoom) keeps the λ artists
    assert explorer.live._background is not None
    explorer.close()


def test_pair_picker_switches_pairs(explorer):
    explorer.fixed_picker.value = 5
    assert explorer.pair == (0, 5) and explorer.state.fixed_index == 5
    np.testing.assert_array_equal(explorer.artists["fixed"].get_array(), explorer.data.images[5, ..., 0])
    updates = explorer.n_updates
    explorer.show_pair(3, 4)
    assert explorer.n_updates == updates + 1 and explorer.pair == (3, 4)
    with pytest.raises(ValueError, match="out of range"):
        explorer.show_pair(0, 99)


def test_your_own_arrays(untrained, small_data):
    explorer = LambdaExplorer.from_arrays(
        untrained, small_data.images[0, ..., 0], small_data.images[1, ..., 0],
        moving_labels=small_data.labels[0], fixed_labels=small_data.labels[1], lam=0.4, display="image")
    assert explorer.state.lam == 0.4 and not np.isnan(explorer.state.dice)
    assert [label for label, _ in explorer.moving_picker.options] == ["moving", "fixed"]
    explorer.close()
    unlabelled = LambdaExplorer(untrained, small_data.images[:3], display="image")
    assert unlabelled.state.warped_labels is None and "outlines" not in unlabelled.artists
    assert "Dice" not in unlabelled.readout.value
    unlabelled.close()
    with pytest.raises(ValueError, match="both moving_labels and fixed_labels"):
        LambdaExplorer.from_arrays(untrained, small_data.images[0], small_data.images[1],
                                   moving_labels=small_data.labels[0])


def test_bad_inputs_get_clear_errors(untrained, small_data, tiny_vxm):
    with pytest.raises(ValueError, match="needs a HyperMorph model"):
        LambdaExplorer(tiny_vxm, small_data)
    with pytest.raises(ValueError, match=r"model was built for 2D images of shape \(32, 32\)"):
        LambdaExplorer(untrained, synthetic(2, (64, 64)))
    with pytest.raises(TypeError, match="Dataset"):
        LambdaExplorer(untrained, "images.npz")
    with pytest.raises(ValueError, match="needs a pair"):
        LambdaExplorer(untrained, small_data[:1])
    with pytest.raises(ValueError, match="pair must be two image indices"):
        LambdaExplorer(untrained, small_data, pair=3)


def test_sweep_panel_marks_the_optimal_lambda_of_each_structure(trained):
    model, data = trained
    validation = data[4:]
    lams = [0.0, 0.5, 0.9, 0.99, 1.0]
    explorer = LambdaExplorer(model, validation, display="image")
    panel = SweepPanel(model, validation, lams, n_pairs=12, progress=False, explorer=explorer)
    result = panel.result
    per_label = result.dice_per_label
    expected = {int(label): lams[int(np.nanargmax(per_label[:, k]))] for k, label in enumerate(result.labels)}
    assert panel.optimal_lam_per_label == expected
    assert set(expected) == set(validation.label_values().tolist())
    assert panel.optimal_lam == lams[int(np.nanargmax(result.mean_dice))]

    # the Dice of one structure at one λ, recomputed by hand from metrics.dice
    registrar = Registrar.for_model(model)
    moving, fixed = result.pairs[:, 0], result.pairs[:, 1]
    _, flow = registrar.predict(validation.images[moving], validation.images[fixed], 0.9)
    warped = registrar.warp(validation.labels[moving], flow, interp="nearest")
    label = int(result.labels[0])
    by_hand = np.nanmean([metrics.dice(w, f, [label])[0] for w, f in zip(warped, validation.labels[fixed])])
    table = panel.table()
    name = (result.label_names or {}).get(label, str(label))
    assert table.loc[0.9, f"dice[{name}]"] == pytest.approx(by_hand)
    assert list(table.index) == lams and "mean_dice" in table and "folding_percent" in table

    optima = panel.optima()
    assert optima.iloc[0]["structure"] == "mean" and optima.iloc[0]["optimal_lam"] == panel.optimal_lam
    assert dict(zip(optima["label"][1:].astype(int), optima["optimal_lam"][1:])) == expected

    dice_axes = panel.figure.axes[0]
    assert dice_axes.get_title() == "Dice"
    stars = [line for line in dice_axes.lines if line.get_marker() == "*"]
    assert len(stars) == len(expected)
    assert f"{panel.optimal_lam:g}" in panel.summary.value
    assert bytes(panel.image.value)[:4] == b"\x89PNG"

    panel.lam_picker.value = panel.lam_picker.options[-1][1]
    panel.send_button.click()
    assert explorer.state.lam == panel.lam_picker.options[-1][1]
    explorer.close()


def test_sweep_panel_without_labels_uses_image_mse(untrained, small_data):
    data = Dataset(images=small_data.images[:4])
    panel = SweepPanel(untrained, data, [0.0, 1.0], n_pairs=3, progress=False)
    assert [ax.get_title() for ax in panel.figure.axes] == ["image MSE", "% folding voxels"]
    assert panel.optimal_lam_per_label == {}
    assert len(panel.optima()) == 0
    assert "no label maps" in panel.summary.value
    assert not hasattr(panel, "send_button")
    assert panel.snapshot().data[:4] == b"\x89PNG"


def test_refresh_reruns_after_the_weights_change(small_data):
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=1)
    explorer = LambdaExplorer(model, small_data, lam=0.5, display="image", image_sigma=None)
    assert "λσ²" not in explorer.readout.value
    before = explorer.state.flow.copy()
    explorer.lam_slider.value = 0.5  # same λ, same pair: nothing to redo
    updates = explorer.n_updates
    for weight in model.trainable_weights:  # as if trained further
        weight.assign(weight * 1.5)
    explorer.refresh()
    assert explorer.n_updates == updates + 1
    assert not np.allclose(explorer.state.flow, before)
    explorer.close()


def test_lambda_out_of_range_is_refused(untrained, small_data):
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\], got 1.5"):
        LambdaExplorer(untrained, small_data, lam=1.5)


def test_displayed_explorer_keeps_its_saved_picture_up_to_date(explorer, monkeypatch):
    """Saved notebooks show the image/png of the display data: it follows changes made in code."""
    import base64

    import IPython.display

    published = []

    class Handle:
        def update(self, bundle, **kwargs):
            published.append(bundle)

    def display(bundle, **kwargs):
        assert kwargs == {"raw": True, "display_id": True}
        published.append(bundle)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.delenv(PAPERMILL_VARIABLE, raising=False)  # a live front-end: the output is never replaced
    explorer._ipython_display_()
    explorer.lam_slider.value = 0.6
    assert len(published) == 1 and "image/png" in published[0]

    published.clear()
    monkeypatch.setenv(PAPERMILL_VARIABLE, "1")  # no browser: the output may be replaced
    explorer._ipython_display_()
    assert len(published) == 1
    first = published[0]
    assert "application/vnd.jupyter.widget-view+json" in first
    assert base64.b64decode(first["image/png"])[:4] == b"\x89PNG"
    explorer.lam_slider.value = 0.95  # a later cell, or papermill
    assert len(published) == 2 and published[1]["image/png"] != first["image/png"]
    assert published[1]["image/png"] == explorer._repr_mimebundle_()["image/png"]
    explorer.lam_slider.set_state({"value": 0.3})  # a drag in the browser: the output is left alone
    assert explorer.wait(20) and explorer.state.lam == 0.3
    assert len(published) == 2
