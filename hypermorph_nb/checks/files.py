"""Files a command reads and the folder it writes: checked from their headers, before any work.

:func:`check_scan_file` reads a NIfTI/MGZ header only (no voxels): the file exists, can be
read, holds one 3D volume and, for a label map or mask, lies on its scan's grid.
:func:`check_out_folder` refuses an output folder that is a file or cannot be written.
:func:`check_scan_arguments` runs every rule of one raw-scan registration
(:func:`hypermorph_nb.register_scans`, ``hypermorph-nb register --raw``) in well under a
second, so that a mistake is refused before TensorFlow loads. Nothing here imports TensorFlow.

Examples
--------
>>> check_out_folder(__file__)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: the output folder ... is a file; give a folder (it is created), e.g. ...
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import nibabel
import numpy as np

from .values import check_lambda, check_refine

#: File endings of the scans a raw registration reads (they carry a voxel-to-world affine).
SCAN_SUFFIXES = (".nii.gz", ".nii", ".mgz")


def check_scan_file(path: str | os.PathLike[str], role: str, *,
                    grid: tuple[tuple[int, ...], np.ndarray] | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    """Check that ``path`` is a readable 3D NIfTI/MGZ file; return its shape and affine (header only).

    Parameters
    ----------
    path : path
        The file.
    role : str
        What it is (``"moving scan"``, ``"fixed mask"``), quoted in the error.
    grid : (shape, affine), optional
        The grid of its scan: a label map or mask must lie on it.

    Returns
    -------
    (tuple of int, np.ndarray)
        The 3D shape and the 4×4 affine from the header.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For a file that is not a NIfTI/MGZ image, cannot be read, is not 3D, or lies on
        another grid than ``grid``; each names the file and the fix.

    Examples
    --------
    >>> check_scan_file("missing.nii.gz", "moving scan")
    Traceback (most recent call last):
    ...
    FileNotFoundError: the moving scan 'missing.nii.gz' does not exist; check the path
    """
    file = pathlib.Path(path)
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "does not exist"
        raise FileNotFoundError(f"the {role} {str(file)!r} {what}; check the path")
    if not file.name.lower().endswith(SCAN_SUFFIXES):
        raise ValueError(f"the {role} {str(file)!r} is not a NIfTI/MGZ file ({', '.join(SCAN_SUFFIXES)}); "
                         "convert it, e.g. with nibabel.save(nibabel.Nifti1Image(array, affine), 'scan.nii.gz')")
    if not os.access(file, os.R_OK):
        raise ValueError(f"the {role} {str(file)!r} cannot be read (permission denied); "
                         f"make it readable, e.g. chmod u+r {file}")
    try:
        image: Any = nibabel.load(file)
        shape = tuple(int(n) for n in image.shape)
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as err:   # nibabel raises several types for a damaged header
        raise ValueError(f"the {role} {str(file)!r} cannot be read as NIfTI/MGZ ({err}); "
                         "check that the file was written completely") from None
    spatial = shape[:3] if len(shape) >= 3 and all(n == 1 for n in shape[3:]) else None
    if spatial is None:
        raise ValueError(f"the {role} {str(file)!r} has shape {shape}, but a 3D volume is needed; "
                         "give one volume (e.g. image.slicer[..., 0] of a 4D series, or the 3D scan a "
                         "2D slice was cut from)")
    if grid is not None and (spatial != tuple(grid[0]) or not np.allclose(affine, grid[1], atol=1e-3)):
        raise ValueError(f"the {role} {str(file)!r} lies on another grid (shape {spatial}) than its scan "
                         f"(shape {tuple(grid[0])}); give the one made for this scan, or resample it onto "
                         "the scan's grid by nearest neighbour")
    return spatial, affine


def check_out_folder(out_dir: str | os.PathLike[str]) -> pathlib.Path:
    """Check that ``out_dir`` is, or can be made as, a writable folder; return it as a path.

    Raises
    ------
    ValueError
        When it is a file, or it (or the folder it would be made in) cannot be written.

    Examples
    --------
    >>> check_out_folder("results/pair1").name
    'pair1'
    """
    folder = pathlib.Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"the output folder {str(folder)!r} is a file; give a folder (it is created), "
                         f"e.g. {str(folder.with_name(folder.name + '_out'))!r}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"the output folder {str(folder)!r} cannot be made: {str(existing)!r} is a file; "
                         "give a path under a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"the output folder {str(folder)!r} cannot be written ({str(existing)!r} is not "
                         "writable); choose a folder you can write to, or change its permissions")
    return folder


def check_scan_arguments(*, lam: Any, refine: Any, out_dir: str | os.PathLike[str],
                         scans: Mapping[str, tuple[str | os.PathLike[str],
                                                   Mapping[str, str | os.PathLike[str] | None]]]) -> int:
    """Every rule of one raw-scan registration, from headers only; return ``refine`` as an int.

    Parameters
    ----------
    lam : float or None
        λ, in [0, 1] when given (whether the model needs one is its caller's rule).
    refine : int
        Iterations of instance optimisation, a whole number ≥ 0.
    out_dir : path
        The output folder (:func:`check_out_folder`).
    scans : mapping
        Role (``"moving"``, ``"fixed"``) -> (scan path, {kind: path or None}) with kinds such as
        ``"labels"`` and ``"mask"``, each of which must lie on its scan's grid.

    Raises
    ------
    FileNotFoundError, ValueError
        The first broken rule, naming the argument and the fix.

    Examples
    --------
    >>> check_scan_arguments(lam=1.5, refine=0, out_dir="out", scans={})
    Traceback (most recent call last):
    ...
    ValueError: lam must lie in [0, 1] (0: image similarity only, 1: smoothness only), got [1.5]; clip or rescale it into [0, 1]
    """
    if lam is not None:
        check_lambda(lam)
    iterations = check_refine(refine)
    check_out_folder(out_dir)
    for role, (scan, extras) in scans.items():
        grid = check_scan_file(scan, f"{role} scan")
        for kind, path in extras.items():
            if path is not None:
                check_scan_file(path, f"{role} {kind}", grid=grid)
    return iterations
