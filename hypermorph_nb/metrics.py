"""Registration quality measures on numpy arrays: overlap, field regularity, image error.

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

import numpy as np


def dice(a, b, labels=None):
    """Dice overlap per label between two label maps.

    Parameters
    ----------
    a, b : array_like of int
        Label maps of the same shape (any number of dimensions).
    labels : sequence of int, optional
        Labels to score, in this order. By default every non-zero label
        present in ``a`` or ``b``, sorted.

    Returns
    -------
    np.ndarray
        Dice per label, ``2|A∩B| / (|A| + |B|)``; a label absent from both maps
        scores NaN (undefined), one absent from one map scores 0.

    Examples
    --------
    >>> dice([1, 1, 2, 0], [1, 2, 2, 0])
    array([0.66666667, 0.66666667])
    >>> dice([1, 1, 0, 0], [1, 1, 0, 0], labels=[1, 3])
    array([ 1., nan])
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps must have the same shape, got {a.shape} and {b.shape}")
    if labels is None:
        labels = np.union1d(np.unique(a), np.unique(b))
        labels = labels[labels != 0]
    labels = np.asarray(labels)
    scores = np.empty(len(labels))
    for index, label in enumerate(labels):
        in_a, in_b = a == label, b == label
        total = in_a.sum() + in_b.sum()
        scores[index] = 2.0 * np.logical_and(in_a, in_b).sum() / total if total else np.nan
    return scores


def mean_dice(a, b, labels=None):
    """Mean Dice over the labels present in both maps (see :func:`dice`).

    Returns
    -------
    float
        NaN if no label is present in both maps.
    """
    a, b = np.asarray(a), np.asarray(b)
    if labels is None:
        labels = np.intersect1d(np.unique(a), np.unique(b))
        labels = labels[labels != 0]
    if len(labels) == 0:
        return float("nan")
    return float(np.nanmean(dice(a, b, labels)))


def dice_batch(a, b, labels):
    """Dice of many label-map pairs at once, via one joint histogram per pair.

    Parameters
    ----------
    a, b : np.ndarray of int
        ``(N, *spatial)`` label maps with values in ``[0, max(labels)]``.
    labels : sequence of int
        Labels to score.

    Returns
    -------
    np.ndarray
        ``(N, len(labels))`` Dice, NaN where a label is absent from both maps.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label batches must have the same shape, got {a.shape} and {b.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    size = int(max(a.max(initial=0), b.max(initial=0), labels.max(initial=0))) + 1
    flat_a = a.reshape(len(a), -1).astype(np.int64)
    flat_b = b.reshape(len(b), -1).astype(np.int64)
    offsets = (np.arange(len(a)) * size * size)[:, None]
    joint = np.bincount((offsets + flat_a * size + flat_b).ravel(), minlength=len(a) * size * size)
    joint = joint.reshape(len(a), size, size)
    both = joint[:, labels, labels]
    total = joint.sum(2)[:, labels] + joint.sum(1)[:, labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * both / total, np.nan)


def jacobian_determinant(flow):
    """Jacobian determinant of the transform ``x -> x + flow(x)`` at every voxel.

    Derivatives are central differences (one-sided at the border), so the
    result is exact for affine fields.

    Parameters
    ----------
    flow : array_like
        Displacement field ``(*spatial, ndims)`` or a batch
        ``(N, *spatial, ndims)``, with ``ndims`` of 2 or 3.

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
    ndims = flow.shape[-1]
    if ndims not in (2, 3) or flow.ndim not in (ndims + 1, ndims + 2):
        raise ValueError(
            "flow must have shape (*spatial, ndims) or (N, *spatial, ndims) with ndims 2 or 3, "
            f"got {flow.shape}")
    spatial_axes = tuple(range(flow.ndim - 1 - ndims, flow.ndim - 1))
    # jac[..., i, j] = d(x_i + u_i) / d x_j
    grads = np.gradient(flow, axis=spatial_axes)
    jac = np.stack(grads, axis=-1) + np.eye(ndims)
    return np.linalg.det(jac)


def folding_fraction(flow):
    """Fraction of voxels where the transform folds (Jacobian determinant <= 0).

    Returns
    -------
    float or np.ndarray
        A float for one field, one value per field for a batch.
    """
    flow = np.asarray(flow)
    det = jacobian_determinant(flow)
    ndims = flow.shape[-1]
    folded = (det <= 0).reshape(*det.shape[: det.ndim - ndims], -1).mean(-1)
    return float(folded) if np.ndim(folded) == 0 else folded


def image_mse(a, b):
    """Mean squared intensity difference between two images (or two batches)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return float(np.mean((a - b) ** 2))
