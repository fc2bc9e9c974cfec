"""Training data on a ``downsample=f`` model's coarse grid.

A model built with ``downsample=f`` runs its U-Net on images averaged over ``f``-voxel
blocks (:mod:`hypermorph_nb.networks.resolution`). :func:`coarse_copy` makes the same
averages of a whole :class:`~hypermorph_nb.data.Dataset` once (label maps by the most
frequent label of each block, affines of the coarse grid), so that the network can be
trained at its own grid, where a step costs a fraction of one at full resolution.

Examples
--------
>>> from hypermorph_nb.data import synthetic
>>> volumes = synthetic(2, (16, 20, 18), seed=0)
>>> coarse = coarse_copy(volumes, 2)
>>> coarse.shape, coarse.labels.shape[1:], coarse.names == volumes.names
((8, 10, 9), (8, 10, 9), True)
"""
from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from ..networks.resolution import block_mean, block_mode


def coarse_affine(affine: np.ndarray, factor: int, ndim: int = 3) -> np.ndarray:
    """The voxel-to-world affine of the coarse grid: voxels ``factor`` times larger, centred on their blocks.

    Coarse voxel ``c`` is the mean of fine voxels ``f·c … f·c + f − 1``, so its centre lies at
    fine coordinate ``f·c + (f − 1)/2``; only the first ``ndim`` axes are coarsened.

    Examples
    --------
    >>> coarse_affine(np.diag([2.0, 2.0, 2.0, 1.0]), 2)[:3].tolist()
    [[4.0, 0.0, 0.0, 1.0], [0.0, 4.0, 0.0, 1.0], [0.0, 0.0, 4.0, 1.0]]
    """
    affine = np.asarray(affine, dtype=float)
    step = np.eye(4)
    step[range(ndim), range(ndim)] = factor
    step[:ndim, 3] = (factor - 1) / 2
    return affine @ step


def coarse_copy(data: Dataset, factor: int) -> Dataset:
    """``data`` averaged over ``factor``-voxel blocks, as a ``downsample=factor`` model's U-Net sees it.

    Parameters
    ----------
    data : Dataset
        Images (and label maps, affines) at full resolution.
    factor : int
        The model's ``downsample``.

    Returns
    -------
    Dataset
        Block means of the images, block modes of the label maps, the coarse grid's affines;
        names, label names and source kept. Sides that are not multiples of ``factor`` are
        zero-padded after, as in the model.
    """
    if factor == 1:
        return data
    labels = None if data.labels is None else block_mode(data.labels, factor)
    affines = None if data.affines is None else np.stack([coarse_affine(a, factor, data.ndim) for a in data.affines])
    return Dataset(images=np.clip(block_mean(data.images, factor), 0, 1).astype(np.float32), labels=labels,
                   label_names=data.label_names, names=data.names, source=data.source, affines=affines)
