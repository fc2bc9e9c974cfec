"""What the λ explorer is given: arrays or NIfTI files, initial slices."""

import os
import pathlib

import ipywidgets as widgets
import numpy as np

from ..data.readers import read_file
from ..checks.arrays import as_labels


def slice_sliders(views, slices):
    """One IntSlider per plane of a volume (none for a 2D image), at ``slices`` or the middle."""
    slices = dict(slices or {})
    unknown = set(slices) - {view.name for view in views if view.axis is not None}
    if unknown:
        raise ValueError(f"slices names planes {sorted(unknown)}, but this image has "
                         f"{[view.name for view in views if view.axis is not None] or 'no slice axes (2D)'}")
    sliders = {}
    for view in views:
        if view.axis is None:
            continue
        index = int(slices.get(view.name, view.size // 2))
        if not 0 <= index < view.size:
            raise ValueError(f"{view.name} slice {index} is out of range 0..{view.size - 1}")
        sliders[view.name] = widgets.IntSlider(
            value=index, min=0, max=view.size - 1, description=view.name, continuous_update=True,
            layout=widgets.Layout(width="300px"))
    return sliders


def read_array(source, name, *, labels=False):
    """An array, or a NIfTI file's data and affine; ``(array, affine or None)``.

    Files are read with :func:`hypermorph_nb.data.readers.read_file`; label maps are
    checked with :func:`hypermorph_nb.checks.arrays.as_labels`.
    """
    if not isinstance(source, (str, os.PathLike)):
        return np.asarray(source), None
    path = pathlib.Path(source)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"{name} {str(path)!r}: give an array or a NIfTI file (.nii or .nii.gz)")
    if not path.exists():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist")
    array, affine = read_file(path, role="label map" if labels else "image")
    if labels:
        array = as_labels(array[None], name=f"{name} {str(path)!r}", image_shape=(1, *array.shape))[0]
    return array, affine


def mean_present(scores):
    """Mean of the non-NaN scores (NaN when there are none)."""
    present = scores[~np.isnan(scores)]
    return float(present.mean()) if present.size else float("nan")
