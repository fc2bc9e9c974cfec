"""Make the TensorFlow line of voxelmorph/neurite (0.2) import on today's stack.

Everything in this module exists because of a concrete incompatibility between
voxelmorph 0.2 / neurite 0.2 and the current TensorFlow, Keras and Python
releases. Each fix-up is applied once, when ``hypermorph_nb`` is imported, and
each is covered by ``tests/test_compat.py``.

1. **Legacy Keras.** TensorFlow >= 2.16 routes ``tf.keras`` to Keras 3, which
   breaks neurite 0.2 at import (``cannot import name 'mean_absolute_error'``).
   The tf-keras package keeps the Keras 2 API; TensorFlow uses it when
   ``TF_USE_LEGACY_KERAS=1`` is set before ``tf.keras`` is first touched.
2. **inspect.getargspec.** neurite 0.2's ``modelio.store_config_args`` calls
   ``inspect.getargspec``, removed in Python 3.11 (voxelmorph issue #619). A
   shim with the old 4-field result is installed only while neurite and
   voxelmorph import (the decorator runs at class-definition time), then
   removed again.
3. **Per-sample hyper-convolution.** neurite 0.2's ``HyperConv.call`` convolves
   each sample with its own generated kernel through ``tf.map_fn``, a while
   loop per layer that costs more than the convolutions at 2D tutorial sizes
   (HyperMorph trained at 0.48x the baseline's steps/s at 160x192 on 2 CPU
   cores). For 2D layers the batch is folded into the channel axis and run as
   one grouped convolution, the same arithmetic in one kernel call. TensorFlow
   has no grouped Conv3D on the CPU, so 3D layers convolve directly when the
   batch holds one sample (training's default ``batch_size=1``: the same
   convolution op that neurite runs inside its loop, without the loop), unroll
   the batch when its size is known when tracing, and fall back to neurite's
   loop only for a batch size known at run time alone (then ``tf.cond``
   still takes the direct convolution for one sample).
"""

import collections
import contextlib
import functools
import importlib
import inspect
import os
import sys

_LEGACY_VALUES = ("1", "true", "True")

KERAS3_ACTIVE_MESSAGE = (
    "hypermorph_nb needs the legacy Keras 2 API (the tf-keras package), but "
    "tf.keras already resolves to Keras 3 in this Python process ({where}). "
    "voxelmorph/neurite 0.2 do not work with Keras 3. Fix: restart the kernel "
    "(or interpreter) and either import hypermorph_nb before using tf.keras, or "
    "set the environment variable TF_USE_LEGACY_KERAS=1 before Python starts "
    "(e.g. `%env TF_USE_LEGACY_KERAS=1` in the first notebook cell)."
)


def ensure_legacy_keras():
    """Route ``tf.keras`` to tf-keras (Keras 2), or fail with instructions.

    Safe in any import order: before TensorFlow is imported it sets
    ``TF_USE_LEGACY_KERAS=1``; after TensorFlow is imported but before
    ``tf.keras`` was used, it also puts tf-keras first on TensorFlow's
    submodule path (what TensorFlow itself does when the variable is set at
    its import). If Keras 3 is already active it raises ``ImportError``.

    Raises
    ------
    ImportError
        If tf-keras is missing, ``TF_USE_LEGACY_KERAS`` is set to a false
        value, or Keras 3 already backs ``tf.keras`` in this process.
    """
    value = os.environ.get("TF_USE_LEGACY_KERAS")
    if value is not None and value not in _LEGACY_VALUES:
        raise ImportError(
            f"TF_USE_LEGACY_KERAS={value!r} is set, but hypermorph_nb needs legacy "
            "Keras (voxelmorph/neurite 0.2 break under Keras 3). Unset the variable "
            "or set TF_USE_LEGACY_KERAS=1, then restart Python."
        )
    try:
        importlib.import_module("tf_keras")
    except ImportError as err:
        raise ImportError(
            "hypermorph_nb needs the tf-keras package (legacy Keras 2 API). "
            "Install the project's pinned dependencies: pip install -e ."
        ) from err
    os.environ["TF_USE_LEGACY_KERAS"] = "1"

    tf = sys.modules.get("tensorflow")
    if tf is None:
        return  # TensorFlow will read the variable when it is imported.
    where = _keras3_evidence(tf)
    if where:
        raise ImportError(KERAS3_ACTIVE_MESSAGE.format(where=where))
    if not getattr(tf, "_tf_uses_legacy_keras", True):
        # TensorFlow was imported without the variable: its lazy ``tf.keras``
        # still reads it on first use, but ``import tensorflow.keras.x`` goes
        # through ``tf.__path__``, which lists Keras 3 first. Put tf-keras first,
        # as tensorflow/__init__.py does when the variable is set at import.
        from tensorflow.python.tools import module_util

        tf.__path__.insert(0, module_util.get_parent_dir_for_name("tf_keras.api._v2.keras"))
        tf._tf_uses_legacy_keras = True


def _keras3_evidence(tf):
    """Return where Keras 3 already backs ``tf.keras``, or '' if it does not."""
    keras_attr = tf.__dict__.get("keras")
    if keras_attr is not None:
        if getattr(keras_attr, "_tfll_initialized", True) is False:
            pass  # still the lazy loader: nothing resolved yet
        elif not getattr(keras_attr, "__name__", "").startswith("tf_keras"):
            return f"tf.keras is {getattr(keras_attr, '__name__', keras_attr)}"
    for name, module in list(sys.modules.items()):
        if name.startswith("tensorflow.keras") and module is not None:
            origin = getattr(module, "__name__", "")
            file = getattr(module, "__file__", "") or ""
            if "tf_keras" not in origin and "tf_keras" not in file:
                return f"module {name} was imported from Keras 3"
    return ""


_ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")


def _getargspec(func):
    """Python < 3.11 ``inspect.getargspec``: the 4-field view of getfullargspec."""
    spec = inspect.getfullargspec(func)
    return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


@contextlib.contextmanager
def getargspec_shim():
    """Provide ``inspect.getargspec`` for the duration of the block only."""
    had = hasattr(inspect, "getargspec")
    if not had:
        inspect.getargspec = _getargspec
    try:
        yield
    finally:
        if not had:
            del inspect.getargspec


def _grouped_hyperconv_call(original_call):
    """Wrap neurite's ``HyperConv.call``: grouped 2D, direct or unrolled 3D convolutions.

    The wrapper keeps neurite's own method as ``call.original`` (used by the
    equality tests).
    """
    def call(self, inputs):
        if self.rank == 2:
            outputs = _grouped_conv2d(self, inputs)
        else:
            outputs = _per_sample_conv(self, inputs)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    call.hypermorph_nb_patch = True
    call.original = original_call
    return call


def _grouped_conv2d(layer, inputs):
    """2D: fold the batch into the channels and run one grouped convolution."""
    import tensorflow as tf

    features, kernels = inputs[0], inputs[1]  # (B, H, W, C), (B, kh, kw, C, F)
    kh, kw, channels, filters = kernels.shape[1:]
    dynamic = tf.shape(features)
    batch = dynamic[0]
    height = features.shape[1] if features.shape[1] is not None else dynamic[1]
    width = features.shape[2] if features.shape[2] is not None else dynamic[2]
    folded = tf.reshape(tf.transpose(features, [1, 2, 0, 3]), [1, height, width, batch * channels])
    grouped = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]), [kh, kw, channels, batch * filters])
    outputs = tf.nn.conv2d(folded, grouped, strides=layer.strides, padding=layer.padding.upper(),
                           dilations=layer.dilation_rate)
    out_h = outputs.shape[1] if outputs.shape[1] is not None else tf.shape(outputs)[1]
    out_w = outputs.shape[2] if outputs.shape[2] is not None else tf.shape(outputs)[2]
    outputs = tf.transpose(tf.reshape(outputs, [out_h, out_w, batch, filters]), [2, 0, 1, 3])
    if layer.use_bias:
        outputs = outputs + inputs[2][:, None, None, :]
    return outputs


def _per_sample_conv(layer, inputs):
    """3D: each sample's own kernel, without neurite's ``tf.map_fn`` loop where possible.

    Each sample goes through ``layer._convolve_batch``, the very function
    neurite maps over the batch, so the arithmetic is neurite's.
    """
    import tensorflow as tf

    def sample(index):
        return layer._convolve_batch([tensor[index] for tensor in inputs])

    batch = inputs[0].shape[0]
    if batch is not None:  # known when tracing: unroll (one sample: one direct convolution)
        return tf.stack([sample(index) for index in range(batch)])
    return tf.cond(tf.shape(inputs[0])[0] == 1, lambda: sample(0)[None],
                   lambda: tf.map_fn(layer._convolve_batch, inputs, fn_output_signature=inputs[0].dtype))


@functools.lru_cache(maxsize=None)
def import_registration_libraries():
    """Import neurite and voxelmorph (TensorFlow backend) with the fix-ups applied.

    Runs once per process; later calls return the same modules (once neurite has
    touched ``tf.keras``, the legacy-Keras check cannot be repeated).

    Returns
    -------
    tuple of modules
        ``(neurite, voxelmorph)``.
    """
    ensure_legacy_keras()
    # Both packages pick their backend from these variables; only the
    # TensorFlow backend has HyperMorph.
    os.environ["VXM_BACKEND"] = "tensorflow"
    os.environ["NEURITE_BACKEND"] = "tensorflow"
    with getargspec_shim():
        import neurite
        import voxelmorph
    hyperconv = neurite.layers.HyperConv
    if not getattr(hyperconv.call, "hypermorph_nb_patch", False):
        hyperconv.call = _grouped_hyperconv_call(hyperconv.call)
    return neurite, voxelmorph
