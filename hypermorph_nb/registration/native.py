"""Register two raw scans with a model, and answer in the fixed scan's own space.

:func:`register_scans` brings both scans into the model's space (the grid and template the
model was trained in, :class:`~hypermorph_nb.networks.description.ModelSpace`) with the same
steps as :func:`hypermorph_nb.prepare_scans` (affine alignment to the template,
robust intensity scaling, brain mask), registers them at λ, and writes the result on the
**fixed scan's own grid** (its shape and affine): the moving scan warped there in its own
intensity units, its label map warped by nearest neighbour, and the whole transform as one
displacement field.

Transform file convention (``transform.nii.gz``): a NIfTI vector image (intent ``VECTOR``,
shape ``(I, J, K, 1, 3)``) on the fixed scan's grid holding, at each fixed voxel, the
displacement in millimetres along ITK's **LPS** world axes from that voxel's world point ``p``
to the moving scan's point: ``moved(p) = moving(p + d(p))``. It is what ITK writes for a
displacement field (as ANTs' ``*Warp.nii.gz``), so SimpleITK, ANTs
(``antsApplyTransforms -t transform.nii.gz``), 3D Slicer and ITK-SNAP read it directly. With
nibabel, negate the first two components for RAS. The chain it holds is
fixed native → fixed affine → model field → moving affine⁻¹ → moving native.

Examples
--------
>>> import SimpleITK as sitk
>>> field = sitk.Image([4, 4, 4], sitk.sitkVectorFloat64, 3)   # as read from transform.nii.gz
>>> transform = sitk.DisplacementFieldTransform(field)
>>> transform.TransformPoint((1.0, 1.0, 1.0))
(1.0, 1.0, 1.0)
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import json
import os
import pathlib
import uuid
from typing import Any

import nibabel
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..data.alignment import RAS_TO_LPS, to_sitk
from ..data.scans import Reference, Scan, judge, prepare_scan
from ..metrics import mean_dice
from ..networks.models import spec_of
from .cohort import CohortRegistration, Scans, is_cohort, one_pair, register_cohort
from .files import SIDECAR, RegistrationFiles
from .pairs import Registrar, lambda_per_pair
from .refine import check_refine, refine_registration

#: How the written displacement field is to be read.
CONVENTION = ("transform.nii.gz: ITK displacement field on the fixed scan's grid, LPS mm, "
              "moved(p) = moving(p + d(p)); sitk.DisplacementFieldTransform reads it")


def register_scans(model: Any, moving: Scans, fixed: Scans,
                   out_dir: str | os.PathLike[str], *, lam: float | None = None, refine: int = 0,
                   moving_labels: Scans | None = None,
                   fixed_labels: Scans | None = None,
                   moving_mask: Scans | None = None,
                   fixed_mask: Scans | None = None, seed: int = 0,
                   workers: int = 1, executor: Executor | None = None) -> RegistrationFiles | CohortRegistration:
    """Register a raw moving scan to a raw fixed scan; write the result on the fixed scan's grid.

    Given several scans (a list or a folder) as ``moving`` or ``fixed``, it registers a cohort
    in one call (:mod:`hypermorph_nb.registration.cohort`): each pair into its own folder of
    ``out_dir`` with the files below, a table ``results.csv``, a progress bar; a pair that fails
    is a row of the table and the run goes on. Every bad scan is named at once, before any work.

    Parameters
    ----------
    model : tf.keras.Model
        A 3D model that knows its space: trained (:func:`hypermorph_nb.train`) on data with an
        affine, e.g. ``prepare_scans(...).dataset``, or saved and loaded after that; for a
        cohort also its folder or ``"pretrained:NAME"``.
    moving, fixed : path, list of paths or folder
        NIfTI/MGZ scans as they come (any grid, orientation, intensities); several on one side
        (or two lists of one length, pairs side by side) for a cohort.
    out_dir : path
        Output folder (created); files of the same names are replaced.
    lam : float, optional
        λ in [0, 1], required for a HyperMorph model; None for a VoxelMorph baseline (then
        its training λ, as in :func:`hypermorph_nb.register`).
    refine : int
        Iterations of λ-aware instance optimisation of the field in the model's space
        (:func:`~hypermorph_nb.registration.refine.refine_registration`); 0 uses the network's
        field as it is.
    moving_labels, fixed_labels : path, optional
        Label maps on the scans' grids: the moving one is warped (nearest neighbour); both mask
        their scans' brains, and with both the sidecar reports the Dice in the model's space and
        in the fixed scan's space.
    moving_mask, fixed_mask : path, optional
        Brain masks of the scans; a scan with neither mask nor labels is masked with the
        space's template mask after alignment.
    seed : int
        Seed of the affine alignments' metric sampling.
    workers : int
        A cohort's pairs on this many local processes (``"spawn"``); 1 registers them here.
    executor : concurrent.futures.Executor, optional
        Runs a cohort's pairs instead, e.g. ``distributed.Client(...).get_executor()``; the files
        agree whatever runs them, as far as SimpleITK's multi-threaded alignment repeats itself
        (not to the last bit). With either, the model travels as its folder (or
        ``"pretrained:NAME"``): a model given in memory is saved once to a temporary folder.

    Returns
    -------
    RegistrationFiles or CohortRegistration
        For a cohort, a :class:`~hypermorph_nb.registration.cohort.CohortRegistration` (the
        table, and each pair's :class:`RegistrationFiles` and status). For one pair:
        ``moved`` (the moving scan on the fixed grid, its intensity units), ``moved_labels``
        (with ``moving_labels``, else None), ``transform`` (``transform.nii.gz``, the displacement
        field, see the module documentation for its convention) and ``sidecar``
        (``registration.json``: λ, the convention, both affine transforms, the Dice scores when
        both label maps are given).

    Raises
    ------
    ValueError
        For a model without a space (saying how to give it one), a 2D model, bad scans (as
        :func:`hypermorph_nb.prepare_scans`), or a scan whose affine alignment to the
        template failed.

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((16, 16, 16), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]])
    >>> register_scans(model, "a.nii.gz", "b.nii.gz", "out", lam=0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: this model does not know its space ...
    """
    if is_cohort(moving, fixed):   # several scans: one call of this function per pair
        return register_cohort(**locals())
    moving, fixed, moving_labels, fixed_labels, moving_mask, fixed_mask = one_pair(
        moving, fixed, moving_labels, fixed_labels, moving_mask, fixed_mask)
    refine = check_refine(refine)
    if spec_of(model).is_hypermorph:
        lambda_per_pair(lam, batch=1)   # a clear error before the scans are prepared
    space = spec_of(model).space
    if space is None or space.reference is None:
        raise ValueError(
            "this model does not know its space (the grid it was trained on and a template to align "
            "new scans to), so raw scans cannot be brought to it; train it on data with an affine, "
            "e.g. hnb.train(model, hnb.prepare_scans(folder, out).dataset, ...), or attach one: "
            "hnb.networks.models.describe(model, space=hnb.networks.description.ModelSpace.from_dataset("
            "prepared.dataset))")
    if len(space.shape) != 3:
        raise ValueError(f"register_scans registers 3D scans, but this model works on 2D images of "
                         f"{space.shape}; use hnb.export_registration for 2D images")
    reference = Reference.from_space(space)
    scans = [Scan.read(moving, labels=moving_labels, mask=moving_mask),
             Scan.read(fixed, labels=fixed_labels, mask=fixed_mask)]
    prepared = [_bring(scan, reference, seed) for scan in scans]
    if refine:
        _, field = refine_registration(model, prepared[0][0], prepared[1][0], lam=lam, iterations=refine,
                                       fixed_affine=space.affine)
    else:
        batch = [image[None, ..., None] for image, _, _ in prepared]
        field = Registrar.for_model(model).predict(batch[0], batch[1], lam)[1][0]
    points = _pull_points(field, space.affine, prepared[0][2], prepared[1][2],
                          scans[1].array.shape, scans[1].affine)
    moved = _sample(scans[0].array, scans[0].affine, points, order=1)
    volumes = {"moved": moved.astype(np.float32)}
    sidecar = {"lam": None if lam is None else float(lam), "refine_iterations": refine,
               "transform_convention": CONVENTION,
               "moving": str(moving), "fixed": str(fixed),
               "moving_affine_transform": prepared[0][2].tolist(),
               "fixed_affine_transform": prepared[1][2].tolist(),
               "model_space": space.to_json()}
    if scans[0].labels is not None:
        volumes["moved_labels"] = _sample(scans[0].labels, scans[0].affine, points, order=0).astype(np.int32)
        if scans[1].labels is not None:
            sidecar["dice"] = _dice_report(Registrar.for_model(model), field[None], prepared,
                                           volumes["moved_labels"], scans[1].labels)
    world = np.einsum("ij,...j->...i", scans[1].affine[:3, :3], _voxel_grid(scans[1].array.shape)) + scans[1].affine[:3, 3]
    displacement = (points - world) @ RAS_TO_LPS[:3, :3]
    return _write(pathlib.Path(out_dir), volumes, scans[1].affine, displacement, sidecar)


def _bring(scan: Scan, reference: Reference, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scan's image, label map and transform in the model's space; an error if alignment failed."""
    result = prepare_scan(scan, reference, seed=seed)
    judge([result])
    if result.status != "ok":
        raise ValueError(f"{scan.path}: its affine alignment to the model's template failed "
                         f"({result.reason}); check the scan's orientation, field of view and "
                         "contrast, or give its brain mask")
    return np.asarray(result.image), np.asarray(result.labels), np.asarray(result.transform)


def _voxel_grid(shape: Sequence[int]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)


def _pull_points(flow: np.ndarray, grid: np.ndarray, moving_transform: np.ndarray,
                 fixed_transform: np.ndarray, shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """World points (RAS) of the moving scan that each fixed native voxel reads.

    ``p`` (fixed world) → ``y = T_fixed⁻¹ p`` (model grid world) → ``y + u`` (the model's field,
    in grid voxels) → ``T_moving (y + u)`` (moving world).
    """
    world = np.einsum("ij,...j->...i", affine[:3, :3], _voxel_grid(shape)) + affine[:3, 3]
    to_grid = np.linalg.inv(grid) @ np.linalg.inv(fixed_transform)
    voxels = np.einsum("ij,...j->...i", to_grid[:3, :3], world) + to_grid[:3, 3]
    shifted = voxels + np.stack([ndimage.map_coordinates(flow[..., axis], np.moveaxis(voxels, -1, 0),
                                                         order=1, mode="nearest")
                                 for axis in range(3)], axis=-1)
    to_moving = moving_transform @ grid
    points: np.ndarray = np.einsum("ij,...j->...i", to_moving[:3, :3], shifted) + to_moving[:3, 3]
    return points


def _sample(array: np.ndarray, affine: np.ndarray, points: np.ndarray, *, order: int) -> np.ndarray:
    """``array`` (on ``affine``) at world points ``(..., 3)``; 0 beyond half a voxel outside (as ITK)."""
    inverse = np.linalg.inv(affine)
    voxels = np.einsum("ij,...j->...i", inverse[:3, :3], points) + inverse[:3, 3]
    inside = np.all((voxels >= -0.5) & (voxels <= np.asarray(array.shape) - 0.5), axis=-1)
    values = np.asarray(array, dtype=np.float32 if order else array.dtype)
    sampled = ndimage.map_coordinates(values, np.moveaxis(voxels, -1, 0), order=order, mode="nearest",
                                      prefilter=False)
    return np.where(inside, sampled, 0).astype(values.dtype)


def _dice_report(registrar: Registrar, flow: np.ndarray,
                 prepared: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], moved_labels: np.ndarray,
                 fixed_labels: np.ndarray) -> dict[str, float]:
    """Mean Dice of the warped labels in the model's space and in the fixed scan's space."""
    (_, moving, _), (_, fixed, _) = prepared
    warped = registrar.warp(moving[None], flow, interp="nearest")[0]
    return {"model_space": mean_dice(warped, fixed),
            "native": mean_dice(moved_labels, fixed_labels),
            "affine_only_model_space": mean_dice(moving, fixed)}


def _write(out: pathlib.Path, volumes: dict[str, np.ndarray], affine: np.ndarray, displacement: np.ndarray,
           sidecar: dict[str, Any]) -> RegistrationFiles:
    """Write the images, the field and the sidecar under temporary names, then rename them."""
    out.mkdir(parents=True, exist_ok=True)
    staged = {}
    try:
        for name, array in volumes.items():
            image = nibabel.Nifti1Image(array, affine)
            image.header.set_xyzt_units("mm")
            staged[name] = (_temporary(out, ".nii.gz"), out / f"{name}.nii.gz")
            nibabel.save(image, staged[name][0])
        staged["transform"] = (_temporary(out, ".nii.gz"), out / "transform.nii.gz")
        sitk.WriteImage(to_sitk(displacement.astype(np.float32), affine, vector=True), staged["transform"][0],
                        useCompression=True)
        sidecar = {**sidecar, "files": {name: final.name for name, (_, final) in staged.items()}}
        staged["sidecar"] = (_temporary(out, ".json"), out / SIDECAR)
        pathlib.Path(staged["sidecar"][0]).write_text(json.dumps(sidecar, indent=2))
        for temporary, final in staged.values():
            os.replace(temporary, final)
    finally:
        for temporary, _ in staged.values():
            if os.path.exists(temporary):
                os.remove(temporary)
    return RegistrationFiles.in_folder(out, transform="transform.nii.gz", moved_labels="moved_labels" in volumes)


def _temporary(folder: pathlib.Path, suffix: str) -> str:
    """A fresh name in ``folder`` (the file is created by its writer, so with the user's umask)."""
    return str(folder / f".partial-{uuid.uuid4().hex}{suffix}")
