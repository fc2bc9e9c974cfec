"""Score registrations over image pairs and sweep λ to choose it with numbers.

- :func:`lambda_sweep` registers a set of validation pairs at every λ of a grid
  with one HyperMorph model (λ × pairs in batches, through the model's compiled
  :class:`~hypermorph_nb.registration.Registrar`) and returns a
  :class:`SweepResult`: Dice per structure, image MSE/NCC and folding per λ,
  and the optimal λ overall and per structure with the curve it came from.
- :func:`baseline_sweep` scores a grid of separately trained VoxelMorph models
  (one per λ) the same way, and :func:`compare_sweeps` sets the two side by side.
- :func:`score_pairs` and :func:`identity_scores` score one model at one λ, or
  no registration at all.

Dice convention: a structure is scored on a pair only when it appears in both
the moving and the fixed label map (2D slices of different subjects do not all
cut every structure); elsewhere its Dice is NaN and means skip it.
"""

import contextlib
import dataclasses
import warnings

import numpy as np
from tqdm.auto import tqdm

from .data.dataset import Dataset
from .data.validation import check_count
from .metrics import dice_batch, folding_fraction, image_mse, image_ncc
from .models import spec_of
from .registration import Registrar


def choose_pairs(n_images, n_pairs, *, seed=0):
    """Distinct random (moving, fixed) index pairs with moving != fixed.

    Parameters
    ----------
    n_images : int
    n_pairs : int
        Number of pairs; at most ``n_images * (n_images - 1)`` are returned.
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
    if n_images < 2:
        raise ValueError(f"need at least 2 images to form pairs, got {n_images}")
    available = n_images * (n_images - 1)
    n_pairs = min(check_count(n_pairs, "n_pairs"), available)
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
        ``(pairs, labels)``; NaN where a label is missing from the moving or
        the fixed label map. None without label maps.
    mse : np.ndarray
        ``(pairs,)`` image MSE between moved and fixed.
    folding : np.ndarray
        ``(pairs,)`` fraction of voxels with Jacobian determinant <= 0.
    ncc : np.ndarray
        ``(pairs,)`` normalised cross-correlation between moved and fixed.
    """

    dice: np.ndarray
    mse: np.ndarray
    folding: np.ndarray
    ncc: np.ndarray = None


def score_pairs(model, data, pairs, *, lam=None, labels=None, batch_size=8):
    """Register ``pairs`` of ``data`` (one λ for all) and score each registration.

    Parameters
    ----------
    model : tf.keras.Model
        A baseline (``lam`` None) or a HyperMorph model (``lam`` required).
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

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> scores = score_pairs(model, data, [[0, 1], [2, 3]])
    >>> scores.dice.shape == (2, len(data.label_values())), scores.mse.shape
    (True, (2,))
    """
    _check_data(data)
    pairs = _check_pairs(pairs, len(data))
    batch_size = check_count(batch_size, "batch_size")
    labels = _labels_of(data, labels)
    registrar = Registrar.for_model(model)
    lams = None if lam is None else np.full(len(pairs), lam, dtype=np.float64)
    scores = _register_and_score(registrar, data, pairs, lams, labels, batch_size, progress=None)
    if scores.dice is not None:
        scores.dice = np.where(_presence(data, pairs, labels), scores.dice, np.nan)
    return scores


def identity_scores(data, pairs, *, labels=None):
    """Scores of leaving each moving image unregistered (the baseline to beat).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> scores = identity_scores(synthetic(4, (32, 32), seed=0), [[0, 1]])
    >>> float(scores.folding[0])
    0.0
    """
    _check_data(data)
    pairs = _check_pairs(pairs, len(data))
    labels = _labels_of(data, labels)
    moving, fixed = data.images[pairs[:, 0]], data.images[pairs[:, 1]]
    dice = None
    if data.has_labels:
        moving_labels, fixed_labels = data.labels[pairs[:, 0]], data.labels[pairs[:, 1]]
        dice = np.where(_presence(data, pairs, labels), dice_batch(moving_labels, fixed_labels, labels),
                        np.nan)
    return PairScores(dice=dice, mse=image_mse(moving, fixed, per_image=True),
                      folding=np.zeros(len(pairs)), ncc=image_ncc(moving, fixed, per_image=True))


@dataclasses.dataclass
class LambdaOptimum:
    """The best λ of a grid for one curve (mean Dice, or one structure's Dice).

    Attributes
    ----------
    lam : float
        The grid value with the highest score.
    score : float
        The score there.
    lams, curve : np.ndarray
        The grid and the score at each of its values (NaN where undefined).
    label : int or None
        Structure label value, None for the mean over structures.
    name : str
        ``"mean"`` or the structure's name.
    """

    lam: float
    score: float
    lams: np.ndarray
    curve: np.ndarray
    label: int = None
    name: str = "mean"


@dataclasses.dataclass
class SweepResult:
    """Scores over a λ grid (see :func:`lambda_sweep` and :func:`baseline_sweep`).

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
        ``(L, P, K)`` Dice per λ, pair and structure; NaN where the structure
        is missing from the pair's moving or fixed label map.
    mse, folding : np.ndarray
        ``(L, P)`` image MSE and folding fraction.
    identity : PairScores
        The unregistered pairs' scores.
    ncc : np.ndarray
        ``(L, P)`` normalised cross-correlation of moved and fixed images.
    """

    lams: np.ndarray
    pairs: np.ndarray
    labels: np.ndarray
    label_names: dict
    dice: np.ndarray
    mse: np.ndarray
    folding: np.ndarray
    identity: PairScores
    ncc: np.ndarray = None

    @property
    def pair_dice(self):
        """``(L, P)`` Dice per λ and pair: mean over the structures scored on that pair."""
        self._require_labels()
        with _quiet_nan_warnings():
            return np.nanmean(self.dice, axis=2)

    @property
    def mean_dice(self):
        """``(L,)`` Dice per λ: mean over pairs of the mean over structures present."""
        with _quiet_nan_warnings():
            return np.nanmean(self.pair_dice, axis=1)

    @property
    def mean_dice_sem(self):
        """``(L,)`` standard error of :attr:`mean_dice` over pairs."""
        return _sem_over_pairs(self.pair_dice)

    @property
    def dice_per_label(self):
        """``(L, K)`` Dice per λ and structure, averaged over the pairs that have it."""
        self._require_labels()
        with _quiet_nan_warnings():
            return np.nanmean(self.dice, axis=1)

    @property
    def optimal_lam(self):
        """λ of the grid with the highest mean Dice (lowest MSE without labels)."""
        if self.dice is None:
            return float(self.lams[np.argmin(self.mse.mean(1))])
        return self.optimum().lam

    @property
    def optimal_lam_per_label(self):
        """Dict: structure label value -> λ with its highest mean Dice.

        Structures that no pair has in both images are left out.
        """
        per_label = self.dice_per_label
        return {int(label): float(self.lams[np.nanargmax(per_label[:, k])])
                for k, label in enumerate(self.labels) if not np.all(np.isnan(per_label[:, k]))}

    @property
    def identity_dice(self):
        """Mean Dice of the unregistered pairs (same convention as :attr:`mean_dice`)."""
        self._require_labels()
        with _quiet_nan_warnings():
            return float(np.nanmean(np.nanmean(self.identity.dice, axis=1)))

    def label_name(self, label):
        """Name of a structure label value (its number as text when unknown)."""
        return (self.label_names or {}).get(int(label), str(int(label)))

    def optimum(self, label=None):
        """The best λ for the mean Dice, or for one structure, with its curve.

        Parameters
        ----------
        label : int or str, optional
            Structure label value or name; None for the mean over structures.

        Returns
        -------
        LambdaOptimum

        Raises
        ------
        ValueError
            Without label maps, for an unknown structure, or when the curve
            is undefined at every λ (no pair has the structure in both images).
        """
        self._require_labels()
        if label is None:
            curve, name, value = self.mean_dice, "mean", None
        else:
            k = self._label_index(label)
            curve, value = self.dice_per_label[:, k], int(self.labels[k])
            name = self.label_name(value)
        if np.all(np.isnan(curve)):
            raise ValueError(f"Dice of {name!r} is undefined at every λ: no pair has this "
                             "structure in both its moving and fixed label maps; use more pairs")
        best = int(np.nanargmax(curve))
        return LambdaOptimum(lam=float(self.lams[best]), score=float(curve[best]),
                             lams=self.lams.copy(), curve=np.asarray(curve, dtype=float).copy(),
                             label=value, name=name)

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
        if self.ncc is not None:
            out["ncc"] = np.nanmean(self.ncc, axis=1).tolist()
        if self.dice is not None:
            per_label = self.dice_per_label
            out.update({
                "mean_dice": self.mean_dice.tolist(),
                "identity_dice": self.identity_dice,
                "optimal_lam_per_label": {str(k): v for k, v in self.optimal_lam_per_label.items()},
                "dice_per_structure": {self.label_name(label): per_label[:, k].tolist()
                                       for k, label in enumerate(self.labels)},
            })
        return out

    def table(self):
        """Per-λ table as a pandas DataFrame (or a list of dicts without pandas)."""
        rows = []
        per_label = self.dice_per_label if self.dice is not None else None
        mean_dice = self.mean_dice if self.dice is not None else None
        for index, lam in enumerate(self.lams):
            row = {"lam": float(lam), "mse": float(self.mse[index].mean()),
                   "folding_percent": float(100 * self.folding[index].mean())}
            if self.ncc is not None:
                row["ncc"] = float(np.nanmean(self.ncc[index]))
            if per_label is not None:
                row["mean_dice"] = float(mean_dice[index])
                for k, label in enumerate(self.labels):
                    row[f"dice[{self.label_name(label)}]"] = float(per_label[index, k])
            rows.append(row)
        try:
            import pandas
        except ImportError:
            return rows
        return pandas.DataFrame(rows).set_index("lam")

    def _label_index(self, label):
        if isinstance(label, str):
            matches = [k for k, value in enumerate(self.labels) if self.label_name(value) == label]
        else:
            matches = list(np.flatnonzero(self.labels == int(label)))
        if not matches:
            known = [self.label_name(value) for value in self.labels]
            raise ValueError(f"no structure {label!r} in this sweep; known: {known}")
        return int(matches[0])

    def _require_labels(self):
        if self.dice is None:
            raise ValueError("this sweep has no Dice: the data had no label maps; "
                             "load data with labels (e.g. load_npz on a file with 'segs')")


def lambda_sweep(model, data, lams, *, pairs=None, n_pairs=16, seed=0, batch_size=8, progress=True):
    """Register validation pairs at every λ of a grid and score them.

    All λ × pair registrations go through the model in batches of
    ``batch_size`` (HyperMorph takes one λ per pair, so a batch may mix λ).

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
        Registrations per model call.
    progress : bool
        Show a progress bar.

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
    >>> best = result.optimum()
    >>> best.lam == result.optimal_lam, best.curve.shape
    (True, (3,))
    """
    if not spec_of(model).is_hypermorph:
        raise ValueError("lambda_sweep needs a HyperMorph model; a baseline has one fixed λ "
                         "(score it with score_pairs(model, data, pairs), or a grid of "
                         "baselines with baseline_sweep({λ: model, ...}, data))")
    _check_data(data)
    lams = _check_lams(lams)
    batch_size = check_count(batch_size, "batch_size")
    pairs = choose_pairs(len(data), n_pairs, seed=seed) if pairs is None \
        else _check_pairs(pairs, len(data))
    labels = _labels_of(data, None)
    registrar = Registrar.for_model(model)
    every_pair = np.tile(pairs, (len(lams), 1))
    every_lam = np.repeat(lams, len(pairs))
    scores = _register_and_score(registrar, data, every_pair, every_lam, labels, batch_size,
                                 progress="λ sweep" if progress else None)
    return _sweep_result(lams, pairs, labels, data, scores)


def baseline_sweep(models, data, *, pairs=None, n_pairs=16, seed=0, batch_size=8, progress=True):
    """Score a grid of separately trained baselines, one model per λ.

    The result has the same form as :func:`lambda_sweep`'s, so the optimal λ
    of the grid and :func:`compare_sweeps` work the same way.

    Parameters
    ----------
    models : dict of float to tf.keras.Model
        ``{λ: VoxelMorph baseline trained at that λ}``.
    data, pairs, n_pairs, seed, batch_size, progress
        As in :func:`lambda_sweep`.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> baseline_sweep({0.5: model, 0.9: model}, data, n_pairs=4, progress=False).lams.tolist()
    [0.5, 0.9]
    """
    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict {λ: baseline model}, e.g. "
                        "{0.5: model_a, 0.9: model_b}")
    _check_data(data)
    batch_size = check_count(batch_size, "batch_size")
    lams = _check_lams(sorted(models))
    for lam in lams:
        if spec_of(models[lam]).is_hypermorph:
            raise ValueError(f"the model for λ={lam} is a HyperMorph model; baseline_sweep takes "
                             "baselines trained at one λ each (use lambda_sweep for HyperMorph)")
    pairs = choose_pairs(len(data), n_pairs, seed=seed) if pairs is None \
        else _check_pairs(pairs, len(data))
    labels = _labels_of(data, None)
    scores = [_register_and_score(Registrar.for_model(models[lam]), data, pairs, None, labels,
                                  batch_size, progress=None)
              for lam in tqdm(lams, desc="baselines", disable=not progress)]
    merged = PairScores(
        dice=np.concatenate([s.dice for s in scores]) if data.has_labels else None,
        mse=np.concatenate([s.mse for s in scores]),
        folding=np.concatenate([s.folding for s in scores]),
        ncc=np.concatenate([s.ncc for s in scores]),
    )
    return _sweep_result(lams, pairs, labels, data, merged)


@dataclasses.dataclass
class SweepComparison:
    """Two sweeps on the same λ grid and pairs (see :func:`compare_sweeps`).

    Attributes
    ----------
    candidate, reference : SweepResult
    names : tuple of str
        Display names of the candidate and the reference.
    """

    candidate: SweepResult
    reference: SweepResult
    names: tuple = ("HyperMorph", "baselines")

    @property
    def dice_difference(self):
        """``(L,)`` candidate minus reference mean Dice, paired over the same pairs."""
        return self.candidate.mean_dice - self.reference.mean_dice

    @property
    def dice_difference_sem(self):
        """``(L,)`` standard error of :attr:`dice_difference` from the per-pair differences."""
        return _sem_over_pairs(self.candidate.pair_dice - self.reference.pair_dice)

    @property
    def optimum_steps_apart(self):
        """How many grid steps separate the two optimal λ (0: the same λ)."""
        lams = list(self.candidate.lams)
        return abs(lams.index(self.candidate.optimal_lam) - lams.index(self.reference.optimal_lam))

    def per_label_steps_apart(self):
        """Dict: structure name -> grid steps between the two per-structure optimal λ."""
        lams = list(self.candidate.lams)
        ours, theirs = self.candidate.optimal_lam_per_label, self.reference.optimal_lam_per_label
        return {self.candidate.label_name(label): abs(lams.index(ours[label]) - lams.index(theirs[label]))
                for label in ours if label in theirs}

    def rows(self):
        """One dict per λ: Dice and % folding of both, and the Dice difference."""
        first, second = self.names
        difference, sem = self.dice_difference, self.dice_difference_sem
        ours, theirs = self.candidate.mean_dice, self.reference.mean_dice
        return [{
            "lam": float(lam),
            f"{first} Dice": float(ours[i]),
            f"{second} Dice": float(theirs[i]),
            "difference": float(difference[i]),
            "± (s.e.)": float(sem[i]),
            f"{first} folding %": float(100 * self.candidate.folding[i].mean()),
            f"{second} folding %": float(100 * self.reference.folding[i].mean()),
        } for i, lam in enumerate(self.candidate.lams)]

    def summary(self):
        """A JSON-serialisable dict: optima, differences and per-structure agreement."""
        first, second = self.names
        return {
            "lams": self.candidate.lams.tolist(),
            f"{first} optimal_lam": self.candidate.optimal_lam,
            f"{second} optimal_lam": self.reference.optimal_lam,
            "optimum_steps_apart": self.optimum_steps_apart,
            "max_abs_dice_difference": float(np.nanmax(np.abs(self.dice_difference))),
            "per_label_steps_apart": self.per_label_steps_apart(),
        }


def compare_sweeps(candidate, reference, *, names=("HyperMorph", "baselines")):
    """Set two sweeps side by side, e.g. one HyperMorph against a grid of baselines.

    Parameters
    ----------
    candidate, reference : SweepResult
        Sweeps over the same λ grid, pairs and structures.
    names : tuple of str
        Display names, used in :meth:`SweepComparison.rows`.

    Returns
    -------
    SweepComparison

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> baselines = baseline_sweep({0.5: model, 0.9: model}, data, n_pairs=4, progress=False)
    >>> comparison = compare_sweeps(baselines, baselines)   # e.g. lambda_sweep(hyper, ..., pairs=baselines.pairs)
    >>> [row["lam"] for row in comparison.rows()], comparison.optimum_steps_apart
    ([0.5, 0.9], 0)
    """
    if not (isinstance(candidate, SweepResult) and isinstance(reference, SweepResult)):
        raise TypeError("compare_sweeps takes two SweepResult objects (from lambda_sweep or "
                        "baseline_sweep)")
    if candidate.lams.shape != reference.lams.shape or not np.allclose(candidate.lams, reference.lams):
        raise ValueError(f"the sweeps have different λ grids ({candidate.lams.tolist()} and "
                         f"{reference.lams.tolist()}); sweep both over the same λ values")
    if candidate.pairs.shape != reference.pairs.shape or not np.array_equal(candidate.pairs, reference.pairs):
        raise ValueError("the sweeps scored different pairs; pass pairs=reference.pairs to the "
                         "second sweep so both score the same registrations")
    if not np.array_equal(candidate.labels, reference.labels):
        raise ValueError("the sweeps scored different structures; use the same validation data")
    candidate._require_labels()
    reference._require_labels()
    return SweepComparison(candidate=candidate, reference=reference, names=tuple(names))


def _register_and_score(registrar, data, pairs, lams, labels, batch_size, progress):
    """Register ``pairs`` (with per-pair ``lams`` or None) in batches and score them.

    Dice is left unmasked: the caller applies :func:`_presence` once per pair.
    """
    dice, mse, folding, ncc = [], [], [], []
    starts = range(0, len(pairs), batch_size)
    for start in tqdm(starts, desc=progress, disable=progress is None):
        chunk = pairs[start:start + batch_size]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        chunk_lams = None if lams is None else lams[start:start + batch_size]
        moved, flow = registrar.predict(moving, fixed, chunk_lams)
        mse.append(image_mse(moved, fixed, per_image=True))
        ncc.append(image_ncc(moved, fixed, per_image=True))
        folding.append(np.atleast_1d(folding_fraction(flow)))
        if data.has_labels:
            moving_labels, fixed_labels = data.labels[chunk[:, 0]], data.labels[chunk[:, 1]]
            warped = registrar.warp(moving_labels, flow, interp="nearest")
            dice.append(dice_batch(warped, fixed_labels, labels))
    return PairScores(dice=np.concatenate(dice) if dice else None, mse=np.concatenate(mse),
                      folding=np.concatenate(folding), ncc=np.concatenate(ncc))


def _presence(data, pairs, labels):
    """``(P, K)``: whether each structure is in both the moving and the fixed label map of a pair.

    Dice is NaN (left out of means) where it is not.
    """
    return _present(data.labels[pairs[:, 0]], labels) & _present(data.labels[pairs[:, 1]], labels)


def _present(maps, labels):
    flat = maps.reshape(len(maps), -1)
    return np.stack([np.isin(labels, np.unique(row)) for row in flat])


def _sweep_result(lams, pairs, labels, data, scores):
    def per_lam(values):
        return values.reshape(len(lams), len(pairs), *values.shape[1:])

    dice = None
    if data.has_labels:
        dice = np.where(_presence(data, pairs, labels), per_lam(scores.dice), np.nan)
    return SweepResult(
        lams=lams, pairs=pairs, labels=labels, label_names=data.label_names, dice=dice,
        mse=per_lam(scores.mse), folding=per_lam(scores.folding),
        identity=identity_scores(data, pairs, labels=labels), ncc=per_lam(scores.ncc),
    )


def _check_data(data):
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a hypermorph_nb.data.Dataset, got {type(data).__name__}; "
                        "wrap arrays with Dataset.from_arrays(images, labels)")


def _check_lams(lams):
    try:
        values = np.asarray(lams, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"lams must be a list of numbers in [0, 1], got {lams!r}") from None
    if values.size == 0 or not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"lams must be a non-empty list of values in [0, 1], got {values.tolist()}")
    if len(np.unique(values)) != len(values):
        raise ValueError(f"lams has repeated values {values.tolist()}; give each λ once")
    return values


def _check_pairs(pairs, n_images):
    try:
        array = np.asarray(pairs)
    except (TypeError, ValueError):
        array = np.asarray([], dtype=object)
    if array.ndim == 1 and array.size == 2:
        array = array.reshape(1, 2)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0 \
            or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"pairs must be a non-empty (P, 2) array of integer (moving, fixed) "
                         f"indices, got {np.shape(pairs)} of {getattr(array, 'dtype', '?')}")
    if array.min() < 0 or array.max() >= n_images:
        raise ValueError(f"pairs index images {array.min()}..{array.max()}, but the data has "
                         f"{n_images} images (valid indices 0..{n_images - 1})")
    return array.astype(int)


def _labels_of(data, labels):
    if not data.has_labels:
        return np.array([], dtype=int)
    return data.label_values() if labels is None else np.asarray(labels, dtype=int).reshape(-1)


def _sem_over_pairs(per_pair):
    """Standard error of the mean over pairs (axis 1) of ``(L, P)`` values, NaN skipped."""
    counts = np.sum(np.isfinite(per_pair), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet_nan_warnings():
        return np.nanstd(per_pair, axis=1, ddof=1) / np.sqrt(counts)


@contextlib.contextmanager
def _quiet_nan_warnings():
    """Silence numpy's 'Mean of empty slice' warnings: NaN is the documented answer there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield
