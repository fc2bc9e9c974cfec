"""λ conditioning: the magnitude-invariant hypernetwork (default), the tutorial's, and FiLM."""
import json

import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.networks.conditioning import FeatureModulation, LambdaEncoding
from hypermorph_nb.checks import choose_pairs
from hypermorph_nb.networks.models import count_parameters, spec_of
from hypermorph_nb.registration.pairs import Registrar

from conftest import SHAPE, TINY_FEATURES

VARIANTS = {
    "mip": {"hyper_encoding": "mip"},
    "tutorial": {"hyper_encoding": "tutorial"},
    "film": {"conditioning": "film"},
}


def _build(variant, shape=SHAPE, **kwargs):
    return hnb.build_hypermorph(shape, nb_features=TINY_FEATURES, seed=0, **VARIANTS[variant], **kwargs)


def _hypernetwork(model):
    """λ -> the hypernetwork's last hidden code (inlined into the model by VxmDense)."""
    last = [layer for layer in model.layers if layer.name.startswith("hyper_dense_")][-1]
    return tf.keras.Model(model.inputs[-1], last.output)


def _flows(model, data, lams, pair=(0, 1)):
    moving = np.repeat(data.images[pair[0]][None], len(lams), 0)
    fixed = np.repeat(data.images[pair[1]][None], len(lams), 0)
    return Registrar.for_model(model).predict(moving, fixed, lam=np.asarray(lams))[1]


def test_the_magnitude_invariant_hypernetwork_is_the_default_and_the_tutorial_one_an_option():
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    options = spec_of(model).options
    assert options["hyper_encoding"] == "mip" and "conditioning" not in options
    assert any(isinstance(layer, LambdaEncoding) for layer in model.submodules)
    tutorial = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0, hyper_encoding="tutorial")
    assert not any(isinstance(layer, LambdaEncoding) for layer in tutorial.submodules)


def test_generated_weights_start_as_a_small_residual_that_depends_on_every_lambda():
    from hypermorph_nb.networks.models import ne

    model = _build("mip")
    hypernetwork = _hypernetwork(model)
    lams = tf.linspace(0.0, 1.0, 21)[:, None]
    code = hypernetwork(lams)
    for layer in model.submodules:
        if isinstance(layer, ne.layers.HyperConvFromDense):
            weight, base, _, kernel_shape = layer.hyperkernel
            delta = (code @ weight).numpy()
            he_std = np.sqrt(2.0 / np.prod(kernel_shape[:-1]))
            assert 0.05 * he_std < np.sqrt(np.mean(delta ** 2)) < 0.2 * he_std
            assert np.all(np.abs(np.diff(delta, axis=0)).max(axis=1) > 0), "λ reaches every kernel"
            assert abs(np.std(base.numpy()) / he_std - 1) < 0.3, "the base is He-normal"


def test_the_tutorial_hypernetwork_is_blind_to_small_lambda_at_the_start(small_data):
    """The defect the new encoding fixes: raw λ = 0 gives relu(w·0 + 0) = 0 in every unit."""
    code_tutorial = _hypernetwork(_build("tutorial"))(tf.constant([[0.0]]))
    code_mip = _hypernetwork(_build("mip"))(tf.constant([[0.0]]))
    assert float(tf.reduce_max(tf.abs(code_tutorial))) == 0.0
    assert float(tf.reduce_max(tf.abs(code_mip))) > 0.0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_registers_with_lambda_and_lambda_changes_the_output(variant, small_data):
    model = _build(variant)
    assert [tuple(t.shape) for t in model.inputs][-1] == (None, 1)
    moved, flow = hnb.register(model, small_data.images[0], small_data.images[1], lam=0.3)
    assert moved.shape == small_data.images[0].shape and flow.shape == (*SHAPE, 2)
    flows = _flows(model, small_data, [0.0, 0.5, 1.0])
    assert np.abs(flows[0] - flows[2]).max() > 0 and np.abs(flows[0] - flows[1]).max() > 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_reloads_with_identical_predictions(variant, small_data, tmp_path):
    model = _build(variant)
    before = hnb.register(model, small_data.images[0], small_data.images[1], lam=0.3)
    hnb.save_model(model, tmp_path / "m")
    loaded = hnb.load_model(tmp_path / "m")
    assert spec_of(loaded) == spec_of(model) and spec_of(loaded).is_hypermorph
    after = hnb.register(loaded, small_data.images[0], small_data.images[1], lam=0.3)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_a_model_json_saved_before_the_encoding_option_loads_as_the_tutorial(small_data, tmp_path):
    model = _build("tutorial")
    hnb.save_model(model, tmp_path / "old")
    config_path = tmp_path / "old" / "model.json"
    config = json.loads(config_path.read_text())
    del config["options"]["hyper_encoding"]  # what a model.json of an older hypermorph_nb holds
    config_path.write_text(json.dumps(config))
    loaded = hnb.load_model(tmp_path / "old")
    assert not any(isinstance(layer, LambdaEncoding) for layer in loaded.submodules)
    for lam in (0.0, 0.7):
        expected = hnb.register(model, small_data.images[0], small_data.images[1], lam=lam)
        got = hnb.register(loaded, small_data.images[0], small_data.images[1], lam=lam)
        np.testing.assert_array_equal(expected[1], got[1])


def test_bad_conditioning_options_are_explained():
    with pytest.raises(ValueError, match="conditioning must be one of"):
        hnb.build_hypermorph(SHAPE, conditioning="hyper")
    with pytest.raises(ValueError, match="hyper_encoding must be one of"):
        hnb.build_hypermorph(SHAPE, hyper_encoding="polar")
    with pytest.raises(ValueError, match="film_units"):
        hnb.build_hypermorph(SHAPE, conditioning="film", film_units=[])


def test_film_is_a_plain_unet_with_a_small_lambda_mlp():
    vxm = hnb.build_vxm((64, 64), seed=0)
    film = hnb.build_hypermorph((64, 64), conditioning="film", seed=0)
    hyper = hnb.build_hypermorph((64, 64), seed=0)
    convs = [layer for layer in film.submodules if isinstance(layer, tf.keras.layers.Conv2D)]
    assert len(convs) == 12, "11 U-Net convolutions and the flow layer, with their own weights"
    extra = count_parameters(film) / count_parameters(vxm) - 1
    assert 0.1 < extra < 0.6, extra
    assert count_parameters(hyper) > 50 * count_parameters(film)


def test_film_starts_as_plain_voxelmorph_and_modulates_per_sample():
    x = tf.random.normal((2, 8, 8, 8, 3))
    gamma_beta = tf.constant([[0.0] * 6, [1.0, 0, 0, 0, 0, 2.0]])
    out = FeatureModulation()([x, gamma_beta]).numpy()
    np.testing.assert_allclose(out[0], x[0].numpy())
    np.testing.assert_allclose(out[1, ..., 0], 2 * x[1, ..., 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(out[1, ..., 2], x[1, ..., 2].numpy() + 2, rtol=1e-6)


@pytest.mark.parametrize("variant", ["film", "mip"])
def test_3d_and_odd_shapes_share_the_code_path(variant):
    model = _build(variant, shape=(20, 16, 18))
    pair = np.random.default_rng(0).random((2, 2, 20, 16, 18, 1), dtype="float32")
    moved, flow = Registrar.for_model(model).predict(pair[0], pair[1], lam=np.array([0.2, 0.9]))
    assert moved.shape == (2, 20, 16, 18, 1) and flow.shape == (2, 20, 16, 18, 3)
    assert np.abs(flow[0] - flow[1]).max() > 0


def test_film_trains_sweeps_and_its_diffeomorphic_variant_integrates(small_data):
    model = _build("film")
    history = hnb.train(model, small_data[:8], epochs=2, steps_per_epoch=3, verbose=False,
                        validation=hnb.training.ValidationConfig(small_data[8:], pairs=2, lams=[0.2, 0.8], every=2))
    assert np.all(np.isfinite(history.loss)) and np.shape(history.val_dice) == (1, 2)
    sweep = hnb.lambda_sweep(model, small_data[8:], [0.1, 0.5, 0.9], n_pairs=3, progress=False)
    assert sweep.mean_dice.shape == (3,)
    diffeo = _build("film", diffeomorphic=True, int_steps=5)
    moved, flow = hnb.register(diffeo, small_data.images[0], small_data.images[1], lam=0.5)
    assert flow.shape == (*SHAPE, 2) and np.all(np.isfinite(moved))


@pytest.mark.slow
def test_after_a_short_training_every_neighbouring_lambda_gives_another_field_and_loss_falls_as_fast(
        small_data):
    """21-point λ grid: the field changes between every pair of neighbours (the demo's defect:
    identical outputs for λ = 0, 0.1, 0.2), and the loss falls as fast as the tutorial's: the mean
    over three initialisations (one run's final loss moves by ±10 % either way with the seed and
    with the CPU's kernels, so a single pair of runs cannot tell the encodings apart)."""
    from hypermorph_nb.data import synthetic

    data = synthetic(16, (32, 32), seed=1)
    lams = np.linspace(0, 1, 21)
    losses = {"tutorial": [], "mip": []}
    for seed in (0, 1, 2):
        for variant in losses:
            model = hnb.build_hypermorph((32, 32), seed=seed, **VARIANTS[variant])
            history = hnb.train(model, data, epochs=6, steps_per_epoch=50, lam_sampling="oversample",
                                seed=seed, verbose=False)
            losses[variant].append(float(np.mean(history.loss[-2:])))
            if variant == "mip" and seed == 0:
                for moving, fixed in choose_pairs(len(data), 3, seed=0):
                    flows = _flows(model, data, lams, pair=(moving, fixed))
                    change = np.abs(np.diff(flows, axis=0)).max(axis=tuple(range(1, flows.ndim)))
                    assert np.all(change > 1e-3), dict(zip(np.round(lams[1:], 2), change))
    assert np.mean(losses["mip"]) <= np.mean(losses["tutorial"]) * 1.02, losses


def test_the_lambda_explorer_and_sweep_panel_drive_a_film_model(small_data):
    from hypermorph_nb.widgets import LambdaExplorer, SweepPanel
    from hypermorph_nb.widgets.explorer import RegistrationStep

    model = _build("film")
    step = RegistrationStep.for_model(model)
    moved, flow, warped = step(small_data.images[0], small_data.images[1], 0.7, small_data.labels[0])
    expected_moved, expected_flow = Registrar.for_model(model).predict(
        small_data.images[:1], small_data.images[1:2], 0.7)
    np.testing.assert_allclose(flow, expected_flow[0], atol=1e-6)
    explorer = LambdaExplorer(model, small_data, pair=(0, 1), lam=0.1, display="image")
    try:
        before = explorer.state.flow.copy()
        explorer.lam_slider.value = 0.9
        assert explorer.state.lam == 0.9 and not np.array_equal(explorer.state.flow, before)
        panel = SweepPanel(model, small_data, n_pairs=2, explorer=explorer)
        assert 0 <= panel.optimal_lam <= 1
    finally:
        explorer.close()
