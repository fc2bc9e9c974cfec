"""Checks that turn user arrays into valid images and label maps, or explain why not.

The intensity policy of every loader is set by ``normalize``:

``"auto"`` (default)
    An image whose values already lie in [0, 1] is kept exactly as it is (the
    OASIS slices are published in [0, 0.98] and stay comparable across
    subjects). An 8-bit image (``uint8``, e.g. a PNG or ixi3d) is divided by 255. Any
    other image (values outside [0, 1], e.g. raw MRI intensities or 16-bit
    PNGs) is rescaled on its own to [0, 1] by its minimum and maximum.
``"minmax"``
    Every image is rescaled on its own to [0, 1] by its minimum and maximum
    (a constant image becomes all zeros).
``"none"``
    Nothing is changed; an image with values outside [0, 1] is refused with
    an error that names it.

NaN or infinite intensities are always refused: no rescaling can repair them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numbers

from numpy.typing import ArrayLike
import numpy as np

NORMALIZE_MODES = ("auto", "minmax", "none")


def check_normalize(normalize: str) -> str:
    """Validate a ``normalize`` argument and return it.

    Examples
    --------
    >>> check_normalize("auto")
    'auto'
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
    return normalize


def as_images(array: ArrayLike, *, name: str, normalize: str = "auto") -> np.ndarray:
    """Turn a stack of 2D images or 3D volumes into ``(N, *spatial, 1)`` float32 in [0, 1].

    Parameters
    ----------
    array : array-like
        2D: ``(N, H, W)`` or ``(N, H, W, 1)``; 3D: ``(N, D, H, W)`` or
        ``(N, D, H, W, 1)``. A trailing axis of length 1 is a channel axis.
    name : str
        What the array is (a file or key), quoted in errors.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, see the module documentation.

    Returns
    -------
    np.ndarray
        ``(N, *spatial, 1)`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> as_images(np.full((2, 4, 4), 255, np.uint8), name="demo").max()
    np.float32(1.0)
    >>> as_images(np.array([[[0.0, 2.0], [4.0, 4.0]]]), name="demo")[0, ..., 0].tolist()
    [[0.0, 0.5], [1.0, 1.0]]
    >>> as_images(np.zeros((3, 8, 8, 8), np.uint8), name="volumes").shape
    (3, 8, 8, 8, 1)
    """
    check_normalize(normalize)
    array = np.asarray(array)
    if array.ndim in (4, 5) and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 5:
        raise ValueError(
            f"{name}: each item holds 4D data {array.shape[1:]} (a time series or several "
            "channels), but images must be 2D or 3D; keep one frame or channel per image, "
            "e.g. images[..., 0]")
    if array.ndim not in (3, 4):
        raise ValueError(
            f"{name}: images must have shape (N, H, W) for 2D or (N, D, H, W) for 3D (a trailing "
            f"channel axis of 1 is allowed), got {array.shape}; stack 2D images or 3D volumes "
            "along the first axis (one image: image[None])")
    if array.ndim == 4 and array.shape[-1] in (2, 3, 4) and min(array.shape[1:3]) >= 16:
        raise ValueError(
            f"{name}: shape {array.shape} looks like 2D images with {array.shape[-1]} colour "
            f"channels (N, H, W, C), not 3D volumes of only {array.shape[-1]} slices; convert "
            "them to grey (e.g. images.mean(axis=-1)) or keep one channel (images[..., 0])")
    if len(array) == 0:
        raise ValueError(f"{name}: holds no images (shape {array.shape}); give at least two")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: images must be numbers, got dtype {array.dtype}")
    flat = array.reshape(len(array), -1)
    lows, highs = flat.min(axis=1), flat.max(axis=1)   # NaN and inf show in the extremes
    if array.dtype.kind == "f":
        finite = np.isfinite(lows) & np.isfinite(highs)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(
                f"{name}: image(s) {_first(bad)} contain NaN or infinite values; replace them "
                "(e.g. np.nan_to_num(images)) or drop those images before loading")
    in_range = (lows >= 0) & (highs <= 1)
    if normalize == "none" and not in_range.all():
        index = int(np.flatnonzero(~in_range)[0])
        raise ValueError(
            f"{name}[{index}]: intensities span [{lows[index]:g}, {highs[index]:g}] but must lie "
            "in [0, 1]; rescale them yourself, or load them with normalize='auto' or 'minmax' "
            "(per image), e.g. Dataset.from_arrays(images, normalize='auto')")
    images = array.astype(np.float32)
    if normalize == "none":
        rescale = np.zeros(len(array), bool)
    elif normalize == "minmax":
        rescale = np.ones(len(array), bool)
    elif array.dtype == np.uint8:
        images /= 255.0
        rescale = np.zeros(len(array), bool)
    else:
        rescale = ~in_range
    for rescaled in np.flatnonzero(rescale):
        low, high = float(lows[rescaled]), float(highs[rescaled])
        image = array[rescaled].astype(np.float64)
        images[rescaled] = (image - low) / (high - low) if high > low else 0.0
    return images[..., None]


def as_labels(array: ArrayLike, *, name: str, image_shape: tuple[int, ...]) -> np.ndarray:
    """Turn label maps into ``(N, *spatial)`` int32 that match the images.

    Parameters
    ----------
    array : array-like
        ``(N, *spatial)`` or ``(N, *spatial, 1)`` integer labels (floats holding
        whole numbers, as NIfTI segmentations often store them, are accepted).
    name : str
        What the array is (a file or key), quoted in errors.
    image_shape : tuple of int
        ``(N, *spatial)`` of the images the labels belong to.

    Returns
    -------
    np.ndarray
        ``(N, *spatial)`` int32, 0 = background.

    Examples
    --------
    >>> import numpy as np
    >>> as_labels(np.ones((1, 2, 2), np.float32), name="demo", image_shape=(1, 2, 2)).dtype
    dtype('int32')
    """
    array = np.asarray(array)
    image_shape = tuple(image_shape)
    if array.ndim == len(image_shape) + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape != image_shape:
        raise ValueError(
            f"{name}: label maps have shape {array.shape} but the images have {image_shape}; "
            "each image needs one label map of the same size")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not (array == np.round(array)).all():
            raise ValueError(
                f"{name}: label maps must hold whole numbers (one integer per structure), "
                "but contain fractions, NaN or inf; was an interpolated image passed as labels? "
                "Use the original segmentation or pass labels=None to load without labels")
    elif array.dtype.kind not in "biu":
        raise ValueError(f"{name}: label maps must be integers, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: label maps contain negative values ({array.min()}); "
                         "use 0 for background and positive integers for structures")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{name}: label values exceed int32 ({array.max()}); renumber the labels")
    return array.astype(np.int32)


def array_summary(value: np.ndarray | None) -> str:
    """An array in a one-line repr: its dtype and shape, not its values (``None`` as is).

    Examples
    --------
    >>> array_summary(np.zeros((2, 3), "float32")), array_summary(None)
    ('float32 (2, 3)', 'None')
    """
    return "None" if value is None else f"{np.asarray(value).dtype} {np.shape(value)}"


def check_count(value: object, name: str) -> int:
    """``value`` as an int >= 1 (a whole float such as ``2.0`` is accepted).

    Examples
    --------
    >>> check_count(3, "batch_size")
    3
    >>> check_count(0, "batch_size")
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1, got 0
    """
    number = cast(float, value)  # a numbers.Real (int, float, NumPy scalar) once the first tests pass
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(number)
            or int(number) != number or number < 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(number)


def _first(indices: Sequence[int] | np.ndarray, count: int = 5) -> str:
    """A short, readable list of the first few ``indices``."""
    shown = ", ".join(str(i) for i in indices[:count])
    return shown + (f" and {len(indices) - count} more" if len(indices) > count else "")
