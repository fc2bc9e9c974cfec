"""The compatibility fix-ups of hypermorph_nb._compat, each shown to be needed and to work."""
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hypermorph_nb._compat import getargspec_shim
from hypermorph_nb.models import ne


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
