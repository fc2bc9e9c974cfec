"""The explorer of a model conditioned on λ and the label weight γ: one slider each, every
registration at all values, and the small Dice/folding map with its marker (2D and 3D)."""
import io

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb.evaluation.sweeps import score_pairs
from hypermorph_nb.networks import spec_of
from hypermorph_nb.widgets import LambdaExplorer
from hypermorph_nb.widgets.panels import MAP_INCHES
from hypermorph_nb.widgets.step import RegistrationStep

from tests.conftest import TINY_FEATURES

SHAPE = (32, 32)
BOTH = ("lam", "label_weight")


def with_visible_fields(model):
    """The untrained model with its flow layer scaled up: fields of a few voxels that depend on λ and γ
    (untrained, they are ~1e-4 voxels, and every Dice on the map would be the same)."""
    layer = model.get_layer("hypermorph_flow")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 3e4, bias])
    return model


@pytest.fixture(scope="module")
def data():
    return synthetic(4, SHAPE)


@pytest.fixture(scope="module")
def model():
    return with_visible_fields(hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0, hyperparameters=BOTH))


@pytest.fixture(scope="module")
def explorer(model, data):
    explorer = LambdaExplorer(model, data, pair=(0, 1), display="image")
    yield explorer
    explorer.close()


@pytest.fixture
def model_calls(monkeypatch):
    """Spy on the explorer's compiled model call: the values of every run, by name."""
    seen = []
    original = RegistrationStep.__call__

    def spy(self, moving, fixed, lam, moving_labels=None, **hyperparameters):
        seen.append({"lam": float(lam), **hyperparameters})
        return original(self, moving, fixed, lam, moving_labels, **hyperparameters)

    monkeypatch.setattr(RegistrationStep, "__call__", spy)
    return seen


def test_one_slider_per_hyperparameter_over_its_range(explorer, model):
    hypers = spec_of(model).hyperparameters
    assert list(explorer.sliders) == ["lam", "label_weight"]
    assert explorer.sliders["lam"] is explorer.lam_slider
    for hyper in hypers:
        slider = explorer.sliders[hyper.name]
        assert (slider.min, slider.max, slider.description) == (hyper.low, hyper.high, hyper.label)
    gamma = explorer.sliders["label_weight"]
    assert gamma.description == "γ" and gamma in explorer.hyper_controls.children[0].children
    assert explorer.hyper_controls in explorer.children  # shown under the λ controls


def test_sliders_start_at_the_defaults_or_the_given_values(model, data):
    explorer = LambdaExplorer(model, data, values={"label_weight": 0.2}, lam=0.7, hyper_map=0, display="image")
    assert explorer.values == {"lam": 0.7, "label_weight": 0.2} == explorer.state.values
    assert explorer.hyper_map is None  # hyper_map=0: no map, the figure of a λ-only model
    assert explorer.figure.get_size_inches()[0] == pytest.approx(2.3 * 4)
    with pytest.raises(ValueError, match=r"takes no sigma; its hyperparameters are \['lam', 'label_weight'\]"):
        LambdaExplorer(model, data, values={"sigma": 0.1}, display="image")
    with pytest.raises(ValueError, match=r"label_weight must lie in \[0, 1\]"):
        LambdaExplorer(model, data, values={"label_weight": 1.5}, display="image")
    with pytest.raises(ValueError, match="takes no gamma"):
        explorer.set_values(lam=0.1, label_weight=2.0, gamma=1.0)
    assert explorer.values == {"lam": 0.7, "label_weight": 0.2}  # nothing moved
    explorer.close()


def test_moving_gamma_re_registers_at_that_gamma(explorer, model, data, model_calls):
    runs = explorer.n_updates
    explorer.sliders["label_weight"].value = 0.9

    assert model_calls == [{"lam": explorer.lam, "label_weight": 0.9}]
    assert explorer.n_updates == runs + 1 and explorer.state.hyperparameters == {"label_weight": 0.9}
    _, expected = hnb.register(model, data.images[0], data.images[1], lam=explorer.lam, label_weight=0.9)
    _, elsewhere = hnb.register(model, data.images[0], data.images[1], lam=explorer.lam, label_weight=0.1)
    assert np.abs(expected - elsewhere).max() > 0.05  # γ moves this model's field: the check below can fail
    np.testing.assert_allclose(explorer.state.flow, expected, atol=1e-4)
    np.testing.assert_array_equal(explorer.artists["moved"].get_array(), explorer.state.moved)
    assert "<th style='padding:0 10px;text-align:left'>γ</th>" in explorer.readout.value

    explorer.sliders["label_weight"].set_state({"value": 0.3})  # from the browser: the background path
    assert explorer.wait(20) and explorer.state.hyperparameters == {"label_weight": 0.3}

    model_calls.clear()
    explorer.set_values(lam=0.2, label_weight=0.8)  # several values, one model run
    assert model_calls == [{"lam": 0.2, "label_weight": 0.8}]


def picture_marker_position(explorer):
    """Centre (display pixels, origin bottom left) of the pure-red pixels inside the map's axes."""
    from PIL import Image

    buffer = io.BytesIO()
    explorer.savefig(buffer, format="png")
    pixels = np.asarray(Image.open(buffer).convert("RGB")).astype(int)
    box = explorer.hyper_map.ax.bbox
    height = pixels.shape[0]
    crop = pixels[int(height - box.y1):int(height - box.y0), int(box.x0):int(box.x1)]
    rows, cols = np.nonzero((crop[..., 0] > 200) & (crop[..., 1] < 60) & (crop[..., 2] < 60))
    assert rows.size > 10, "no marker in the map of the picture"
    return np.array([box.x0 + cols.mean(), box.y1 - rows.mean()])


def test_the_marker_follows_the_sliders_without_scoring_the_map_again(explorer):
    hyper_map = explorer.hyper_map
    computed, scores = hyper_map.computed, hyper_map.scores
    for values in ({"lam": 0.25, "label_weight": 0.75}, {"lam": 0.9, "label_weight": 0.1}):
        explorer.set_values(**values)
        assert list(hyper_map.marker.get_xdata()) == [values["lam"]]
        assert list(hyper_map.marker.get_ydata()) == [values["label_weight"]]
        expected = hyper_map.ax.transData.transform((values["lam"], values["label_weight"]))
        np.testing.assert_allclose(picture_marker_position(explorer), expected, atol=3)  # in the static picture
    assert hyper_map.computed == computed and hyper_map.scores is scores

    explorer.show_pair(2, 3)  # another pair: its own map
    assert hyper_map.computed == computed + 1 and hyper_map.scores.pair == (2, 3)
    explorer.show_pair(0, 1)  # kept: not scored again
    assert hyper_map.computed == computed + 1 and hyper_map.scores is scores


def test_map_agrees_with_score_pairs(explorer, model, data):
    scores = explorer.hyper_map.scores
    lams, gammas = scores.values
    assert scores.names == BOTH and scores.metric == "mean Dice" and scores.score.shape == (5, 5)
    np.testing.assert_allclose(lams, np.linspace(0, 1, 5))
    expected = {}
    for i, j in [(0, 4), (4, 1)]:
        pair_scores = score_pairs(model, data, pairs=[[0, 1]], lam=lams[i], label_weight=gammas[j])
        expected[i, j] = np.nanmean(pair_scores.dice[0])
        assert scores.score[i, j] == pytest.approx(expected[i, j], rel=1e-6)
        assert scores.folding[i, j] == pytest.approx(pair_scores.folding[0])
        assert explorer.hyper_map.image.get_array()[j, i] == pytest.approx(expected[i, j])  # γ up, λ across
    assert abs(expected[0, 4] - expected[4, 1]) > 1e-3  # two different cells: a swapped axis shows
    best = scores.best()
    assert scores.score[best] == np.nanmax(scores.score)
    ax = explorer.hyper_map.ax
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("λ", "γ") and explorer.hyper_map.ax in explorer.figure.axes


def test_map_without_label_maps_scores_image_mse(model, data):
    images = Dataset(images=data.images[:2])
    explorer = LambdaExplorer(model, images, hyper_map=2, display="image")
    scores = explorer.hyper_map.scores
    assert scores.metric == "image MSE" and scores.score.shape == (2, 2)
    expected = score_pairs(model, images, pairs=[[0, 1]], lam=1.0, label_weight=0.0).mse[0]
    assert scores.score[1, 0] == pytest.approx(expected, rel=1e-6)
    assert scores.score[scores.best()] == np.nanmin(scores.score)
    explorer.close()


def test_the_figure_is_the_lambda_only_one_plus_the_map(explorer):
    assert explorer.figure.get_size_inches()[0] == pytest.approx(2.3 * 4 + MAP_INCHES)
    explorer.set_values(lam=0.6, label_weight=0.4)
    title = explorer.axes["moved"].title
    titles = []
    original = explorer.live.savefig
    explorer.live.savefig = lambda *args, **kwargs: (titles.append(title.get_text()), original(*args, **kwargs))
    try:
        explorer.savefig(io.BytesIO(), format="png")
    finally:
        del explorer.live.savefig
    assert titles == ["moved, λ = 0.6, γ = 0.4"] and title.get_text() == "moved"


@pytest.mark.slow
def test_refinement_keeps_every_value(explorer):
    explorer.set_values(lam=0.6, label_weight=0.4)
    explorer.refine(3)
    assert explorer.refined == 3 and explorer.state.values == {"lam": 0.6, "label_weight": 0.4}
    explorer.sliders["label_weight"].value = 0.5
    assert explorer.refined == 0  # a refinement belongs to the values it was made at


@pytest.mark.slow   # a 3D model compiled for the map; the 2D tests keep the explorer fast
def test_volume_model_with_two_hyperparameters(model_calls):
    shape = (16, 16, 16)
    volumes = synthetic(3, shape)
    model3d = hnb.build_hypermorph(shape, nb_features=TINY_FEATURES, seed=0, hyperparameters=BOTH)
    explorer = LambdaExplorer(model3d, volumes, hyper_map=2, display="image")
    assert explorer.hyper_map.scores.score.shape == (2, 2)
    explorer.sliders["label_weight"].value = 0.25
    assert model_calls[-1] == {"lam": 0.5, "label_weight": 0.25}
    assert any("λ = 0.5   γ = 0.25   folding" in text.get_text() for text in explorer.figure.texts)
    runs, computed = len(model_calls), explorer.hyper_map.computed
    explorer.slice_sliders["axial"].value = 3  # a slice: no model run, no map
    assert len(model_calls) == runs and explorer.hyper_map.computed == computed
    assert explorer.picture()[:4] == b"\x89PNG"
    explorer.close()
