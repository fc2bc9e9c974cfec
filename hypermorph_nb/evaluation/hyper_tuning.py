"""Choose several hyperparameters together: a coarse grid, then a bounded pattern search.

:func:`optimize_hyperparameters` tunes every hyperparameter of a trained model (λ, the
label weight γ, ...) on validation pairs, for the mean Dice over structures or one
structure's Dice. A coarse grid (``coarse`` values per hyperparameter, the ends of each
range included) is scored first in one batched :func:`~hypermorph_nb.hyper_sweep`, so that
a bumpy surface cannot lead the search into a local optimum far from the best grid point:
the search only continues from that point. There a compass search polls the neighbours
one step away along each axis (clipped to the ranges), moves to the best of them when it
scores higher, and halves the step when none does, until the step is below ``tol`` of each
range or ``max_evaluations`` points have been registered. Every evaluation scores the same
pairs with the hard Dice the sweeps report, so its result compares with any grid's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..checks.arrays import check_count
from ..checks.pairs import resolve_pairs
from ..networks.models import spec_of
from .hyper_sweeps import HyperSweepResult, hyper_sweep, score_points
from .results import label_index, quiet_nan_warnings
from .sweeps import dataset_and_registrar, label_presence, labels_of

if TYPE_CHECKING:
    import tensorflow as tf

    from ..data.dataset import Dataset

__all__ = ["optimize_hyperparameters", "HyperOptimum"]


@dataclasses.dataclass
class HyperOptimum:
    """Result of :func:`optimize_hyperparameters`.

    Attributes
    ----------
    values : dict of str to float
        The best point found, every hyperparameter of the model (the held ones included).
    dice : float
        Its mean Dice over the pairs (of the chosen structure, or of the mean over structures).
    evaluations : int
        Points registered (each registers every pair once): the coarse grid's and the search's.
    coarse : HyperSweepResult
        The coarse grid's sweep.
    trace : list of (dict, float)
        Every point the search scored after the coarse grid, in order, with its Dice.
    structure : int or None
        The structure's label value tuned for (None: the mean over structures).
    """

    values: dict[str, float]
    dice: float
    evaluations: int
    coarse: HyperSweepResult
    trace: list[tuple[dict[str, float], float]] = dataclasses.field(default_factory=list, repr=False)
    structure: int | None = None


def optimize_hyperparameters(model: tf.keras.Model, data: Dataset | np.ndarray, *,
                             pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                             structure: int | str | None = None, coarse: int = 5,
                             max_evaluations: int = 40, fixed: Mapping[str, float] | None = None,
                             progress: bool | str = "auto", batch_size: int | None = None,
                             tol: float = 0.01) -> HyperOptimum:
    """Tune the hyperparameters of a trained model on validation pairs: a coarse grid, then a local search.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model (λ alone or several hyperparameters); it is not changed.
    data : Dataset
        Validation data with label maps.
    pairs : array_like, optional
        ``(P, 2)`` (moving, fixed) indices; default ``n_pairs`` random pairs, the ones
        :func:`hypermorph_nb.hyper_sweep` picks for the same ``seed``.
    n_pairs, seed : int
    structure : int or str, optional
        Tune for one structure (label value or name); default the mean Dice over structures.
    coarse : int
        Values per free hyperparameter on the first grid, the ends of its range included (at least 2).
    max_evaluations : int
        Most points registered, the coarse grid's ``coarse ** free`` included.
    fixed : mapping of str to float, optional
        Hyperparameters held at a value, e.g. ``{"label_weight": 1.0}``.
    progress : {'auto', 'bar', 'log', 'none'} or bool
        Progress bars, as in :func:`hypermorph_nb.lambda_sweep`.
    batch_size : int, optional
        Registrations per model call; default as in the sweeps.
    tol : float
        Stop once the search's step is below this fraction of each range.

    Returns
    -------
    HyperOptimum

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]],
    ...                              hyperparameters=("lam", "label_weight"), seed=0)
    >>> found = hnb.optimize_hyperparameters(model, data, n_pairs=2, coarse=3, max_evaluations=12,
    ...                                      progress=False)
    >>> sorted(found.values), found.coarse.mean_dice.shape, found.evaluations <= 12
    (['label_weight', 'lam'], (3, 3), True)
    """
    spec = spec_of(model)
    if not spec.is_hypermorph:
        raise ValueError("optimize_hyperparameters needs a HyperMorph model; a VoxelMorph baseline was "
                         "trained at fixed hyperparameters")
    hypers = spec.hyperparameters
    names = [h.name for h in hypers]
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(f"fixed names {unknown}, but this model's hyperparameters are {names}")
    for name, value in fixed.items():
        hypers[names.index(name)].check(value, name=f"fixed[{name!r}]")
    free = [h for h in hypers if h.name not in fixed]
    if not free:
        raise ValueError(f"fixed holds every hyperparameter of the model ({names}); leave at least one free "
                         "(or score that point with hnb.hyper_sweep)")
    if check_count(coarse, "coarse") < 2:
        raise ValueError(f"coarse must be at least 2 (the ends of each range are always scored), got {coarse!r}")
    budget = check_count(max_evaluations, "max_evaluations")
    if coarse ** len(free) > budget:
        raise ValueError(f"the coarse grid has {coarse} ** {len(free)} = {coarse ** len(free)} points, more than "
                         f"max_evaluations={budget}; lower coarse or raise max_evaluations")
    if not 0 < float(tol) < 1:
        raise ValueError(f"tol is a fraction of each range, strictly between 0 and 1; got {tol!r}")
    data, registrar = dataset_and_registrar(model, data)
    if not data.has_labels:
        raise ValueError("optimize_hyperparameters maximises Dice and needs label maps; this data has none "
                         "(load data with labels, e.g. load_npz on a file with 'segs')")
    labels = labels_of(data, None)
    column = None if structure is None else label_index(labels, structure, data.label_names)
    pairs = resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)

    grid = {h.name: [fixed[h.name]] if h.name in fixed else h.grid(coarse) for h in hypers}
    sweep = hyper_sweep(model, data, grid, pairs=pairs, batch_size=batch_size, progress=progress)
    surface = sweep.mean_dice if column is None else sweep.structure_dice(int(labels[column]))
    if np.all(np.isnan(surface)):
        raise ValueError(f"Dice of {structure!r} is undefined on these pairs: none has the structure in both "
                         "its moving and fixed label maps; use more pairs")
    presence = label_presence(data, pairs, labels)

    def values_at(unit: np.ndarray) -> dict[str, float]:
        point = dict(fixed)
        point.update({h.name: float(h.low + u * (h.high - h.low)) for h, u in zip(free, unit)})
        return {name: float(point[name]) for name in names}

    def score(units: np.ndarray) -> np.ndarray:
        dice, _, _ = score_points(registrar, data, pairs, labels, [values_at(unit) for unit in units], presence,
                                  batch_size=batch_size, progress=progress, desc="hyperparameter search")
        assert dice is not None  # the data has label maps
        with quiet_nan_warnings():
            per_pair = np.nanmean(dice, axis=-1) if column is None else dice[..., column]
            return np.asarray(np.nanmean(per_pair, axis=-1))

    trace = pattern_search(score, surface.reshape((coarse,) * len(free)),
                           budget=budget - surface.size, tol=float(tol))
    coarse_best = np.unravel_index(int(np.nanargmax(surface)), surface.shape)
    best_values, best_dice = sweep.point(coarse_best), float(surface[coarse_best])
    for unit, dice in trace:
        if dice > best_dice:
            best_values, best_dice = values_at(unit), dice
    return HyperOptimum(values=best_values, dice=best_dice, evaluations=surface.size + len(trace),
                        coarse=sweep, trace=[(values_at(unit), dice) for unit, dice in trace],
                        structure=None if column is None else int(labels[column]))


#: A move counts only where it gains more than this fraction of the coarse grid's spread of scores.
_GAIN_RTOL = 1e-3

#: What the search evaluates: ``(n, dims)`` points of the unit cube -> ``(n,)`` scores to maximise.
Score = Callable[[np.ndarray], np.ndarray]


def pattern_search(score: Score, coarse_scores: np.ndarray, *, budget: int,
                   tol: float) -> list[tuple[np.ndarray, float]]:
    """Maximise ``score`` on the unit cube from the best point of a scored coarse grid.

    Parameters
    ----------
    score : callable
        ``(n, dims)`` points in [0, 1]^dims -> ``(n,)`` scores (NaN counts as the worst).
    coarse_scores : np.ndarray
        The scores of the evenly spaced grid with ``coarse_scores.shape[i]`` points along
        axis ``i`` (all axes the same length, at least 2), ends included.
    budget : int
        Most points scored after the grid.
    tol : float
        The smallest step.

    Returns
    -------
    list of (np.ndarray, float)
        Every point scored after the grid, with its score, in order.

    Examples
    --------
    >>> peak = np.array([0.8, 0.3])
    >>> def score(points):
    ...     return -np.sum((points - peak) ** 2, axis=1)
    >>> axis = np.linspace(0, 1, 5)
    >>> grid = score(np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)).reshape(5, 5)
    >>> trace = pattern_search(score, grid, budget=30, tol=0.01)
    >>> best, _ = max(trace, key=lambda item: item[1])
    >>> bool(np.abs(best - peak).max() < 0.02), len(trace) <= 30
    (True, True)
    """
    grid = np.where(np.isnan(coarse_scores), -np.inf, coarse_scores)
    count, dims = grid.shape[0], grid.ndim
    seen = {tuple(np.round(np.asarray(index) / (count - 1), 9)): float(value) for index, value in np.ndenumerate(grid)}
    spread = float(np.max(grid[np.isfinite(grid)]) - np.min(grid[np.isfinite(grid)])) \
        if np.isfinite(grid).any() else 0.0
    best = np.array(np.unravel_index(int(np.argmax(grid)), grid.shape), dtype=float) / (count - 1)
    best_score = float(np.max(grid))
    step = 0.5 / (count - 1)
    trace: list[tuple[np.ndarray, float]] = []
    while spread > 0 and step >= tol and len(trace) < budget:
        neighbours = {tuple(np.round(np.clip(best + sign * step * np.eye(dims)[axis], 0.0, 1.0), 9))
                      for axis in range(dims) for sign in (1.0, -1.0)}
        neighbours.discard(tuple(np.round(best, 9)))
        new = sorted(point for point in neighbours if point not in seen)[:budget - len(trace)]
        if new:
            points = np.array(new)
            scores = np.asarray(score(points), dtype=float).reshape(-1)
            for point, value in zip(new, scores):
                value = -np.inf if np.isnan(value) else float(value)
                seen[point] = value
                trace.append((np.array(point), value))
        scored = [point for point in neighbours if point in seen]
        top = max(scored, key=lambda point: seen[point], default=None)
        if top is not None and seen[top] > best_score + _GAIN_RTOL * spread:
            best, best_score = np.array(top), seen[top]
        else:
            step /= 2
    return trace
