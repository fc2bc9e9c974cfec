"""Split a dataset into training, validation and test sets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dataset import Dataset


def even_split(data: Dataset, parts: int = 3) -> tuple[Dataset, ...]:
    """Split in order into ``parts`` near-equal consecutive sets, as the seed tutorial does.

    Same sizes as ``np.array_split``: 414 tutorial slices give 138 + 138 + 138.

    Parameters
    ----------
    data : Dataset
    parts : int

    Returns
    -------
    tuple of Dataset

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> train, validate, test = even_split(synthetic(10, (32, 32)))
    >>> len(train), len(validate), len(test)
    (4, 3, 3)
    """
    _check_dataset(data)
    if isinstance(parts, bool) or int(parts) != parts or not 1 <= parts <= len(data):
        raise ValueError(f"parts must be an integer from 1 to the number of images ({len(data)}), "
                         f"got {parts!r}")
    return tuple(data[indices] for indices in np.array_split(np.arange(len(data)), int(parts)))


def random_split(data: Dataset, fractions: Sequence[float] = (0.6, 0.2, 0.2), *, seed: int = 0,
                 groups: Sequence[Any] | None = None) -> tuple[Dataset, ...]:
    """Seeded random split by subject: all images of one subject land in the same set.

    Parameters
    ----------
    data : Dataset
    fractions : sequence of float
        Share of the subjects per set, each > 0, summing to 1. Set sizes are
        rounded by the largest remainder.
    seed : int
        The same seed gives the same split.
    groups : sequence or callable, optional
        Subject of each image: one id per image, or a function of the image
        name (e.g. ``lambda name: name.split('_slice')[0]``). Default: the
        image names (one subject per image, as in the OASIS files), or each
        image its own subject when there are no names.

    Returns
    -------
    tuple of Dataset
        One per fraction, each in the original image order.

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> train, test = random_split(synthetic(10, (32, 32)), (0.8, 0.2), seed=1)
    >>> len(train), len(test), set(train.names) & set(test.names)
    (8, 2, set())
    """
    _check_dataset(data)
    shares = np.asarray(fractions, dtype=float)
    if shares.ndim != 1 or len(shares) < 1 or not (shares > 0).all() \
            or abs(shares.sum() - 1) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, e.g. (0.6, 0.2, 0.2); "
                         f"got {shares.tolist()}")
    subject = _subjects(data, groups)
    unique = np.unique(subject)
    counts = np.floor(shares * len(unique)).astype(int)
    remainders = shares * len(unique) - counts
    counts[np.argsort(-remainders, kind="stable")[: len(unique) - counts.sum()]] += 1
    if (counts == 0).any():
        raise ValueError(
            f"{len(unique)} subjects cannot fill {len(shares)} sets with fractions "
            f"{shares.tolist()} (set {int(np.flatnonzero(counts == 0)[0])} would be empty); "
            "use fewer sets, larger fractions, or more data")
    shuffled = np.random.default_rng(seed).permutation(unique)
    bounds = np.cumsum(counts)[:-1]
    return tuple(data[np.flatnonzero(np.isin(subject, chosen))]
                 for chosen in np.split(shuffled, bounds))


def _check_dataset(data):
    if not isinstance(data, Dataset):
        raise TypeError(f"expected a Dataset (from load_npz, load_folder, load_tutorial or "
                        f"synthetic), got {type(data).__name__}; wrap arrays with "
                        "Dataset.from_arrays(images, labels)")


def _subjects(data, groups):
    """One subject id (string) per image."""
    if groups is None:
        if data.names is None:
            return np.arange(len(data)).astype(str)
        return np.asarray([str(name) for name in data.names])
    if callable(groups):
        if data.names is None:
            raise ValueError("groups is a function of the image names, but this dataset has no "
                             "names; pass one subject id per image instead")
        groups = [groups(name) for name in data.names]
    groups = np.asarray([str(group) for group in groups])
    if groups.shape != (len(data),):
        raise ValueError(f"groups must give one subject per image ({len(data)}), got {len(groups)}")
    return groups
