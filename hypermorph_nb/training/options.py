"""The grouped options of :func:`hypermorph_nb.train`, and the old flat keywords they replace.

``train(..., loss=LossConfig(...), checkpoints=CheckpointConfig(...), validation=ValidationConfig(...))``
keeps options that belong together in one object. The flat keywords of version 0.1
(``image_loss``, ``image_sigma``, ``checkpoint_dir``, ``checkpoint_every``, ``keep_checkpoints``,
``validation_data``, ``validation_pairs``, ``validation_lams``, ``validate_every``) still work
for one version, with a ``DeprecationWarning`` that names the replacement.

Examples
--------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     options = group_legacy_options({"image_sigma": 0.1, "checkpoint_dir": "ckpt"})
>>> options.loss.image_sigma, options.checkpoints.directory, len(caught)
(0.1, 'ckpt', 2)
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..checks.arrays import check_count
from ..networks.losses import LossConfig

#: The release that drops the flat keywords.
REMOVED_IN = "0.3"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often :func:`hypermorph_nb.train` writes checkpoints.

    Attributes
    ----------
    directory : str or os.PathLike
        Folder of the checkpoints (see :mod:`hypermorph_nb.io.checkpoints`).
    every : int
        Epochs between checkpoints; the last epoch, an interrupt and the end of training are
        always saved.
    keep : int
        Checkpoints kept on disk (2 keeps the previous good one).

    Examples
    --------
    >>> CheckpointConfig("ckpt", every=5).keep
    2
    """

    directory: str | os.PathLike[str]
    every: int = 1
    keep: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", os.fspath(self.directory))
        object.__setattr__(self, "every", check_count(self.every, "checkpoint_every"))
        object.__setattr__(self, "keep", check_count(self.keep, "keep_checkpoints"))


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """Fixed validation pairs that :func:`hypermorph_nb.train` scores as it goes.

    Attributes
    ----------
    data : Dataset
        Images (and label maps, for Dice) to score.
    pairs : int or array_like
        Number of random validation pairs, or ``(P, 2)`` (moving, fixed) indices.
    lams : sequence of float, optional
        HyperMorph only: λ values to validate (default 0.1, 0.5, 0.9).
    every : int
        Epochs between validations (the last epoch is always validated).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> ValidationConfig(synthetic(4, (16, 16)), pairs=2).every
    1
    """

    data: Any
    pairs: int | Sequence[Sequence[int]] | np.ndarray = 8
    lams: Sequence[float] | None = None
    every: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", check_count(self.every, "validate_every"))


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The grouped options after the flat keywords were folded in."""

    loss: LossConfig
    checkpoints: CheckpointConfig | None
    validation: ValidationConfig | None


#: flat keyword -> (group, field of the group)
LEGACY_KEYWORDS: dict[str, tuple[str, str]] = {
    "image_loss": ("loss", "image_loss"),
    "image_sigma": ("loss", "image_sigma"),
    "checkpoint_dir": ("checkpoints", "directory"),
    "checkpoint_every": ("checkpoints", "every"),
    "keep_checkpoints": ("checkpoints", "keep"),
    "validation_data": ("validation", "data"),
    "validation_pairs": ("validation", "pairs"),
    "validation_lams": ("validation", "lams"),
    "validate_every": ("validation", "every"),
}
_GROUP_CLASSES = {"loss": LossConfig, "checkpoints": CheckpointConfig, "validation": ValidationConfig}
_REQUIRED = {"checkpoints": "directory", "validation": "data"}


def group_legacy_options(legacy: Mapping[str, Any], *, loss: LossConfig | None = None,
                         checkpoints: CheckpointConfig | None = None,
                         validation: ValidationConfig | None = None) -> TrainOptions:
    """Fold the flat keywords of version 0.1 into the grouped options, warning once for each.

    Parameters
    ----------
    legacy : mapping
        The extra keywords given to ``train``; a name that is not a former keyword raises
        ``TypeError`` as Python would.
    loss, checkpoints, validation
        The grouped options as given (None when not given).

    Returns
    -------
    TrainOptions

    Raises
    ------
    TypeError
        An unknown keyword, or a flat keyword together with its group.
    """
    unknown = sorted(set(legacy) - set(LEGACY_KEYWORDS))
    if unknown:
        raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}")
    given = {"loss": loss, "checkpoints": checkpoints, "validation": validation}
    fields: dict[str, dict[str, Any]] = {group: {} for group in given}
    for name, value in legacy.items():
        group, field = LEGACY_KEYWORDS[name]
        if given[group] is not None:
            raise TypeError(f"train() got both {group}= and {name}=; set {field} inside "
                            f"{_GROUP_CLASSES[group].__name__}")
        fields[group][field] = value
        warnings.warn(f"train(..., {name}=) is deprecated and will be removed in {REMOVED_IN}; pass "
                      f"{group}={_GROUP_CLASSES[group].__name__}({field}=...)", DeprecationWarning,
                      stacklevel=3)
    resolved: dict[str, Any] = dict(given)
    for group, values in fields.items():
        required = _REQUIRED.get(group)
        if not values:
            continue
        if required is not None and values.get(required) is None:
            for field, value in values.items():   # counts are checked even without a folder
                if field in ("every", "keep"):
                    check_count(value, next(k for k, v in LEGACY_KEYWORDS.items() if v == (group, field)))
            continue
        resolved[group] = _GROUP_CLASSES[group](**values)
    return TrainOptions(loss=resolved["loss"] or LossConfig(), checkpoints=resolved["checkpoints"],
                        validation=resolved["validation"])
