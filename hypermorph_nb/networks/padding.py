"""Any image size: pad inside the model to what the U-Net can pool, crop the outputs back.

The U-Net halves the image once per encoder level, so its input sides must be
multiples of ``2 ** levels`` (16 for voxelmorph's default four levels). For
any other shape the model built by :func:`hypermorph_nb.build_vxm` /
:func:`hypermorph_nb.build_hypermorph` is a thin wrapper around a network of
the next valid shape (:func:`wrap_padded`):

1. moving and fixed images are zero-padded, about half of the padding before
   and half after each side (the content stays centred);
2. the inner network predicts its fields at the padded shape (a diffeomorphic
   model integrates there too);
3. the fields are cropped back to the user's shape: a displacement is a
   difference of positions, so cropping changes no vector;
4. the moved image is the *unpadded* moving image warped by the cropped field,
   with the inner network's own spatial transformer settings, so
   ``moved == warp(moving, flow)`` exactly, as for a model of a valid shape.

The wrapper has no weights of its own: its weights are those of the inner
network, which are those of a model built directly at the padded shape with the
same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import math

import tensorflow as tf

#: Smallest image side accepted (a side of 1-7 is more likely a channel or slice axis).
MIN_SIDE = 8


def pooling_multiple(nb_features: Sequence[Sequence[int]] | None) -> int:
    """The multiple every side must be for the U-Net (``2 ** encoder levels``).

    Examples
    --------
    >>> pooling_multiple(None), pooling_multiple([[8, 8, 8], [8, 8, 8, 8, 8]])
    (16, 8)
    """
    levels = 4 if nb_features is None else len(nb_features[0])
    return 2 ** levels


def padded_shape(inshape: Sequence[int], multiple: int) -> tuple[int, ...]:
    """Each side rounded up to a multiple of ``multiple``.

    Examples
    --------
    >>> padded_shape((50, 60), 16), padded_shape((40, 44, 36), 16), padded_shape((64, 64), 16)
    ((64, 64), (48, 48, 48), (64, 64))
    """
    return tuple(int(math.ceil(side / multiple) * multiple) for side in inshape)


def pad_widths(inshape: Sequence[int], padded: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """``((before, after), ...)`` per axis; the odd voxel, if any, goes after.

    Examples
    --------
    >>> pad_widths((50, 60), (64, 64))
    ((7, 7), (2, 2))
    >>> pad_widths((45,), (48,))
    ((1, 2),)
    """
    return tuple(((p - s) // 2, p - s - (p - s) // 2) for s, p in zip(inshape, padded))


def wrap_padded(core: tf.keras.Model, inshape: tuple[int, ...]) -> tf.keras.Model:
    """A model of shape ``inshape`` running ``core`` (built at a padded shape) inside.

    Parameters
    ----------
    core : tf.keras.Model
        A voxelmorph ``VxmDense`` (with or without hypernetwork) built for a
        shape of which ``inshape`` is a part: inputs ``[moving, fixed, *extra]``
        and outputs ``[moved, field]``, with ``core.references.pos_flow``.
    inshape : tuple of int
        The user's spatial shape.

    Returns
    -------
    tf.keras.Model
        Inputs ``[moving, fixed, *extra]`` at ``inshape``, outputs
        ``[moved, field]`` at ``inshape``, and ``references.pos_flow`` (the
        cropped displacement field) and ``references.core``.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.build_vxm((20, 30), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 20, 30, 1), (None, 20, 30, 2)]
    """
    inshape = tuple(int(side) for side in inshape)
    ndims = len(inshape)
    widths = pad_widths(inshape, tuple(core.inputs[0].shape[1:-1]))
    pad = getattr(tf.keras.layers, f"ZeroPadding{ndims}D")
    crop = getattr(tf.keras.layers, f"Cropping{ndims}D")
    return wrap_inner(core, inshape, suffix="padded",
                      images_in=lambda image, name: pad(widths, name=f"pad_{name}")(image),
                      fields_out=lambda field, name: crop(widths, name=f"crop_{name}")(field))


def wrap_inner(core: tf.keras.Model, inshape: Sequence[int], *,
               images_in: Callable[[tf.Tensor, str], tf.Tensor],
               fields_out: Callable[[tf.Tensor, str], tf.Tensor], suffix: str) -> tf.keras.Model:
    """A model at ``inshape`` around ``core``: images mapped in, fields mapped back out.

    The one wrapper of :func:`wrap_padded` and
    :func:`hypermorph_nb.networks.resolution.wrap_downsampled`: inputs ``[moving, fixed,
    *extra]`` at ``inshape``; ``images_in(image, input_name)`` makes each image the core's
    input; the core's fields (the one the loss regularises and the displacement, which differ
    when diffeomorphic) go through ``fields_out(field, 'field' or 'flow')`` back to
    ``inshape``; the moved image is the moving image at ``inshape`` warped by the displacement
    with the core's own spatial transformer settings. The wrapper adds no weights; the core's
    fields model is named ``<core>_<suffix>`` (saved weights refer to it).
    """
    names = core.input_names
    moving = tf.keras.Input((*inshape, 1), name=names[0])
    fixed = tf.keras.Input((*inshape, 1), name=names[1])
    extra = [tf.keras.Input(tensor.shape[1:], name=name) for tensor, name in zip(core.inputs[2:], names[2:])]

    same = core.outputs[1] is core.references.pos_flow
    fields = tf.keras.Model(core.inputs, core.outputs[1:2] + ([] if same else [core.references.pos_flow]),
                            name=f"{core.name}_{suffix}")
    outputs = tf.nest.flatten(fields([images_in(moving, names[0]), images_in(fixed, names[1]), *extra]))
    field = fields_out(outputs[0], "field")
    pos_flow = field if same else fields_out(outputs[1], "flow")

    transformer = core.outputs[0]._keras_history.layer  # the inner network's SpatialTransformer
    moved = type(transformer).from_config(transformer.get_config())([moving, pos_flow])
    model = tf.keras.Model([moving, fixed, *extra], [moved, field], name=core.name)
    model.references = type(core.references)()  # neurite's ReferenceContainer
    model.references.pos_flow = pos_flow
    model.references.core = core
    return model
