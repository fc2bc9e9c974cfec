"""How a registration network is conditioned on λ.

Two conditionings share one API (inputs ``[moving, fixed, lam]``, outputs
``[moved, flow]``):

- **hypernetwork** (HyperMorph, the default): a dense network maps λ to every
  U-Net convolution weight. Its input encoding is the magnitude-invariant
  parametrisation of Ortiz, Guttag & Dalca (ICLR 2024; ``"mip"``, the default)
  or the seed tutorial's raw λ (``hyper_encoding="tutorial"``). With ``"mip"`` λ enters as
  ``[λ, 1 − λ]``, a vector of constant magnitude, so every hidden unit sees λ
  from the first step (with raw λ, λ ≈ 0 gives relu(w·λ) ≈ 0 and small λ never
  reach the U-Net), and each generated weight is a residual ``θ0 + Δθ(λ)``
  around a learned base θ0 with ``Δθ`` starting at a tenth of θ0's scale.
- **film**: a plain VoxelMorph U-Net whose convolution features are scaled and
  shifted per channel by a small MLP of λ (feature-wise linear modulation, the
  conditional-normalisation idea of Mok & Chung's cLapIRN, MICCAI 2021,
  without the normalisation so that the U-Net is the baselines' U-Net).

:func:`hypermorph_nb.build_hypermorph` builds both; the code here is what it
calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

# hypermorph_nb.networks.models imports this module right after importing neurite and voxelmorph
# through hypermorph_nb.runtime.compat (TensorFlow backend, Keras 2, fix-ups applied).
import neurite as ne
import voxelmorph as vxm

from .hyperparameters import unit_grid

#: Hypernetwork input encodings: the ICLR 2024 magnitude-invariant one, and the tutorial's raw λ.
HYPER_ENCODINGS = ("mip", "tutorial")
#: Ways to condition the U-Net on λ.
CONDITIONINGS = ("hypernetwork", "film")
#: Hidden units of the FiLM network's λ-MLP.
FILM_UNITS = (64, 64)
#: Initial size of the hypernetwork's λ-dependent part Δθ relative to the He scale of θ0.
RESIDUAL_FRACTION = 0.1


class LambdaEncoding(tf.keras.layers.Layer):
    """Encode λ of shape ``(batch, 1)`` as ``[λ, 1 − λ]`` (constant L1 magnitude); ``(batch, k)`` as
    ``[h, 1 − h]`` (all ``h`` first, then all ``1 − h``).

    Examples
    --------
    >>> LambdaEncoding()(tf.constant([[0.0], [0.25]])).numpy().tolist()
    [[0.0, 1.0], [0.25, 0.75]]
    """

    def call(self, lam: tf.Tensor) -> tf.Tensor:
        return tf.concat([lam, 1.0 - lam], axis=-1)


class FeatureModulation(tf.keras.layers.Layer):
    """FiLM: ``x · (1 + γ) + β`` with per-sample, per-channel γ, β of shape ``(batch, C)``.

    Works for feature maps of any number of spatial dimensions.

    Examples
    --------
    >>> x = tf.ones((2, 4, 4, 3))
    >>> gamma_beta = tf.constant([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 5.0]])
    >>> out = FeatureModulation()([x, gamma_beta]).numpy()
    >>> out[0, 0, 0].tolist(), out[1, 0, 0].tolist()
    ([2.0, 1.0, 1.0], [1.0, 1.0, 6.0])
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        features, gamma_beta = inputs
        gamma, beta = tf.split(gamma_beta, 2, axis=-1)
        shape = tf.concat([tf.shape(gamma)[:1], tf.ones([features.shape.rank - 2], tf.int32),
                           tf.shape(gamma)[1:]], axis=0)
        return features * (1.0 + tf.reshape(gamma, shape)) + tf.reshape(beta, shape)


def check_conditioning(conditioning: str, hyper_encoding: str) -> None:
    """Validate the two conditioning options (raise ``ValueError`` naming the fix)."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
    if hyper_encoding not in HYPER_ENCODINGS:
        raise ValueError(
            f"hyper_encoding must be one of {HYPER_ENCODINGS} ('mip': [λ, 1 − λ] input and "
            f"residual weights; 'tutorial': the seed tutorial's raw λ), got {hyper_encoding!r}")


def check_units(units: Sequence[int], name: str) -> list[int]:
    """``units`` as a list of ints; raise ``ValueError`` naming ``name`` unless all are positive."""
    units = [int(u) for u in units]
    if not units or min(units) < 1:
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {units!r}")
    return units


def build_hypernetwork(units: Sequence[int], *, encoding: str = "mip", inputs: int = 1,
                       name: str = "hypernetwork") -> tf.keras.Model:
    """The dense hypernetwork that maps λ to the U-Net's hidden code.

    Parameters
    ----------
    units : sequence of int
        Units of the Dense ReLU layers.
    encoding : {'mip', 'tutorial'}
        ``'mip'`` feeds ``[λ, 1 − λ]`` (for several hyperparameters ``[h, 1 − h]`` of each);
        ``'tutorial'`` feeds λ itself.
    inputs : int
        Number of hyperparameters (1: λ alone).

    Returns
    -------
    tf.keras.Model
        Input ``lambda`` of shape ``(batch, inputs)``.

    Examples
    --------
    >>> net = build_hypernetwork([8, 8], encoding="mip")
    >>> net(tf.constant([[0.0]])).shape
    TensorShape([1, 8])
    """
    check_conditioning("hypernetwork", encoding)
    units = check_units(units, "hyper_units")
    lam = tf.keras.Input(shape=[int(inputs)], name="lambda")
    hidden = LambdaEncoding(name="lambda_encoding")(lam) if encoding == "mip" else lam
    for index, width in enumerate(units):
        hidden = tf.keras.layers.Dense(width, activation="relu", name=f"hyper_dense_{index}")(hidden)
    return tf.keras.Model(lam, hidden, name=name)


def init_residual_hyperconvs(layers: Iterable[Any], hypernetwork: tf.keras.Model, *,
                             fraction: float = RESIDUAL_FRACTION) -> int:
    """Start each generated weight as ``θ0 + Δθ(λ)`` with ``Δθ`` small.

    The bias of each neurite kernel map is the base kernel θ0 (He-normal after
    :func:`hypermorph_nb.networks.hyperconv.fix_hyperconv_initialisation`), its weight
    matrix generates Δθ from the hypernetwork's code. Here the weight matrices
    of the kernel and bias maps are rescaled so that, over λ in [0, 1], the
    root-mean-square of Δθ is ``fraction`` times θ0's He standard deviation.

    Parameters
    ----------
    layers : iterable of neurite ``HyperConvFromDense`` layers
    hypernetwork : tf.keras.Model
        The model from :func:`build_hypernetwork` that feeds them.
    fraction : float

    Returns
    -------
    int
        Number of layers rescaled.
    """
    inputs = int(hypernetwork.inputs[0].shape[-1])
    # λ alone: 11 values over [0, 1]; several hyperparameters: a 5-point grid of the unit cube
    code = hypernetwork(tf.linspace(0.0, 1.0, 11)[:, None] if inputs == 1 else unit_grid(5, inputs))
    count = 0
    for layer in layers:
        kernel_shape = layer.hyperkernel[3]
        target = fraction * np.sqrt(2.0 / np.prod(kernel_shape[:-1]))
        maps = [layer.hyperkernel[0]]
        if layer.use_bias:
            maps.append(layer.hyperbias[0])
        for weight in maps:
            rms = float(tf.sqrt(tf.reduce_mean(tf.square(code @ weight))))
            if rms > 0:
                weight.assign(weight * (target / rms))
        count += 1
    return count


def build_film_vxm(inshape: Sequence[int], *, nb_features: Sequence[Sequence[int]] | None = None,
                   int_steps: int = 0, film_units: Sequence[int] = FILM_UNITS, hyper_inputs: int = 1,
                   name: str = "film") -> tf.keras.Model:
    """A VoxelMorph U-Net conditioned on λ by feature-wise scale and shift (FiLM).

    The U-Net, flow layer and spatial transformer are those of
    ``vxm.networks.VxmDense``; after every convolution, before its activation,
    the features become ``x · (1 + γ(λ)) + β(λ)``, with γ and β for all
    convolutions from one MLP of ``[λ, 1 − λ]``. The MLP's last layer starts
    near zero, so the network starts as a plain VoxelMorph U-Net.

    Parameters
    ----------
    inshape : tuple of int
        Spatial shape (2D or 3D), each side divisible by 16.
    nb_features : list of two lists of int, optional
        U-Net encoder and decoder features (voxelmorph's default when None).
    int_steps : int
        Scaling-and-squaring steps; 0 for a displacement field.
    film_units : sequence of int
        Hidden units of the λ-MLP (ReLU).
    hyper_inputs : int
        Number of hyperparameters the MLP takes (1: λ alone), each encoded as ``[h, 1 − h]``.
    name : str

    Returns
    -------
    tf.keras.Model
        Inputs ``[moving, fixed, lam]``, outputs ``[moved, flow]``; like
        ``VxmDense`` it has ``references.pos_flow`` (the displacement field).

    Examples
    --------
    >>> model = build_film_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]])
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 32, 32, 1), (None, 32, 32, 2)]
    """
    ndims = len(inshape)
    film_units = check_units(film_units, "film_units")
    enc_nf, dec_nf = nb_features if nb_features is not None else vxm.networks.default_unet_features()
    enc_nf, dec_nf = list(enc_nf), list(dec_nf)
    conv_features = enc_nf + dec_nf
    source = tf.keras.Input(shape=(*inshape, 1), name=f"{name}_source_input")
    target = tf.keras.Input(shape=(*inshape, 1), name=f"{name}_target_input")
    lam = tf.keras.Input(shape=[int(hyper_inputs)], name="lambda")

    hidden = LambdaEncoding(name="lambda_encoding")(lam)
    for index, width in enumerate(film_units):
        hidden = tf.keras.layers.Dense(width, activation="relu", name=f"film_dense_{index}")(hidden)
    modulation = tf.keras.layers.Dense(
        2 * sum(conv_features), name="film_scale_shift",
        kernel_initializer=tf.keras.initializers.VarianceScaling(1e-4))(hidden)
    offsets = np.cumsum([0] + conv_features)
    counter = iter(range(len(conv_features)))
    Conv = getattr(tf.keras.layers, f"Conv{ndims}D")

    def conv_block(x, features, layer_name):
        index = next(counter)
        x = Conv(features, kernel_size=3, padding="same", kernel_initializer="he_normal",
                 name=layer_name)(x)
        start, stop = offsets[index], offsets[index + 1]
        gamma_beta = tf.keras.layers.Lambda(
            lambda m, a=start, b=stop, n=offsets[-1]: tf.concat([m[:, a:b], m[:, n + a:n + b]], -1),
            name=f"{layer_name}_film_params")(modulation)
        x = FeatureModulation(name=f"{layer_name}_film")([x, gamma_beta])
        return tf.keras.layers.LeakyReLU(0.2, name=f"{layer_name}_activation")(x)

    last = tf.keras.layers.concatenate([source, target], name=f"{name}_unet_input_concat")
    skips = []
    for level, features in enumerate(enc_nf):
        last = conv_block(last, features, f"{name}_unet_enc_conv_{level}")
        skips.append(last)
        last = getattr(tf.keras.layers, f"MaxPooling{ndims}D")(2, name=f"{name}_unet_enc_pooling_{level}")(last)
    for level, features in enumerate(dec_nf[:len(enc_nf)]):
        real_level = len(enc_nf) - level - 1
        last = conv_block(last, features, f"{name}_unet_dec_conv_{real_level}")
        upsampled = getattr(tf.keras.layers, f"UpSampling{ndims}D")(
            2, name=f"{name}_unet_dec_upsample_{real_level}")(last)
        last = tf.keras.layers.concatenate([upsampled, skips.pop()],
                                           name=f"{name}_unet_dec_upsample_{real_level}_concat")
    for index, features in enumerate(dec_nf[len(enc_nf):]):
        last = conv_block(last, features, f"{name}_unet_dec_final_conv_{index}")

    flow = Conv(ndims, kernel_size=3, padding="same", name=f"{name}_flow",
                kernel_initializer=tf.keras.initializers.RandomNormal(mean=0.0, stddev=1e-5))(last)
    pos_flow = flow
    if int_steps > 0:
        pos_flow = vxm.layers.VecInt(method="ss", int_steps=int_steps, name=f"{name}_flow_int")(flow)
    moved = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij",
                                          name=f"{name}_transformer")([source, pos_flow])
    model = tf.keras.Model([source, target, lam], [moved, flow], name=name)
    model.references = ne.modelio.LoadableModel.ReferenceContainer()
    model.references.pos_flow = pos_flow
    model.references.hyp_input = lam
    return model
