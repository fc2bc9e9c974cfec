"""A U-Net at a coarser grid: average the images down, predict the field there, upsample it.

``build_vxm(..., downsample=f)`` / ``build_hypermorph(..., downsample=f)`` wrap a network
built at ``ceil(inshape / f)`` (:func:`wrap_downsampled`):

1. moving and fixed images are zero-padded after each side to a multiple of ``f``
   and averaged over ``f``-voxel blocks (a coarse voxel is the mean of the fine voxels
   it covers, its centre at fine coordinate ``f·c + (f − 1)/2``);
2. the inner network (itself padded for its U-Net, :mod:`.padding`) predicts its
   fields on the coarse grid; a diffeomorphic one integrates there;
3. each field is upsampled to the fine grid by linear interpolation between the
   coarse voxel centres (:func:`upsample_field`, separable, exact) and multiplied by
   ``f`` (a displacement of one coarse voxel is ``f`` fine voxels), then cropped;
4. the moved image is the full-resolution moving image warped by that field, with
   the inner network's own spatial transformer settings, so
   ``moved == warp(moving, flow)`` as for any model.

The U-Net then costs about ``f ** ndim`` times less, as voxelmorph's ``int_downsize``
integration at half resolution; the field is as smooth as its coarse grid allows. The
wrapper has no weights: they are those of a model built at the coarse shape
(:func:`coarse_shape`, :func:`hypermorph_nb.networks.models.coarse_network`), which is how a
model trained on block-averaged images (:func:`block_mean`) becomes a full-resolution one, and
how :func:`hypermorph_nb.train` trains such a model (at the coarse grid).

Examples
--------
>>> import hypermorph_nb as hnb
>>> model = hnb.build_vxm((20, 24), nb_features=[[8, 8, 8], [8, 8, 8, 8, 8]], downsample=2, seed=0)
>>> [tuple(t.shape) for t in model.outputs], tuple(model.references.core.inputs[0].shape)
([(None, 20, 24, 1), (None, 20, 24, 2)], (None, 10, 12, 1))
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .padding import wrap_inner


def coarse_shape(inshape: Sequence[int], factor: int) -> tuple[int, ...]:
    """The grid the inner network of a ``downsample=factor`` model works on.

    Examples
    --------
    >>> coarse_shape((80, 96, 80), 2), coarse_shape((21, 30), 2)
    ((40, 48, 40), (11, 15))
    """
    return tuple(int(math.ceil(side / factor)) for side in inshape)


def blocks_of(array: np.ndarray, factor: int, ndim: int) -> np.ndarray:
    """``(N, *spatial, *rest)`` → ``(N, *coarse, factor ** ndim, *rest)``: each block's voxels on one axis.

    Sides that are not multiples of ``factor`` are zero-padded after, as in the model.

    Examples
    --------
    >>> blocks_of(np.arange(16).reshape(1, 4, 4), 2, 2)[0, 0, 1].tolist()
    [2, 3, 6, 7]
    """
    array = np.asarray(array)
    spatial, rest = array.shape[1:1 + ndim], array.shape[1 + ndim:]
    coarse = coarse_shape(spatial, factor)
    array = np.pad(array, [(0, 0)] + [(0, c * factor - s) for s, c in zip(spatial, coarse)] + [(0, 0)] * len(rest))
    split = [array.shape[0]]
    for side in coarse:
        split += [side, factor]
    order = [0, *range(1, 2 * ndim, 2), *range(2, 2 * ndim + 1, 2), *range(2 * ndim + 1, 2 * ndim + 1 + len(rest))]
    return array.reshape(*split, *rest).transpose(order).reshape(array.shape[0], *coarse, factor ** ndim, *rest)


def block_mean(images: np.ndarray, factor: int) -> np.ndarray:
    """Average ``(N, *spatial, C)`` images over ``factor``-voxel blocks, as the model does.

    Sides that are not multiples of ``factor`` are zero-padded after, as in the model.

    Examples
    --------
    >>> block_mean(np.arange(16.0).reshape(1, 4, 4, 1), 2)[0, ..., 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    ndim = np.ndim(images) - 2
    return blocks_of(images, factor, ndim).mean(axis=1 + ndim)


def block_mode(labels: np.ndarray, factor: int) -> np.ndarray:
    """The most frequent label of each ``factor``-voxel block of ``(N, *spatial)`` label maps.

    Ties go to the first of the tied labels in the block's C order; sides are zero-padded
    after, as in :func:`block_mean`.

    Examples
    --------
    >>> block_mode(np.array([[[1, 1, 2, 3], [1, 5, 2, 2]]]), 2)
    array([[[1, 2]]])
    """
    blocks = blocks_of(labels, factor, np.ndim(labels) - 1)
    best = blocks[..., 0]
    best_count = np.zeros(best.shape, np.int32)
    for k in range(blocks.shape[-1]):
        count = (blocks == blocks[..., k:k + 1]).sum(-1, dtype=np.int32)
        better = count > best_count
        best = np.where(better, blocks[..., k], best)
        best_count = np.maximum(count, best_count)
    return best


def interpolation_weights(coarse: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and upper weight of each fine voxel along one axis.

    Fine voxel ``p`` sits at coarse coordinate ``(p − (factor − 1)/2) / factor``,
    clamped to the first and last coarse centres.

    Examples
    --------
    >>> low, high, weight = interpolation_weights(2, 2)
    >>> low.tolist(), high.tolist(), weight.tolist()
    ([0, 0, 0, 0], [1, 1, 1, 1], [0.0, 0.25, 0.75, 1.0])
    """
    position = np.clip((np.arange(coarse * factor) - (factor - 1) / 2) / factor, 0, coarse - 1)
    low = np.minimum(np.floor(position).astype(np.int32), max(coarse - 2, 0))
    high = np.minimum(low + 1, coarse - 1)
    return low, high, (position - low).astype(np.float32)


def upsample_field(field: tf.Tensor, factor: int) -> tf.Tensor:
    """A ``(batch, *coarse, ndim)`` displacement in coarse voxels → fine grid, fine voxels.

    Separable linear interpolation between coarse voxel centres, then ``× factor``.

    Examples
    --------
    >>> coarse = tf.ones((1, 2, 2, 2))
    >>> upsample_field(coarse, 2).numpy()[0, :, :, 0].tolist()[0]
    [2.0, 2.0, 2.0, 2.0]
    """
    ndim = len(field.shape) - 2
    for axis in range(1, ndim + 1):
        low, high, weight = interpolation_weights(int(field.shape[axis]), factor)
        shape = [1] * (ndim + 2)
        shape[axis] = len(weight)
        weight = tf.constant(weight.reshape(shape))
        field = (tf.gather(field, low, axis=axis) * (1.0 - weight)
                 + tf.gather(field, high, axis=axis) * weight)
    return field * float(factor)


class UpsampleField(tf.keras.layers.Layer):
    """Keras layer of :func:`upsample_field` followed by a crop to ``shape``."""

    def __init__(self, factor: int, shape: Sequence[int], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.shape = tuple(int(side) for side in shape)

    def call(self, field: tf.Tensor) -> tf.Tensor:
        fine = upsample_field(field, self.factor)
        return fine[tuple([slice(None)] + [slice(0, side) for side in self.shape])]

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "shape": self.shape}


def wrap_downsampled(core: tf.keras.Model, inshape: Sequence[int], factor: int) -> tf.keras.Model:
    """A model of shape ``inshape`` running ``core`` (built at the coarse shape) inside.

    Parameters
    ----------
    core : tf.keras.Model
        A network of this package built at :func:`coarse_shape` ``(inshape, factor)``:
        inputs ``[moving, fixed, *extra]``, outputs ``[moved, field]`` and
        ``references.pos_flow``.
    inshape : tuple of int
        The images' spatial shape.
    factor : int
        Block size of the averaging (2: half resolution).

    Returns
    -------
    tf.keras.Model
        Inputs ``[moving, fixed, *extra]`` and outputs ``[moved, field]`` at ``inshape``,
        ``references.pos_flow`` (the upsampled displacement) and ``references.core``.
    """
    inshape = tuple(int(side) for side in inshape)
    ndims = len(inshape)
    coarse = tuple(int(side) for side in core.inputs[0].shape[1:-1])
    widths = tuple((0, c * factor - s) for s, c in zip(inshape, coarse))
    pad = getattr(tf.keras.layers, f"ZeroPadding{ndims}D")
    pool = getattr(tf.keras.layers, f"AveragePooling{ndims}D")
    return wrap_inner(core, inshape, suffix="coarse",
                      images_in=lambda image, name: pool(factor, name=f"average_{name}")(
                          pad(widths, name=f"pad_{name}")(image)),
                      fields_out=lambda field, name: UpsampleField(factor, inshape, name=f"upsample_{name}")(field))
