"""The λ-weighted registration loss ``(1 - λ) · similarity + λ · smoothness``.

Every function returns one value per sample (shape ``(batch,)``), so λ can
differ between the samples of a batch and the training loop decides how to
average (plain mean, or the global batch under a distribution strategy).

λ reaches the loss as an ordinary tensor argument. (The seed tutorial closes
the loss over the hypernetwork's symbolic λ input, which only works in graph
mode with eager execution disabled.)
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from ..runtime.compat import import_registration_libraries

_, vxm = import_registration_libraries()

IMAGE_LOSSES = ("mse", "ncc")


#: σ of the MSE term used by training, the demo and the explorer unless told otherwise.
DEFAULT_IMAGE_SIGMA = 0.2


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Which image-similarity term to use and how to scale it.

    Attributes
    ----------
    image_loss : {'mse', 'ncc'}
        Mean squared error scaled by ``1 / image_sigma**2`` (the tutorial's
        choice), or local normalised cross-correlation (negated).
    image_sigma : float
        Noise level σ of the MSE term; smaller σ weighs similarity more.
        The tutorial uses 0.1 for the baseline and 0.05 for HyperMorph; the
        default 0.2 spreads the useful registrations over λ ≈ 0.05–0.9
        instead of crowding them into 0.5–0.99, and HyperMorph trained with
        it matched separately trained models best
        (``benchmarks/results/amortization_third.md``).
    ncc_window : int
        Window side of the local NCC.

    Examples
    --------
    >>> LossConfig(image_loss="mse", image_sigma=0.05)
    LossConfig(image_loss='mse', image_sigma=0.05, ncc_window=9)
    """

    image_loss: str = "mse"
    image_sigma: float = DEFAULT_IMAGE_SIGMA
    ncc_window: int = 9

    def __post_init__(self):
        if self.image_loss not in IMAGE_LOSSES:
            raise ValueError(f"image_loss must be one of {IMAGE_LOSSES}, got {self.image_loss!r}")
        if not self.image_sigma > 0:
            raise ValueError(f"image_sigma must be > 0, got {self.image_sigma!r}")
        if int(self.ncc_window) < 1 or int(self.ncc_window) % 2 == 0:
            raise ValueError(f"ncc_window must be a positive odd int, got {self.ncc_window!r}")


def image_term(fixed: tf.Tensor, moved: tf.Tensor, config: LossConfig = LossConfig()) -> tf.Tensor:
    """Per-sample image dissimilarity between ``fixed`` and ``moved``.

    Parameters
    ----------
    fixed, moved : tf.Tensor
        Images of shape ``(batch, *spatial, channels)``.
    config : LossConfig

    Returns
    -------
    tf.Tensor
        Shape ``(batch,)``.
    """
    fixed = tf.convert_to_tensor(fixed, tf.float32)
    moved = tf.convert_to_tensor(moved, tf.float32)
    axes = list(range(1, len(fixed.shape)))
    if config.image_loss == "mse":
        return tf.reduce_mean(tf.square(fixed - moved), axis=axes) / config.image_sigma ** 2
    ncc = vxm.losses.NCC(win=[int(config.ncc_window)] * (len(fixed.shape) - 2))
    return -tf.reduce_mean(ncc.ncc(fixed, moved), axis=axes)


def smoothness_term(flow: tf.Tensor) -> tf.Tensor:
    """Per-sample mean squared spatial gradient of a displacement field.

    The same quantity as voxelmorph's ``Grad('l2')`` (forward differences,
    averaged over voxels, then over the spatial axes), per sample.

    Parameters
    ----------
    flow : tf.Tensor
        Shape ``(batch, *spatial, ndims)``.

    Returns
    -------
    tf.Tensor
        Shape ``(batch,)``.
    """
    flow = tf.convert_to_tensor(flow, tf.float32)
    ndims = len(flow.shape) - 2
    axes = list(range(1, ndims + 2))
    terms = []
    for axis in range(1, ndims + 1):
        ahead = [slice(None)] * (ndims + 2)
        behind = list(ahead)
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        diff = flow[tuple(ahead)] - flow[tuple(behind)]
        terms.append(tf.reduce_mean(tf.square(diff), axis=axes))
    return tf.add_n(terms) / ndims


def label_term(fixed_labels: tf.Tensor, moved_labels: tf.Tensor) -> tf.Tensor:
    """Per-sample ``1 −`` mean soft Dice of one-hot label maps, over the structures present.

    The auxiliary-segmentation term of VoxelMorph (Balakrishnan et al., TMI
    2019): the moving image's one-hot label maps, warped by linear
    interpolation, against the fixed image's. A structure (channel) counts for
    a pair when either map holds it; a channel empty in both (e.g. padding)
    is left out of that pair's mean.

    Parameters
    ----------
    fixed_labels, moved_labels : tf.Tensor
        ``(batch, *spatial, structures)``, one channel per structure, values
        in [0, 1].

    Returns
    -------
    tf.Tensor
        Shape ``(batch,)``, in [0, 1]: 0 when the maps overlap exactly.

    Examples
    --------
    >>> import numpy as np
    >>> fixed = np.zeros((1, 4, 4, 2), "float32"); fixed[0, :2, :, 0] = 1; fixed[0, 2:, :, 1] = 1
    >>> moved = fixed.copy(); moved[0, :, :, 1] = 0       # structure 1 lost entirely
    >>> np.round(label_term(fixed, moved).numpy(), 3)     # mean Dice (1 + 0) / 2
    array([0.5], dtype=float32)
    """
    fixed_labels = tf.convert_to_tensor(fixed_labels, tf.float32)
    moved_labels = tf.convert_to_tensor(moved_labels, tf.float32)
    axes = list(range(1, len(fixed_labels.shape) - 1))
    overlap = tf.reduce_sum(fixed_labels * moved_labels, axis=axes)
    sizes = tf.reduce_sum(fixed_labels, axis=axes) + tf.reduce_sum(moved_labels, axis=axes)
    present = tf.cast(sizes > 0, tf.float32)
    dice = 2.0 * overlap / tf.maximum(sizes, 1e-6)
    mean_dice = tf.reduce_sum(dice * present, axis=-1) / tf.maximum(tf.reduce_sum(present, axis=-1), 1.0)
    return 1.0 - mean_dice


def weighted_terms(fixed: tf.Tensor, moved: tf.Tensor, flow: tf.Tensor, lam: tf.Tensor | float,
                   config: LossConfig = LossConfig(), *, labels: tuple[tf.Tensor, tf.Tensor] | None = None,
                   label_weight: tf.Tensor | float = 0.0) -> dict[str, tf.Tensor]:
    """The per-sample terms of the λ-weighted loss.

    Parameters
    ----------
    fixed, moved, flow : tf.Tensor
        As in :func:`image_term` and :func:`smoothness_term`.
    lam : tf.Tensor or float
        λ per sample, shape ``(batch,)``, ``(batch, 1)`` or a scalar.
    config : LossConfig
    labels : tuple of tf.Tensor, optional
        ``(fixed_onehot, moved_onehot)`` for the label term (:func:`label_term`).
    label_weight : tf.Tensor or float
        Weight ``w`` of the label term beside the image term: one for all, or one per sample
        ``(batch,)`` (a model that learns it).

    Returns
    -------
    dict of tf.Tensor
        ``total``, ``image`` and ``smooth`` (and ``label``), each shape
        ``(batch,)``; ``total`` is ``(1 - λ) · image + λ · smooth``, with labels
        ``(1 - λ) · (image + w · label) + λ · smooth``: the label term joins the
        similarity side, so λ = 1 still asks for smoothness only.

    Examples
    --------
    >>> import numpy as np
    >>> fixed = np.zeros((2, 16, 16, 1), "float32"); moved = fixed + 0.1
    >>> flow = np.zeros((2, 16, 16, 2), "float32")
    >>> terms = weighted_terms(fixed, moved, flow, [0.0, 1.0], LossConfig(image_sigma=0.05))
    >>> np.round(terms["total"].numpy(), 3)   # 0.1² / 0.05² at λ = 0; a still field at λ = 1
    array([4., 0.], dtype=float32)
    """
    lam = tf.reshape(tf.cast(lam, tf.float32), [-1])
    image = image_term(fixed, moved, config)
    smooth = smoothness_term(flow)
    if labels is None:
        return {"total": (1.0 - lam) * image + lam * smooth, "image": image, "smooth": smooth}
    label = label_term(*labels)
    total = (1.0 - lam) * (image + label_weight * label) + lam * smooth
    return {"total": total, "image": image, "smooth": smooth, "label": label}
