"""The settings a checkpoint stores and a resumed :func:`hypermorph_nb.train` call must repeat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TYPE_CHECKING

import dataclasses
import hashlib
import json

import numpy as np

if TYPE_CHECKING:
    from ..data.sampling import LambdaSampling
    from ..io.checkpoints import Checkpoint
    from ..networks.losses import LossConfig
    from ..networks.models import ModelSpec


#: Settings a checkpoint must share with the call that resumes it.
RESUME_KEYS = ("model", "data", "lam", "lam_sampling", "hyper_sampling", "loss", "label_weight", "labels",
               "learning_rate", "lr_schedule", "batch_size", "seed", "steps_per_epoch")
#: What checkpoints written before a setting existed used (a constant rate, images only).
_OLD_DEFAULTS = {"lr_schedule": {"name": None, "warmup_steps": 0}, "label_weight": 0.0, "labels": None,
                 "hyper_sampling": {}}


def resume_config(spec: ModelSpec, images: np.ndarray, *, fixed_lam: float | None,
                  sampling: LambdaSampling | None, loss_config: LossConfig, learning_rate: float | None,
                  lr_schedule: Any, batch_size: int, seed: int, steps_per_epoch: int,
                  label_weight: float = 0.0, label_structures: int | None = None,
                  labels: np.ndarray | None = None,
                  hyper_sampling: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings that fix the training stream and loss, as stored in checkpoints.

    ``hyper_sampling`` maps the model's hyperparameters besides λ to their samplings' JSON.
    With label supervision (``label_weight > 0`` or a learned one) ``labels`` holds the structures per
    pair and a checksum of the label maps, which the stream and the loss depend on.
    """
    model = spec.to_json()
    for recorded in ("training", "space"):   # what training itself attaches to the model
        model.pop(recorded, None)
    model["options"] = {k: v for k, v in model["options"].items() if k != "seed"}
    digest = hashlib.blake2b(np.ascontiguousarray(images).data, digest_size=16).hexdigest()
    label_settings = None
    if label_structures is not None:
        label_settings = {"structures": label_structures,
                          "checksum": hashlib.blake2b(np.ascontiguousarray(labels).data, digest_size=16).hexdigest()}
    config = {
        "model": model,
        "data": {"images": int(len(images)), "shape": list(images.shape[1:]), "checksum": digest},
        "lam": fixed_lam,
        "lam_sampling": None if sampling is None else sampling.to_json(),
        "hyper_sampling": dict(hyper_sampling or {}),
        "loss": dataclasses.asdict(loss_config),
        "label_weight": float(label_weight),
        "labels": label_settings,
        "learning_rate": learning_rate,
        "lr_schedule": lr_schedule,
        "batch_size": batch_size,
        "seed": seed,
        "steps_per_epoch": steps_per_epoch,
    }
    return json.loads(json.dumps(config))


def check_resume_config(checkpoint: Checkpoint, current: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose settings differ from ``current``, naming each setting."""
    stored = checkpoint.state.get("config", {})
    stored = {key: stored.get(key, _OLD_DEFAULTS.get(key)) for key in RESUME_KEYS}
    different = [key for key in RESUME_KEYS if stored[key] != current[key]]
    if different:
        lines = [f"  {key}: checkpoint {stored[key]!r}, this call {current[key]!r}" for key in different]
        raise ValueError(
            f"cannot resume from {checkpoint.path}: it was trained with other settings\n"
            + "\n".join(lines)
            + "\nPass the checkpoint's settings to continue it, or use a new checkpoint_dir to start over.")
