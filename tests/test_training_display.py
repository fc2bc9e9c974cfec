"""Progress and the live loss plot: one output, updated in place; plain lines outside notebooks."""
import io

import numpy as np
import pytest
from IPython import display as ipython_display

import hypermorph_nb as hnb
from hypermorph_nb.viz import training_display
from hypermorph_nb.training import History


class FakeDisplay:
    """Records what would reach the notebook: new outputs and in-place updates."""

    def __init__(self):
        self.outputs = 0
        self.updates = 0
        self.last = None

    def display(self, obj, display_id=False):
        assert display_id, "the live plot must be displayed with a handle, to be updated in place"
        self.outputs += 1
        self.last = obj
        return self

    def update(self, obj):
        self.updates += 1
        self.last = obj


@pytest.fixture
def notebook_output(monkeypatch):
    fake = FakeDisplay()
    monkeypatch.setattr(ipython_display, "display", fake.display)
    return fake


def history_with(epochs, *, validation=False):
    rng = np.random.default_rng(0)
    history = History(loss=list(rng.random(epochs)), image=list(rng.random(epochs)),
                      smooth=list(rng.random(epochs)))
    if validation:
        history.config["validation"] = {"dice": True}
        history.val_lams = [0.2, 0.8]
        history.val_epochs = list(range(1, epochs + 1))
        history.val_mse = rng.random((epochs, 2)).tolist()
        history.val_dice = rng.random((epochs, 2)).tolist()
    return history


def test_outside_a_notebook_auto_means_log_lines_and_no_plot():
    assert not training_display.in_notebook()
    assert training_display.resolve_progress("auto", verbose=True) == "log"
    assert training_display.resolve_live_plot("auto", verbose=True) is False
    assert training_display.resolve_progress("bar", verbose=False) == "bar"
    with pytest.raises(ValueError, match="live_plot must be"):
        training_display.resolve_live_plot("yes", verbose=True)


def test_inside_a_kernel_auto_means_bar_and_live_plot(monkeypatch):
    class Kernel:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Kernel())
    assert training_display.in_notebook()
    assert training_display.resolve_progress("auto", verbose=True) == "bar"
    assert training_display.resolve_live_plot("auto", verbose=True) is True


def test_live_plot_is_one_output_updated_in_place(notebook_output):
    history = history_with(1, validation=True)
    plot = training_display.LiveLossPlot(history, min_interval=0)
    for epochs in range(1, 6):
        plot.update(history_with(epochs, validation=True))
    assert notebook_output.outputs == 1 and notebook_output.updates == 4
    assert notebook_output.last.data[:8] == b"\x89PNG\r\n\x1a\n"
    figure = plot._figure
    final = history_with(5, validation=True)
    np.testing.assert_allclose(figure.lines["loss"].get_ydata(), final.loss)
    np.testing.assert_allclose(figure.lines["val_dice"][1].get_ydata(), np.asarray(final.val_dice)[:, 1])
    assert [ax.get_title() for ax in figure.axes] == [
        "total loss", "image term", "smoothness term", "validation MSE", "validation Dice"]


def test_live_plot_redraws_at_most_every_min_interval(notebook_output):
    plot = training_display.LiveLossPlot(history_with(1), min_interval=3600)
    for epochs in range(1, 50):
        plot.update(history_with(epochs))
    assert plot.draws == 1
    plot.update(history_with(50), force=True)   # the last epoch is always drawn
    assert plot.draws == 2 and notebook_output.updates == 1


def test_train_with_live_plot_and_bar(tiny_vxm, small_data, notebook_output, capsys):
    history = hnb.train(tiny_vxm, small_data[:8], epochs=3, steps_per_epoch=2, progress="bar",
                        live_plot=True, validation=hnb.training.ValidationConfig(small_data[8:], pairs=2))
    assert notebook_output.outputs == 1 and notebook_output.updates >= 1
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "6/6" in err   # tqdm's text bar (a widget in notebooks)
    assert history.val_epochs == [1, 2, 3]


def test_log_progress_reports_validation_and_eta():
    stream = io.StringIO()
    progress = training_display.make_progress("log", epochs=5, steps_per_epoch=10, start_step=0,
                                              stream=stream)
    history = history_with(2, validation=True)
    history.epoch_seconds = [1.0, 2.0]
    progress.epoch_end(history)
    line = stream.getvalue().strip()
    assert line.startswith("epoch 2/5  loss") and "val mse" in line and "val dice" in line
    assert "5.0 steps/s" in line and "ETA" in line


def test_history_plot_draws_the_curves():
    figure = history_with(4).plot()
    assert [ax.get_title() for ax in figure.axes] == ["total loss", "image term", "smoothness term"]
    assert len(figure.axes[0].lines[0].get_xdata()) == 4
