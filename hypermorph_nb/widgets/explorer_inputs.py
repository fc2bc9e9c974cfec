"""What the λ explorer is given: data of the model's shape, a pair, NIfTI files, initial slices."""

import os
import pathlib

import ipywidgets as widgets
import numpy as np

from ..data.dataset import Dataset
from ..data.readers import read_file
from ..data.validation import as_labels


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
    checked with :func:`hypermorph_nb.data.validation.as_labels`.
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


def as_dataset(data, inshape):
    """``data`` as a Dataset of the model's spatial shape ``inshape``, or a clear error."""
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (np.ndarray, list, tuple)):
        dataset = Dataset.from_arrays(np.asarray(data))
    else:
        raise TypeError(f"data must be a hypermorph_nb.data.Dataset or an (N, *spatial) array, "
                        f"got {type(data).__name__}; for two arrays use LambdaExplorer.from_arrays")
    if dataset.shape != tuple(inshape):
        raise ValueError(f"data images are {dataset.shape} but the model was built for {tuple(inshape)}; "
                         "explore data of the model's shape (or build the model with inshape=data.shape)")
    return dataset


def check_pair(pair, n_images):
    """``(moving, fixed)`` indices, checked against ``n_images``."""
    try:
        moving, fixed = (int(index) for index in pair)
    except (TypeError, ValueError) as err:
        raise ValueError(f"pair must be two image indices (moving, fixed), got {pair!r}") from err
    for name, index in (("moving", moving), ("fixed", fixed)):
        if not 0 <= index < n_images:
            raise ValueError(f"{name} index {index} is out of range for {n_images} images")
    return moving, fixed


def mean_present(scores):
    """Mean of the non-NaN scores (NaN when there are none)."""
    present = scores[~np.isnan(scores)]
    return float(present.mean()) if present.size else float("nan")
