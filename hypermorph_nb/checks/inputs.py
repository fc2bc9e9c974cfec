"""Check a user's moving and fixed images before a model registers them.

:func:`prepare_pair` turns two arrays into what a model takes, or refuses them
with an error that names the problem and the fix: the model's number of
dimensions (a 2D model given a volume, or the reverse; 4D arrays), its shape,
NaN/inf, the intensity range (normalised as the data loaders do, see
:mod:`hypermorph_nb.checks.arrays`) and, when both affines are known, the
voxel grid (see :mod:`hypermorph_nb.checks.grids`). :func:`prepare_labels` checks
a label map against its image and moves it with a resampled moving image, and
:func:`check_model_shape` is the one check of images against the model's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .affines import same_grid
from .arrays import as_images, as_labels, check_normalize
from .grids import match_grid


@dataclasses.dataclass
class PreparedPair:
    """A moving and a fixed image checked, on one grid, with intensities in [0, 1].

    Attributes
    ----------
    moving, fixed : np.ndarray
        Spatial float32 arrays of the model's shape.
    moving_scale : tuple of float
        ``(scale, offset)``: the moving image's original intensities are
        ``moving * scale + offset``.
    resampled : bool
        Whether the moving image was resampled onto the fixed grid.
    notes : list of str
        What was done to the input (normalisation, resampling), for warnings.
    """

    moving: np.ndarray
    fixed: np.ndarray
    moving_scale: tuple[float, float] = (1.0, 0.0)
    resampled: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)

    def in_moving_units(self, image: np.ndarray) -> np.ndarray:
        """``image`` (e.g. the moved image) mapped back to the moving image's intensities."""
        scale, offset = self.moving_scale
        if (scale, offset) == (1.0, 0.0):
            return image
        return (image * scale + offset).astype(np.float32)


def prepare_pair(inshape: tuple[int, ...], moving: ArrayLike, fixed: ArrayLike, *, normalize: str = "auto",
                 moving_affine: ArrayLike | None = None, fixed_affine: ArrayLike | None = None,
                 resample: bool = False, names: tuple[str, ...] = ("moving", "fixed")) -> PreparedPair:
    """Check a moving/fixed pair for a model of shape ``inshape`` and make it ready to register.

    Parameters
    ----------
    inshape : tuple of int
        The model's spatial shape.
    moving, fixed, normalize, moving_affine, fixed_affine, resample
        As in :func:`register`.
    names : tuple of str
        What the two images are (roles or file names), quoted in errors and notes.

    Returns
    -------
    PreparedPair
    """
    check_normalize(normalize)
    moving_name, fixed_name = names
    fixed = spatial_image(fixed, fixed_name, inshape)
    check_model_shape(fixed.shape, inshape, name=fixed_name)
    moving = spatial_image(moving, moving_name, inshape)
    resampled = False
    if moving_affine is not None and fixed_affine is not None:
        check_finite(moving, moving_name)
        moving, resampled = match_grid(moving, moving_affine, fixed.shape, fixed_affine,
                                       resample=resample, names=names)
    else:
        check_model_shape(moving.shape, inshape, name=moving_name)
    notes = []
    if resampled:
        notes.append(f"{moving_name} was resampled onto the grid of {fixed_name} by linear "
                     "interpolation (resample=True); the result lies on the fixed grid")
    moving, moving_scale, note = normalize_intensities(moving, moving_name, normalize)
    notes += [note] if note else []
    fixed, _, note = normalize_intensities(fixed, fixed_name, normalize)
    notes += [note] if note else []
    return PreparedPair(moving=moving, fixed=fixed, moving_scale=moving_scale, resampled=resampled,
                        notes=notes)


def prepare_labels(labels: ArrayLike, image: ArrayLike, *, role: str, name: str, image_name: str,
                   inshape: Sequence[int], labels_affine: ArrayLike | None = None,
                   image_affine: ArrayLike | None = None, pair: PreparedPair | None = None,
                   fixed_affine: ArrayLike | None = None) -> np.ndarray:
    """A label map checked against its image and, for a resampled moving image, resampled with it.

    The one rule of :func:`hypermorph_nb.export_registration` and
    ``LambdaExplorer.from_arrays``: the label map has its image's shape (and grid,
    when both affines are known) and holds whole numbers
    (:func:`hypermorph_nb.checks.arrays.as_labels`); when :func:`prepare_pair`
    resampled the moving image onto the fixed grid, its label map follows by
    nearest-neighbour interpolation.

    Parameters
    ----------
    labels : array_like
        The label map, spatial or ``(*spatial, 1)``.
    image : array_like
        The image it belongs to, as given (before any resampling).
    role : {'moving', 'fixed'}
        Which image of the pair it labels.
    name, image_name : str
        What the label map and the image are (files or roles), quoted in errors.
    inshape : tuple of int
        The model's spatial shape.
    labels_affine, image_affine : array_like, optional
        Their voxel → world matrices, when known.
    pair : PreparedPair, optional
        For the moving label map: the prepared pair, whose ``resampled`` says
        whether the moving image was put on the fixed grid.
    fixed_affine : array_like, optional
        The fixed grid's affine (needed when ``pair.resampled``).

    Returns
    -------
    np.ndarray
        int32 label map of the model's shape.

    Examples
    --------
    >>> prepare_labels(np.ones((8, 8)), np.zeros((8, 8)), role="moving", name="seg",
    ...                image_name="moving", inshape=(8, 8)).dtype
    dtype('int32')
    """
    array = spatial_image(labels, name, inshape)
    image_shape = spatial_image(image, image_name, inshape).shape
    if array.shape != image_shape:
        raise ValueError(f"{name} has shape {array.shape} but the {role} image {image_name} has "
                         f"{image_shape}; give the label map of the {role} image")
    if labels_affine is not None and image_affine is not None \
            and not same_grid(labels_affine, image_affine):
        raise ValueError(f"{name} and the {role} image {image_name} have different affines; "
                         f"give the label map that belongs to the {role} image (same grid)")
    array = as_labels(array[None], name=name, image_shape=(1, *array.shape))[0]
    if pair is not None and pair.resampled:
        array, _ = match_grid(array, image_affine, pair.fixed.shape, fixed_affine, resample=True,
                              order=0, names=(name, "the fixed image"))
    check_model_shape(array.shape, inshape, name=name)
    return array


def spatial_image(image: ArrayLike, name: str, inshape: Sequence[int]) -> np.ndarray:
    """``image`` without its channel axis, checked to have the model's number of dimensions.

    Examples
    --------
    >>> spatial_image(np.zeros((8, 8, 1)), "moving", (8, 8)).shape
    (8, 8)
    """
    array = np.asarray(image)
    ndims = len(inshape)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: an image must hold numbers, got dtype {array.dtype}")
    if array.ndim == ndims + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == ndims:
        return array
    model_shape = tuple(inshape)
    if array.ndim >= 4:
        raise ValueError(
            f"{name} has {array.ndim} dimensions (shape {array.shape}): a 4D image (a time series "
            f"or several channels) is not one image; pass one {ndims}D image of shape "
            f"{model_shape}, e.g. image[..., 0] (for a file: nibabel's img.slicer[..., 0])")
    if array.ndim == 3:
        raise ValueError(
            f"{name} is a 3D volume of shape {array.shape}, but this model registers 2D images of "
            f"shape {model_shape}; build a 3D model for volumes "
            f"(hnb.build_hypermorph({array.shape})), or register 2D slices (e.g. volume[:, :, k])")
    if array.ndim == 2:
        raise ValueError(
            f"{name} is a 2D image of shape {array.shape}, but this model registers 3D volumes of "
            f"shape {model_shape}; pass the whole volume, or build a 2D model for slices "
            f"(hnb.build_hypermorph({array.shape}))")
    raise ValueError(f"{name} has shape {array.shape}, but the model expects {model_shape} or "
                     f"{(*model_shape, 1)}")


def normalize_intensities(image: np.ndarray, name: str,
                          normalize: str) -> tuple[np.ndarray, tuple[float, float], str | None]:
    """Intensities in [0, 1] by the data loaders' policy, and what was done.

    Returns
    -------
    image : np.ndarray
        float32 in [0, 1].
    scale : tuple of float
        ``(scale, offset)`` with ``original = image * scale + offset``.
    note : str or None
        A sentence for a warning when ``normalize='auto'`` changed the image.

    Examples
    --------
    >>> image, scale, note = normalize_intensities(np.full((4, 4), 255, np.uint8), "moving", "auto")
    >>> float(image.max()), scale
    (1.0, (255.0, 0.0))
    """
    check_finite(image, name)
    low, high = float(image.min()), float(image.max())
    if normalize == "none":
        if low < 0 or high > 1:
            raise ValueError(
                f"{name}: intensities span [{low:g}, {high:g}], but the model works on [0, 1] "
                "(normalize='none'); rescale the image (image / 255 for 8-bit, else "
                "(image - min) / (max - min)), or pass normalize='auto' to rescale it here")
        return image.astype(np.float32), (1.0, 0.0), None
    scaled = as_images(image.reshape(1, -1, 1), name=name, normalize=normalize).reshape(image.shape)
    new_low, new_high = float(scaled.min()), float(scaled.max())
    if new_high > new_low:          # the policy is an affine map of the intensities: invert it
        scale = (high - low) / (new_high - new_low)
    else:                           # a constant image: a pure scaling (e.g. / 255) or shift
        scale = low / new_low if new_low else 1.0
    offset = low - new_low * scale
    if np.isclose(scale, 1.0) and np.isclose(offset, 0.0):
        return scaled, (1.0, 0.0), None
    note = None
    if normalize == "auto":
        how = "divided by 255 (8-bit)" if image.dtype == np.uint8 else "rescaled by its minimum and maximum"
        note = (f"{name}: intensities span [{low:g}, {high:g}] ({image.dtype}), so they were {how} "
                "to [0, 1], the range the model works on (normalize='auto', as the data loaders "
                "do); pass images in [0, 1] to silence this, normalize='minmax' to rescale "
                "without a warning, or normalize='none' to refuse such images")
    return scaled, (float(scale), float(offset)), note


def check_model_shape(shape: Sequence[int], inshape: Sequence[int], *, name: str) -> tuple[int, ...]:
    """Refuse images whose spatial ``shape`` is not the model's ``inshape``: the one rule and message.

    Every caller uses it: :func:`hypermorph_nb.register`, :func:`hypermorph_nb.export_registration`,
    the λ sweeps, :func:`hypermorph_nb.train` (training and validation data) and the λ explorer.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the images (``data.shape`` of a Dataset, ``image.shape`` of one image).
    inshape : tuple of int
        The model's spatial shape.
    name : str
        What the images are (``'moving'``, ``'validation_data'``, a file name), quoted in the error.

    Returns
    -------
    tuple of int
        ``shape``.

    Examples
    --------
    >>> check_model_shape((32, 32), (32, 32), name="data")
    (32, 32)
    >>> check_model_shape((16, 16, 16), (32, 32), name="data")
    Traceback (most recent call last):
    ...
    ValueError: data has shape (16, 16, 16), but the model was built for 2D images of shape (32, 32); resize the images to (32, 32), or build a model for their shape (hnb.build_hypermorph((16, 16, 16)))
    """
    shape, inshape = tuple(int(side) for side in shape), tuple(int(side) for side in inshape)
    if shape != inshape:
        raise ValueError(
            f"{name} has shape {shape}, but the model was built for {len(inshape)}D "
            f"images of shape {inshape}; resize the images to {inshape}, or build a model for "
            f"their shape (hnb.build_hypermorph({shape}))")
    return shape


def check_finite(array: ArrayLike, name: str) -> None:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or mask them first")
