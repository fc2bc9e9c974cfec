"""What a model knows beyond its architecture: how it was trained, and in which space.

A :class:`~hypermorph_nb.networks.models.ModelSpec` carries a :class:`TrainingRecord`
(the loss, σ, the NCC window, how λ was drawn, the label weight) once :func:`hypermorph_nb.train`
has run, and a :class:`ModelSpace` (the grid the training volumes lay on, and a reference
image to align new scans to) when the training data carried an affine. Both are saved with
the model and read back by the explorer, sweeps, :func:`hypermorph_nb.register` and
:func:`hypermorph_nb.register_scans`.

Examples
--------
>>> record = TrainingRecord(image_loss="mse", image_sigma=0.1)
>>> record.loss_config().image_sigma
0.1
>>> TrainingRecord.from_json(record.to_json()) == record
True
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from ..checks.arrays import array_summary
from .losses import DEFAULT_IMAGE_SIGMA, LossConfig


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """How a model was trained: what a user would otherwise have to repeat by hand.

    Attributes
    ----------
    image_loss : {'mse', 'ncc'}
    image_sigma : float
        σ of the MSE term (the equivalent-weight readout depends on it).
    ncc_window : int
    lam_sampling : str
        The :class:`~hypermorph_nb.data.LambdaSampling` mode, or ``'fixed'`` for a baseline.
    lam : float or None
        The fixed λ of a VoxelMorph baseline.
    label_weight : float
        Weight of the label (Dice) term, 0 when training used images only (or learned it).
    hyper_sampling : dict or None
        How the model's hyperparameters besides λ were drawn (``{'label_weight': 'uniform'}``);
        None for λ alone.
    steps : int
        Optimizer steps taken so far.
    """

    image_loss: str = "mse"
    image_sigma: float = DEFAULT_IMAGE_SIGMA
    ncc_window: int = 9
    lam_sampling: str = "uniform"
    lam: float | None = None
    label_weight: float = 0.0
    steps: int = 0
    hyper_sampling: dict[str, str] | None = None

    def loss_config(self) -> LossConfig:
        """The :class:`LossConfig` the model was trained with."""
        return LossConfig(image_loss=self.image_loss, image_sigma=self.image_sigma,
                          ncc_window=self.ncc_window)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``hyper_sampling`` only when there is one)."""
        config = dataclasses.asdict(self)
        if self.hyper_sampling is None:
            del config["hyper_sampling"]
        return config

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> TrainingRecord:
        """Inverse of :meth:`to_json`; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in known})


@dataclasses.dataclass(frozen=True, eq=False)
class ModelSpace:
    """The grid a model was trained on, and a reference image to bring new scans to it.

    Attributes
    ----------
    shape : tuple of int
        Spatial shape of the grid (the model's input shape).
    affine : np.ndarray
        ``(4, 4)`` voxel-to-world matrix of the grid (RAS millimetres).
    reference : np.ndarray or None
        An image on the grid (intensities in [0, 1]) that new scans are aligned to, e.g. the
        cohort template a preparation made, or the mean of the training images.
    reference_mask : np.ndarray or None
        Brain mask on the grid (bool), used to mask scans that come without one.

    Examples
    --------
    >>> import numpy as np
    >>> space = ModelSpace(shape=(8, 8, 8), affine=np.eye(4), reference=np.zeros((8, 8, 8)))
    >>> space.voxel_size
    (1.0, 1.0, 1.0)
    >>> space
    ModelSpace(shape=(8, 8, 8), voxel_size=(1.0, 1.0, 1.0), reference=float32 (8, 8, 8), reference_mask=None)
    """

    shape: tuple[int, ...]
    affine: np.ndarray
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ValueError(f"a model space needs a finite 4x4 voxel-to-world affine, got shape "
                             f"{affine.shape} (or non-finite values); give the grid's affine, e.g. "
                             "dataset.affine or nibabel.load(path).affine")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise ValueError("a model space's affine is singular (a voxel size of zero); give the grid's "
                             "voxel-to-world affine, e.g. dataset.affine or nibabel.load(path).affine")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", affine)
        for name in ("reference", "reference_mask"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.shape[-1:] == (1,) and value.ndim == len(shape) + 1:
                value = value[..., 0]
            if value.shape != shape:
                raise ValueError(f"the space's {name} has shape {value.shape}, but its grid is {shape}; give "
                                 f"a {name} on the grid (e.g. resample it onto the grid's affine)")
            value = value.astype(bool) if name == "reference_mask" else value.astype(np.float32)
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (f"ModelSpace(shape={self.shape}, voxel_size={self.voxel_size}, "
                f"reference={array_summary(self.reference)}, reference_mask={array_summary(self.reference_mask)})")

    @property
    def voxel_size(self) -> tuple[float, ...]:
        """Voxel side lengths in millimetres."""
        sizes = np.linalg.norm(self.affine[:3, :len(self.shape)], axis=0)
        return tuple(float(round(s, 6)) for s in sizes)

    def to_json(self) -> dict[str, Any]:
        """The grid as JSON (the images are saved beside it as NIfTI files)."""
        return {"shape": list(self.shape), "affine": self.affine.tolist(),
                "reference": self.reference is not None,
                "reference_mask": self.reference_mask is not None}

    @classmethod
    def from_dataset(cls, data: Any) -> ModelSpace | None:
        """The space of a :class:`~hypermorph_nb.data.Dataset` with one affine, else None.

        The reference is the mean training image; the mask, where label maps exist, the voxels
        that are brain in at least half of them.
        """
        affine = getattr(data, "affine", None)
        if affine is None:
            return None
        reference = getattr(data, "reference", None)
        mask = getattr(data, "reference_mask", None)
        if reference is None:
            reference = np.asarray(data.images, dtype=np.float32).mean(axis=0)[..., 0]
        if mask is None and getattr(data, "labels", None) is not None:
            mask = (np.asarray(data.labels) > 0).mean(axis=0) >= 0.5
        return cls(shape=tuple(data.shape), affine=affine, reference=reference, reference_mask=mask)


#: λ a VoxelMorph baseline trains at (and is refined and swept at) when none is given or recorded:
#: the seed tutorial's.
DEFAULT_BASELINE_LAMBDA = 0.5
#: ``image_sigma="model"``: take σ from the model's :class:`TrainingRecord`.
FROM_MODEL = "model"


def resolve_image_sigma(training: TrainingRecord | None, image_sigma: float | str | None) -> float | None:
    """The σ to use for a model: its own by default, a warning when a given one disagrees.

    Parameters
    ----------
    training : TrainingRecord or None
        ``spec_of(model).training`` (None for a model saved before training was recorded).
    image_sigma : float, 'model' or None
        ``'model'`` takes the model's σ (the package default for a model that records none,
        None for a model trained with NCC, where σ has no meaning); a number is used as given,
        with a ``UserWarning`` when the model was trained with another σ; None stays None.

    Examples
    --------
    >>> resolve_image_sigma(TrainingRecord(image_sigma=0.1), "model")
    0.1
    >>> resolve_image_sigma(None, "model") == DEFAULT_IMAGE_SIGMA
    True
    """
    if image_sigma is None:
        return None
    trained = None
    if training is not None:
        trained = training.image_sigma if training.image_loss == "mse" else None
    if isinstance(image_sigma, str):
        if image_sigma != FROM_MODEL:
            raise ValueError(f"image_sigma must be a number, None or {FROM_MODEL!r}, got {image_sigma!r}")
        if training is None:
            return DEFAULT_IMAGE_SIGMA
        return trained
    if trained is not None and not np.isclose(float(image_sigma), trained):
        warnings.warn(f"image_sigma={image_sigma} differs from the σ = {trained} the model was trained "
                      f"with; leave image_sigma={FROM_MODEL!r} to use the model's own", UserWarning,
                      stacklevel=3)
    return float(image_sigma)


def resolve_image_loss(training: TrainingRecord | None, image_loss: str | None) -> str:
    """The image term to use for a model: its own by default ('mse' when it records none), a
    warning when a given one disagrees.

    Examples
    --------
    >>> resolve_image_loss(TrainingRecord(image_loss="ncc"), None)
    'ncc'
    >>> resolve_image_loss(None, None)
    'mse'
    """
    trained = None if training is None else training.image_loss
    if image_loss is None:
        return trained or "mse"
    if trained is not None and image_loss != trained:
        warnings.warn(f"image_loss={image_loss!r} differs from the {trained!r} the model was trained "
                      "with; leave image_loss out to use the model's own", UserWarning, stacklevel=3)
    return image_loss
