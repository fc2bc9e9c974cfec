"""The embedded default data: synthetic head-like 2D images or 3D volumes with label maps.

In the spirit of SynthMorph: a random smooth label map (a "head" with a
cortex-like rim and blob-shaped inner structures) is drawn once per seed; each
subject is that map under its own random smooth deformation, rendered with
per-label intensities, a smooth bias field and noise. Pairs of subjects can
be registered and scored with Dice. :func:`synthetic_pairs` additionally
returns pairs related by a *known* deformation, so the error against the true
field can be measured. Everything is deterministic given ``seed`` and needs
no download. A 2-element shape gives 2D images, a 3-element shape 3D volumes
(keep them small for quick runs: 32³ takes well under a second per subject).

Geometry: synthetic data lives on a 1 mm grid whose voxel indices are world
coordinates, so every image's affine is the identity (``Dataset.affine`` is
``np.eye(4)``); displacements are in voxels, which are also mm.
"""

from __future__ import annotations

from collections.abc import Sequence

import dataclasses

import numpy as np
from scipy import ndimage

from .dataset import Dataset
from ..checks.arrays import check_count

DEFAULT_SHAPE = (64, 64)


def synthetic(n: int, shape: Sequence[int] = DEFAULT_SHAPE, *, seed: int = 0, n_labels: int = 8,
              max_displacement: float | None = None, noise: float = 0.02) -> Dataset:
    """Generate ``n`` synthetic subjects with label maps.

    Parameters
    ----------
    n : int
        Number of subjects.
    shape : tuple of int
        Spatial image shape: ``(H, W)`` for 2D images, ``(D, H, W)`` for 3D
        volumes; each side >= 16.
    seed : int
        Seed; the same seed gives the same data.
    n_labels : int
        Number of labels including background 0 (at least 3).
    max_displacement : float, optional
        Largest per-subject deformation in pixels; default 6% of the
        smaller side.
    noise : float
        Standard deviation of the additive Gaussian noise.

    Returns
    -------
    Dataset
        ``images`` (n, *shape, 1) float32 in [0, 1], ``labels`` (n, *shape)
        int32 and identity ``affines`` (1 mm voxels).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (64, 64), seed=0)
    >>> data.images.shape, data.labels.shape, data.images.dtype
    ((4, 64, 64, 1), (4, 64, 64), dtype('float32'))
    >>> bool((data.images >= 0).all() and (data.images <= 1).all())
    True
    >>> volumes = synthetic(2, (16, 20, 16), seed=0)
    >>> volumes.images.shape, volumes.ndim, volumes.voxel_sizes[0].tolist()
    ((2, 16, 20, 16, 1), 3, [1.0, 1.0, 1.0])
    """
    n, shape, rng, max_displacement = _check_args(n, shape, seed, n_labels, max_displacement, noise)
    template = _template_labels(shape, n_labels, rng)
    intensities = _label_intensities(n_labels, rng)
    images = np.empty((n, *shape, 1), np.float32)
    labels = np.empty((n, *shape), np.int32)
    for index in range(n):
        flow = smooth_field(shape, max_displacement, rng)
        labels[index] = warp(template, flow, order=0)
        images[index, ..., 0] = _render(labels[index], intensities, noise, rng)
    return Dataset(
        images=images,
        labels=labels,
        label_names={0: "background", 1: "rim", **{v: f"structure-{v}" for v in range(2, n_labels)}},
        names=[f"synthetic-{seed}-{index:04d}" for index in range(n)],
        source=f"synthetic(n={n}, shape={shape}, seed={seed})",
        affines=np.eye(4),
    )


@dataclasses.dataclass
class KnownPairs:
    """Image pairs with the deformation that relates them.

    ``fixed = warp(moving, flow)``: a perfect registration of moving onto
    fixed predicts exactly ``flow`` (voxelmorph's convention: the moved
    image at x samples the moving image at x + flow(x)).

    Attributes
    ----------
    moving, fixed : np.ndarray
        ``(N, *shape, 1)`` float32.
    moving_labels, fixed_labels : np.ndarray
        ``(N, *shape)`` int32.
    flow : np.ndarray
        ``(N, *shape, ndim)`` float32, in voxels (= mm: the affine is the identity).
    """

    moving: np.ndarray
    fixed: np.ndarray
    moving_labels: np.ndarray
    fixed_labels: np.ndarray
    flow: np.ndarray

    def __len__(self) -> int:
        return len(self.moving)


def synthetic_pairs(n: int, shape: Sequence[int] = DEFAULT_SHAPE, *, seed: int = 0, n_labels: int = 8,
                    max_displacement: float | None = None, noise: float = 0.02) -> KnownPairs:
    """Generate ``n`` pairs related by a known smooth deformation.

    Parameters are as in :func:`synthetic`; ``max_displacement`` bounds the
    known deformation between the two images of a pair.

    Returns
    -------
    KnownPairs

    Examples
    --------
    >>> pairs = synthetic_pairs(2, (32, 32), seed=1)
    >>> pairs.flow.shape
    (2, 32, 32, 2)
    >>> synthetic_pairs(1, (16, 16, 16), seed=1).flow.shape
    (1, 16, 16, 16, 3)
    """
    n, shape, rng, max_displacement = _check_args(n, shape, seed, n_labels, max_displacement, noise)
    template = _template_labels(shape, n_labels, rng)
    intensities = _label_intensities(n_labels, rng)
    moving_labels = np.empty((n, *shape), np.int32)
    fixed_labels = np.empty((n, *shape), np.int32)
    moving = np.empty((n, *shape, 1), np.float32)
    fixed = np.empty((n, *shape, 1), np.float32)
    flows = np.empty((n, *shape, len(shape)), np.float32)
    for index in range(n):
        moving_labels[index] = warp(template, smooth_field(shape, max_displacement, rng), order=0)
        flows[index] = smooth_field(shape, max_displacement, rng)
        fixed_labels[index] = warp(moving_labels[index], flows[index], order=0)
        clean = _render(moving_labels[index], intensities, 0.0, rng)
        moving[index, ..., 0] = np.clip(clean + noise * rng.standard_normal(shape), 0, 1)
        fixed[index, ..., 0] = np.clip(warp(clean, flows[index], order=1)
                                       + noise * rng.standard_normal(shape), 0, 1)
    return KnownPairs(moving, fixed, moving_labels, fixed_labels, flows)


def smooth_field(shape: Sequence[int], max_displacement: float, rng: np.random.Generator) -> np.ndarray:
    """A random smooth displacement field whose largest vector is ``max_displacement``.

    Parameters
    ----------
    shape : tuple of int
    max_displacement : float
        Pixels.
    rng : np.random.Generator

    Returns
    -------
    np.ndarray
        ``(*shape, len(shape))`` float32.
    """
    sigma = min(shape) / 8
    field = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
                      for _ in shape], axis=-1)
    norm = np.sqrt((field ** 2).sum(-1)).max()
    return (field * (max_displacement / max(norm, 1e-12))).astype(np.float32)


def warp(volume: np.ndarray, flow: np.ndarray, *, order: int) -> np.ndarray:
    """Sample ``volume`` at ``x + flow(x)`` (voxelmorph's warp convention).

    Parameters
    ----------
    volume : np.ndarray
        ``shape`` (no channel axis).
    flow : np.ndarray
        ``(*shape, ndims)`` displacement in pixels.
    order : int
        0 for label maps (nearest), 1 for images (linear).
    """
    grid = np.meshgrid(*[np.arange(s) for s in volume.shape], indexing="ij")
    coords = [g + flow[..., axis] for axis, g in enumerate(grid)]
    return ndimage.map_coordinates(volume, coords, order=order, mode="constant", cval=0)


def _check_args(n, shape, seed, n_labels, max_displacement, noise):
    check_count(n, "n")
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 16:
        raise ValueError(f"shape must be 2D or 3D with sides >= 16, e.g. (64, 64) or "
                         f"(32, 32, 32); got {shape}")
    if int(n_labels) < 3:
        raise ValueError(f"n_labels must be >= 3 (background, rim and a structure), got {n_labels!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if max_displacement is None:
        max_displacement = 0.06 * min(shape)
    if max_displacement < 0:
        raise ValueError(f"max_displacement must be >= 0, got {max_displacement!r}")
    return int(n), shape, np.random.default_rng(seed), float(max_displacement)


def _template_labels(shape, n_labels, rng):
    """Head-like label map: background 0, a rim 1, blob structures 2.. inside."""
    centre = (np.array(shape) - 1) / 2
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    axes = np.array([0.42, 0.40, 0.38][: len(shape)])
    radius = np.sqrt((((grid - centre) / (np.array(shape) * axes)) ** 2).sum(-1))
    labels = np.zeros(shape, np.int32)
    inner = radius < 0.84
    labels[radius < 1.0] = 1
    fields = [ndimage.gaussian_filter(rng.standard_normal(shape), min(shape) / 12)
              for _ in range(n_labels - 2)]
    labels[inner] = 2 + np.argmax(np.stack(fields), axis=0)[inner]
    return labels


def _label_intensities(n_labels, rng):
    """Distinct intensities per label; background stays 0."""
    levels = np.linspace(0.2, 0.95, n_labels - 1)
    return np.concatenate([[0.0], rng.permutation(levels)])


def _render(labels, intensities, noise, rng):
    """Intensity image of a label map: per-label means, a bias field, blur and noise."""
    image = intensities[labels] * (1 + 0.03 * rng.standard_normal())
    bias = ndimage.gaussian_filter(rng.standard_normal(labels.shape), min(labels.shape) / 4)
    bias = np.exp(0.1 * bias / max(bias.std(), 1e-12))
    image = ndimage.gaussian_filter(image * bias, 0.6)
    if noise:
        image = image + noise * rng.standard_normal(labels.shape)
    return np.clip(image, 0, 1).astype(np.float32)
