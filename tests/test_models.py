"""Model builders: shapes, options, input checks and the hyper-convolution initialisation."""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.models import ModelSpec, fix_hyperconv_initialisation, ne, spec_of
from tests.conftest import TINY_FEATURES


def test_vxm_has_two_inputs_and_image_flow_outputs(tiny_vxm):
    assert [tuple(t.shape) for t in tiny_vxm.inputs] == [(None, 32, 32, 1)] * 2
    assert [tuple(t.shape) for t in tiny_vxm.outputs] == [(None, 32, 32, 1), (None, 32, 32, 2)]
    assert spec_of(tiny_vxm).kind == "vxm"


def test_hypermorph_takes_lambda_and_only_the_hypernetwork_and_flow_layer_train(tiny_hypermorph):
    assert [tuple(t.shape) for t in tiny_hypermorph.inputs][-1] == (None, 1)
    conv_layers = [l for l in tiny_hypermorph.submodules if isinstance(l, tf.keras.layers.Conv2D)]
    assert [l.name for l in conv_layers] == ["hypermorph_flow"], "U-Net convolutions are generated"
    assert any("hyper_dense_0" in w.name for w in tiny_hypermorph.trainable_weights)


def test_tutorial_hypernetwork_is_32_64_128_128(tiny_hypermorph):
    units = [l.units for l in tiny_hypermorph.layers if l.name.startswith("hyper_dense_")]
    assert units == [32, 64, 128, 128]


def test_diffeomorphic_option_integrates_the_field():
    model = hnb.build_vxm((32, 32), nb_features=TINY_FEATURES, diffeomorphic=True, int_steps=5)
    assert any("VecInt" in type(l).__name__ for l in model.layers)
    assert tuple(model.outputs[1].shape) == (None, 32, 32, 2)


@pytest.mark.parametrize("shape, message", [
    ((30, 32), "multiple of 16"),
    ((32, 32, 32, 1), "2D or 3D"),
    ("abc", "tuple"),
])
def test_bad_inshape_is_explained(shape, message):
    with pytest.raises(ValueError, match=message):
        hnb.build_vxm(shape)


def test_seed_makes_initialisation_reproducible():
    a = hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, seed=3)
    b = hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_generated_kernels_start_like_he_normal_and_biases_at_zero(tiny_hypermorph):
    """At λ = 0 the hypernetwork outputs 0, so the U-Net uses the maps' biases."""
    for layer in tiny_hypermorph.submodules:
        if not isinstance(layer, ne.layers.HyperConvFromDense):
            continue
        kernel_shape = layer.hyperkernel[3].as_list()
        fan_in = np.prod(kernel_shape[:-1])
        std = layer.hyperkernel[1].numpy().std()
        assert 0.6 < std / np.sqrt(2 / fan_in) < 1.1, layer.name
        assert np.all(layer.hyperbias[1].numpy() == 0)


def test_neurite_default_initialisation_is_what_the_fix_repairs():
    """neurite's own init makes generated kernels far smaller than He-normal (why HyperMorph stalls)."""
    features = tf.keras.Input((32, 32, 16))
    hyper = tf.keras.Input((128,))
    layer = ne.layers.HyperConv2DFromDense(16, 3, padding="same")
    model = tf.keras.Model([features, hyper], layer([features, hyper]))
    he_std = np.sqrt(2 / (3 * 3 * 16))
    assert layer.hyperkernel[1].numpy().std() < he_std / 3
    assert np.abs(layer.hyperbias[1].numpy()).max() > 0.05
    assert fix_hyperconv_initialisation(model, seed=0) == 1
    assert layer.hyperkernel[1].numpy().std() == pytest.approx(he_std, rel=0.2)
    assert np.all(layer.hyperbias[1].numpy() == 0)


def test_model_spec_json_round_trip(tiny_hypermorph):
    spec = spec_of(tiny_hypermorph)
    assert ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="kind"):
        ModelSpec.from_json({"kind": "unet", "inshape": [32, 32]})


def test_spec_of_rejects_foreign_models():
    inputs = tf.keras.Input((4,))
    with pytest.raises(TypeError, match="build_hypermorph"):
        spec_of(tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs)))
