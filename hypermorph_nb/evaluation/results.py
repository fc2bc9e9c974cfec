"""What a λ sweep returns: scores per λ, pair and structure, optima, and comparisons.

:func:`hypermorph_nb.evaluation.sweeps.lambda_sweep` and
:func:`~hypermorph_nb.evaluation.sweeps.baseline_sweep` return a :class:`SweepResult`
(built from one :class:`PairScores` per registration batch); its
:meth:`~SweepResult.optimum` gives a :class:`LambdaOptimum`, and
:func:`compare_sweeps` sets two sweeps side by side (:class:`SweepComparison`).
All are importable from :mod:`hypermorph_nb.evaluation.sweeps` too.

Dice convention: a structure is scored on a pair only when it appears in both
the moving and the fixed label map; elsewhere its Dice is NaN and means skip it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import contextlib
import dataclasses
import warnings

import numpy as np


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

    dice: np.ndarray | None
    mse: np.ndarray
    folding: np.ndarray
    ncc: np.ndarray | None = None


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
    label: int | None = None
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
    label_names: dict[int, str] | None
    dice: np.ndarray | None
    mse: np.ndarray
    folding: np.ndarray
    identity: PairScores
    ncc: np.ndarray | None = None

    @property
    def pair_dice(self) -> np.ndarray:
        """``(L, P)`` Dice per λ and pair: mean over the structures scored on that pair."""
        dice = self._require_labels()
        with quiet_nan_warnings():
            return np.nanmean(dice, axis=2)

    @property
    def mean_dice(self) -> np.ndarray:
        """``(L,)`` Dice per λ: mean over pairs of the mean over structures present."""
        with quiet_nan_warnings():
            return np.nanmean(self.pair_dice, axis=1)

    @property
    def mean_dice_sem(self) -> np.ndarray:
        """``(L,)`` standard error of :attr:`mean_dice` over pairs."""
        return sem_over_pairs(self.pair_dice)

    @property
    def dice_per_label(self) -> np.ndarray:
        """``(L, K)`` Dice per λ and structure, averaged over the pairs that have it."""
        dice = self._require_labels()
        with quiet_nan_warnings():
            return np.nanmean(dice, axis=1)

    @property
    def optimal_lam(self) -> float:
        """λ of the grid with the highest mean Dice (lowest MSE without labels)."""
        if self.dice is None:
            return float(self.lams[np.argmin(self.mse.mean(1))])
        return self.optimum().lam

    @property
    def optimal_lam_per_label(self) -> dict[int, float]:
        """Dict: structure label value -> λ with its highest mean Dice.

        Structures that no pair has in both images are left out.
        """
        per_label = self.dice_per_label
        return {int(label): float(self.lams[np.nanargmax(per_label[:, k])])
                for k, label in enumerate(self.labels) if not np.all(np.isnan(per_label[:, k]))}

    @property
    def identity_dice(self) -> float:
        """Mean Dice of the unregistered pairs (same convention as :attr:`mean_dice`)."""
        self._require_labels()
        assert self.identity.dice is not None  # scored with the same label maps
        with quiet_nan_warnings():
            return float(np.nanmean(np.nanmean(self.identity.dice, axis=1)))

    def label_name(self, label: int) -> str:
        """Name of a structure label value (its number as text when unknown)."""
        return (self.label_names or {}).get(int(label), str(int(label)))

    def optimum(self, label: int | str | None = None) -> LambdaOptimum:
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

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the curves and optima."""
        out: dict[str, Any] = {
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

    def table(self) -> Any:
        """Per-λ table as a pandas DataFrame (or a list of dicts without pandas)."""
        rows = []
        per_label = self.dice_per_label if self.dice is not None else None
        mean_dice = self.mean_dice if self.dice is not None else None
        for index, lam in enumerate(self.lams):
            row = {"lam": float(lam), "mse": float(self.mse[index].mean()),
                   "folding_percent": float(100 * self.folding[index].mean())}
            if self.ncc is not None:
                row["ncc"] = float(np.nanmean(self.ncc[index]))
            if per_label is not None and mean_dice is not None:  # both with label maps
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
        return label_index(self.labels, label, self.label_names, where="this sweep")

    def _require_labels(self) -> np.ndarray:
        if self.dice is None:
            raise ValueError("this sweep has no Dice: the data had no label maps; "
                             "load data with labels (e.g. load_npz on a file with 'segs')")
        return self.dice


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
    names: tuple[str, ...] = ("HyperMorph", "baselines")

    @property
    def dice_difference(self) -> np.ndarray:
        """``(L,)`` candidate minus reference mean Dice, paired over the same pairs."""
        return self.candidate.mean_dice - self.reference.mean_dice

    @property
    def dice_difference_sem(self) -> np.ndarray:
        """``(L,)`` standard error of :attr:`dice_difference` from the per-pair differences."""
        return sem_over_pairs(self.candidate.pair_dice - self.reference.pair_dice)

    @property
    def optimum_steps_apart(self) -> int:
        """How many grid steps separate the two optimal λ (0: the same λ)."""
        lams = list(self.candidate.lams)
        return abs(lams.index(self.candidate.optimal_lam) - lams.index(self.reference.optimal_lam))

    def per_label_steps_apart(self) -> dict[str, int]:
        """Dict: structure name -> grid steps between the two per-structure optimal λ."""
        lams = list(self.candidate.lams)
        ours, theirs = self.candidate.optimal_lam_per_label, self.reference.optimal_lam_per_label
        return {self.candidate.label_name(label): abs(lams.index(ours[label]) - lams.index(theirs[label]))
                for label in ours if label in theirs}

    def rows(self) -> list[dict[str, Any]]:
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

    def summary(self) -> dict[str, Any]:
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


def compare_sweeps(candidate: SweepResult, reference: SweepResult, *,
                   names: tuple[str, ...] = ("HyperMorph", "baselines")) -> SweepComparison:
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
    >>> baselines = hnb.baseline_sweep({0.5: model, 0.9: model}, data, n_pairs=4, progress=False)
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


def sem_over_pairs(per_pair: np.ndarray) -> np.ndarray:
    """Standard error of the mean over pairs (axis 1) of ``(L, P)`` values, NaN skipped."""
    counts = np.sum(np.isfinite(per_pair), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), quiet_nan_warnings():
        return np.nanstd(per_pair, axis=1, ddof=1) / np.sqrt(counts)


@contextlib.contextmanager
def quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's 'Mean of empty slice' warnings: NaN is the documented answer there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def label_index(labels: np.ndarray, label: int | str, label_names: Mapping[int, str] | None = None, *,
                where: str = "this data's label maps") -> int:
    """Position in ``labels`` of a structure given by value or name.

    Raises
    ------
    ValueError
        Naming the structures that are known, when ``label`` is not one of them.

    Examples
    --------
    >>> label_index(np.array([0, 4, 17]), "Hippocampus", {17: "Hippocampus"})
    2
    """
    names = label_names or {}
    if isinstance(label, str):
        matches = [k for k, value in enumerate(labels) if names.get(int(value), str(int(value))) == label]
    else:
        matches = list(np.flatnonzero(np.asarray(labels) == int(label)))
    if not matches:
        known = [names.get(int(value), int(value)) for value in labels]
        raise ValueError(f"no structure {label!r} in {where}; known: {known}")
    return int(matches[0])
