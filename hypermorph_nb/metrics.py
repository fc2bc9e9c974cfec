"""Registration quality measures on numpy arrays: overlap, field regularity, image error.

- :func:`dice`, :func:`mean_dice`, :func:`dice_batch`: label overlap;
- :func:`jacobian_determinant`, :func:`folding_fraction`: where a displacement
  field folds (Jacobian determinant <= 0); :func:`determinant_of_gradients` is
  its formula, shared with the differentiable penalty of λ tuning;
- :func:`image_mse`, :func:`image_ncc`: intensity agreement of two images.

Examples
--------
>>> import numpy as np
>>> from hypermorph_nb.metrics import dice, jacobian_determinant
>>> a = np.zeros((4, 4), int); a[:2] = 1
>>> b = np.zeros((4, 4), int); b[:, :2] = 1
>>> dice(a, b)
array([0.5])
>>> float(jacobian_determinant(np.zeros((8, 8, 2))).mean())
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["dice", "mean_dice", "dice_batch", "jacobian_determinant", "determinant_of_gradients",
           "folding_fraction", "image_mse", "image_ncc"]


def dice(a: ArrayLike, b: ArrayLike, labels: ArrayLike | None = None) -> np.ndarray:
    """Dice overlap per label between two label maps.

    Parameters
    ----------
    a, b : array_like of int
        Label maps of the same shape (any number of dimensions); float arrays
        are accepted when every value is a whole number.
    labels : sequence of int, optional
        Labels to score, in this order. By default every non-zero label
        present in ``a`` or ``b``, sorted (as voxelmorph's ``vxm.py.utils.dice``).

    Returns
    -------
    np.ndarray
        Dice per label, ``2|A∩B| / (|A| + |B|)``. A label absent from both
        maps scores NaN (undefined; voxelmorph reports 0), one absent from one
        map scores 0.

    Raises
    ------
    ValueError
        If the shapes differ or a map holds non-integer values (an image
        passed instead of a label map).

    Examples
    --------
    >>> dice([1, 1, 2, 0], [1, 2, 2, 0])
    array([0.66666667, 0.66666667])
    >>> dice([1, 1, 0, 0], [1, 1, 0, 0], labels=[1, 3])
    array([ 1., nan])
    """
    a, b = _label_maps(a, b, "a", "b")
    if labels is None:
        present = np.union1d(np.unique(a), np.unique(b))
        labels = present[present != 0]
    label_list = _label_list(labels)
    scores = np.empty(len(label_list))
    for index, label in enumerate(label_list):
        in_a, in_b = a == label, b == label
        total = in_a.sum() + in_b.sum()
        scores[index] = 2.0 * np.logical_and(in_a, in_b).sum() / total if total else np.nan
    return scores


def mean_dice(a: ArrayLike, b: ArrayLike, labels: ArrayLike | None = None) -> float:
    """Mean Dice over the labels present in both maps (see :func:`dice`).

    A label that appears in only one of the maps is left out rather than
    scored 0: on 2D slices a structure is often simply not in one of the two
    images, and no registration can create it.

    Parameters
    ----------
    a, b : array_like of int
        Label maps of the same shape.
    labels : sequence of int, optional
        Labels to consider (default: every non-zero label); of these, only
        the ones present in both maps are averaged.

    Returns
    -------
    float
        NaN if no label is present in both maps.

    Examples
    --------
    >>> mean_dice([1, 1, 2, 3], [1, 2, 2, 0])   # label 3 is only in the first map
    0.6666666666666666
    """
    a, b = _label_maps(a, b, "a", "b")
    shared = np.intersect1d(np.unique(a), np.unique(b))
    shared = shared[shared != 0]
    if labels is not None:
        shared = np.intersect1d(shared, _label_list(labels))
    if len(shared) == 0:
        return float("nan")
    return float(dice_batch(a[None], b[None], shared).mean())   # one pass, however many labels


def dice_batch(a: ArrayLike, b: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Dice of many label-map pairs at once, via one joint histogram per pair.

    Parameters
    ----------
    a, b : np.ndarray of int
        ``(N, *spatial)`` label maps (any integer values).
    labels : sequence of int
        Labels to score.

    Returns
    -------
    np.ndarray
        ``(N, len(labels))`` Dice, NaN where a label is absent from both maps.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 1, 2, 0], [5, 5, 5, 5]])
    >>> b = np.array([[1, 2, 2, 0], [5, 5, 0, 0]])
    >>> dice_batch(a, b, labels=[1, 2, 5]).round(3)
    array([[0.667, 0.667,   nan],
           [  nan,   nan, 0.667]])
    """
    a, b = _label_maps(a, b, "a", "b")
    if a.ndim < 2:
        raise ValueError(f"dice_batch needs batches (N, *spatial), got label maps of shape {a.shape}; "
                         "use dice(a, b) for a single pair")
    label_list = _label_list(labels)
    if len(label_list) == 0:
        return np.zeros((len(a), 0))
    # Map every value to its position in `labels` + 1, and everything else to 0.
    order = np.argsort(label_list, kind="stable")
    sorted_labels = label_list[order]
    size = len(label_list) + 1

    def compact(maps: np.ndarray) -> np.ndarray:
        flat = maps.reshape(len(maps), -1).astype(np.int64)
        position = np.minimum(np.searchsorted(sorted_labels, flat), len(label_list) - 1)
        return np.where(sorted_labels[position] == flat, order[position] + 1, 0)

    offsets = (np.arange(len(a)) * size * size)[:, None]
    joint = np.bincount((offsets + compact(a) * size + compact(b)).ravel(),
                        minlength=len(a) * size * size).reshape(len(a), size, size)
    index = np.arange(1, size)
    both = joint[:, index, index]
    total = joint.sum(2)[:, index] + joint.sum(1)[:, index]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * both / total, np.nan)


def jacobian_determinant(flow: ArrayLike) -> np.ndarray:
    """Jacobian determinant of the transform ``x -> x + flow(x)`` at every voxel.

    Derivatives are central differences (one-sided at the border), as in
    voxelmorph's ``vxm.py.utils.jacobian_determinant``, so the result is
    exact for affine fields.

    Parameters
    ----------
    flow : array_like
        Displacement field in voxels, ``(*spatial, ndims)`` or a batch
        ``(N, *spatial, ndims)``, with ``ndims`` of 2 or 3; component ``i``
        displaces along spatial axis ``i``.

    Returns
    -------
    np.ndarray
        ``spatial`` (or ``(N, *spatial)``); values <= 0 mark folding.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij")
    >>> flip = np.stack([np.zeros_like(y), -2 * x], -1)   # x -> -x: a fold
    >>> float(jacobian_determinant(flip)[2, 2])
    -1.0
    """
    flow = np.asarray(flow, dtype=np.float64)
    ndims = flow.shape[-1] if flow.ndim else 0
    if ndims not in (2, 3) or flow.ndim not in (ndims + 1, ndims + 2):
        raise ValueError(
            "flow must have shape (*spatial, ndims) or (N, *spatial, ndims) with ndims 2 or 3 "
            f"(e.g. (160, 192, 2)), got {flow.shape}")
    spatial_axes = tuple(range(flow.ndim - 1 - ndims, flow.ndim - 1))
    spatial = [flow.shape[axis] for axis in spatial_axes]
    if min(spatial) < 2:
        raise ValueError(f"flow needs at least 2 voxels along each spatial axis to take "
                         f"derivatives, got spatial shape {tuple(spatial)}")
    if not np.all(np.isfinite(flow)):
        raise ValueError("flow contains NaN or infinite values")
    determinant: np.ndarray = determinant_of_gradients(np.gradient(flow, axis=spatial_axes))
    return determinant


def determinant_of_gradients(grads: Sequence[Any]) -> Any:
    """Jacobian determinant ``det(I + ∇u)`` from the derivatives of a displacement field ``u``.

    The formula behind :func:`jacobian_determinant`. It uses only ``+``, ``-``,
    ``*`` and ``[..., i]``, so it runs on NumPy arrays and on TensorFlow tensors
    alike: the differentiable folding penalty of
    :func:`hypermorph_nb.optimize_lambda` calls it with the same central
    differences in TensorFlow, so that it penalises the Jacobian the sweeps
    and the explorer report.

    Parameters
    ----------
    grads : sequence of array_like
        ``grads[j][..., i]`` is ``∂u_i/∂x_j``, one entry per spatial axis (2 or 3).

    Returns
    -------
    array_like
        The determinant at every voxel, of the type of ``grads``' entries.

    Examples
    --------
    >>> import numpy as np
    >>> shear = [np.array([[0.0, 0.0]]), np.array([[0.5, 0.0]])]   # u_0 = 0.5 x_1
    >>> determinant_of_gradients(shear).tolist()
    [1.0]
    """
    def jac(i: int, j: int) -> Any:  # d(x_i + u_i) / d x_j
        return grads[j][..., i] + (1.0 if i == j else 0.0)

    # closed-form 2x2 / 3x3 determinants: faster than a batched np.linalg.det
    if len(grads) == 2:
        return jac(0, 0) * jac(1, 1) - jac(0, 1) * jac(1, 0)
    return (jac(0, 0) * (jac(1, 1) * jac(2, 2) - jac(1, 2) * jac(2, 1))
            - jac(0, 1) * (jac(1, 0) * jac(2, 2) - jac(1, 2) * jac(2, 0))
            + jac(0, 2) * (jac(1, 0) * jac(2, 1) - jac(1, 1) * jac(2, 0)))


def folding_fraction(flow: ArrayLike) -> float | np.ndarray:
    """Fraction of voxels where the transform folds (Jacobian determinant <= 0).

    Parameters
    ----------
    flow : array_like
        As in :func:`jacobian_determinant`.

    Returns
    -------
    float or np.ndarray
        A float for one field, one value per field for a batch.

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 4, 4, 2)); flow[1, :, :, 1] = -2 * np.arange(4.0)   # second one flips
    >>> folding_fraction(flow)
    array([0., 1.])
    """
    flow = np.asarray(flow)
    det = jacobian_determinant(flow)
    ndims = flow.shape[-1]
    folded = (det <= 0).reshape(*det.shape[: det.ndim - ndims], -1).mean(-1)
    return float(folded) if np.ndim(folded) == 0 else folded


def image_mse(a: ArrayLike, b: ArrayLike, *, per_image: bool = False) -> float | np.ndarray:
    """Mean squared intensity difference between two images (or two batches).

    Parameters
    ----------
    a, b : array_like
        Images of the same shape.
    per_image : bool
        Treat the first axis as a batch and return one value per image.

    Returns
    -------
    float or np.ndarray

    Examples
    --------
    >>> image_mse([0.0, 0.5], [0.0, 0.0])
    0.125
    """
    a, b = _images(a, b, per_image)
    error = (a - b) ** 2
    if per_image:
        per_image_error: np.ndarray = error.reshape(len(error), -1).mean(1)
        return per_image_error
    return float(error.mean())


def image_ncc(a: ArrayLike, b: ArrayLike, *, per_image: bool = False) -> float | np.ndarray:
    """Normalised cross-correlation (Pearson correlation of the intensities).

    1 for images equal up to brightness and contrast, 0 for unrelated ones,
    -1 for inverted ones. An image with constant intensity has no defined
    correlation: its NCC is NaN.

    Parameters
    ----------
    a, b : array_like
        Images of the same shape.
    per_image : bool
        Treat the first axis as a batch and return one value per image.

    Returns
    -------
    float or np.ndarray

    Examples
    --------
    >>> image_ncc([0.0, 1.0, 2.0], [1.0, 3.0, 5.0])
    1.0
    """
    first, second = _images(a, b, per_image)
    x = first.reshape(len(first), -1) if per_image else first.reshape(1, -1)
    y = second.reshape(len(second), -1) if per_image else second.reshape(1, -1)
    x = x - x.mean(1, keepdims=True)
    y = y - y.mean(1, keepdims=True)
    denominator = np.sqrt((x * x).sum(1) * (y * y).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ncc = np.where(denominator > 0, (x * y).sum(1) / denominator, np.nan)
    return ncc if per_image else float(ncc[0])


def _images(a: ArrayLike, b: ArrayLike, per_image: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if per_image and a.ndim < 2:
        raise ValueError(f"per_image=True needs batches (N, ...), got images of shape {a.shape}")
    if a.size == 0:
        raise ValueError("images are empty")
    return a, b


def _label_maps(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Check two label maps and return them as integer arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps must have the same shape, got {a.shape} and {b.shape}")
    return _integer_labels(a, name_a), _integer_labels(b, name_b)


def _integer_labels(array: np.ndarray, name: str) -> np.ndarray:
    if np.issubdtype(array.dtype, np.integer):
        return array
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a label map of integers, got dtype {array.dtype}")
    if array.size and not (np.all(np.isfinite(array)) and np.all(array == np.round(array))):
        raise ValueError(
            f"{name} holds non-integer values, so it is not a label map (an image passed by "
            "mistake?); pass integer label maps, e.g. warp labels with interp='nearest'")
    return array.astype(np.int64)


def _label_list(labels: ArrayLike) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        return labels.astype(np.int64)
    whole = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)))
    if not whole:
        raise ValueError(f"labels must be integer label values, got {labels.tolist()[:5]}")
    return labels.astype(np.int64)
