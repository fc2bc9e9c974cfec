"""Model builders: shapes, options, input checks and the hyper-convolution initialisation."""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.networks.hyperconv import fix_hyperconv_initialisation
from hypermorph_nb.networks.models import ModelSpec, _build_core, ne, spec_of, vxm
from hypermorph_nb.networks.padding import pad_widths, padded_shape, pooling_multiple
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
    ((4, 32), "at least 8"),
    ((1, 32, 32), "at least 8"),
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


# --- any size: padding inside the model -------------------------------------------------------

def padded_reference(build, shape, padded, **options):
    """The model of the user's shape and one built directly at the padded shape, same seed."""
    model = build(shape, nb_features=TINY_FEATURES, seed=0, **options)
    reference = build(padded, nb_features=TINY_FEATURES, seed=0, **options)
    return model, reference


def run(model, moving, fixed, lam=None):
    inputs = [moving, fixed] if lam is None else [moving, fixed, lam]
    return [t.numpy() for t in model(inputs, training=False)]


@pytest.mark.parametrize("build, shape, padded", [
    (hnb.build_vxm, (20, 30), (32, 32)),
    (hnb.build_hypermorph, (10, 12, 14), (16, 16, 16)),
])
def test_any_shape_is_padded_inside_the_model_and_cropped_back(build, shape, padded, rng):
    model, reference = padded_reference(build, shape, padded)
    ndims = len(shape)
    assert [tuple(t.shape) for t in model.outputs] == [(None, *shape, 1), (None, *shape, ndims)]
    assert [tuple(t.shape) for t in model.inputs[:2]] == [(None, *shape, 1)] * 2
    assert spec_of(model).inshape == shape
    # the same weights as a network built at the padded shape with the same seed ...
    assert len(model.get_weights()) == len(reference.get_weights())
    for mine, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    # ... run on the zero-padded images, with the field cropped back
    moving, fixed = rng.random((2, 2, *shape, 1), dtype=np.float32)
    widths = pad_widths(shape, padded)
    pad = [*widths, (0, 0)]
    lam = None if not spec_of(model).is_hypermorph else np.array([[0.2], [0.9]], np.float32)
    moved, flow = run(model, moving, fixed, lam)
    _, reference_flow = run(reference, np.pad(moving, [(0, 0), *pad]), np.pad(fixed, [(0, 0), *pad]), lam)
    inside = (slice(None), *(slice(before, before + side) for (before, _), side in zip(widths, shape)))
    np.testing.assert_allclose(flow, reference_flow[inside], atol=1e-5)
    assert moved.shape == moving.shape and flow.shape == (2, *shape, ndims)


@pytest.mark.parametrize("diffeomorphic", [False, True])
def test_moved_image_is_the_moving_image_warped_by_the_cropped_field(diffeomorphic, rng):
    model = hnb.build_vxm((20, 30), nb_features=TINY_FEATURES, seed=0, diffeomorphic=diffeomorphic,
                          int_steps=4)
    # a field of a few voxels, so that the warp visibly moves the image
    flow_layer = next(l for l in model.references.core.layers if l.name.endswith("_flow"))
    kernel, bias = flow_layer.get_weights()
    flow_layer.set_weights([kernel * 3e4, bias])
    moving, fixed = rng.random((2, 2, 20, 30, 1), dtype=np.float32)
    displacement = tf.keras.Model(model.inputs, model.references.pos_flow)([moving, fixed]).numpy()
    moved, field = run(model, moving, fixed)
    assert np.abs(displacement).max() > 1, "the test needs a field that moves voxels"
    if not diffeomorphic:
        np.testing.assert_array_equal(field, displacement)
    warp = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij")
    np.testing.assert_allclose(moved, warp([moving, displacement]).numpy(), atol=1e-6)


def test_valid_shape_model_is_built_without_the_padding_path():
    """A poolable shape gives exactly the model of today: no wrapper, same weights and outputs."""
    model = hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, seed=0)
    assert not hasattr(model.references, "core")
    assert not any(isinstance(l, (tf.keras.layers.ZeroPadding2D, tf.keras.layers.Cropping2D))
                   for l in model.submodules)
    assert model.name == "hypermorph"
    core = _build_core(spec_of(model), (32, 32))
    for mine, theirs in zip(model.get_weights(), core.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_padded_model_registers_saves_and_loads_at_the_users_shape(tmp_path, rng):
    model = hnb.build_hypermorph((20, 30), nb_features=TINY_FEATURES, seed=0)
    moving, fixed = rng.random((2, 20, 30), dtype=np.float32)
    moved, flow = hnb.register(model, moving, fixed, lam=0.4)
    assert moved.shape == (20, 30) and flow.shape == (20, 30, 2)
    loaded = hnb.load_model(hnb.save_model(model, tmp_path / "padded"))
    assert spec_of(loaded).inshape == (20, 30)
    again = hnb.register(loaded, moving, fixed, lam=0.4)
    np.testing.assert_array_equal(again[1], flow)


def test_pad_widths_centre_the_image():
    assert padded_shape((50, 60), 16) == (64, 64)
    assert padded_shape((40, 44, 36), 16) == (48, 48, 48)
    assert pad_widths((40, 44, 36), (48, 48, 48)) == ((4, 4), (2, 2), (6, 6))
    assert pooling_multiple(TINY_FEATURES) == 16 and pooling_multiple([[8, 8], [8, 8, 8]]) == 4
