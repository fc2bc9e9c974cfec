"""The compatibility fix-ups of hypermorph_nb.runtime.compat, each shown to be needed and to work."""
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hypermorph_nb.runtime.compat import getargspec_shim
from hypermorph_nb.networks.hyperconv import (FastHyperConv, FastHyperConv2DFromDense, FastHyperConv3DFromDense,
                                              fast_hyperconvs)
from hypermorph_nb.networks.models import ne


def run_python(code, **env):
    """Run code in a fresh interpreter (import order matters) and return the result."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=300)


def test_import_before_tensorflow_routes_tf_keras_to_tf_keras():
    result = run_python("""
        import hypermorph_nb, tensorflow as tf
        print(tf.keras.layers.Dense.__module__)
        hypermorph_nb.build_vxm((32, 32))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras.")


def test_import_after_tensorflow_works_while_keras_is_untouched():
    result = run_python("""
        import tensorflow as tf
        import hypermorph_nb
        import tensorflow.keras.layers as KL
        print(KL.Dense.__module__)
        hypermorph_nb.build_hypermorph((32, 32), nb_features=[[8]*4, [8]*7])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_import_after_keras3_is_active_fails_with_instructions():
    result = run_python("""
        import tensorflow as tf
        tf.keras.layers.Dense(1)
        import hypermorph_nb
    """)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "Keras 3" in result.stderr and "TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "restart" in result.stderr


def test_explicit_false_tf_use_legacy_keras_is_refused():
    result = run_python("import hypermorph_nb", TF_USE_LEGACY_KERAS="0")
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS='0'" in result.stderr


def test_getargspec_shim_is_scoped_to_the_import():
    assert not hasattr(inspect, "getargspec"), "the shim must not leak into user code"
    with getargspec_shim():
        spec = inspect.getargspec(lambda a, b=2, *c, **d: None)
    assert spec == (["a", "b"], "c", "d", (2,))
    assert not hasattr(inspect, "getargspec")


def test_neurite_needs_the_getargspec_shim_on_this_python():
    if sys.version_info < (3, 11):
        pytest.skip("inspect.getargspec exists before Python 3.11")
    with pytest.raises(AttributeError):
        inspect.getargspec  # noqa: B018 - what neurite 0.2 calls at import


def test_grouped_hyperconv_matches_per_sample_convolution(tiny_hypermorph):
    layer = next(l for l in tiny_hypermorph.submodules if isinstance(l, ne.layers.HyperConvFromDense))
    in_channels = layer.hyperkernel[3][-2]
    rng = np.random.default_rng(0)
    features = tf.constant(rng.standard_normal((3, 32, 32, in_channels)), tf.float32)
    hyper = tf.constant(rng.random((3, layer.hyperkernel[0].shape[0])), tf.float32)
    out = layer([features, hyper]).numpy()
    kernels = layer._call_dense_pseudo_layer(hyper, layer.hyperkernel)
    biases = layer._call_dense_pseudo_layer(hyper, layer.hyperbias)
    for i in range(3):
        expected = tf.nn.conv2d(features[i:i + 1], kernels[i], 1, "SAME") + biases[i]
        expected = layer.activation(expected).numpy()[0]
        np.testing.assert_allclose(out[i], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(out[0], out[1]), "each sample must use its own kernel"


def test_our_model_uses_the_fast_layers_with_neurites_numbers(tiny_hypermorph):
    layers = [l for l in tiny_hypermorph.submodules if isinstance(l, ne.layers.HyperConvFromDense)]
    assert layers and all(isinstance(l, FastHyperConv) for l in layers)
    layer = layers[1]
    rng = np.random.default_rng(1)
    features = tf.constant(rng.standard_normal((2, 32, 32, layer.hyperkernel[3][-2])), tf.float32)
    hyper = tf.constant(rng.random((2, layer.hyperkernel[0].shape[0])), tf.float32)
    neurites = ne.layers.HyperConvFromDense.call(layer, [features, hyper])  # neurite's map_fn path
    np.testing.assert_allclose(layer([features, hyper]).numpy(), neurites.numpy(), rtol=1e-4, atol=1e-5)


def test_neurite_is_left_as_it_ships_for_other_code(tiny_hypermorph):
    """After ``import hypermorph_nb`` and building a model, neurite's classes are neurite's own."""
    for cls in (ne.layers.HyperConv, ne.layers.HyperConvFromDense):
        call = cls.__dict__["call"]
        assert call.__module__ == "neurite.tf.layers" and call.__qualname__ == f"{cls.__name__}.call"
    theirs = ne.layers.HyperConv2DFromDense(4, 3, padding="same")  # someone else's layer
    assert type(theirs) is ne.layers.HyperConv2DFromDense
    assert type(theirs).call is ne.layers.HyperConvFromDense.call
    graph = tf.function(lambda f, h: theirs([f, h])).get_concrete_function(
        tf.TensorSpec([2, 8, 8, 2]), tf.TensorSpec([2, 3])).graph
    assert any("While" in op.type for op in graph.get_operations()), "neurite's own tf.map_fn loop"


def test_neurites_classes_are_back_after_a_failed_build():
    shipped = ne.layers.HyperConv2DFromDense
    with pytest.raises(RuntimeError, match="failed build"):
        with fast_hyperconvs():
            assert ne.layers.HyperConv2DFromDense is FastHyperConv2DFromDense
            raise RuntimeError("failed build")
    assert ne.layers.HyperConv2DFromDense is shipped


def test_registration_libraries_are_imported_once():
    from hypermorph_nb.runtime.compat import import_registration_libraries
    assert import_registration_libraries() is import_registration_libraries()


@pytest.fixture(scope="module")
def hyperconv_3d():
    """A 3D hyper-convolution with its generated per-sample kernels and biases."""
    features = tf.keras.Input((8, 8, 8, 4))
    hyper = tf.keras.Input((5,))
    layer = FastHyperConv3DFromDense(6, 3, padding="same", activation="relu")
    tf.keras.Model([features, hyper], layer([features, hyper]))
    return layer


@pytest.mark.parametrize("batch, signature", [(1, "static"), (3, "static"), (1, "dynamic"), (3, "dynamic")])
def test_3d_hyperconv_without_map_fn_equals_neurites_loop(hyperconv_3d, batch, signature):
    """Direct (one sample), unrolled (static batch) or cond/loop (dynamic batch) 3D path vs neurite's map_fn."""
    layer = hyperconv_3d
    rng = np.random.default_rng(batch)
    features = tf.constant(rng.standard_normal((batch, 8, 8, 8, 4)), tf.float32)
    hyper = tf.constant(rng.random((batch, 5)), tf.float32)
    original = ne.layers.HyperConv.call  # neurite's tf.map_fn loop

    def both(features, hyper):
        inputs = [features, layer._call_dense_pseudo_layer(hyper, layer.hyperkernel),
                  layer._call_dense_pseudo_layer(hyper, layer.hyperbias)]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            fast, slow = layer.convolve(inputs), original(layer, inputs)
            loss_fast, loss_slow = tf.reduce_sum(fast ** 2), tf.reduce_sum(slow ** 2)
        return fast, slow, tape.gradient(loss_fast, inputs), tape.gradient(loss_slow, inputs)

    spec = [tf.TensorSpec([batch if signature == "static" else None, 8, 8, 8, 4]),
            tf.TensorSpec([batch if signature == "static" else None, 5])]
    fast, slow, grad_fast, grad_slow = tf.function(both, input_signature=spec)(features, hyper)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(grad_fast, grad_slow):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-4)
    if batch > 1:
        assert not np.allclose(fast[0], fast[1]), "each sample must use its own kernel"


def test_3d_hypermorph_step_has_no_map_fn_loop_at_batch_one():
    """Training's default batch of one runs each 3D hyper-convolution directly, not in a map_fn loop."""
    import hypermorph_nb as hnb
    from tests.conftest import TINY_FEATURES

    model = hnb.build_hypermorph((16, 16, 16), nb_features=TINY_FEATURES, seed=0)
    image = tf.zeros([1, 16, 16, 16, 1])
    graph = tf.function(lambda m, f, l: model([m, f, l], training=True)).get_concrete_function(
        image, image, tf.constant([[0.5]])).graph
    # a Conv3D op in the step's own graph (not inside a loop body) for every convolution
    convolutions = [op for op in graph.get_operations() if op.type == "Conv3D"]
    hyperconvs = [l for l in model.submodules if isinstance(l, ne.layers.HyperConvFromDense)]
    assert len(convolutions) == len(hyperconvs) + 1  # + the flow layer, a plain Conv3D


@pytest.mark.parametrize("signature", ["static", "dynamic"])
def test_2d_grouped_hyperconv_and_its_gradient_equal_neurites_loop(tiny_hypermorph, signature):
    """Grouped forward, per-sample backward (any CPU) vs neurite's map_fn, gradients too."""
    layer = next(l for l in tiny_hypermorph.submodules if isinstance(l, ne.layers.HyperConvFromDense))
    channels, hyper_size = layer.hyperkernel[3][-2], layer.hyperkernel[0].shape[0]
    rng = np.random.default_rng(2)
    features = tf.constant(rng.standard_normal((2, 16, 16, channels)), tf.float32)
    hyper = tf.constant(rng.random((2, hyper_size)), tf.float32)

    def both(features, hyper):
        inputs = [features, layer._call_dense_pseudo_layer(hyper, layer.hyperkernel),
                  layer._call_dense_pseudo_layer(hyper, layer.hyperbias)]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            fast, slow = layer.convolve(inputs), ne.layers.HyperConv.call(layer, inputs)
            loss_fast, loss_slow = tf.reduce_sum(fast ** 2), tf.reduce_sum(slow ** 2)
        return fast, slow, tape.gradient(loss_fast, inputs), tape.gradient(loss_slow, inputs)

    batch = 2 if signature == "static" else None
    spec = [tf.TensorSpec([batch, 16, 16, channels]), tf.TensorSpec([batch, hyper_size])]
    fast, slow, grad_fast, grad_slow = tf.function(both, input_signature=spec)(features, hyper)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(grad_fast, grad_slow):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-4)


def test_a_2d_hypermorph_trains_on_batches_of_two_on_this_machine():
    """Whatever the CPU's kernels: TensorFlow's own have no grouped-convolution gradient."""
    import hypermorph_nb as hnb
    from tests.conftest import TINY_FEATURES

    model = hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, seed=0)
    history = hnb.train(model, hnb.data.synthetic(4, (32, 32), seed=0), epochs=1, steps_per_epoch=2,
                        batch_size=2, verbose=False)
    assert np.isfinite(history.loss).all() and history.steps == 2
