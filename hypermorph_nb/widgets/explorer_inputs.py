"""What the λ explorer is given: arrays or NIfTI files (:class:`FromArraysMixin`), initial slices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TYPE_CHECKING, TypeAlias

import os
import pathlib
import warnings

from numpy.typing import ArrayLike
import ipywidgets as widgets
import numpy as np

from ..checks.arrays import as_labels
from ..checks.grids import input_affine
from ..checks.inputs import prepare_labels, prepare_pair
from ..data.dataset import Dataset
from ..data.readers import read_file

if TYPE_CHECKING:
    import tensorflow as tf
    from typing_extensions import Self

    from .views import PlaneView

#: An image or label map: an array, or the path of a NIfTI file.
ArrayOrFile: TypeAlias = "ArrayLike | str | os.PathLike[str]"


class FromArraysMixin:
    """Adds :meth:`from_arrays` to an explorer class: one pair of arrays or NIfTI files as its data."""

    @classmethod
    def from_arrays(cls, model: tf.keras.Model, moving: ArrayOrFile, fixed: ArrayOrFile, *,
                    moving_labels: ArrayOrFile | None = None, fixed_labels: ArrayOrFile | None = None,
                    moving_affine: ArrayLike | None = None, fixed_affine: ArrayLike | None = None,
                    resample: bool = False, normalize: str = "auto", **options: Any) -> Self:
        """Explore one pair of your own arrays or NIfTI files.

        The pair and its label maps are checked and read by
        :func:`~hypermorph_nb.widgets.explorer_inputs.pair_dataset` (its parameters, as
        :func:`hypermorph_nb.register` and :func:`hypermorph_nb.export_registration` check theirs);
        ``**options`` go to :class:`LambdaExplorer` (``lam``, ``display``, ``affine``, ...).

        Returns
        -------
        LambdaExplorer

        Examples
        --------
        >>> import numpy as np, hypermorph_nb as hnb
        >>> from hypermorph_nb.widgets import LambdaExplorer
        >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
        >>> rng = np.random.default_rng(0)
        >>> explorer = LambdaExplorer.from_arrays(model, rng.random((32, 32)), rng.random((32, 32)),
        ...                                       display="image")
        >>> explorer.moving_picker.label
        'moving'
        """
        from ..networks.models import require_hypermorph

        inshape = require_hypermorph(model, "LambdaExplorer").inshape
        data = pair_dataset(inshape, moving, fixed, moving_labels=moving_labels, fixed_labels=fixed_labels,
                            moving_affine=moving_affine, fixed_affine=fixed_affine, resample=resample,
                            normalize=normalize)
        explorer: Any = cls  # the explorer's constructor: (model, data, *, pair, **options)
        return explorer(model, data, pair=(0, 1), **options)


def pair_pickers(names: Sequence[str] | int, moving: int, fixed: int) -> tuple[widgets.Dropdown, widgets.Dropdown]:
    """The moving and fixed pickers over images named ``names`` (or numbered ``#0``... for a count)."""
    if isinstance(names, int):
        names = [f"#{index}" for index in range(names)]
    options = [(str(name), index) for index, name in enumerate(names)]
    return (widgets.Dropdown(options=options, value=moving, description="moving"),
            widgets.Dropdown(options=options, value=fixed, description="fixed"))


def slice_sliders(views: Sequence[PlaneView],
                  slices: Mapping[str, int] | None) -> dict[str, widgets.IntSlider]:
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


def read_array(source: ArrayOrFile, name: str, *,
               labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
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


def pair_dataset(inshape: tuple[int, ...], moving: ArrayOrFile, fixed: ArrayOrFile, *,
                 moving_labels: ArrayOrFile | None = None, fixed_labels: ArrayOrFile | None = None,
                 moving_affine: ArrayLike | None = None, fixed_affine: ArrayLike | None = None,
                 resample: bool = False, normalize: str = "auto") -> Dataset:
    """One moving/fixed pair of arrays or NIfTI files as a two-image :class:`Dataset`.

    Checked as :func:`hypermorph_nb.register` checks its pair (:func:`~hypermorph_nb.checks.inputs.prepare_pair`)
    and the label maps as the export checks them; ``affines`` are the fixed image's.

    Parameters
    ----------
    inshape : tuple of int
        The model's input shape.
    moving, fixed : array_like or path
        Images of the model's shape, ``spatial`` or ``(*spatial, 1)``, or paths
        of NIfTI files (``.nii``/``.nii.gz``, read with nibabel, with their affines).
    moving_labels, fixed_labels : array_like or path, optional
        Integer label maps (both or neither), on the grid of their image.
    moving_affine, fixed_affine : array_like, optional
        4×4 voxel → world matrices of images given as arrays (a file brings its own).
        When both affines are known the two images must lie on one grid, or
        ``resample=True`` resamples the moving image (and its labels) onto the
        fixed grid. The fixed affine orients the views unless ``affine=`` is given.
    resample : bool
        See ``moving_affine``.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, as in :func:`hypermorph_nb.register` (a warning says
        what ``'auto'`` changed).
    """
    if (moving_labels is None) != (fixed_labels is None):
        raise ValueError("pass both moving_labels and fixed_labels, or neither")
    moving, moving_file_affine = read_array(moving, "moving")
    fixed, fixed_file_affine = read_array(fixed, "fixed")
    moving_affine = input_affine(moving_file_affine, moving_affine, name="moving",
                                 keyword="moving_affine")
    fixed_affine = input_affine(fixed_file_affine, fixed_affine, name="fixed", keyword="fixed_affine")
    pair = prepare_pair(inshape, moving, fixed, normalize=normalize, moving_affine=moving_affine,
                        fixed_affine=fixed_affine, resample=resample)
    for note in pair.notes:
        warnings.warn(note, UserWarning, stacklevel=3)   # at the caller of LambdaExplorer.from_arrays
    labels = None
    if moving_labels is not None:
        label_maps = []
        for role, source, image, image_affine in (("moving", moving_labels, moving, moving_affine),
                                                  ("fixed", fixed_labels, fixed, fixed_affine)):
            assert source is not None  # both label maps or neither, checked above
            array, array_affine = read_array(source, f"{role}_labels", labels=True)
            label_maps.append(prepare_labels(
                array, image, role=role, name=f"{role}_labels", image_name=role, inshape=inshape,
                labels_affine=array_affine, image_affine=image_affine,
                pair=pair if role == "moving" else None, fixed_affine=fixed_affine))
        labels = np.stack(label_maps)
    return Dataset(images=np.stack([pair.moving, pair.fixed])[..., None], labels=labels,
                   names=["moving", "fixed"], source="arrays", affines=fixed_affine)
