"""Recipes: a model's build options and train's settings that belong together.

:data:`VOLUMES` is the 3D recipe for a CPU budget, the one ``pretrained:ixi-t1-2mm`` was
trained with (its model card has the run's Dice against time; ``benchmarks/quality_3d.py``
compares recipes for the same short budget):

- the U-Net on block-averaged volumes (``downsample=2``): each step costs a fraction of a
  full-resolution one, so a CPU hour buys several times more steps;
- NCC (window 5) as the similarity, which inter-subject T1 intensities favour over MSE;
- label supervision (``label_weight=1``) whenever the training data carry label maps: a
  Dice term of the warped one-hot labels beside the image term (labels shape training only);
- Adam at 2e-4 with 200 warm-up steps and a half-cosine decay to a hundredth.

Examples
--------
>>> import hypermorph_nb as hnb
>>> from hypermorph_nb.data import synthetic
>>> volumes = synthetic(4, (32, 32, 32), seed=0)
>>> model = VOLUMES.build(volumes.shape, nb_features=[[8, 8, 8], [8, 8, 8, 8, 8]], seed=0)
>>> options = VOLUMES.train_options(volumes)
>>> options["label_weight"], options["loss"].image_loss, hnb.networks.spec_of(model).options["downsample"]
(1.0, 'ncc', 2)
"""
from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from ..networks.losses import LossConfig
from ..networks.models import build_hypermorph


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Build options of :func:`hypermorph_nb.build_hypermorph` and settings of :func:`hypermorph_nb.train`.

    Attributes
    ----------
    name : str
        How tables and reports name it.
    build_options : Mapping
        Keywords of ``build_hypermorph`` (besides the shape).
    train_settings : Mapping
        Keywords of ``train`` (besides epochs and steps), label supervision left out.
    label_weight : float
        The label term's weight, used when the training data carry label maps.
    """

    name: str
    build_options: Mapping[str, Any]
    train_settings: Mapping[str, Any]
    label_weight: float = 0.0

    def build(self, shape: tuple[int, ...], **overrides: Any) -> tf.keras.Model:
        """``build_hypermorph(shape, **build_options, **overrides)``."""
        return build_hypermorph(shape, **{**self.build_options, **overrides})

    def __post_init__(self) -> None:
        for name in ("build_options", "train_settings"):  # a shared recipe nobody can change in place
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))

    def train_options(self, data: Any) -> dict[str, Any]:
        """``train`` keywords for ``data``: label supervision only when it carries label maps."""
        weight = self.label_weight if getattr(data, "has_labels", False) else 0.0
        return {**self.train_settings, "label_weight": weight}


#: The 3D recipe for a CPU budget (see the module docstring).
VOLUMES = Recipe(
    name="volumes (half-res U-Net, NCC, labels)",
    build_options={"conditioning": "film", "downsample": 2},
    train_settings={"learning_rate": 2e-4, "lr_schedule": "cosine", "warmup_steps": 200,
                    "lam_sampling": "uniform", "loss": LossConfig(image_loss="ncc", ncc_window=5)},
    label_weight=1.0,
)
