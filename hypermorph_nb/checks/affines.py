"""Voxel-to-world affines: checks, voxel sizes, and the affine of a resampled grid.

An affine is a ``(4, 4)`` float64 matrix mapping voxel indices ``(i, j, k, 1)``
to world coordinates in mm ``(x, y, z, 1)``, RAS as in NIfTI. A 2D image uses
the same ``(4, 4)`` matrix as a NIfTI file holding one slice ``(H, W, 1)``: its
first two columns give the in-plane axes.

Voxel sizes of the first ``ndim`` axes must agree within :data:`ANISOTROPY_TOLERANCE`
(registration smooths the field per voxel, so a 1×1×3 mm grid would be
regularised three times harder along one axis). Loaders refuse anisotropic
voxels unless called with ``allow_anisotropic=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from numpy.typing import ArrayLike
import nibabel
import numpy as np

#: Largest relative difference between voxel sizes still called isotropic (1%).
ANISOTROPY_TOLERANCE = 0.01
#: How far (in mm) two affines may differ and still be the same grid.
AFFINE_ATOL = 1e-3
#: How far apart (in voxels) the centres of two grids of one shape may lie and still hold
#: the same head in the same place (:func:`grid_offset`); sub-voxel.
POSITION_TOLERANCE = 0.5
#: How far (in degrees) the axes of two grids of one shape may be rotated against each other
#: and still hold the same head in the same place (:func:`grid_offset`).
ROTATION_TOLERANCE = 0.5


def as_affines(affines: ArrayLike, n: int, *, name: str = "affines") -> np.ndarray:
    """``affines`` as ``(n, 4, 4)`` float64: one ``(4, 4)`` is repeated for every item.

    Examples
    --------
    >>> as_affines(np.eye(4), 3).shape
    (3, 4, 4)
    """
    array = np.asarray(affines, dtype=np.float64)
    if array.shape == (4, 4):
        array = np.repeat(array[None], n, axis=0)
    if array.shape != (n, 4, 4):
        raise ValueError(f"{name}: expected one (4, 4) affine or {n} of them ({n}, 4, 4), "
                         f"got shape {array.shape}; pass one 4x4 matrix for all images or one per image")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: affines contain NaN or infinite values; check the file headers")
    wrong = ~np.isclose(array[:, 3], [0, 0, 0, 1]).all(axis=1)
    if wrong.any():
        raise ValueError(f"{name}: the last row of an affine must be (0, 0, 0, 1); got "
                         f"{array[np.flatnonzero(wrong)[0], 3].tolist()}; fix the file's header or "
                         "pass a valid 4x4 voxel-to-world affine")
    return array


def voxel_sizes(affines: ArrayLike, ndim: int) -> np.ndarray:
    """Voxel size in mm of the first ``ndim`` axes: the lengths of the affine's columns.

    Parameters
    ----------
    affines : np.ndarray
        ``(4, 4)`` or ``(N, 4, 4)``.
    ndim : int
        2 or 3.

    Returns
    -------
    np.ndarray
        ``(ndim,)`` or ``(N, ndim)``.

    Examples
    --------
    >>> voxel_sizes(np.diag([2.0, 2.0, 2.0, 1.0]), 3).tolist()
    [2.0, 2.0, 2.0]
    """
    array = np.asarray(affines, dtype=np.float64)
    sizes: np.ndarray = np.sqrt((array[..., :3, :ndim] ** 2).sum(axis=-2))
    return sizes


def check_isotropic(affine: ArrayLike | None, ndim: int, *, name: str,
                    allow_anisotropic: bool = False) -> None:
    """Refuse an affine whose first ``ndim`` voxel sizes differ by more than 1%.

    Examples
    --------
    >>> check_isotropic(np.diag([1.0, 1.0, 3.0, 1.0]), 2, name="slice.nii.gz")   # in-plane only
    >>> check_isotropic(np.diag([1.0, 1.0, 3.0, 1.0]), 3, name="scan.nii.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: scan.nii.gz: voxels of 1 x 1 x 3 mm are anisotropic; ...
    """
    if allow_anisotropic or affine is None:
        return
    sizes = voxel_sizes(affine, ndim)
    if sizes.min() <= 0:
        raise ValueError(f"{name}: the affine has a zero-length voxel axis ({_mm(sizes)} mm); "
                         "the header is broken: rewrite it with a valid affine")
    if sizes.max() / sizes.min() - 1 > ANISOTROPY_TOLERANCE:
        raise ValueError(
            f"{name}: voxels of {_mm(sizes)} mm are anisotropic; registration regularises "
            "per voxel, so resample to isotropic voxels first (e.g. nibabel.processing.conform("
            f"img, out_shape, voxel_size=({', '.join(['1'] * ndim)})), or FreeSurfer's "
            "'mri_convert --conform' / 'mri_convert -vs 1 1 1'), or pass "
            "allow_anisotropic=True to load them as they are")


def same_grid(first: ArrayLike, second: ArrayLike) -> bool:
    """True when two affines describe the same grid (within :data:`AFFINE_ATOL` mm).

    Examples
    --------
    >>> same_grid(np.eye(4), np.eye(4) + 1e-6)
    True
    """
    return bool(np.allclose(first, second, rtol=0, atol=AFFINE_ATOL))


def grid_offset(first: np.ndarray, second: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float]:
    """The shift of the centres (mm) and the rotation of the axes (degrees) between two grids of one shape.

    Two scans of the same shape whose affines differ in position or rotation
    hold the head in different places: the same voxel index is not the same
    point of the head. The shift is the world distance between the centre
    voxels of the two grids; the rotation is the angle of the rotation that
    turns the first grid's axis directions into the second's (voxel sizes and
    flips left aside: compare :func:`voxel_sizes` and :func:`orientation`).

    Parameters
    ----------
    first, second : np.ndarray
        ``(4, 4)`` voxel → world affines.
    shape : tuple of int
        The grids' spatial shape, 2D or 3D (for a 2D grid the in-plane axes count).

    Returns
    -------
    shift_mm : float
    rotation_degrees : float

    Examples
    --------
    >>> moved = np.diag([2.0, 2.0, 2.0, 1.0])
    >>> moved[:3, 3] = [3.0, 4.0, 0.0]
    >>> grid_offset(np.diag([2.0, 2.0, 2.0, 1.0]), moved, (8, 8, 8))
    (5.0, 0.0)
    >>> turn = np.radians(10)
    >>> tilted = np.eye(4)
    >>> tilted[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
    >>> round(grid_offset(np.eye(4), tilted, (1, 1, 1))[1], 6)
    10.0
    """
    ndim = len(shape)
    centre = np.append((np.asarray(shape, dtype=np.float64) - 1) / 2, [0.0] * (3 - ndim) + [1.0])
    shift = np.asarray(second, dtype=np.float64) @ centre - np.asarray(first, dtype=np.float64) @ centre
    first_axes, second_axes = _directions(first, ndim), _directions(second, ndim)
    rotation = second_axes @ first_axes.T
    cosine = np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)
    return float(np.linalg.norm(shift[:3])), float(np.degrees(np.arccos(cosine)))


def _directions(affine: ArrayLike, ndim: int) -> np.ndarray:
    """The nearest orthonormal frame to the affine's first ``ndim`` axis directions (3×3)."""
    axes = np.asarray(affine, dtype=np.float64)[:3, :ndim]
    axes = axes / np.linalg.norm(axes, axis=0)
    if ndim == 2:
        axes = np.column_stack([axes, np.cross(axes[:, 0], axes[:, 1])])
    left, _, right = np.linalg.svd(axes)
    frame: np.ndarray = left @ right
    return frame


def orientation(affine: ArrayLike, ndim: int) -> str:
    """Axis codes of the first ``ndim`` axes (nibabel's ``aff2axcodes``), e.g. ``'RAS'``, ``'LP'`` in 2D.

    Examples
    --------
    >>> orientation(np.diag([-1.0, -1.0, 1.0, 1.0]), 3)
    'LPS'
    """
    return "".join(str(code) for code in nibabel.aff2axcodes(np.asarray(affine))[:ndim])


def resampled_affine(affines: np.ndarray, old_shape: Sequence[int], new_shape: Sequence[int]) -> np.ndarray:
    """Affines of a grid resampled from ``old_shape`` to ``new_shape`` over the same field of view.

    Matches ``scipy.ndimage.zoom(..., grid_mode=True)``: the outer edges of the
    first and last voxels stay where they were, so the centre of the image keeps
    its world position and voxels grow by ``old_shape / new_shape``.

    Examples
    --------
    >>> resampled_affine(np.eye(4), (64, 64, 64), (32, 32, 32))[:3, 3].tolist()
    [0.5, 0.5, 0.5]
    """
    affines = np.asarray(affines, dtype=np.float64)
    factors = np.asarray(old_shape, dtype=np.float64) / np.asarray(new_shape, dtype=np.float64)
    scale = np.eye(4)
    for axis, factor in enumerate(factors):
        scale[axis, axis] = factor
        scale[axis, 3] = 0.5 * factor - 0.5
    return affines @ scale


def _mm(sizes: Iterable[float]) -> str:
    return " x ".join(f"{size:.3g}" for size in sizes)
