"""Pair indices: which images of a dataset are registered to which, given or drawn at random.

A pair is ``(moving, fixed)``, two indices into the images. The sweeps, λ tuning,
validation during training and the λ explorer all take pairs through
:func:`check_pairs` (many) or :func:`check_pair` (one), and draw random ones
with :func:`choose_pairs`, so that the same mistake gets the same error.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .arrays import check_count


def choose_pairs(n_images: int, n_pairs: int, *, seed: int = 0) -> np.ndarray:
    """Distinct random (moving, fixed) index pairs with moving != fixed.

    Parameters
    ----------
    n_images : int
    n_pairs : int
        Number of pairs; at most ``n_images * (n_images - 1)`` are returned.
    seed : int

    Returns
    -------
    np.ndarray
        ``(n_pairs, 2)`` int.

    Examples
    --------
    >>> choose_pairs(4, 3, seed=0).shape
    (3, 2)
    """
    if n_images < 2:
        raise ValueError(f"need at least 2 images to form pairs, got {n_images}; give data with two "
                         "or more images (e.g. a larger subset or split)")
    available = n_images * (n_images - 1)
    n_pairs = min(check_count(n_pairs, "n_pairs"), available)
    flat = np.random.default_rng(seed).choice(available, size=n_pairs, replace=False)
    moving = flat // (n_images - 1)
    fixed = flat % (n_images - 1)
    fixed = fixed + (fixed >= moving)
    return np.stack([moving, fixed], axis=1)


def check_pairs(pairs: ArrayLike, n_images: int, *, name: str = "pairs") -> np.ndarray:
    """``pairs`` as a ``(P, 2)`` int array of (moving, fixed) indices into ``n_images`` images.

    Parameters
    ----------
    pairs : array_like
        ``(P, 2)`` integer indices, or one pair ``(moving, fixed)``.
    n_images : int
        How many images the indices point into.
    name : str
        The argument's name, quoted in errors.

    Returns
    -------
    np.ndarray
        ``(P, 2)`` int.

    Raises
    ------
    ValueError
        If ``pairs`` is empty, not ``(P, 2)``, not integers, or indexes past the images.

    Examples
    --------
    >>> check_pairs([[0, 1], [2, 0]], 3).tolist()
    [[0, 1], [2, 0]]
    >>> check_pairs([[0, 3]], 3)
    Traceback (most recent call last):
    ...
    ValueError: pairs index images 0..3, out of range for 3 images (valid indices 0..2)
    """
    try:
        array = np.asarray(pairs)
    except (TypeError, ValueError):
        array = np.asarray([], dtype=object)
    if array.ndim == 1 and array.size == 2:
        array = array.reshape(1, 2)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0 \
            or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty (P, 2) array of integer (moving, fixed) "
                         f"indices, got {np.shape(pairs)} of {getattr(array, 'dtype', '?')}")
    if array.min() < 0 or array.max() >= n_images:
        raise ValueError(f"{name} index images {array.min()}..{array.max()}, out of range for "
                         f"{n_images} images (valid indices 0..{n_images - 1})")
    return array.astype(int)


def check_pair(pair: ArrayLike, n_images: int, *, name: str = "pair") -> tuple[int, int]:
    """One ``(moving, fixed)`` pair of indices, by the rule of :func:`check_pairs`.

    Examples
    --------
    >>> check_pair((2, 0), 3)
    (2, 0)
    >>> check_pair(3, 3)
    Traceback (most recent call last):
    ...
    ValueError: pair must be two image indices (moving, fixed), got 3
    """
    if np.size(pair) != 2 or np.ndim(pair) != 1:
        raise ValueError(f"{name} must be two image indices (moving, fixed), got {pair!r}")
    moving, fixed = check_pairs(pair, n_images, name=name)[0]
    return int(moving), int(fixed)


def resolve_pairs(pairs: ArrayLike | None, n_images: int, *, n_pairs: int, seed: int,
                  name: str = "pairs") -> np.ndarray:
    """The given ``pairs``, checked, or ``n_pairs`` random ones from :func:`choose_pairs`.

    Examples
    --------
    >>> resolve_pairs(None, 5, n_pairs=2, seed=0).shape
    (2, 2)
    >>> resolve_pairs([[1, 0]], 5, n_pairs=2, seed=0).tolist()
    [[1, 0]]
    """
    if pairs is None:
        return choose_pairs(n_images, n_pairs, seed=seed)
    return check_pairs(pairs, n_images, name=name)
