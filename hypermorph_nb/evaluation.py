"""Score registrations over image pairs and sweep λ to choose it with numbers.

:func:`lambda_sweep` registers a set of validation pairs at every λ of a grid
(batched, through the model's compiled :class:`~hypermorph_nb.registration.Registrar`),
and returns a :class:`SweepResult`: Dice per structure, image MSE and folding
per λ, and the optimal λ overall and per structure.
"""

import dataclasses

import numpy as np
from tqdm.auto import tqdm

from .data.dataset import Dataset
from .metrics import dice_batch, folding_fraction
from .models import spec_of
from .registration import Registrar


def choose_pairs(n_images, n_pairs, *, seed=0):
    """Distinct random (moving, fixed) index pairs with moving != fixed.

    Parameters
    ----------
    n_images : int
    n_pairs : int
        At most ``n_images * (n_images - 1)``.
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
    available = n_images * (n_images - 1)
    if n_images < 2:
        raise ValueError(f"need at least 2 images to form pairs, got {n_images}")
    n_pairs = min(int(n_pairs), available)
    flat = np.random.default_rng(seed).choice(available, size=n_pairs, replace=False)
    moving = flat // (n_images - 1)
    fixed = flat % (n_images - 1)
    fixed = fixed + (fixed >= moving)
    return np.stack([moving, fixed], axis=1)


@dataclasses.dataclass
class PairScores:
    """Scores of one registration of every pair.

    Attributes
    ----------
    dice : np.ndarray or None
        ``(pairs, labels)``, NaN where a label is in neither map.
    mse : np.ndarray
        ``(pairs,)`` image MSE between moved and fixed.
    folding : np.ndarray
        ``(pairs,)`` fraction of voxels with Jacobian determinant <= 0.
    """

    dice: np.ndarray
    mse: np.ndarray
    folding: np.ndarray


def score_pairs(model, data, pairs, *, lam=None, labels=None, batch_size=8):
    """Register ``pairs`` of ``data`` (one λ for all) and score each registration.

    Parameters
    ----------
    model : tf.keras.Model
    data : Dataset
    pairs : array_like
        ``(P, 2)`` indices (moving, fixed).
    lam : float, optional
        λ for a HyperMorph model; None for a baseline.
    labels : sequence of int, optional
        Structures to score; default all non-zero labels of ``data``.
    batch_size : int

    Returns
    -------
    PairScores
    """
    registrar = Registrar.for_model(model)
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    if data.has_labels and labels is None:
        labels = data.label_values()
    dice, mse, folding = [], [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        moved, flow = registrar.predict(moving, fixed, lam)
        mse.append(np.mean((moved - fixed) ** 2, axis=(1, 2, 3)))
        folding.append(np.atleast_1d(folding_fraction(flow)))
        if data.has_labels:
            warped = registrar.warp(data.labels[chunk[:, 0]], flow, interp="nearest")
            dice.append(dice_batch(warped, data.labels[chunk[:, 1]], labels))
    return PairScores(
        dice=np.concatenate(dice) if dice else None,
        mse=np.concatenate(mse),
        folding=np.concatenate(folding),
    )


def identity_scores(data, pairs, *, labels=None):
    """Scores of leaving each moving image unregistered (the baseline to beat)."""
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    moving, fixed = data.images[pairs[:, 0]], data.images[pairs[:, 1]]
    dice = None
    if data.has_labels:
        labels = data.label_values() if labels is None else labels
        dice = dice_batch(data.labels[pairs[:, 0]], data.labels[pairs[:, 1]], labels)
    return PairScores(dice=dice, mse=np.mean((moving - fixed) ** 2, axis=(1, 2, 3)),
                      folding=np.zeros(len(pairs)))


@dataclasses.dataclass
class SweepResult:
    """Scores over a λ grid (see :func:`lambda_sweep`).

    Attributes
    ----------
    lams : np.ndarray
        ``(L,)`` the λ grid.
    pairs : np.ndarray
        ``(P, 2)`` the (moving, fixed) indices scored.
    labels : np.ndarray
        ``(K,)`` structure label values (empty without label maps).
    label_names : dict
        Names of the label values, when known.
    dice : np.ndarray or None
        ``(L, P, K)`` Dice per λ, pair and structure.
    mse, folding : np.ndarray
        ``(L, P)`` image MSE and folding fraction.
    identity : PairScores
        The unregistered pairs' scores.
    """

    lams: np.ndarray
    pairs: np.ndarray
    labels: np.ndarray
    label_names: dict
    dice: np.ndarray
    mse: np.ndarray
    folding: np.ndarray
    identity: PairScores

    @property
    def mean_dice(self):
        """``(L,)`` Dice per λ: mean over pairs of the mean over structures present."""
        self._require_labels()
        with np.errstate(invalid="ignore"):
            return np.nanmean(np.nanmean(self.dice, axis=2), axis=1)

    @property
    def dice_per_label(self):
        """``(L, K)`` Dice per λ and structure, averaged over pairs."""
        self._require_labels()
        with np.errstate(invalid="ignore"):
            return np.nanmean(self.dice, axis=1)

    @property
    def optimal_lam(self):
        """λ of the grid with the highest mean Dice (lowest MSE without labels)."""
        if self.dice is None:
            return float(self.lams[np.argmin(self.mse.mean(1))])
        return float(self.lams[np.nanargmax(self.mean_dice)])

    @property
    def optimal_lam_per_label(self):
        """Dict: structure label value -> λ with its highest mean Dice."""
        per_label = self.dice_per_label
        return {int(label): float(self.lams[np.nanargmax(per_label[:, k])])
                for k, label in enumerate(self.labels) if not np.all(np.isnan(per_label[:, k]))}

    @property
    def identity_dice(self):
        """Mean Dice of the unregistered pairs."""
        self._require_labels()
        with np.errstate(invalid="ignore"):
            return float(np.nanmean(np.nanmean(self.identity.dice, axis=1)))

    def summary(self):
        """A JSON-serialisable dict of the curves and optima."""
        out = {
            "lams": self.lams.tolist(),
            "n_pairs": int(len(self.pairs)),
            "mse": self.mse.mean(1).tolist(),
            "folding_percent": (100 * self.folding.mean(1)).tolist(),
            "identity_mse": float(self.identity.mse.mean()),
            "optimal_lam": self.optimal_lam,
        }
        if self.dice is not None:
            out.update({
                "mean_dice": self.mean_dice.tolist(),
                "identity_dice": self.identity_dice,
                "optimal_lam_per_label": {str(k): v for k, v in self.optimal_lam_per_label.items()},
            })
        return out

    def table(self):
        """Per-λ table as a pandas DataFrame (or a list of dicts without pandas)."""
        rows = []
        for index, lam in enumerate(self.lams):
            row = {"lam": float(lam), "mse": float(self.mse[index].mean()),
                   "folding_percent": float(100 * self.folding[index].mean())}
            if self.dice is not None:
                row["mean_dice"] = float(self.mean_dice[index])
                for k, label in enumerate(self.labels):
                    name = (self.label_names or {}).get(int(label), str(int(label)))
                    row[f"dice[{name}]"] = float(self.dice_per_label[index, k])
            rows.append(row)
        try:
            import pandas
        except ImportError:
            return rows
        return pandas.DataFrame(rows).set_index("lam")

    def _require_labels(self):
        if self.dice is None:
            raise ValueError("this sweep has no Dice: the data had no label maps; "
                             "load data with labels (e.g. load_npz on a file with 'segs')")


def lambda_sweep(model, data, lams, *, pairs=None, n_pairs=16, seed=0, batch_size=8, progress=True):
    """Register validation pairs at every λ of a grid and score them.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    data : Dataset
        Validation images, ideally with label maps (for Dice).
    lams : sequence of float
        λ values in [0, 1].
    pairs : array_like, optional
        ``(P, 2)`` (moving, fixed) indices; default ``n_pairs`` random pairs.
    n_pairs : int
        Number of random pairs when ``pairs`` is None.
    seed : int
        Seed for the random pairs.
    batch_size : int
        Pairs registered per model call.
    progress : bool
        Show a progress bar over λ.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> result = hnb.lambda_sweep(model, data, [0.0, 0.5, 1.0], n_pairs=4, progress=False)
    >>> result.mean_dice.shape, result.optimal_lam in (0.0, 0.5, 1.0)
    ((3,), True)
    """
    if not spec_of(model).is_hypermorph:
        raise ValueError("lambda_sweep needs a HyperMorph model; a baseline has one fixed λ "
                         "(score it with score_pairs(model, data, pairs))")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a hypermorph_nb.data.Dataset, got {type(data).__name__}")
    lams = np.asarray(lams, dtype=np.float64).reshape(-1)
    if lams.size == 0 or not np.all(np.isfinite(lams)) or lams.min() < 0 or lams.max() > 1:
        raise ValueError(f"lams must be a non-empty list of values in [0, 1], got {lams.tolist()}")
    pairs = choose_pairs(len(data), n_pairs, seed=seed) if pairs is None else np.asarray(pairs, int)
    labels = data.label_values() if data.has_labels else np.array([], dtype=int)
    scores = [score_pairs(model, data, pairs, lam=float(lam), labels=labels, batch_size=batch_size)
              for lam in tqdm(lams, desc="λ sweep", disable=not progress)]
    return SweepResult(
        lams=lams,
        pairs=pairs,
        labels=labels,
        label_names=data.label_names,
        dice=np.stack([s.dice for s in scores]) if data.has_labels else None,
        mse=np.stack([s.mse for s in scores]),
        folding=np.stack([s.folding for s in scores]),
        identity=identity_scores(data, pairs, labels=labels),
    )
