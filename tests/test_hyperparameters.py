"""Models conditioned on several loss hyperparameters (λ and the label weight γ), and λ-only models as before."""
import os
import shutil

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic
from hypermorph_nb.networks import Hyperparameter, spec_of
from hypermorph_nb.networks.hyperparameters import model_inputs, resolve

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "lambda_only_0.2")
SMALL = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
BOTH = ("lam", "label_weight")


def _fixture_kwargs(conditioning):
    return {"hyper_units": (8, 8)} if conditioning == "hypernetwork" else {"film_units": (8,)}


@pytest.mark.parametrize("conditioning", ["hypernetwork", "film"])
def test_a_lambda_only_model_of_0_2_loads_and_registers_exactly_as_before(conditioning, tmp_path):
    expected = np.load(os.path.join(FIXTURE, "expected.npz"))
    folder = tmp_path / conditioning
    shutil.copytree(os.path.join(FIXTURE, conditioning), folder)
    model = hnb.load_model(folder)
    spec = spec_of(model)
    assert [h.name for h in spec.hyperparameters] == ["lam"] and "hyperparameters" not in spec.options
    data = synthetic(6, (32, 32), seed=0)
    _, flow = hnb.register(model, data.images[0, ..., 0], data.images[1, ..., 0], lam=0.3)
    np.testing.assert_allclose(flow, expected[f"{conditioning}_trained_flow"], atol=1e-5)


@pytest.mark.slow   # five training steps of two models; loading the 0.2 fixture stays fast
@pytest.mark.parametrize("conditioning", ["hypernetwork", "film"])
def test_a_lambda_only_model_builds_and_trains_as_in_0_2(conditioning):
    """The same seed gives the 0.2 weights, and five training steps the 0.2 field (the fixture's)."""
    expected = np.load(os.path.join(FIXTURE, "expected.npz"))
    data = synthetic(6, (32, 32), seed=0)
    pair = (data.images[0, ..., 0], data.images[1, ..., 0])
    model = hnb.build_hypermorph((32, 32), conditioning=conditioning, nb_features=SMALL, seed=0,
                                 **_fixture_kwargs(conditioning))
    _, initial = hnb.register(model, *pair, lam=0.3)
    np.testing.assert_allclose(initial, expected[f"{conditioning}_initial_flow"], atol=1e-6)
    hnb.train(model, data, epochs=1, steps_per_epoch=5, seed=0, steps_per_call=5, progress="none",
              live_plot=False, verbose=False, label_weight=0.5 if conditioning == "film" else 0.0)
    _, trained = hnb.register(model, *pair, lam=0.3)
    scale = np.abs(expected[f"{conditioning}_trained_flow"]).max()
    np.testing.assert_allclose(trained, expected[f"{conditioning}_trained_flow"], atol=0.02 * scale)


def test_the_model_input_rescales_each_hyperparameter_over_its_range():
    gamma = Hyperparameter("label_weight", low=0.0, high=4.0, default=1.0, label="γ")
    hypers = resolve(["lam", gamma])
    inputs = model_inputs(hypers, {"lam": [0.2, 0.4], "label_weight": 2.0}, batch=2)
    np.testing.assert_allclose(inputs, [[0.2, 0.5], [0.4, 0.5]], atol=1e-7)
    with pytest.raises(ValueError, match=r"label_weight must lie in \[0, 4\]"):
        model_inputs(hypers, {"lam": 0.2, "label_weight": 5.0}, batch=1)
    with pytest.raises(ValueError, match="pass label_weight="):
        model_inputs(hypers, {"lam": 0.2}, batch=1)
    with pytest.raises(ValueError, match="takes no image_sigma"):
        model_inputs(hypers, {"lam": 0.2, "label_weight": 1.0, "image_sigma": 0.1}, batch=1)
    with pytest.raises(ValueError, match="got 3 label_weight values for 2"):
        model_inputs(hypers, {"lam": 0.2, "label_weight": [1, 2, 3]}, batch=2)


@pytest.mark.parametrize("entries, message", [
    (["label_weight"], "must include 'lam'"),
    (["lam", "lam"], "named once"),
    (["lam", "smoothness"], "unknown hyperparameter 'smoothness'"),
    ([Hyperparameter("lam", high=2.0)], r"within \[0, 1\]"),
    ([Hyperparameter("lam"), Hyperparameter("window")], "know no hyperparameter 'window'"),
])
def test_bad_hyperparameter_lists_are_refused(entries, message):
    with pytest.raises(ValueError, match=message):
        hnb.build_hypermorph((32, 32), nb_features=SMALL, hyperparameters=entries)


@pytest.mark.parametrize("conditioning, shape", [("hypernetwork", (32, 32)),
                                                 pytest.param("film", (16, 16, 16), marks=pytest.mark.slow)])
def test_a_two_hyperparameter_model_trains_saves_loads_and_registers(conditioning, shape, tmp_path):
    gamma = Hyperparameter("label_weight", high=2.0, default=1.0, label="γ")
    model = hnb.build_hypermorph(shape, conditioning=conditioning, nb_features=SMALL, seed=0,
                                 hyperparameters=("lam", gamma))
    data = synthetic(4, shape, seed=1)
    history = hnb.train(model, data, epochs=1, steps_per_epoch=3, seed=0, steps_per_call=3,
                        progress="none", live_plot=False, verbose=False,
                        hyper_sampling={"label_weight": "oversample"})
    assert np.all(np.isfinite(history.loss))
    spec = spec_of(model)
    assert spec.training.hyper_sampling == {"label_weight": "oversample"}
    folder = hnb.save_model(model, tmp_path / "model")
    loaded = hnb.load_model(folder)
    assert spec_of(loaded).hyperparameters == spec.hyperparameters
    moving, fixed = data.images[0, ..., 0], data.images[1, ..., 0]
    _, flow = hnb.register(model, moving, fixed, lam=0.3, label_weight=1.5)
    _, again = hnb.register(loaded, moving, fixed, lam=0.3, label_weight=1.5)
    np.testing.assert_allclose(again, flow, atol=1e-6)
    with pytest.raises(ValueError, match="pass label_weight="):
        hnb.register(loaded, moving, fixed, lam=0.3)


@pytest.mark.slow   # twenty training steps; the trained (λ, γ) models of the fast tests register with γ
def test_gamma_reaches_the_field():
    """The second input is not ignored: two γ give two fields (the network is conditioned on it)."""
    model = hnb.build_hypermorph((32, 32), conditioning="film", nb_features=SMALL, seed=0, hyperparameters=BOTH)
    data = synthetic(4, (32, 32), seed=1)
    hnb.train(model, data, epochs=1, steps_per_epoch=20, seed=0, steps_per_call=20, progress="none",
              live_plot=False, verbose=False, learning_rate=1e-3)
    moving, fixed = data.images[0, ..., 0], data.images[1, ..., 0]
    _, none = hnb.register(model, moving, fixed, lam=0.2, label_weight=0.0)
    _, full = hnb.register(model, moving, fixed, lam=0.2, label_weight=1.0)
    assert np.abs(full - none).max() > 1e-4


def test_training_a_label_weight_model_needs_labels_and_no_fixed_weight():
    model = hnb.build_hypermorph((32, 32), nb_features=SMALL, seed=0, hyperparameters=BOTH)
    images = synthetic(4, (32, 32), seed=1).images
    with pytest.raises(ValueError, match="needs training data with label maps"):
        hnb.train(model, images, epochs=1, steps_per_epoch=1, progress="none", live_plot=False, verbose=False)
    with pytest.raises(ValueError, match="leave label_weight out"):
        hnb.train(model, synthetic(4, (32, 32)), epochs=1, steps_per_epoch=1, label_weight=1.0,
                  progress="none", live_plot=False, verbose=False)
    with pytest.raises(ValueError, match=r"does not learn"):
        hnb.train(model, synthetic(4, (32, 32)), epochs=1, steps_per_epoch=1, hyper_sampling={"lam": "beta"},
                  progress="none", live_plot=False, verbose=False)


def test_pairs_draw_each_extra_hyperparameter_over_its_range_and_keep_the_lambda_stream():
    from hypermorph_nb.data import PairBatches

    data = synthetic(4, (32, 32), seed=0)
    gamma = Hyperparameter("label_weight", low=0.5, high=2.0, default=1.0)
    plain = PairBatches(data, batch_size=4, seed=2, lam_sampling="uniform")
    both = PairBatches(data, batch_size=4, seed=2, lam_sampling="uniform", extra_sampling=[(gamma, "uniform")])
    drawn = []
    for step in range(50):
        batch, extended = plain.batch(step), both.batch(step)
        for key in ("moving", "fixed", "lam"):
            assert np.array_equal(batch[key], extended[key])
        drawn.append(extended["label_weight"][:, 0])
    drawn = np.concatenate(drawn)
    assert drawn.min() >= 0.5 and drawn.max() <= 2.0
    assert drawn.min() < 0.6 and drawn.max() > 1.9          # it covers the range, not the unit interval



def test_optimize_lambda_points_a_several_hyperparameter_model_to_optimize_hyperparameters():
    model = hnb.build_hypermorph((32, 32), nb_features=SMALL, seed=0, hyperparameters=BOTH)
    with pytest.raises(ValueError, match=r"optimize_hyperparameters\(model, data, fixed=\{'label_weight': ...\}\)"):
        hnb.optimize_lambda(model, synthetic(4, (32, 32)), n_pairs=2)
