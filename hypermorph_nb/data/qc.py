"""The quality-control picture of a scan preparation: every scan over the template's outline.

:func:`qc_figure` draws, for every scan of a :func:`hypermorph_nb.prepare_scans` run, its
axial, coronal and sagittal mid-slices on the common grid with the outline of the template's
brain mask in red, titled with its status, and below them the cohort's affine-only label Dice
per scan, failed scans (left out) in red and outliers (kept, but far below the cohort's Dice)
in orange. A scan that is misaligned shows its brain off the outline. A scan whose data are
probably flipped left–right (:mod:`.orientation`) is titled ``L-R FLIPPED?`` and its bar marked
``flipped?``, in purple.

Examples
--------
>>> import numpy as np
>>> from hypermorph_nb.data.scans import PreparedScan, Reference
>>> image = np.zeros((16, 16, 16), "float32"); image[4:12, 4:12, 4:12] = 1
>>> reference = Reference(image=image, affine=np.eye(4), mask=image > 0)
>>> scans = [PreparedScan("a", "a.nii", image=image, label_dice=0.6),
...          PreparedScan("b", "b.nii", image=image, label_dice=0.2, status="failed", reason="x")]
>>> figure = qc_figure(scans, reference)
>>> len(figure.axes)
3
"""
from __future__ import annotations

from typing import Any

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

#: Scans per row of the picture.
COLUMNS = 4


def mid_slices(volume: np.ndarray) -> np.ndarray:
    """Axial, coronal and sagittal mid-slices of a RAS volume side by side (superior/anterior up).

    Examples
    --------
    >>> mid_slices(np.zeros((4, 6, 8))).shape
    (8, 18)
    """
    volume = np.asarray(volume, dtype=np.float32)
    i, j, k = (n // 2 for n in volume.shape)
    planes = [volume[:, :, k].T, volume[:, j, :].T, volume[i, :, :].T]   # rows: A/S up after flipud
    height = max(plane.shape[0] for plane in planes)
    width = max(plane.shape[1] for plane in planes)
    tiles = []
    for plane in planes:
        tile = np.zeros((height, width), np.float32)
        tile[:plane.shape[0], :plane.shape[1]] = plane
        tiles.append(np.flipud(tile))
    return np.concatenate(tiles, axis=1)


def qc_figure(scans: Sequence[Any], reference: Any) -> Figure:
    """The QC figure of prepared scans (see the module documentation).

    Parameters
    ----------
    scans : sequence of PreparedScan
        Every scan of the preparation, failed ones included.
    reference : Reference
        The template they were aligned to (its mask is outlined).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = -(-len(scans) // COLUMNS)
    figure = Figure(figsize=(4 * COLUMNS, 1.5 * rows + 2.8), layout="constrained")
    grid = figure.add_gridspec(rows + 1, COLUMNS, height_ratios=[1] * rows + [1.6])
    outline = None if reference.mask is None else mid_slices(reference.mask.astype(np.float32))
    for index, scan in enumerate(scans):
        axis = figure.add_subplot(grid[index // COLUMNS, index % COLUMNS])
        if scan.image is not None:
            axis.imshow(mid_slices(scan.image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if outline is not None:
                axis.contour(outline, levels=[0.5], colors="red", linewidths=0.6)
        failed = scan.status != "ok"
        flipped = not failed and scan.flipped
        mark = " FAILED" if failed else (" outlier" if scan.outlier else "") + (" L-R FLIPPED?" if flipped else "")
        axis.set_title(f"{scan.name}{mark}", fontsize=7, color="red" if failed else "purple" if flipped
                       else "darkorange" if scan.outlier else "black")
        axis.set_axis_off()
    axis = figure.add_subplot(grid[rows, :])
    dice = np.array([np.nan if scan.label_dice is None else scan.label_dice for scan in scans])
    correlation = np.array([np.nan if scan.correlation is None else scan.correlation for scan in scans])
    values, what = (dice, "affine-only label Dice vs template labels") if np.isfinite(dice).any() else (
        correlation, "correlation with the template")
    failed = np.array([scan.status != "ok" for scan in scans])
    outlier = np.array([scan.outlier for scan in scans])
    positions = np.arange(len(scans))
    colours = np.where(failed, "tab:red", np.where(outlier, "tab:orange", "tab:blue"))
    axis.bar(positions, np.nan_to_num(values), color=colours)
    if np.isfinite(values[~failed]).any():
        axis.axhline(np.nanmedian(values[~failed]), color="gray", linestyle="--", linewidth=0.8,
                     label="median of the aligned scans")
        axis.legend(loc="lower right", fontsize=7)
    flipped = np.array([scan.flipped for scan in scans], dtype=bool) & ~failed
    for position in np.flatnonzero(failed | outlier | flipped):
        what, colour = (("failed", "tab:red") if failed[position] else ("flipped?", "tab:purple") if flipped[position]
                        else ("outlier", "tab:orange"))
        axis.annotate(what, (position, np.nan_to_num(values[position])), ha="center", va="bottom", fontsize=6,
                      color=colour)
    axis.set_xticks(positions, [scan.name for scan in scans], rotation=90, fontsize=6)
    axis.set_ylabel(what, fontsize=8)
    axis.set_title(f"{len(scans) - failed.sum()} of {len(scans)} scans aligned; red: left out, "
                   "orange: kept, Dice far below the cohort's; purple: data probably flipped left-right",
                   fontsize=9)
    return figure


def save_qc_picture(path: str | os.PathLike[str], scans: Sequence[Any], reference: Any) -> str:
    """Draw :func:`qc_figure` and save it as a PNG at ``path`` (folders created); return the path."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    qc_figure(scans, reference).savefig(path, dpi=90)
    return os.fspath(path)
