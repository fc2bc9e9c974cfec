"""Validation during training: image MSE and Dice of fixed pairs at a few λ."""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from numpy.typing import ArrayLike
import numpy as np

from ..checks.arrays import check_count
from ..checks.pairs import check_pairs, choose_pairs
from ..checks.values import check_lambdas
from ..data.dataset import as_dataset
from ..evaluation.results import quiet_nan_warnings
from ..evaluation.sweeps import score_pairs

if TYPE_CHECKING:
    import tensorflow as tf
    from ..data.dataset import Dataset
    from ..networks.models import ModelSpec


#: Validation λ values of a HyperMorph model when none are given.
DEFAULT_VALIDATION_LAMBDAS = (0.1, 0.5, 0.9)


class Validation:
    """Image MSE and Dice of fixed validation pairs at a few λ values."""

    def __init__(self, data: Dataset | ArrayLike, *, spec: ModelSpec, pairs: int | ArrayLike,
                 lams: ArrayLike | None, seed: int) -> None:
        self.data = data = as_dataset(data, name="validation_data", inshape=spec.inshape)
        if np.ndim(pairs) == 0:
            self.pairs = choose_pairs(len(data), check_count(pairs, "validation_pairs"), seed=seed)
        else:
            self.pairs = check_pairs(pairs, len(data), name="validation_pairs")
        if spec.is_hypermorph:
            lams = DEFAULT_VALIDATION_LAMBDAS if lams is None else lams
            self.lams = check_lambdas(lams, name="validation_lams").tolist()
        elif lams is not None:
            raise ValueError("a baseline is trained at one λ; validation_lams is for HyperMorph models")
        else:
            self.lams = [None]
        self.labels = data.label_values() if data.has_labels else None
        # a model conditioned on more than λ is validated with the others at their defaults
        self.others: dict[str, Any] = {h.name: h.default for h in spec.hyperparameters if h.name != "lam"}

    def config(self) -> dict[str, Any]:
        return {"pairs": len(self.pairs), "lams": self.lams, "dice": self.labels is not None}

    def scores(self, model: tf.keras.Model) -> tuple[list[float], list[float] | None]:
        """Mean MSE per λ and mean Dice per λ (None without label maps)."""
        mse, dice = [], []
        for lam in self.lams:
            scores = score_pairs(model, self.data, pairs=self.pairs, lam=lam, labels=self.labels, **self.others)
            mse.append(float(np.mean(scores.mse)))
            if scores.dice is not None:
                with quiet_nan_warnings():
                    dice.append(float(np.nanmean(np.nanmean(scores.dice, axis=1))))
        return mse, (dice if self.labels is not None else None)
