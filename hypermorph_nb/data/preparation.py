"""A cohort of scans as they come, made ready for registration on one grid.

:func:`prepare_scans` takes NIfTI/MGZ head or brain scans of any shape, voxel size and
orientation and puts them on one grid: RAS, isotropic voxels of ``spacing`` mm, affinely
aligned (:func:`.scans.prepare_scan`) to a reference: one of the scans, a template file, or a
template built from the cohort itself (align to the first scan, average, repeat). It writes the
prepared images and label maps (loadable with :func:`~hypermorph_nb.data.load_folder`), each
scan's transform, the template, a manifest and a QC picture.

Examples
--------
>>> import hypermorph_nb as hnb
>>> hnb.prepare_scans([], "out")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileNotFoundError: []: no scans found; ...
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import nibabel
import numpy as np
import SimpleITK as sitk

from ..runtime.parallel import check_workers, run_each
from .alignment import itk_affine
from .dataset import Dataset
from .orientation import LEFT_RIGHT_CHECK, flip_warning
from .qc import save_qc_picture
from .scan_lists import find_scans, read_scans
from .scans import MIN_CORRELATION, MIN_MASK_DICE, PERCENTILES, Reference, judge, prepare_scan, score_against
from .targets import grid_around, is_one_of, onto_own_world, place_on_grid, space_of, template_scan

if TYPE_CHECKING:  # annotations only: preparing scans needs no TensorFlow
    import tensorflow as tf

    from ..networks.description import ModelSpace

#: Voxel size of the prepared grid in mm, unless given (or taken from a model's space).
DEFAULT_SPACING = 2.0
#: Shrink factors of the template-building rounds' affine stage (coarser and quicker than the
#: final alignment's).
ROUND_LEVELS = (4, 2)


@dataclasses.dataclass
class PreparedScans:
    """What :func:`prepare_scans` returns.

    Attributes
    ----------
    dataset : Dataset
        The scans that aligned, on one grid (``affines`` = the grid's), with labels when every one
        of them has a label map, and the template as ``reference`` / ``reference_mask``.
    transforms : np.ndarray
        ``(len(dataset), 4, 4)`` RAS world matrices, grid point → scan point, one per scan of
        ``dataset``.
    reference : Reference
        The template (and its mask and labels) everything was aligned to.
    scans : list of PreparedScan
        Every input scan, the failed ones included.
    manifest : dict
        What ``manifest.json`` holds.
    paths : dict of str
        The files written: ``'manifest'``, ``'qc'``, ``'template'``, ``'template_mask'``.
    """

    dataset: Dataset
    transforms: np.ndarray = dataclasses.field(repr=False)
    reference: Reference
    scans: list = dataclasses.field(repr=False)
    manifest: dict = dataclasses.field(repr=False)
    paths: dict

    @property
    def failed(self) -> list[str]:
        """Names of the scans left out because their alignment failed."""
        return [scan.name for scan in self.scans if scan.status != "ok"]


def prepare_scans(inputs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  reference: int | str | os.PathLike | ModelSpace | tf.keras.Model | None = None, spacing: float | None = None,
                  shape: Sequence[int] | None = None, reference_mask: str | os.PathLike | None = None,
                  labels: str | None = "auto", masks: str | None = "auto", template_rounds: int = 2,
                  percentiles: tuple[float, float] = PERCENTILES, iterations: int = 100,
                  min_mask_dice: float = MIN_MASK_DICE, min_correlation: float = MIN_CORRELATION,
                  seed: int = 0, workers: int = 1, executor: Executor | None = None) -> PreparedScans:
    """Prepare a cohort of raw scans for registration: one grid, aligned, normalised, masked.

    Each scan is reoriented to RAS and resampled to isotropic ``spacing`` mm voxels on one grid
    of ``shape``, affinely aligned to the reference (SimpleITK: centre-of-mass start, rigid
    then affine, Mattes mutual information over a multi-resolution pyramid), scaled so that the
    intensity ``percentiles`` inside its brain (or head) become 0 and 1 (clipped, so one bright
    voxel changes nothing), and brain-masked.

    Parameters
    ----------
    inputs : path or sequence of paths
        A folder of NIfTI/MGZ scans, or a list of them. Label maps are found as
        :func:`~hypermorph_nb.data.load_folder` finds them (``NAME_seg.*`` beside the scan or
        ``labels/NAME.*``), brain masks as ``NAME_mask.*`` or ``masks/NAME.*``.
    out_dir : path
        Output folder (created): ``NAME.nii.gz`` per aligned scan and ``labels/NAME.nii.gz``
        (so ``load_folder(out_dir)`` reads them back), ``transforms/NAME.tfm`` (ITK, LPS) and
        ``transforms/NAME.npy`` (RAS 4×4), ``template/template.nii.gz`` (+ ``mask.nii.gz``),
        ``manifest.json`` (per scan its checks, ``left_right_score`` and ``left_right_flipped``
        among them) and the QC picture ``qc/qc.png``.
    reference : int, path, model, ModelSpace or None
        What to align to: the index or path of one of the scans, a template file (NIfTI/MGZ;
        its mask from ``reference_mask`` or found beside it as for scans), None for a template
        built from the cohort (align to the first scan, average the aligned scans, realign;
        ``template_rounds`` times), or a model that knows its space (e.g.
        ``load_model("pretrained:ixi-t1-2mm")``) or its :class:`~hypermorph_nb.networks.description.ModelSpace`:
        the scans are aligned to its reference image onto exactly its grid (``spacing`` and
        ``shape`` then come from the space), as :func:`hypermorph_nb.register_scans` does.
    spacing : float, optional
        Voxel size of the grid in mm (default 2; a model's space gives its own).
    shape : sequence of 3 int, optional
        The grid's shape, centred on the reference brain; default: the reference brain's extent
        plus a margin, rounded up to multiples of 8.
    reference_mask : path, optional
        Brain mask (or label map) of a template file.
    labels : str or None
        ``"auto"``: the ``_seg`` suffix / ``labels/`` convention; another suffix; None for none.
    masks : str or None
        ``"auto"``: ``NAME_mask.*`` / ``masks/NAME.*``; another suffix; None for none.
    template_rounds : int
        Average-and-realign rounds of the cohort template (``reference=None``).
    percentiles : (float, float)
        Intensity percentiles mapped to 0 and 1.
    iterations : int
        Most optimizer iterations per resolution level.
    min_mask_dice, min_correlation : float
        Alignment checks (see :func:`judge`).
    seed : int
        Seed of the metric sampling: the same call gives the same result.
    workers : int
        Local processes for the per-scan steps (alignment, resampling); 1 runs them here.
    executor : concurrent.futures.Executor, optional
        Runs the per-scan steps instead, e.g. a Dask cluster's
        ``distributed.Client(...).get_executor()`` (see :mod:`hypermorph_nb.runtime.parallel`).
        The results agree whatever runs them, as far as SimpleITK's multi-threaded alignment
        repeats itself (see :mod:`hypermorph_nb.registration.cohort`).

    Returns
    -------
    PreparedScans

    Raises
    ------
    ValueError
        For a 4D or 2D scan, a scan without an affine, an empty or constant scan, a label map or
        mask on another grid than its scan (all of them at once, as one
        :class:`~hypermorph_nb.data.scan_lists.ScanErrors`, before any work), a template of
        another dimension, or a scan with no brain mask when the reference has none either: each
        names the file and the fix.

    Warns
    -----
    UserWarning
        Naming each scan left out because its alignment failed, each scan kept whose affine label
        Dice lies far below the cohort's, each scan whose mirror image fits the reference better
        (its data probably flipped left–right: :mod:`.orientation`; flagged in the manifest's
        ``left_right_flipped`` and in the QC picture; most scans flagged: the reference is), each scan masked with the template's brain mask
        because it had no mask of its own, and a cohort in which only some scans have label
        maps (then none are written: a Dataset has label maps for every image or for none).

    Examples
    --------
    >>> import nibabel, numpy as np, tempfile, pathlib
    >>> from hypermorph_nb.data import synthetic
    >>> raw = pathlib.Path(tempfile.mkdtemp())
    >>> heads = synthetic(2, (40, 40, 40), seed=0)
    >>> for index, name in enumerate(("a", "b")):
    ...     affine = np.diag([2.0, 2.0, 2.0, 1.0])
    ...     nibabel.save(nibabel.Nifti1Image(heads.images[index, ..., 0] * 4000, affine), raw / f"{name}.nii.gz")
    ...     nibabel.save(nibabel.Nifti1Image(heads.labels[index].astype("int16"), affine), raw / f"{name}_seg.nii.gz")
    >>> prepared = prepare_scans(raw, raw / "prepared", reference=0, spacing=4.0)
    >>> prepared.dataset.shape, prepared.transforms.shape, prepared.manifest["scans"][1]["status"]
    ((32, 32, 24), (2, 4, 4), 'ok')
    """
    out = pathlib.Path(out_dir)
    check_workers(workers, executor)
    entries = find_scans(inputs, labels, masks)
    scans = read_scans(entries)
    if spacing is not None and spacing <= 0:
        raise ValueError(f"spacing must be a voxel size in mm > 0, got {spacing}")
    space = space_of(reference, spacing, shape, reference_mask)
    spacing = DEFAULT_SPACING if spacing is None else spacing
    if space is not None:
        template_brain = space.reference_mask
    else:
        template = template_scan(reference, entries, scans, reference_mask)
        grid_shape, grid = grid_around(template, spacing, shape)
        template_brain = template.brain
    if template_brain is None and any(scan.brain is None for scan in scans):
        missing = next(scan for scan in scans if scan.brain is None)
        raise ValueError(
            f"{missing.path}: has no brain mask or label map, and the reference has none to lend "
            "it; give it a mask (NAME_mask.nii.gz or masks/NAME.nii.gz; SynthStrip, FSL BET or "
            "HD-BET make one), or a reference with a brain mask (reference_mask=...)")
    if space is not None:
        final = Reference.from_space(space)
        spacing = final.spacing
        results = run_each(functools.partial(prepare_scan, reference=final, percentiles=percentiles,
                                              iterations=iterations, seed=seed), scans, workers=workers, executor=executor)
    elif isinstance(reference, (int, np.integer)) or is_one_of(reference, entries):
        final = place_on_grid(template, grid_shape, grid, percentiles)
        others = [scan for scan in scans if scan is not template]
        aligned = iter(run_each(functools.partial(prepare_scan, reference=final, percentiles=percentiles,
                                                  iterations=iterations, seed=seed), others, workers=workers, executor=executor))
        results = [onto_own_world(scan, final, percentiles) if scan is template else next(aligned)
                   for scan in scans]
    else:
        final, results = _cohort_template(scans, place_on_grid(template, grid_shape, grid, percentiles),
                                          percentiles=percentiles, iterations=iterations, seed=seed,
                                          rounds=template_rounds if reference is None else 0, workers=workers,
                                          executor=executor)
    judge(results, min_mask_dice=min_mask_dice, min_correlation=min_correlation)
    for result in results:
        if result.status != "ok":
            warnings.warn(f"{result.path}: left out, its alignment failed ({result.reason}); check "
                          "the scan (orientation, field of view, contrast) in the QC picture", UserWarning,
                          stacklevel=2)
        elif result.outlier:
            warnings.warn(f"{result.path}: kept, but its affine label Dice {result.label_dice:.3f} lies far "
                          "below the cohort's; check its label map and its alignment in the QC picture",
                          UserWarning, stacklevel=2)
        if result.status == "ok" and result.flipped:
            warnings.warn(f"{result.path}: {flip_warning(result.left_right_score)}", UserWarning, stacklevel=2)
        if result.status == "ok" and result.mask_source == "template":
            warnings.warn(f"{result.path}: has no brain mask or label map; masked with the template's "
                          "brain mask after alignment (give it a mask for a tighter one)", UserWarning,
                          stacklevel=2)
    flipped = [result for result in results if result.status == "ok" and result.flipped]
    if len(flipped) >= 3 and 2 * len(flipped) > len(results):
        warnings.warn(f"{len(flipped)} of {len(results)} scans fit the reference's mirror image better than it: "
                      "the reference itself is probably flipped left-right; check it, or prepare with "
                      "another reference (a correct scan, or reference=None)", UserWarning, stacklevel=2)
    return _write(out, results, final, spacing)


def _cohort_template(scans, start, *, percentiles, iterations, seed, rounds, workers, executor):
    """Align to ``start``, average, realign (``rounds`` times); then the final alignment."""
    reference = start
    for _ in range(rounds):
        results = run_each(functools.partial(prepare_scan, reference=reference, percentiles=percentiles,
                                             iterations=iterations, affine_levels=ROUND_LEVELS, seed=seed,
                                             orientation=False),
                           scans, workers=workers, executor=executor)
        judge(results)
        kept = [result for result in results if result.status == "ok"] or results[:1]
        reference = _average(kept, reference)
    results = run_each(functools.partial(prepare_scan, reference=reference, percentiles=percentiles,
                                         iterations=iterations, seed=seed), scans, workers=workers, executor=executor)
    if rounds and any(result.labels is not None for result in results):
        reference = dataclasses.replace(reference, labels=_majority([r for r in results if r.status == "ok"]))
        for result in results:
            if result.image is not None:
                score_against(result, reference)
    return reference, results


def _average(results, reference):
    """The mean aligned image, its brain mask (majority of the aligned masks)."""
    image = np.mean([result.image for result in results], axis=0).astype(np.float32)
    masks = [result.mask for result in results if result.mask is not None and result.mask_source != "template"]
    mask = (np.mean(masks, axis=0) >= 0.5) if masks else reference.mask
    if mask is not None:
        image = image * mask
    image = image / max(float(image.max()), 1e-6)
    return Reference(image=image, affine=reference.affine, mask=mask)


def _majority(results):
    """The most frequent label at each voxel of the aligned label maps."""
    maps = np.stack([result.labels for result in results if result.labels is not None])
    values = np.unique(maps)
    counts = np.zeros(maps.shape[1:], np.int16)
    best = np.zeros(maps.shape[1:], maps.dtype)
    for value in values:
        count = (maps == value).sum(axis=0, dtype=np.int16)
        better = count > counts
        best[better], counts[better] = value, count[better]
    return best


def _write(out, results, reference, spacing):
    """Write the prepared scans, transforms, template, manifest and QC picture."""

    out.mkdir(parents=True, exist_ok=True)
    (out / "transforms").mkdir(exist_ok=True)
    (out / "template").mkdir(exist_ok=True)
    ok = [result for result in results if result.status == "ok"]
    if not ok:
        raise ValueError(f"every scan failed to align ({results[0].path}: {results[0].reason}); "
                         "check the scans' orientation and contrast, or give a reference scan")
    with_labels = all(result.labels is not None for result in ok)
    unlabelled = [result.path for result in ok if result.labels is None]
    if not with_labels and len(unlabelled) < len(ok):
        warnings.warn(f"{len(unlabelled)} of {len(ok)} scans have no label map (e.g. {unlabelled[0]}), so "
                      "no label maps are written and the dataset has none; give every scan its label "
                      "map (NAME_seg.* or labels/NAME.*) to keep them", UserWarning, stacklevel=3)
    if with_labels:
        (out / "labels").mkdir(exist_ok=True)
    for result in results:
        if result.transform is not None:
            sitk.WriteTransform(itk_affine(result.transform), str(out / "transforms" / f"{result.name}.tfm"))
            np.save(out / "transforms" / f"{result.name}.npy", result.transform)
        # an earlier run's files of a scan left out now (or of labels not written now) would load
        # with load_folder(out_dir) as if they belonged to this run
        stale = [out / f"{result.name}.nii.gz"] if result.status != "ok" else []
        if result.status != "ok" or not with_labels:
            stale.append(out / "labels" / f"{result.name}.nii.gz")
        for path in stale:
            if path.exists():
                path.unlink()
    for result in ok:
        _save(result.image, reference.affine, out / f"{result.name}.nii.gz")
        if with_labels:
            _save(result.labels.astype(np.int32), reference.affine, out / "labels" / f"{result.name}.nii.gz")
    paths = {"template": str(out / "template" / "template.nii.gz")}
    _save(reference.image, reference.affine, paths["template"])
    if reference.mask is not None:
        paths["template_mask"] = str(out / "template" / "mask.nii.gz")
        _save(reference.mask.astype(np.uint8), reference.affine, paths["template_mask"])
    paths["qc"] = str(out / "qc" / "qc.png")
    save_qc_picture(paths["qc"], results, reference)
    manifest = {
        "grid": {"shape": list(reference.shape), "affine": reference.affine.tolist(), "spacing_mm": spacing},
        "transform_convention": "RAS mm, grid (template) point -> scan point: prepared(p) = scan(T @ p); "
                                "the .tfm files hold the same map in ITK's LPS",
        "labels_written": with_labels,
        "left_right_check": LEFT_RIGHT_CHECK,
        "scans": [result.record() for result in results],
    }
    paths["manifest"] = str(out / "manifest.json")
    pathlib.Path(paths["manifest"]).write_text(json.dumps(manifest, indent=2))
    dataset = Dataset(
        images=np.stack([result.image for result in ok])[..., None],
        labels=np.stack([result.labels for result in ok]) if with_labels else None,
        names=[result.name for result in ok], source=f"{out} (prepared)", affines=reference.affine,
        reference=reference.image, reference_mask=reference.mask)
    return PreparedScans(dataset=dataset, transforms=np.stack([result.transform for result in ok]),
                         reference=reference, scans=list(results), manifest=manifest, paths=paths)


def _save(array, affine, path) -> None:
    image = nibabel.Nifti1Image(np.asarray(array), affine)
    image.header.set_xyzt_units("mm")
    nibabel.save(image, str(path))
