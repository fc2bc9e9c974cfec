"""Validation during training: image MSE and Dice of fixed pairs at a few λ."""

import numpy as np

from ..data.dataset import Dataset
from ..data.sampling import check_lambda
from ..data.validation import check_count
from ..evaluation import _quiet_nan_warnings, choose_pairs, score_pairs

#: Validation λ values of a HyperMorph model when none are given.
DEFAULT_VALIDATION_LAMBDAS = (0.1, 0.5, 0.9)


class Validation:
    """Image MSE and Dice of fixed validation pairs at a few λ values."""

    def __init__(self, data, *, spec, pairs, lams, seed):
        if not isinstance(data, Dataset):
            data = Dataset.from_arrays(data, normalize="none", source="validation arrays")
        if data.shape != spec.inshape:
            raise ValueError(f"validation_data images have shape {data.shape} but the model was "
                             f"built for {spec.inshape}; use validation images of the training shape")
        self.data = data
        if np.ndim(pairs) == 0:
            self.pairs = choose_pairs(len(data), check_count(pairs, "validation_pairs"), seed=seed)
        else:
            self.pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
            if self.pairs.size == 0 or self.pairs.min() < 0 or self.pairs.max() >= len(data):
                raise ValueError(f"validation_pairs must index the {len(data)} validation images "
                                 f"(0..{len(data) - 1}), got {self.pairs.tolist()}")
        if spec.is_hypermorph:
            lams = DEFAULT_VALIDATION_LAMBDAS if lams is None else lams
            check_lambda(np.atleast_1d(lams), name="validation_lams")
            self.lams = [float(v) for v in np.atleast_1d(lams)]
        elif lams is not None:
            raise ValueError("a baseline is trained at one λ; validation_lams is for HyperMorph models")
        else:
            self.lams = [None]
        self.labels = data.label_values() if data.has_labels else None

    def config(self):
        return {"pairs": len(self.pairs), "lams": self.lams, "dice": self.labels is not None}

    def scores(self, model):
        """Mean MSE per λ and mean Dice per λ (None without label maps)."""
        mse, dice = [], []
        for lam in self.lams:
            scores = score_pairs(model, self.data, self.pairs, lam=lam, labels=self.labels)
            mse.append(float(np.mean(scores.mse)))
            if scores.dice is not None:
                with _quiet_nan_warnings():
                    dice.append(float(np.nanmean(np.nanmean(scores.dice, axis=1))))
        return mse, (dice if self.labels is not None else None)
