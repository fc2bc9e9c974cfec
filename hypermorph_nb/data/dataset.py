"""The in-memory dataset every loader returns: 2D or 3D images with optional label maps and affines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from numpy.typing import ArrayLike
import numpy as np

from ..checks.affines import AFFINE_ATOL, as_affines, voxel_sizes
from ..checks.arrays import as_images, as_labels
from ..checks.inputs import check_model_shape


@dataclasses.dataclass
class Dataset:
    """Images (and optionally label maps and affines) that travel together.

    Slicing (``data[2:5]``), :func:`even_split`, :func:`random_split` and
    :class:`PairBatches` keep each image's label map, name and affine with it.

    Attributes
    ----------
    images : np.ndarray
        ``(N, *spatial, 1)`` float32 in [0, 1]: ``(N, H, W, 1)`` 2D images or
        ``(N, D, H, W, 1)`` 3D volumes (converted to float32 when given
        another float type; NaN, inf and values outside [0, 1] are refused:
        build from raw arrays with :meth:`from_arrays`, which normalises).
    labels : np.ndarray or None
        ``(N, *spatial)`` integer label maps aligned with ``images`` (0 is
        background), or None when the source has none.
    label_names : dict of int to str, optional
        Name of each label value, when known.
    names : list of str, optional
        One identifier per image (subject id or file name).
    source : str
        Where the data came from, for reports.
    affines : np.ndarray or None
        ``(N, 4, 4)`` float64 voxel-to-world affines (mm, RAS as in NIfTI),
        or None when the source has none. One ``(4, 4)`` given here is
        repeated for every image.
    reference : np.ndarray or None
        A template on the images' grid (``images.shape[1:-1]``, in [0, 1]) that new scans are
        aligned to, e.g. the one :func:`hypermorph_nb.prepare_scans` built; a model
        trained on the data keeps it (:class:`~hypermorph_nb.networks.description.ModelSpace`).
    reference_mask : np.ndarray or None
        The template's brain mask (bool, same shape).

    Examples
    --------
    >>> import numpy as np
    >>> data = Dataset(images=np.zeros((4, 32, 32, 1), "float32"), labels=None)
    >>> len(data), data.shape, data.ndim, data.affine
    (4, (32, 32), 2, None)
    >>> len(data[1:3])
    2
    >>> volumes = Dataset(images=np.zeros((2, 8, 8, 8, 1), "float32"), affines=np.diag([2.0, 2, 2, 1]))
    >>> volumes.ndim, volumes[1:].voxel_sizes.tolist()
    (3, [[2.0, 2.0, 2.0]])
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    label_names: dict[int, str] | None = None
    names: list[str] | None = None
    source: str = ""
    affines: np.ndarray | None = None
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None

    def __post_init__(self):
        images = np.asarray(self.images)
        if images.ndim not in (4, 5) or images.shape[-1] != 1:
            raise ValueError(
                f"Dataset.images must have shape (N, H, W, 1) or (N, D, H, W, 1), got "
                f"{images.shape}; Dataset.from_arrays also accepts (N, H, W) and (N, D, H, W)")
        if images.dtype != np.float32:
            images = images.astype(np.float32)
        low, high = (images.min(), images.max()) if images.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high)):   # NaN and inf show in the extremes
            raise ValueError("Dataset.images contain NaN or infinite values; replace them "
                             "(e.g. np.nan_to_num) or drop those images")
        if low < 0 or high > 1:
            raise ValueError(
                f"Dataset.images must lie in [0, 1], got [{low:g}, {high:g}]; "
                "use Dataset.from_arrays(images, normalize='auto') to rescale them")
        self.images = images
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != images.shape[:-1]:
                raise ValueError(
                    f"Dataset.labels must have shape {images.shape[:-1]} to match the images, "
                    f"got {labels.shape}")
            if not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"Dataset.labels must be integers, got dtype {labels.dtype}")
        if self.names is not None and len(self.names) != len(images):
            raise ValueError(f"got {len(self.names)} names for {len(images)} images")
        if self.affines is not None:
            self.affines = as_affines(self.affines, len(images), name="Dataset.affines")
        for name in ("reference", "reference_mask"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != images.shape[1:-1]:
                raise ValueError(f"Dataset.{name} must have the images' spatial shape "
                                 f"{images.shape[1:-1]}, got {np.shape(value)}")

    @classmethod
    def from_arrays(cls, images: ArrayLike, labels: ArrayLike | None = None, *, normalize: str = "auto",
                    label_names: dict[int, str] | None = None, names: Sequence[str] | None = None,
                    source: str = "arrays", affines: np.ndarray | None = None) -> Dataset:
        """Build a Dataset from raw arrays, checking and normalising them.

        Parameters
        ----------
        images : array-like
            ``(N, H, W)``, ``(N, D, H, W)``, or either with a trailing axis of 1.
        labels : array-like, optional
            ``(N, *spatial)`` integer label maps.
        normalize : {'auto', 'minmax', 'none'}
            Intensity policy (see :mod:`hypermorph_nb.checks.arrays`).
        label_names, names, source, affines
            As the attributes.

        Examples
        --------
        >>> import numpy as np
        >>> data = Dataset.from_arrays(np.arange(32.0).reshape(2, 4, 4))
        >>> data.images.shape, float(data.images.max())
        ((2, 4, 4, 1), 1.0)
        """
        images = as_images(images, name="images", normalize=normalize)
        if labels is not None:
            labels = as_labels(labels, name="labels", image_shape=images.shape[:-1])
        return cls(images=images, labels=labels, label_names=label_names,
                   names=None if names is None else list(names), source=source, affines=affines)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        """A new Dataset with the selected images (int, slice or index array)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        names = None if self.names is None else list(np.asarray(self.names, dtype=object)[index])
        return Dataset(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            label_names=self.label_names,
            names=names,
            source=self.source,
            affines=None if self.affines is None else self.affines[index],
            reference=self.reference,
            reference_mask=self.reference_mask,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the images: ``(H, W)`` or ``(D, H, W)``."""
        return tuple(self.images.shape[1:-1])

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions: 2 or 3."""
        return self.images.ndim - 2

    @property
    def affine(self) -> np.ndarray | None:
        """The ``(4, 4)`` affine shared by every image (within 0.001 mm), else None.

        None also when no affines are known; per-image ones are in :attr:`affines`.
        """
        if self.affines is None or not len(self.affines):
            return None
        if not np.allclose(self.affines, self.affines[0], rtol=0, atol=AFFINE_ATOL):
            return None
        return self.affines[0].copy()

    @property
    def voxel_sizes(self) -> np.ndarray | None:
        """``(N, ndim)`` voxel sizes in mm from the affines, or None without affines."""
        return None if self.affines is None else voxel_sizes(self.affines, self.ndim)

    @property
    def has_labels(self) -> bool:
        """True when label maps are available (Dice can be computed)."""
        return self.labels is not None

    def label_values(self) -> np.ndarray:
        """Sorted non-zero label values present in the data."""
        if self.labels is None:
            return np.array([], dtype=int)
        return present_values(self.labels)

    def __repr__(self) -> str:
        labels = "no labels" if self.labels is None else f"{len(self.label_values())} labels"
        return f"Dataset({len(self)} images of {self.shape}, {labels}, source={self.source!r})"


def as_dataset(data: Dataset | ArrayLike, *, name: str = "data",
               inshape: Sequence[int] | None = None) -> Dataset:
    """``data`` as a Dataset: the one policy of every function that takes images as ``data``.

    A Dataset is used as it is. Arrays are accepted when they already are what a
    Dataset holds: ``(N, *spatial)`` or ``(N, *spatial, 1)`` images, finite, with
    intensities in [0, 1]; nothing is rescaled (a silent per-image rescaling
    would make scores and trained models depend on how the data was passed).
    Arrays of raw intensities are refused with the fix:
    ``Dataset.from_arrays(images, labels)`` rescales them by the loaders' policy
    and keeps label maps with them. :func:`hypermorph_nb.train` (training and
    validation data), the λ sweeps, λ tuning and the λ explorer all use it.

    Parameters
    ----------
    data : Dataset or array_like
        Images as a Dataset, or an array of images in [0, 1].
    name : str
        What the data is (``'validation_data'``, ...), quoted in errors.
    inshape : tuple of int, optional
        The model's spatial shape: images of another shape are refused by
        :func:`hypermorph_nb.checks.inputs.check_model_shape`.

    Returns
    -------
    Dataset

    Raises
    ------
    TypeError
        If ``data`` is neither a Dataset nor an array.
    ValueError
        If the arrays are no images in [0, 1], or have another shape than ``inshape``.

    Examples
    --------
    >>> import numpy as np
    >>> as_dataset(np.zeros((3, 8, 8)), inshape=(8, 8))
    Dataset(3 images of (8, 8), no labels, source='data')
    >>> as_dataset(np.full((2, 8, 8), 255.0))
    Traceback (most recent call last):
    ...
    ValueError: data[0]: intensities span [255, 255] but must lie in [0, 1]; rescale them yourself, or load them with normalize='auto' or 'minmax' (per image), e.g. Dataset.from_arrays(images, normalize='auto')
    """
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (np.ndarray, list, tuple)):
        dataset = Dataset(images=as_images(data, name=name, normalize="none"), source=name)
    else:
        raise TypeError(
            f"{name} must be a hypermorph_nb.data.Dataset or an (N, *spatial) array of images in "
            f"[0, 1], got {type(data).__name__}; load files with hnb.data.load_folder(...), or wrap "
            "arrays with Dataset.from_arrays(images, labels)")
    if inshape is not None:
        check_model_shape(dataset.shape, inshape, name=name)
    return dataset


def present_values(labels: np.ndarray, *, include_zero: bool = False) -> np.ndarray:
    """Sorted values of a label array, 0 left out unless ``include_zero`` (counting when small).

    Examples
    --------
    >>> present_values(np.array([[0, 3], [3, 1]])).tolist()
    [1, 3]
    """
    labels = np.asarray(labels)
    if labels.size and labels.min() >= 0 and labels.max() < 2 ** 16:
        values = np.flatnonzero(np.bincount(labels.ravel()))
    else:
        values = np.unique(labels)
    return values if include_zero else values[values != 0]
