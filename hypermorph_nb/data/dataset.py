"""The in-memory dataset every loader returns: images with optional label maps."""

import dataclasses

import numpy as np

from .validation import as_images, as_labels


@dataclasses.dataclass
class Dataset:
    """Images (and optionally label maps) that travel together.

    Attributes
    ----------
    images : np.ndarray
        ``(N, H, W, 1)`` float32 in [0, 1] (converted to float32 when given
        another float type; NaN, inf and values outside [0, 1] are refused:
        build from raw arrays with :meth:`from_arrays`, which normalises).
    labels : np.ndarray or None
        ``(N, H, W)`` integer label maps aligned with ``images`` (0 is
        background), or None when the source has none.
    label_names : dict of int to str, optional
        Name of each label value, when known.
    names : list of str, optional
        One identifier per image (subject id or file name).
    source : str
        Where the data came from, for reports.

    Examples
    --------
    >>> import numpy as np
    >>> data = Dataset(images=np.zeros((4, 32, 32, 1), "float32"), labels=None)
    >>> len(data), data.shape
    (4, (32, 32))
    >>> len(data[1:3])
    2
    """

    images: np.ndarray
    labels: np.ndarray = None
    label_names: dict = None
    names: list = None
    source: str = ""

    def __post_init__(self):
        images = np.asarray(self.images)
        if images.ndim != 4 or images.shape[-1] != 1:
            raise ValueError(
                f"Dataset.images must have shape (N, H, W, 1), got {images.shape}; "
                "Dataset.from_arrays also accepts (N, H, W)")
        if images.dtype != np.float32:
            images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise ValueError("Dataset.images contain NaN or infinite values; replace them "
                             "(e.g. np.nan_to_num) or drop those images")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(
                f"Dataset.images must lie in [0, 1], got [{images.min():g}, {images.max():g}]; "
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

    @classmethod
    def from_arrays(cls, images, labels=None, *, normalize="auto", label_names=None, names=None,
                    source="arrays"):
        """Build a Dataset from raw arrays, checking and normalising them.

        Parameters
        ----------
        images : array-like
            ``(N, H, W)`` or ``(N, H, W, 1)``.
        labels : array-like, optional
            ``(N, H, W)`` integer label maps.
        normalize : {'auto', 'minmax', 'none'}
            Intensity policy (see :mod:`hypermorph_nb.data.validation`).
        label_names, names, source
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
                   names=None if names is None else list(names), source=source)

    def __len__(self):
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
        )

    @property
    def shape(self):
        """Spatial shape ``(H, W)`` of the images."""
        return tuple(self.images.shape[1:-1])

    @property
    def has_labels(self):
        """True when label maps are available (Dice can be computed)."""
        return self.labels is not None

    def label_values(self):
        """Sorted non-zero label values present in the data."""
        if self.labels is None:
            return np.array([], dtype=int)
        values = np.unique(self.labels)
        return values[values != 0]

    def __repr__(self):
        labels = "no labels" if self.labels is None else f"{len(self.label_values())} labels"
        return f"Dataset({len(self)} images of {self.shape}, {labels}, source={self.source!r})"
