"""Voxel grids: compare the grids of two images by their affines, resample one onto another.

An affine is the 4×4 voxel → world (mm, RAS) matrix of a NIfTI file. Two images
lie on the same grid when their shapes and affines agree; a registration network
compares voxels, so moving and fixed must share a grid before they are registered
(:func:`match_grid` refuses, or resamples the moving image when asked).
2D images use the in-plane part of their 4×4 affine (the NIfTI convention for
a single slice).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from .affines import AFFINE_ATOL, as_affines, same_grid, voxel_sizes


def check_affine(affine: ArrayLike, name: str) -> np.ndarray:
    """``affine`` as a finite, invertible (4, 4) float64 array, or a clear error.

    The checks of :func:`hypermorph_nb.checks.affines.as_affines` (shape, NaN/inf,
    last row), plus a refusal of singular matrices, which cannot be inverted to
    resample.

    Examples
    --------
    >>> check_affine(np.eye(4), "fixed").shape
    (4, 4)
    >>> check_affine(np.diag([1.0, 0.0, 1.0, 1.0]), "fixed")
    Traceback (most recent call last):
    ...
    ValueError: fixed: the affine is singular (a voxel size of 0?); fix the file's header or pass the right affine
    """
    array: np.ndarray = as_affines(affine, 1, name=name)[0]
    if abs(np.linalg.det(array[:3, :3])) < 1e-12:
        raise ValueError(f"{name}: the affine is singular (a voxel size of 0?); "
                         "fix the file's header or pass the right affine")
    return array


def input_affine(file_affine: np.ndarray | None, affine: ArrayLike | None, *, name: str,
                 keyword: str) -> np.ndarray | None:
    """The affine of one input: its file's (as read), or the one passed for an array (checked); never both.

    Parameters
    ----------
    file_affine : np.ndarray or None
        The affine read from the input's file (None for an array).
    affine : array_like or None
        The affine passed as ``keyword=`` beside the input.
    name : str
        What the input is (a file name or role), quoted in errors.
    keyword : str
        The argument ``affine`` came in (``'moving_affine'``, ...), quoted in errors.

    Returns
    -------
    np.ndarray or None
        ``file_affine``, or ``affine`` as :func:`check_affine` returns it, or None
        when neither is known.

    Examples
    --------
    >>> input_affine(None, np.diag([2.0, 2.0, 2.0, 1.0]), name="moving", keyword="moving_affine")[0, 0]
    np.float64(2.0)
    >>> input_affine(np.eye(4), np.eye(4), name="a.nii.gz", keyword="moving_affine")
    Traceback (most recent call last):
    ...
    ValueError: a.nii.gz carries its own affine; pass moving_affine= only with an array
    """
    if affine is None:
        return file_affine
    if file_affine is not None:
        raise ValueError(f"{name} carries its own affine; pass {keyword}= only with an array")
    return check_affine(affine, name)


def match_grid(moving: np.ndarray, moving_affine: ArrayLike | None, fixed_shape: tuple[int, ...],
               fixed_affine: ArrayLike | None, *, resample: bool, order: int = 1,
               names: tuple[str, ...] = ("moving", "fixed")) -> tuple[np.ndarray, bool]:
    """Return ``moving`` on the fixed grid: unchanged, resampled, or refused.

    Parameters
    ----------
    moving : np.ndarray
        Spatial array (2D or 3D, no channel axis).
    moving_affine, fixed_affine : array_like or None
        Voxel → world matrices; when either is None the grids cannot be
        compared and ``moving`` must already have ``fixed_shape``.
    fixed_shape : tuple of int
    resample : bool
        Resample a moving image on another grid instead of refusing it.
    order : int
        Interpolation order: 1 (linear) for images, 0 (nearest) for label maps.
    names : tuple of str
        What moving and fixed are (files or roles), quoted in errors.

    Returns
    -------
    array : np.ndarray
        ``moving`` on the fixed grid (the same object when nothing was done).
    resampled : bool
        Whether it was resampled.

    Examples
    --------
    >>> moving = np.arange(16.0).reshape(4, 4)
    >>> half = np.diag([2.0, 2.0, 1.0, 1.0])          # voxels twice as large
    >>> array, resampled = match_grid(moving, half, (8, 8), np.eye(4), resample=True)
    >>> array.shape, resampled, float(array[2, 2])    # fixed voxel (2, 2) is moving voxel (1, 1)
    ((8, 8), True, 5.0)
    """
    moving_name, fixed_name = names
    fixed_shape = tuple(fixed_shape)
    if moving_affine is None or fixed_affine is None:
        if moving.shape != fixed_shape:
            raise ValueError(
                f"{moving_name} has shape {moving.shape} but {fixed_name} has {fixed_shape}; "
                "give both images on one grid, or give both affines (NIfTI files carry them) "
                "and resample=True to resample the moving image onto the fixed grid")
        return moving, False
    moving_affine = check_affine(moving_affine, moving_name)
    fixed_affine = check_affine(fixed_affine, fixed_name)
    if moving.shape == fixed_shape and same_grid(*_spatial_columns(len(fixed_shape), moving_affine,
                                                                   fixed_affine)):
        return moving, False
    if not resample:
        raise ValueError(
            f"{moving_name} and {fixed_name} lie on different voxel grids "
            f"({describe_difference(moving.shape, moving_affine, fixed_shape, fixed_affine)}); "
            "a registration network compares voxels, so resample the moving image onto the fixed "
            "grid first: pass resample=True (--resample on the command line), or resample it "
            "yourself (e.g. with nibabel.processing.resample_from_to)")
    return resample_onto(moving, moving_affine, fixed_shape, fixed_affine, order=order), True


def describe_difference(moving_shape: Sequence[int], moving_affine: ArrayLike, fixed_shape: Sequence[int],
                        fixed_affine: ArrayLike) -> str:
    """A short text: which of shape, voxel size and position/orientation differ."""
    parts = []
    if tuple(moving_shape) != tuple(fixed_shape):
        parts.append(f"shapes {tuple(moving_shape)} and {tuple(fixed_shape)}")
    ndim = len(fixed_shape)
    sizes = voxel_sizes(moving_affine, ndim), voxel_sizes(fixed_affine, ndim)
    if not np.allclose(*sizes, atol=AFFINE_ATOL, rtol=0):
        parts.append("voxel sizes " + " and ".join("x".join(f"{v:g}" for v in s) + " mm"
                                                   for s in sizes))
    elif not same_grid(*_spatial_columns(ndim, moving_affine, fixed_affine)):
        parts.append("same voxel size, but the affines differ in position or orientation")
    return "; ".join(parts)


def resample_onto(moving: np.ndarray, moving_affine: ArrayLike, fixed_shape: Sequence[int],
                  fixed_affine: ArrayLike, *, order: int = 1) -> np.ndarray:
    """Sample ``moving`` at the world positions of the fixed grid's voxels (0 outside)."""
    ndims = len(fixed_shape)
    # fixed voxel -> moving voxel
    to_moving = np.linalg.inv(np.asarray(moving_affine, dtype=np.float64)) @ np.asarray(fixed_affine)
    matrix, offset = to_moving[:ndims, :ndims], to_moving[:ndims, 3]
    values = moving.astype(np.float32) if order else moving
    out = ndimage.affine_transform(values, matrix, offset=offset, output_shape=tuple(fixed_shape),
                                   order=order, mode="constant", cval=0.0)
    resampled: np.ndarray = out.astype(moving.dtype) if not order else out
    return resampled


def _spatial_columns(ndim: int, *affines: ArrayLike) -> list[np.ndarray]:
    """The columns of each affine that place a grid of ``ndim`` axes: its axes and its origin.

    A 2D image's third column (slice thickness and normal) does not move any of its voxels.
    """
    return [np.asarray(affine)[:, [*range(ndim), 3]] for affine in affines]
