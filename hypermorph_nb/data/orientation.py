"""Left–right sanity of a prepared scan: does it fit the reference better than its mirror image?

A scan whose voxels were flipped left–right while its header stayed as it was (a classic
conversion error) is a mirror-image brain: the affine alignment cannot undo a reflection, so it
lines the mirrored brain up with the template, and since brains are nearly mirror-symmetric the
result looks right and correlates almost as well as a correct scan. What gives it away is the
brain's small, consistent asymmetries (the frontal and occipital petalia, the wider left
occipital horn and sylvian fissure): a correct scan shares the template's, a flipped one has
their mirror image.

:func:`check_orientation` measures that without labels, with any template (the pretrained
model's mean brain, a cohort template or one scan): it mirrors the prepared scan about the
reference's mid-sagittal plane (the world's left–right axis, RAS x, through the reference
brain's centre), aligns the scan and its mirror image to the reference in the same way (rigid
then affine), and compares their mutual information with the reference (the alignment's own
metric: Mattes, 32 bins, a seeded sample of the reference's brain region, at half resolution).
The score is the scan's information minus its mirror's: positive when the scan fits as it is,
negative when its mirror image fits better. Aligning both
the same way matters: the scan was already aligned to the template, and an affine alignment
absorbs part of any asymmetry (the torque of the petalia is nearly a shear), so comparing the
aligned scan with its mirror without realigning the mirror favours the scan as it is.

The plane of the mirror need not be exact: the mirror image is aligned afterwards, which takes
up any rotation or shift of the plane.

Examples
--------
>>> import numpy as np
>>> from hypermorph_nb.data.scans import Reference
>>> grid = np.mgrid[:24, :24, :24].astype("float32")
>>> head = np.exp(-(((grid - 12) / np.array([7.0, 9.0, 8.0])[:, None, None, None]) ** 2).sum(0))
>>> head += 0.6 * np.exp(-(((grid - np.array([17.0, 15.0, 12.0])[:, None, None, None]) / 2.5) ** 2).sum(0))
>>> reference = Reference(image=head / head.max(), affine=np.diag([2.0, 2.0, 2.0, 1.0]))
>>> check_orientation(reference.image, reference).flipped
False
>>> check_orientation(reference.image[::-1], reference).flipped
True
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from .alignment import align_affine, resample

if TYPE_CHECKING:  # the scans module calls this one
    from .scans import Reference

#: A scan whose mutual information with the reference exceeds its mirror image's by less than
#: this (nats) is flagged as flipped left–right: below zero its mirror image fits better.
FLIP_THRESHOLD = 0.0
#: Shrink factors of the realignments (rigid, then affine), coarse to fine. The score is the
#: information at the last (shrunk by 2, smoothed): the lateralised features it rests on are
#: large (lobes, ventricles, fissures), each brain's own folding is fine detail.
LEVELS = ((4, 2), (2,))
#: How the manifest describes the check.
LEFT_RIGHT_CHECK = ("left_right_score: mutual information (nats) of the aligned scan with the template minus that "
                    "of its mirror image (mirrored about the template's mid-sagittal plane, aligned alike); "
                    f"left_right_flipped: score < {FLIP_THRESHOLD} (the mirror image fits better: the data are "
                    "probably flipped left-right)")


@dataclasses.dataclass(frozen=True)
class OrientationCheck:
    """What :func:`check_orientation` found.

    Attributes
    ----------
    score : float
        Mutual information (nats) of the realigned scan with the reference minus that of its
        realigned mirror image: > 0 the scan fits as it is, < 0 its mirror image fits better.
    flipped : bool
        ``score < threshold``: the scan's data are probably flipped left–right.
    threshold : float
        The threshold it was judged by.
    """

    score: float
    flipped: bool
    threshold: float = FLIP_THRESHOLD

    def record(self) -> dict[str, Any]:
        """The entry of the manifest and the sidecar (JSON).

        Examples
        --------
        >>> OrientationCheck(0.0712, False).record()
        {'left_right_score': 0.0712, 'left_right_flipped': False, 'threshold': 0.0}
        """
        return {"left_right_score": round(float(self.score), 5), "left_right_flipped": bool(self.flipped),
                "threshold": float(self.threshold)}


def flip_warning(score: float | None) -> str:
    """What to say of a scan flagged by :func:`check_orientation` (after its path).

    Examples
    --------
    >>> print(flip_warning(-0.08))  # doctest: +ELLIPSIS
    its mirror image fits the template better than the scan itself (left-right score -0.080 < 0): ...
    """
    return (f"its mirror image fits the template better than the scan itself (left-right score "
            f"{score if score is not None else float('nan'):.3f} < {FLIP_THRESHOLD:g}): its data are probably "
            "flipped left-right while its header is not (a conversion error); check how it was converted "
            "(e.g. convert the DICOM again with dcm2niix), then flip the data along its left-right axis or "
            "fix the header's affine, and compare it with a correct scan in a viewer")


def mirror_matrix(reference: Reference) -> np.ndarray:
    """The 4×4 world (RAS) reflection about the reference's mid-sagittal plane.

    The plane is ``x = c`` (RAS x: the subject's left–right axis), ``c`` the centre of the
    reference's brain mask (or of its image's intensity, without a mask).

    Examples
    --------
    >>> from hypermorph_nb.data.scans import Reference
    >>> image = np.zeros((10, 4, 4), "float32"); image[2:6] = 1
    >>> mirror_matrix(Reference(image=image, affine=np.eye(4)))[0].tolist()
    [-1.0, 0.0, 0.0, 7.0]
    """
    weights = reference.mask.astype(np.float64) if reference.mask is not None else np.clip(reference.image, 0, None)
    if not weights.any():
        weights = np.ones(reference.shape)
    centre = np.asarray(ndimage.center_of_mass(weights))
    centre_x = float(reference.affine[0, :3] @ centre + reference.affine[0, 3])
    matrix = np.diag([-1.0, 1.0, 1.0, 1.0])
    matrix[0, 3] = 2 * centre_x
    return matrix


def check_orientation(image: np.ndarray, reference: Reference, *, threshold: float = FLIP_THRESHOLD,
                      seed: int = 0) -> OrientationCheck:
    """Whether a prepared scan fits the reference better as it is than mirrored left–right.

    Parameters
    ----------
    image : np.ndarray
        The scan on the reference's grid, affinely aligned to it (as :func:`.scans.prepare_scan`
        makes it, ``PreparedScan.image``).
    reference : Reference
        The template it was aligned to.
    threshold : float
        Flag the scan when its score (see :class:`OrientationCheck`) is below this.
    seed : int
        Seed of the realignments' metric sampling.

    Returns
    -------
    OrientationCheck

    Raises
    ------
    ValueError
        When ``image`` is not on the reference's grid.

    Examples
    --------
    A mirrored head is flagged in the module's example; a scan on another grid is refused:

    >>> from hypermorph_nb.data.scans import Reference
    >>> reference = Reference(image=np.ones((8, 8, 8), "float32"), affine=np.eye(4))
    >>> check_orientation(np.ones((8, 8, 7)), reference)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the image has shape (8, 8, 7), but the reference's grid is (8, 8, 8); ...
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape != reference.shape:
        raise ValueError(f"the image has shape {image.shape}, but the reference's grid is {reference.shape}; "
                         "give the scan as prepared onto the reference (PreparedScan.image)")
    mirror = mirror_matrix(reference)
    region = reference.metric_mask()
    information = []
    for transform in (np.eye(4), mirror):
        moving = resample(image, reference.affine, reference.shape, reference.affine, transform=transform)
        found = align_affine(reference.image, reference.affine, moving, reference.affine, fixed_mask=region,
                             levels=LEVELS[0], affine_levels=LEVELS[1], seed=seed)
        information.append(-found.metric)
    score = information[0] - information[1]
    return OrientationCheck(score=score, flipped=bool(score < threshold), threshold=threshold)

