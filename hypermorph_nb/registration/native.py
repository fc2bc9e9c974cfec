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

The other files, on the same conventions (ITK, LPS mm, a transform maps output points to input
points):

- ``inverse_transform.nii.gz`` (with ``inverse=True``): fixed ← moving, a displacement field on
  the **moving** scan's grid that brings the fixed scan onto it (ANTs' ``1InverseWarp.nii.gz``):
  for a diffeomorphic model the negated velocity field integrated in the model's space (then
  refined there by fixed-point steps against the forward field), else the written field inverted by :func:`~hypermorph_nb.registration.invert_transform` (ITK's
  ``InvertDisplacementFieldImageFilter``); the sidecar says which (``inverse_method``);
- ``moving_affine.tfm``, ``fixed_affine.tfm``: each scan's affine part as an ITK text
  transform, model-space point → the scan's point (``sitk.ReadTransform`` reads it; it holds the
  same map as the sidecar's RAS matrix ``*_affine_transform``), so that
  ``apply_transform("moving_affine.tfm", moving, template)`` brings the moving scan into the
  model's space;
- ``jacobian.nii.gz``: the Jacobian determinant of the whole transform ``p ↦ p + d(p)`` on the
  fixed grid (the volume ratio moving / fixed; ≤ 0 where it folds); the sidecar's
  ``folding_percent`` is the share of the fixed scan's brain voxels with a determinant ≤ 0.

Each scan's brain mask comes from its mask file, else its label map, else the model's template
mask after alignment (said in a warning); the sidecar records which (``mask_sources``). Each
scan is checked for data flipped left–right (:mod:`hypermorph_nb.data.orientation`): the
sidecar's ``left_right`` holds both scores and flags, and a flagged scan is said in a warning.

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
import tempfile
import uuid
import warnings
from typing import Any

import nibabel
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..checks.files import check_scan_arguments
from ..checks.values import check_model_hyperparameters
from ..data.alignment import RAS_TO_LPS, itk_affine, to_sitk
from ..data.orientation import flip_warning
from ..data.scans import PreparedScan, Reference, Scan, judge, prepare_scan
from ..metrics import jacobian_determinant, mean_dice
from ..networks.models import spec_of
from .apply import invert_transform
from .cohort import CohortRegistration, Scans, is_cohort, one_pair, register_cohort
from .files import SIDECAR, RegistrationFiles
from .pairs import Registrar
from .refine import refine_registration
from .velocity_inverse import velocity_inverse

#: How the written displacement field is to be read.
CONVENTION = ("transform.nii.gz: ITK displacement field on the fixed scan's grid, LPS mm, "
              "moved(p) = moving(p + d(p)); sitk.DisplacementFieldTransform reads it")
#: How the inverse field is to be read.
INVERSE_CONVENTION = ("inverse_transform.nii.gz: ITK displacement field on the moving scan's grid, LPS mm, "
                      "fixed_on_moving(q) = fixed(q + e(q)); the inverse of transform.nii.gz")
#: How the affine files are to be read.
AFFINE_CONVENTION = ("moving_affine.tfm, fixed_affine.tfm: ITK affine (LPS), model-space point -> the scan's "
                     "point; the same maps as *_affine_transform (RAS 4x4)")
#: What each mask source is called in the sidecar.
MASK_SOURCES = {"mask": "mask file", "labels": "labels", "template": "template mask after alignment",
                "none": "none (the whole grid)"}


def register_scans(model: Any, moving: Scans, fixed: Scans,
                   out_dir: str | os.PathLike[str], *, lam: float | None = None, refine: int = 0,
                   moving_labels: Scans | None = None,
                   fixed_labels: Scans | None = None,
                   moving_mask: Scans | None = None,
                   fixed_mask: Scans | None = None, seed: int = 0,
                   workers: int = 1, executor: Executor | None = None,
                   inverse: bool = False, **hyperparameters: float) -> RegistrationFiles | CohortRegistration:
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
        space's template mask after alignment (said in a warning, recorded in the sidecar).
    seed : int
        Seed of the affine alignments' metric sampling.
    workers : int
        A cohort's pairs on this many local processes (``"spawn"``); 1 registers them here.
    executor : concurrent.futures.Executor, optional
        Runs a cohort's pairs instead, e.g. ``distributed.Client(...).get_executor()``; the files
        agree whatever runs them, as far as SimpleITK's multi-threaded alignment repeats itself
        (not to the last bit). With either, the model travels as its folder (or
        ``"pretrained:NAME"``): a model given in memory is saved once to a temporary folder.
    inverse : bool
        Also write ``inverse_transform.nii.gz`` (fixed ← moving on the moving scan's grid, see
        the module documentation).
    **hyperparameters : float
        The other hyperparameters of a model conditioned on several
        (``build_hypermorph(..., hyperparameters=("lam", "label_weight"))``), by name, e.g.
        ``label_weight=0.5``; each is required and recorded in the sidecar (``hyperparameters``).

    Returns
    -------
    RegistrationFiles or CohortRegistration
        For a cohort, a :class:`~hypermorph_nb.registration.cohort.CohortRegistration` (the
        table, and each pair's :class:`RegistrationFiles` and status). For one pair:
        ``moved`` (the moving scan on the fixed grid, its intensity units), ``moved_labels``
        (with ``moving_labels``, else None), ``transform`` (``transform.nii.gz``, the displacement
        field, see the module documentation for its convention), ``jacobian``
        (``jacobian.nii.gz``), ``moving_affine`` and ``fixed_affine`` (``.tfm``),
        ``inverse_transform`` (with ``inverse=True``, else None) and ``sidecar``
        (``registration.json``: λ, the conventions, both affine transforms, the mask sources, the
        (``registration.json``: λ, the conventions, both affine transforms, the mask sources, the
        left–right check of each scan, the folding %, the Dice scores when both label maps are
        given; for a model conditioned on several hyperparameters, ``hyperparameters``: each one's value).

    Raises
    ------
    FileNotFoundError
        For a missing scan, label map or mask.
    ValueError
        Before any work: for a model without a space (saying how to give it one), a 2D model,
        λ outside [0, 1] (or missing for a HyperMorph model), a hyperparameter the model does not
        take, lacks or was not trained over, a bad ``refine``, an output folder
        that is a file or cannot be written, files that are not readable 3D NIfTI/MGZ or lie on
        another grid than their scan; after the preparation: bad scans (as
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
        return register_cohort(model, moving, fixed, out_dir, workers=workers, executor=executor,
                               hyperparameters=hyperparameters, lam=lam, refine=refine, moving_labels=moving_labels,
                               fixed_labels=fixed_labels, moving_mask=moving_mask, fixed_mask=fixed_mask, seed=seed,
                               inverse=inverse)
    moving, fixed, moving_labels, fixed_labels, moving_mask, fixed_mask = one_pair(
        moving, fixed, moving_labels, fixed_labels, moving_mask, fixed_mask)
    values = check_model_hyperparameters({"lam": lam, **hyperparameters}, spec_of(model).options.get("hyperparameters"),
                                         hypermorph=spec_of(model).is_hypermorph)   # before the scans are prepared
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
    refine = check_scan_arguments(lam=lam, refine=refine, out_dir=out_dir, scans={
        "moving": (moving, {"labels": moving_labels, "mask": moving_mask}),
        "fixed": (fixed, {"labels": fixed_labels, "mask": fixed_mask})})
    reference = Reference.from_space(space)
    scans = [Scan.read(moving, labels=moving_labels, mask=moving_mask),
             Scan.read(fixed, labels=fixed_labels, mask=fixed_mask)]
    brought = [_bring(scan, reference, seed) for scan in scans]
    prepared = [(np.asarray(result.image), np.asarray(result.labels), np.asarray(result.transform))
                for result in brought]
    sources = [_mask_source(scans[0], reference, "moving"), _mask_source(scans[1], reference, "fixed")]  # warns the caller
    if refine:
        _, field = refine_registration(model, prepared[0][0], prepared[1][0], lam=lam, iterations=refine,
                                       fixed_affine=space.affine, hyperparameters=hyperparameters)
    else:
        batch = [image[None, ..., None] for image, _, _ in prepared]
        field = Registrar.for_model(model).predict(batch[0], batch[1], lam, **hyperparameters)[1][0]
    points = _pull_points(field, space.affine, prepared[0][2], prepared[1][2],
                          scans[1].array.shape, scans[1].affine)
    moved = _sample(scans[0].array, scans[0].affine, points, order=1)
    volumes = {"moved": moved.astype(np.float32)}
    sidecar = {"lam": None if lam is None else float(lam), "refine_iterations": refine,
               "transform_convention": CONVENTION,
               "moving": str(moving), "fixed": str(fixed),
               "moving_affine_transform": prepared[0][2].tolist(),
               "fixed_affine_transform": prepared[1][2].tolist(), "affine_convention": AFFINE_CONVENTION,
               "mask_sources": {"moving": sources[0], "fixed": sources[1]},
               "left_right": {role: {"left_right_score": result.record()["left_right_score"],
                                     "left_right_flipped": result.flipped}
                              for role, result in zip(("moving", "fixed"), brought)},
               "model_space": space.to_json()}
    if len(values) > 1:   # a model conditioned on several: every value (a λ-only sidecar is as before)
        sidecar["hyperparameters"] = values
    if scans[0].labels is not None:
        volumes["moved_labels"] = _sample(scans[0].labels, scans[0].affine, points, order=0).astype(np.int32)
        if scans[1].labels is not None:
            sidecar["dice"] = _dice_report(Registrar.for_model(model), field[None], prepared,
                                           volumes["moved_labels"], scans[1].labels)
    volumes["jacobian"] = _jacobian(points, scans[1].affine)
    brain = _native_brain(scans[1], space.reference_mask, space.affine, prepared[1][2])
    sidecar["folding_percent"] = float(100 * np.mean(volumes["jacobian"][brain] <= 0)) if brain.any() else 0.0
    sidecar["folding_region"] = f"the fixed scan's brain ({sources[1]})"
    fields = {"transform": (_displacement(points, scans[1].affine), scans[1].affine)}
    if inverse:
        fields["inverse_transform"] = _inverse(model, lam, refine, field, prepared, scans, fields["transform"],
                                               space.affine, sidecar, hyperparameters)
    affines = {"moving_affine": prepared[0][2], "fixed_affine": prepared[1][2]}
    return _write(pathlib.Path(out_dir), volumes, scans[1].affine, fields, affines, sidecar)


def _mask_source(scan: Scan, reference: Reference, role: str) -> str:
    """Where the scan's brain mask comes from (:data:`MASK_SOURCES`); a warning when the template lends it."""
    if scan.brain is not None:
        return MASK_SOURCES["mask" if scan.mask is not None else "labels"]
    if reference.mask is None:
        return MASK_SOURCES["none"]
    warnings.warn(f"{scan.path}: the {role} scan has neither a brain mask nor a label map, so it is masked with "
                  "the model's template brain mask after alignment (coarser than its own); give its mask "
                  f"({role}_mask=, --{role}-mask), e.g. from SynthStrip or HD-BET", UserWarning, stacklevel=3)
    return MASK_SOURCES["template"]


def _displacement(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """ITK displacements (LPS mm) from each voxel's world point of the grid ``affine`` to ``points`` (RAS)."""
    world = np.einsum("ij,...j->...i", affine[:3, :3], _voxel_grid(points.shape[:3])) + affine[:3, 3]
    displacement: np.ndarray = (points - world) @ RAS_TO_LPS[:3, :3]
    return displacement


def _jacobian(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Jacobian determinant of the voxel ↦ point map, from ``points`` in voxels of the grid ``affine``."""
    inverse = np.linalg.inv(affine)
    voxels = np.einsum("ij,...j->...i", inverse[:3, :3], points) + inverse[:3, 3]
    return jacobian_determinant(voxels - _voxel_grid(points.shape[:3])).astype(np.float32)


def _native_brain(scan: Scan, template_mask: np.ndarray | None, grid: np.ndarray,
                  transform: np.ndarray) -> np.ndarray:
    """The scan's brain on its own grid: its mask or labels, else the template mask carried back."""
    if scan.brain is not None:
        return np.asarray(scan.brain, bool)
    if template_mask is None:
        return np.ones(scan.array.shape, bool)
    to_grid = np.linalg.inv(grid) @ np.linalg.inv(transform) @ scan.affine
    voxels = np.einsum("ij,...j->...i", to_grid[:3, :3], _voxel_grid(scan.array.shape)) + to_grid[:3, 3]
    carried = ndimage.map_coordinates(np.asarray(template_mask, np.float32), np.moveaxis(voxels, -1, 0), order=0,
                                      mode="constant", cval=0.0)
    return np.asarray(carried > 0.5)


def _inverse(model: Any, lam: float | None, refine: int, field: np.ndarray,
             prepared: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], scans: Sequence[Scan],
             forward: tuple[np.ndarray, np.ndarray], grid: np.ndarray, sidecar: dict[str, Any],
             hyperparameters: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The inverse field (LPS mm) on the moving scan's grid and that grid's affine; the method in ``sidecar``.

    A diffeomorphic model's velocity field, negated and integrated in the model's space as the
    model integrates its own, gives the inverse model field, refined there against the forward
    field ``field`` (:func:`.velocity_inverse.velocity_inverse`); the chain is then composed as the forward one with
    the scans' roles exchanged. Otherwise (or after refinement, which
    keeps no velocity) the written field is inverted by :func:`invert_transform`.
    """
    spec = spec_of(model)
    sidecar["inverse_transform_convention"] = INVERSE_CONVENTION
    if spec.options.get("diffeomorphic", False) and not refine:
        sidecar["inverse_method"] = ("the model's velocity field, negated and integrated in the model's space, "
                                     "refined by fixed-point steps against its forward field")
        inverse_field = velocity_inverse(model, [image for image, _, _ in prepared], lam, hyperparameters, field)
        points = _pull_points(inverse_field, grid, prepared[1][2], prepared[0][2], scans[0].array.shape,
                              scans[0].affine)
        return _displacement(points, scans[0].affine), scans[0].affine
    sidecar["inverse_method"] = "transform.nii.gz inverted by ITK's InvertDisplacementFieldImageFilter"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "transform.nii.gz")
        sitk.WriteImage(to_sitk(forward[0].astype(np.float32), forward[1], vector=True), path)
        inverted = invert_transform(path, scans[0].path)
    assert isinstance(inverted, nibabel.Nifti1Image)   # no out: the image itself
    return np.asarray(inverted.dataobj)[..., 0, :], scans[0].affine


def _bring(scan: Scan, reference: Reference, seed: int) -> PreparedScan:
    """The scan in the model's space, checked (a warning if it looks flipped left–right); an error if
    its alignment failed."""
    result = prepare_scan(scan, reference, seed=seed)
    judge([result])
    if result.status != "ok":
        raise ValueError(f"{scan.path}: its affine alignment to the model's template failed "
                         f"({result.reason}); check the scan's orientation, field of view and "
                         "contrast, or give its brain mask")
    if result.flipped:
        warnings.warn(f"{scan.path}: {flip_warning(result.left_right_score)}", UserWarning, stacklevel=3)
    return result


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


def _write(out: pathlib.Path, volumes: dict[str, np.ndarray], affine: np.ndarray,
           fields: dict[str, tuple[np.ndarray, np.ndarray]], affines: dict[str, np.ndarray],
           sidecar: dict[str, Any]) -> RegistrationFiles:
    """Write the images (on ``affine``), the fields (each on its grid), the ``.tfm`` affines and the
    sidecar under temporary names, then rename them."""
    out.mkdir(parents=True, exist_ok=True)
    staged = {}
    try:
        for name, array in volumes.items():
            image = nibabel.Nifti1Image(array, affine)
            image.header.set_xyzt_units("mm")
            staged[name] = (_temporary(out, ".nii.gz"), out / f"{name}.nii.gz")
            nibabel.save(image, staged[name][0])
        for name, (displacement, grid) in fields.items():
            staged[name] = (_temporary(out, ".nii.gz"), out / f"{name}.nii.gz")
            sitk.WriteImage(to_sitk(displacement.astype(np.float32), grid, vector=True), staged[name][0],
                            useCompression=True)
        for name, matrix in affines.items():
            staged[name] = (_temporary(out, ".tfm"), out / f"{name}.tfm")
            sitk.WriteTransform(itk_affine(matrix), staged[name][0])
        sidecar = {**sidecar, "files": {name: final.name for name, (_, final) in staged.items()}}
        staged["sidecar"] = (_temporary(out, ".json"), out / SIDECAR)
        pathlib.Path(staged["sidecar"][0]).write_text(json.dumps(sidecar, indent=2))
        for temporary, final in staged.values():
            os.replace(temporary, final)
    finally:
        for temporary, _ in staged.values():
            if os.path.exists(temporary):
                os.remove(temporary)
    return RegistrationFiles.in_folder(out, transform="transform.nii.gz", moved_labels="moved_labels" in volumes,
                                       jacobian="jacobian" in volumes, inverse_transform="inverse_transform" in fields,
                                       affines=bool(affines))


def _temporary(folder: pathlib.Path, suffix: str) -> str:
    """A fresh name in ``folder`` (the file is created by its writer, so with the user's umask)."""
    return str(folder / f".partial-{uuid.uuid4().hex}{suffix}")
