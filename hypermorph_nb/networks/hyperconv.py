"""The toolkit's hyper-convolutions: neurite's layers, with each sample's convolution run without a loop.

neurite 0.2's ``HyperConv.call`` convolves each sample with its own generated
kernel through ``tf.map_fn``, a while loop per layer that costs more than the
convolutions at 2D tutorial sizes (``benchmarks/training_throughput.py``). The
classes here are neurite's ``HyperConv2DFromDense`` and ``HyperConv3DFromDense``
with another ``call``: for 2D layers the batch is folded into the channel axis and
run as one grouped convolution, the same arithmetic in one kernel call. TensorFlow's CPU
kernels (its own, and oneDNN's for many shapes) have no gradient for grouped
convolutions, so the backward pass goes through the per-sample path of the 3D layers
(:func:`grouped_conv2d`'s custom gradient): the same gradient on every device.
TensorFlow has no grouped Conv3D on the CPU, so 3D layers convolve directly when
the batch holds one sample (training's default ``batch_size=1``: the same
convolution op that neurite runs inside its loop, without the loop), unroll the
batch when its size is known when tracing, and fall back to neurite's loop only
for a batch size known at run time alone (then ``tf.cond`` still takes the direct
convolution for one sample).

Only the models this toolkit builds use them (:func:`fast_hyperconvs`, around
:func:`hypermorph_nb.build_hypermorph`'s U-Net); neurite's classes stay as they ship
for any other code in the process. They add no weights and keep neurite's weight
names, so weights files map layer for layer.

:func:`fix_hyperconv_initialisation` gives the generated convolutions a
VoxelMorph-like start (neurite's dense maps start them several times too small).
"""

from __future__ import annotations

from typing import Any

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf

from ..runtime.compat import import_registration_libraries

import_registration_libraries()  # legacy Keras and the import shim first (a no-op once done)
import neurite as ne  # noqa: E402


class FastHyperConv:
    """What neurite's ``HyperConvFromDense.call`` computes, without its per-sample ``tf.map_fn``.

    A mixin placed before a neurite ``HyperConv*FromDense`` class: the dense maps
    that generate kernels and biases are neurite's own
    (``_call_dense_pseudo_layer``), only the convolution differs.
    """

    # provided by the neurite layer mixed with this class
    rank: int
    use_bias: bool
    activation: Callable[[tf.Tensor], tf.Tensor] | None
    hyperkernel: Any
    hyperbias: Any
    _call_dense_pseudo_layer: Callable[[tf.Tensor, Any], tf.Tensor]

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        """``[features, hypernetwork output]`` -> the convolved features (after the activation)."""
        hyper = inputs[1]
        conv_inputs = [inputs[0], self._call_dense_pseudo_layer(hyper, self.hyperkernel)]
        if self.use_bias:
            conv_inputs.append(self._call_dense_pseudo_layer(hyper, self.hyperbias))
        return self.convolve(conv_inputs)

    def convolve(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        """neurite's ``HyperConv.call`` of ``[features, kernels(, biases)]``, without the loop."""
        if self.rank == 2:
            outputs = grouped_conv2d(self, inputs)
        else:
            outputs = per_sample_conv(self, inputs)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


class FastHyperConv2DFromDense(FastHyperConv, ne.layers.HyperConv2DFromDense):
    """neurite's ``HyperConv2DFromDense`` with one grouped convolution per call."""


class FastHyperConv3DFromDense(FastHyperConv, ne.layers.HyperConv3DFromDense):
    """neurite's ``HyperConv3DFromDense`` without the per-sample loop where the batch allows."""


#: The names voxelmorph's U-Net looks the hyper-convolutions up by -> the toolkit's classes.
FAST_CLASSES = {"HyperConv2DFromDense": FastHyperConv2DFromDense,
                "HyperConv3DFromDense": FastHyperConv3DFromDense}
_BUILDING = threading.Lock()


@contextlib.contextmanager
def fast_hyperconvs() -> Iterator[None]:
    """Build voxelmorph networks with the toolkit's hyper-convolutions inside the block.

    voxelmorph's U-Net takes its layer classes from neurite by name
    (``ne.layers.HyperConv2DFromDense``) while it builds, and calls each layer as
    soon as it creates it. For the duration of the block those two names give
    the subclasses here, so the layers are built, traced and saved as them;
    afterwards neurite's own classes are back, also when the build fails (the
    toolkit's builds take turns; code in another thread that creates neurite
    hyper-convolutions during one gets the same arithmetic). The subclasses add
    no state: the weights, their names and order stay neurite's (tested against
    neurite's loop).

    Examples
    --------
    >>> with fast_hyperconvs():
    ...     layer = ne.layers.HyperConv2DFromDense(4, 3, padding="same")
    >>> type(layer).__name__, ne.layers.HyperConv2DFromDense.__name__
    ('FastHyperConv2DFromDense', 'HyperConv2DFromDense')
    """
    with _BUILDING:
        shipped = {name: getattr(ne.layers, name) for name in FAST_CLASSES}
        try:
            for name, fast in FAST_CLASSES.items():
                setattr(ne.layers, name, fast)
            yield
        finally:
            for name, cls in shipped.items():
                setattr(ne.layers, name, cls)


def grouped_conv2d(layer: Any, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """2D: one grouped convolution forward; back-propagated through :func:`per_sample_conv`."""

    @tf.custom_gradient
    def convolve(*tensors):   # features (B, H, W, C), kernels (B, kh, kw, C, F)(, biases (B, F))
        def backward(upstream):
            with tf.GradientTape() as tape:
                tape.watch(tensors)
                outputs = per_sample_conv(layer, list(tensors))
            return tape.gradient(outputs, list(tensors), output_gradients=upstream)

        outputs = folded_conv2d(layer, tensors[0], tensors[1])
        if layer.use_bias:
            outputs = outputs + tensors[2][:, None, None, :]
        return outputs, backward

    return convolve(*inputs)


def folded_conv2d(layer: Any, features: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """The batch folded into the channel axis: one grouped convolution (forward only on CPUs)."""
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
    return tf.transpose(tf.reshape(outputs, [out_h, out_w, batch, filters]), [2, 0, 1, 3])


def per_sample_conv(layer: Any, inputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """Each sample's own kernel, without neurite's ``tf.map_fn`` loop where possible (3D layers, 2D gradients).

    Each sample goes through ``layer._convolve_batch``, the very function
    neurite maps over the batch, so the arithmetic is neurite's.
    """
    def sample(index):
        return layer._convolve_batch([tensor[index] for tensor in inputs])

    batch = inputs[0].shape[0]
    if batch is not None:  # known when tracing: unroll (one sample: one direct convolution)
        return tf.stack([sample(index) for index in range(batch)])
    return tf.cond(tf.shape(inputs[0])[0] == 1, lambda: sample(0)[None],
                   lambda: tf.map_fn(layer._convolve_batch, inputs, fn_output_signature=inputs[0].dtype))


def fix_hyperconv_initialisation(model: tf.keras.Model, *, seed: int | None = None) -> int:
    """Give HyperMorph's generated convolutions a VoxelMorph-like start.

    neurite 0.2's ``HyperConvFromDense`` creates the dense maps that generate
    each convolution's kernel and bias with ``add_weight`` and no initializer,
    so all of them get glorot-uniform over the *flattened* kernel. The
    generated kernels then come out several times smaller than VoxelMorph's
    He-normal kernels and the generated biases large, the U-Net output hardly
    depends on its input, and deep gradients vanish. Here the bias of each
    kernel map (the kernel generated when the hypernetwork output is 0) is
    drawn He-normal over the kernel's own shape, and the bias of each bias map
    is set to zero, as a plain ``Conv`` layer would start.

    Parameters
    ----------
    model : tf.keras.Model
        A model containing neurite ``HyperConv*FromDense`` layers.
    seed : int, optional
        Seed for the He-normal draws.

    Returns
    -------
    int
        Number of layers re-initialised.
    """
    count = 0
    for index, layer in enumerate(hyperconv_layers(model)):
        kernel_map_bias = layer.hyperkernel[1]
        kernel_shape = layer.hyperkernel[3]
        if kernel_map_bias is not None:
            init_seed = None if seed is None else seed + index
            he = tf.keras.initializers.HeNormal(seed=init_seed)(kernel_shape)
            kernel_map_bias.assign(tf.reshape(he, [-1]))
        if layer.use_bias and layer.hyperbias[1] is not None:
            layer.hyperbias[1].assign(tf.zeros_like(layer.hyperbias[1]))
        count += 1
    return count


def hyperconv_layers(model: tf.keras.Model) -> Iterator[Any]:
    """The neurite hyper-convolution layers inside ``model``, in build order."""
    for layer in model.submodules:
        if isinstance(layer, ne.layers.HyperConvFromDense):
            yield layer
