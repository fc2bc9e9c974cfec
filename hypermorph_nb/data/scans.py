"""One scan onto a reference grid: read and checked, aligned, resampled, normalised, masked.

:func:`prepare_scan` brings one :class:`Scan` onto the grid of a :class:`Reference` (a template
image, its brain mask and labels): affine alignment with SimpleITK (:mod:`.alignment`), one
resampling from the scan's own voxels through the found transform, intensities scaled by robust
percentiles inside the brain (or head) and clipped to [0, 1], the brain masked with the scan's
own mask or label map, else the template's. :func:`judge` decides which alignments failed.
:func:`hypermorph_nb.prepare_scans` runs these steps over a cohort;
:func:`hypermorph_nb.register_scans` brings new scans into a model's space with them.

A transform maps points of the grid (template world, RAS mm) to points of the scan:
``prepared(p) = scan(T @ p)`` (ITK's convention).

Examples
--------
>>> import numpy as np
>>> reference = Reference(image=np.ones((8, 8, 8), "float32"), affine=np.diag([2.0, 2, 2, 1]))
>>> reference.shape, reference.spacing
((8, 8, 8), 2.0)
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..checks.arrays import array_summary
from ..metrics import mean_dice
from .alignment import AFFINE_LEVELS, RIGID_LEVELS, align_affine, isotropic_grid, resample
from .folders import read_labels
from .orientation import check_orientation
from .readers import NIBABEL_SUFFIXES, read_file, split_suffix

#: Intensity percentiles (inside the brain or head) mapped to 0 and 1.
PERCENTILES = (0.5, 99.5)
#: A scan whose brain mask overlaps the template's by less than this (Dice) failed to align.
MIN_MASK_DICE = 0.7
#: A scan whose correlation with the template (inside its mask) is below this failed to align.
MIN_CORRELATION = 0.5
#: A scan whose correlation with the template lies this far below the cohort's median failed.
CORRELATION_DROP = 0.15
#: A scan whose brain-mask Dice lies this far below the cohort's median failed.
MASK_DICE_DROP = 0.08
#: A scan whose label Dice lies this far below the cohort's median is flagged as an outlier (its
#: label map, or its anatomy, differs from the cohort's; the images decide whether it aligned).
DICE_DROP = 0.15


@dataclasses.dataclass(frozen=True)
class Reference:
    """What scans are aligned to: a template image on the output grid.

    Attributes
    ----------
    image : np.ndarray
        The template, intensities in [0, 1], on the grid ``(shape, affine)``.
    affine : np.ndarray
        4×4 RAS voxel-to-world matrix of the grid (isotropic, as a preparation makes it).
    mask : np.ndarray or None
        The template's brain mask (bool): where the alignment metric looks (dilated) and what
        masks a scan without its own mask.
    labels : np.ndarray or None
        A label map on the grid (the reference scan's, or the cohort's majority vote), to score
        each scan's affine-only Dice.
    """

    image: np.ndarray
    affine: np.ndarray
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None

    @classmethod
    def from_space(cls, space: Any) -> Reference:
        """A model space's grid, reference image and brain mask (a :class:`~hypermorph_nb.networks.description.ModelSpace`)."""
        return cls(image=space.reference, affine=space.affine, mask=space.reference_mask)

    def __repr__(self) -> str:
        return (f"Reference(shape={self.shape}, spacing={self.spacing:g}, mask={array_summary(self.mask)}, "
                f"labels={array_summary(self.labels)})")

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape."""
        return tuple(self.image.shape)

    @property
    def spacing(self) -> float:
        """The grid's voxel size in mm (the mean over the axes)."""
        return float(np.linalg.norm(self.affine[:3, :3], axis=0).mean())

    def metric_mask(self) -> np.ndarray | None:
        """The region the alignment metric samples: the brain mask grown by 8 mm."""
        if self.mask is None:
            return None
        return ndimage.binary_dilation(self.mask, iterations=max(1, round(8 / self.spacing)))


@dataclasses.dataclass
class Scan:
    """One scan as read: the array, its affine, and its label map / brain mask if any.

    Build it with :meth:`read`, which checks the files.
    """

    name: str
    path: str
    array: np.ndarray = dataclasses.field(repr=False)
    affine: np.ndarray = dataclasses.field(repr=False)
    labels: np.ndarray | None = dataclasses.field(default=None, repr=False)
    mask: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def read(cls, path: str | os.PathLike, *, labels: str | os.PathLike | None = None,
             mask: str | os.PathLike | None = None, name: str | None = None) -> Scan:
        """Read and check a NIfTI/MGZ scan and its optional label map and brain mask.

        Raises
        ------
        ValueError
            For a 4D or 2D scan, a file without an affine, an empty or constant scan, NaN/inf,
            or a label map / mask on another grid than the scan; each names the file and the fix.

        Examples
        --------
        >>> import nibabel, numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "flat.nii.gz"
        >>> nibabel.save(nibabel.Nifti1Image(np.ones((8, 8, 8), "float32"), np.eye(4)), path)
        >>> Scan.read(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: .../flat.nii.gz: the scan is constant (every voxel 1); ...
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such scan; give NIfTI (.nii, .nii.gz) or MGZ files")
        array, affine = read_file(path, role="image")
        if affine is None or split_suffix(path)[1] not in NIBABEL_SUFFIXES:
            raise ValueError(f"{path}: has no voxel-to-world affine; preparation needs NIfTI or "
                             "MGZ scans (save it with nibabel.Nifti1Image(array, affine))")
        if array.ndim != 3:
            raise ValueError(f"{path}: is a 2D image of shape {array.shape}, but preparation "
                             "aligns 3D scans; remove it from the cohort, or give the 3D volume "
                             "it was cut from")
        array = np.asarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: contains NaN or infinite values; replace them "
                             "(e.g. np.nan_to_num) or leave the scan out")
        low, high = float(array.min()), float(array.max())
        if high <= low:
            raise ValueError(f"{path}: the scan is {'empty' if high == 0 else 'constant'} (every "
                             f"voxel {low:g}); check the file was written completely, or leave it "
                             "out of the cohort")
        label_map = mask_map = None
        if labels is not None:
            label_map = read_labels(pathlib.Path(labels), path, array.shape, affine)
        if mask is not None:
            mask_map = read_labels(pathlib.Path(mask), path, array.shape, affine) > 0
        return cls(name=name or split_suffix(path)[0], path=str(path), array=array,
                   affine=affine, labels=label_map, mask=mask_map)

    @property
    def brain(self) -> np.ndarray | None:
        """The brain mask: the given mask, else the label map > 0, else None."""
        if self.mask is not None:
            return self.mask
        return None if self.labels is None else self.labels > 0


@dataclasses.dataclass
class PreparedScan:
    """One scan on the reference grid, with how it got there.

    Attributes
    ----------
    name, path : str
    image : np.ndarray or None
        On the grid, in [0, 1], brain-masked (None when alignment raised).
    labels : np.ndarray or None
    mask : np.ndarray or None
        The brain mask on the grid (its own, or the template's).
    transform : np.ndarray or None
        4×4 RAS world matrix, grid point → scan point.
    window : tuple of float
        Scanner intensities mapped to 0 and 1.
    metric : float or None
        Final Mattes mutual information of the alignment.
    correlation, mask_dice, label_dice : float or None
        Quality checks against the reference (mask and label Dice where both exist).
    mask_source : {'mask', 'labels', 'template'}
    status : {'ok', 'failed'}
    reason : str
    outlier : bool
        Kept, but its affine label Dice lies far below the cohort's (see :func:`judge`).
    left_right_score : float or None
        Its :func:`.orientation.check_orientation` score (None: not checked, e.g. the reference scan).
    flipped : bool
        Its mirror image fits the reference better: its data are probably flipped left–right.
    """

    name: str
    path: str
    image: np.ndarray | None = dataclasses.field(default=None, repr=False)
    labels: np.ndarray | None = dataclasses.field(default=None, repr=False)
    mask: np.ndarray | None = dataclasses.field(default=None, repr=False)
    transform: np.ndarray | None = dataclasses.field(default=None, repr=False)
    window: tuple[float, float] = (0.0, 1.0)
    metric: float | None = None
    correlation: float | None = None
    mask_dice: float | None = None
    label_dice: float | None = None
    mask_source: str = "template"
    status: str = "ok"
    reason: str = ""
    outlier: bool = False
    left_right_score: float | None = None
    flipped: bool = False

    def record(self) -> dict[str, Any]:
        """The manifest entry (JSON)."""
        def number(value):
            return None if value is None or not np.isfinite(value) else round(float(value), 5)

        return {"name": self.name, "source": self.path, "status": self.status, "reason": self.reason,
                "transform": None if self.transform is None else np.round(self.transform, 6).tolist(),
                "metric": number(self.metric), "correlation": number(self.correlation),
                "mask_dice": number(self.mask_dice), "affine_label_dice": number(self.label_dice),
                "intensity_window": [number(v) for v in self.window], "mask": self.mask_source,
                "label_dice_outlier": self.outlier, "left_right_score": number(self.left_right_score),
                "left_right_flipped": self.flipped}


def prepare_scan(scan: Scan, reference: Reference, *, percentiles: tuple[float, float] = PERCENTILES,
                 iterations: int = 100, affine_levels: tuple[int, ...] = AFFINE_LEVELS,
                 seed: int = 0, orientation: bool = True) -> PreparedScan:
    """Bring one scan onto the reference grid: align, resample, normalise, mask.

    Parameters
    ----------
    scan : Scan
    reference : Reference
    percentiles : (float, float)
        Intensity percentiles inside the brain (or, without a mask, the head) mapped to 0 and 1.
    iterations : int
        Most optimizer iterations per resolution level.
    affine_levels : tuple of int
        Shrink factors of the affine stage (the rigid one runs at shrink factors 4 and 2).
    seed : int
        Seed of the metric's sampling.
    orientation : bool
        Check that the scan is not flipped left–right (:func:`.orientation.check_orientation`;
        two more alignments on the grid); False for a template-building round.

    Returns
    -------
    PreparedScan
        With ``status='failed'`` and the reason when the optimizer raised; the quality checks
        against the reference are filled in, the decision on them is the caller's
        (:func:`judge`).
    """
    result = PreparedScan(name=scan.name, path=scan.path)
    smoothed = antialiased(scan.array, scan.affine, reference.spacing)
    shape, grid = isotropic_grid(scan.array.shape, scan.affine, reference.spacing)
    working = resample(smoothed, scan.affine, shape, grid)
    brain = None if scan.brain is None else resample(scan.brain, scan.affine, shape, grid, order=0)
    inside = brain if brain is not None and brain.any() else head_mask(working)
    working, brain, inside, grid = _crop(working, brain, inside, grid, margin=round(16 / reference.spacing))
    low, high = np.percentile(working[inside], percentiles)
    if high <= low:
        high = low + 1.0
    result.window = (float(low), float(high))
    moving = np.clip((working - low) / (high - low), 0, 1)
    try:
        found = align_affine(reference.image, reference.affine, moving if brain is None else moving * brain,
                             grid, fixed_mask=reference.metric_mask(), moving_mask=brain,
                             iterations=iterations, levels=RIGID_LEVELS, affine_levels=affine_levels,
                             seed=seed)
    except RuntimeError as error:
        result.status, result.reason = "failed", f"the optimizer stopped: {str(error).strip().splitlines()[-1]}"
        return result
    result.transform, result.metric = found.matrix, found.metric
    onto_grid(result, scan, smoothed, reference)
    score_against(result, reference)
    if orientation:
        assert result.image is not None  # onto_grid resampled it
        check = check_orientation(result.image, reference, seed=seed)
        result.left_right_score, result.flipped = check.score, check.flipped
    return result


def judge(scans: Sequence[PreparedScan], *, min_mask_dice: float = MIN_MASK_DICE,
          min_correlation: float = MIN_CORRELATION, dice_drop: float = DICE_DROP) -> None:
    """Mark the scans whose alignment failed, and the label-Dice outliers (in place).

    What the images say decides failure: a scan fails when its correlation with the template
    (inside the template's brain mask) is below ``min_correlation``, its own brain mask overlaps
    the template's by less than ``min_mask_dice``, or, in a cohort of five or more, either lies
    far below the cohort's median (:data:`CORRELATION_DROP`, :data:`MASK_DICE_DROP`). A scan
    whose affine label Dice lies more than ``dice_drop`` below the cohort's median is kept but
    flagged as an outlier: its label map or anatomy may differ rather than its alignment.

    Examples
    --------
    >>> good = [PreparedScan("a", "a.nii", correlation=0.9, label_dice=0.5) for _ in range(5)]
    >>> off = PreparedScan("b", "b.nii", correlation=0.6, label_dice=0.3)
    >>> odd = PreparedScan("c", "c.nii", correlation=0.9, label_dice=0.2)
    >>> judge(good + [off, odd]); off.status, off.reason
    ('failed', 'correlation with the template 0.600 is far below the cohort median 0.900')
    >>> odd.status, odd.outlier
    ('ok', True)
    """
    for scan in scans:
        if scan.status != "ok":
            continue
        if scan.correlation is not None and scan.correlation < min_correlation:
            scan.status = "failed"
            scan.reason = f"correlation with the template {scan.correlation:.3f} < {min_correlation}"
        elif scan.mask_dice is not None and scan.mask_dice < min_mask_dice:
            scan.status = "failed"
            scan.reason = f"brain mask overlaps the template's by Dice {scan.mask_dice:.3f} < {min_mask_dice}"
    checks = (("correlation", "correlation with the template", CORRELATION_DROP),
              ("mask_dice", "brain-mask Dice", MASK_DICE_DROP))
    for attribute, what, drop in checks:
        values = [getattr(scan, attribute) for scan in scans if scan.status == "ok"
                  and getattr(scan, attribute) is not None]
        if len(values) < 5:
            continue
        median = float(np.median(values))
        for scan in scans:
            value = getattr(scan, attribute)
            if scan.status == "ok" and value is not None and value < median - drop:
                scan.status = "failed"
                scan.reason = f"{what} {value:.3f} is far below the cohort median {median:.3f}"
    scored = [scan.label_dice for scan in scans if scan.status == "ok" and scan.label_dice is not None]
    if len(scored) >= 5:
        median = float(np.median(scored))
        for scan in scans:
            scan.outlier = bool(scan.status == "ok" and scan.label_dice is not None
                                and scan.label_dice < median - dice_drop)


def onto_grid(result: PreparedScan, scan: Scan, smoothed: np.ndarray, reference: Reference) -> None:
    """Resample the (smoothed) scan, its brain mask and labels onto the reference grid through
    ``result.transform``; scale intensities by ``result.window``; mask the image (the scan's own
    brain, else the template's)."""
    low, high = np.asarray(result.window, dtype=np.float64)   # the scaling as computed, in float64
    image = resample(smoothed, scan.affine, reference.shape, reference.affine, transform=result.transform)
    image = np.clip((image - low) / (high - low), 0, 1).astype(np.float32)
    if scan.brain is not None:
        result.mask = resample(scan.brain, scan.affine, reference.shape, reference.affine,
                               transform=result.transform, order=0)
        result.mask_source = "mask" if scan.mask is not None else "labels"
    elif reference.mask is not None:
        result.mask, result.mask_source = reference.mask.copy(), "template"
    if result.mask is not None:
        image *= result.mask
    result.image = image
    if scan.labels is not None:
        result.labels = resample(scan.labels, scan.affine, reference.shape, reference.affine,
                                 transform=result.transform, order=0)


def score_against(result: PreparedScan, reference: Reference) -> None:
    """Correlation, mask Dice and mean label Dice of one prepared scan against the reference."""
    assert result.image is not None  # scored once onto_grid has resampled it
    region = reference.mask if reference.mask is not None else reference.image > 0
    a, b = result.image[region], reference.image[region]
    if a.std() > 0 and b.std() > 0:
        result.correlation = float(np.corrcoef(a, b)[0, 1])
    else:
        result.correlation = 0.0
    if reference.mask is not None and result.mask is not None and result.mask_source != "template":
        total = result.mask.sum() + reference.mask.sum()
        result.mask_dice = float(2 * np.logical_and(result.mask, reference.mask).sum() / total) if total else 0.0
    if reference.labels is not None and result.labels is not None:
        result.label_dice = mean_dice(result.labels, reference.labels)


def _crop(working, brain, inside, grid, *, margin):
    """The working image cut to the head (or brain) plus ``margin`` voxels, and its grid."""
    corners = np.array(np.nonzero(inside))
    low = np.maximum(corners.min(axis=1) - margin, 0)
    high = np.minimum(corners.max(axis=1) + margin + 1, working.shape)
    box = tuple(slice(a, b) for a, b in zip(low, high))
    grid = grid.copy()
    grid[:3, 3] += grid[:3, :3] @ low
    return working[box], None if brain is None else brain[box], inside[box], grid


def head_mask(image: np.ndarray) -> np.ndarray:
    """The head: voxels brighter than a tenth of the robust maximum, holes filled."""
    threshold = 0.1 * np.percentile(image, 99)
    return ndimage.binary_fill_holes(ndimage.binary_opening(image > threshold, iterations=1))


def antialiased(array: np.ndarray, affine: np.ndarray, spacing: float) -> np.ndarray:
    """Smooth a scan whose voxels are finer than ``spacing`` before it is sampled at ``spacing``."""
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    sigma = np.sqrt(np.maximum((spacing / sizes) ** 2 - 1, 0)) / 2
    return ndimage.gaussian_filter(array, sigma) if sigma.max() > 0.25 else array
