"""What a cohort of scans is aligned to, and the grid it lands on.

:func:`hypermorph_nb.prepare_scans` aligns scans to one of three targets: a model's space
(its grid and reference brain, :func:`space_of`), a scan or template file around whose brain a
grid is built (:func:`template_scan`, :func:`grid_around`, :func:`place_on_grid`), or a
template built from the cohort starting from such a placed scan.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pathlib

import numpy as np
from scipy import ndimage

from ..pretrained.registry import is_pretrained_name
from .folders import own_entries
from .readers import read_file
from .scans import PreparedScan, Reference, Scan, antialiased, head_mask, onto_grid, score_against

#: Voxels of margin around the reference brain in the default grid, then rounded up to 8.
MARGIN = 4


def space_of(reference: Any, spacing: float | None, shape: Sequence[int] | None,
             reference_mask: Any) -> Any:
    """The ModelSpace of ``reference`` when it is a model or a space (None otherwise), checked."""
    if is_pretrained_name(reference):
        raise ValueError(f"reference={reference!r} names a model: pass the model itself, "
                         f"reference=hnb.load_model({reference!r})")
    spec = getattr(reference, "hypermorph_spec", None)
    space = spec.space if spec is not None else reference
    if not all(hasattr(space, name) for name in ("shape", "affine", "reference", "voxel_size")):
        if spec is not None:
            raise ValueError("reference=model: this model does not know its space (it was trained on data "
                             "without an affine); train it on prepare_scans(...).dataset, or give a template "
                             "file or None as the reference")
        return None
    if reference_mask is not None:
        raise ValueError("reference_mask is the mask of a template file; a model's space brings its own brain "
                         "mask: leave reference_mask out")
    if space.reference is None or len(space.shape) != 3:
        raise ValueError(f"reference: the model's space {tuple(space.shape)} has no 3D reference image to "
                         "align scans to; give a template file or None as the reference")
    if shape is not None and tuple(int(s) for s in shape) != tuple(space.shape):
        raise ValueError(f"shape={tuple(shape)} differs from the model's grid {tuple(space.shape)}; leave shape "
                         "out when aligning to a model's space")
    if spacing is not None and not np.allclose(space.voxel_size, spacing):
        raise ValueError(f"spacing={spacing} differs from the model's voxel size {space.voxel_size}; leave "
                         "spacing out when aligning to a model's space")
    return space


def is_one_of(reference: Any, entries: Sequence[tuple[Any, ...]]) -> bool:
    """Whether ``reference`` is the path of one of the input scans."""
    if reference is None or isinstance(reference, (int, np.integer)):
        return False
    target = pathlib.Path(reference).resolve()
    return any(path.resolve() == target for _, path, _, _ in entries)


def template_scan(reference: Any, entries: Sequence[tuple[Any, ...]], scans: Sequence[Scan],
                  reference_mask: Any) -> Scan:
    """The scan (or template file) the grid is built around, as a :class:`Scan`."""
    if reference is None:
        return scans[0]
    if isinstance(reference, (int, np.integer)):
        if not -len(scans) <= reference < len(scans):
            raise ValueError(f"reference={reference}: there are {len(scans)} scans; give an index "
                             f"0..{len(scans) - 1}, a scan or template path, or None")
        return scans[int(reference)]
    if is_one_of(reference, entries):
        target = pathlib.Path(reference).resolve()
        return next(scan for scan in scans if pathlib.Path(scan.path).resolve() == target)
    path = pathlib.Path(reference)
    array, _ = read_file(path, role="image") if path.is_file() else (None, None)
    if array is not None and array.ndim != 3:
        raise ValueError(f"{path}: the template is {array.ndim}D {array.shape}, but the scans are 3D; "
                         "give a 3D template (NIfTI/MGZ) or reference=None to build one from the scans")
    label = reference_mask
    if label is None and path.is_file():
        found = {entry[1]: entry[2] for entry in own_entries(path.parent, "auto", require_all=False)}
        label = found.get(path)
    template = Scan.read(path, mask=label)
    if template.brain is None and (template.array == 0).mean() > 0.2:
        template.mask = ndimage.binary_fill_holes(template.array > 0)
    return template


def grid_around(template: Scan, spacing: float,
                shape: Sequence[int] | None) -> tuple[tuple[int, ...], np.ndarray]:
    """The output grid: RAS, ``spacing`` mm, centred on the template's brain (or head)."""
    affine = template.affine
    region = template.brain if template.brain is not None else head_mask(template.array)
    corners = np.array(np.nonzero(region))
    low, high = corners.min(axis=1), corners.max(axis=1)
    box = np.array(np.meshgrid(*[[low[a] - 0.5, high[a] + 0.5] for a in range(3)], indexing="ij")).reshape(3, -1)
    world = (affine[:3, :3] @ box).T + affine[:3, 3]
    lowest, highest = world.min(axis=0), world.max(axis=0)
    if shape is None:
        size = np.ceil((highest - lowest) / spacing).astype(int) + 2 * MARGIN
        shape = tuple(int(s) for s in -(-size // 8) * 8)
    else:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be three positive sizes (D, H, W), got {shape}")
    grid = np.diag([spacing, spacing, spacing, 1.0])
    grid[:3, 3] = (lowest + highest) / 2 - (np.asarray(shape) - 1) / 2 * spacing
    return shape, grid


def place_on_grid(template: Scan, shape: tuple[int, ...], grid: np.ndarray,
                  percentiles: tuple[float, float]) -> Reference:
    """The template scan itself on the grid (no alignment: the grid lies in its world)."""
    result = onto_own_world(template, Reference(np.zeros(shape, np.float32), grid), percentiles)
    assert result.image is not None  # onto_own_world resamples it
    return Reference(image=result.image, affine=grid, mask=result.mask, labels=result.labels)


def onto_own_world(scan: Scan, reference: Reference, percentiles: tuple[float, float]) -> PreparedScan:
    """A scan resampled onto a grid in its own world (the reference scan: transform = identity)."""
    result = PreparedScan(name=scan.name, path=scan.path, transform=np.eye(4), correlation=1.0)
    smoothed = antialiased(scan.array, scan.affine, reference.spacing)
    inside = scan.brain if scan.brain is not None else head_mask(scan.array)
    low, high = np.percentile(smoothed[inside], percentiles)
    result.window = (float(low), float(high if high > low else low + 1.0))
    onto_grid(result, scan, smoothed, reference)
    if reference.labels is not None or reference.mask is not None:
        score_against(result, reference)
    return result
