"""Sweep every hyperparameter of a model at once: Dice and folding over a grid of λ, γ, ...

:func:`hyper_sweep` registers validation pairs at every point of a grid spanned by the
model's hyperparameters (:attr:`~hypermorph_nb.networks.models.ModelSpec.hyperparameters`)
and returns a :class:`HyperSweepResult`: Dice per structure, folding and image MSE at each
point, the best point overall and per structure, and a long table. The registrations go
through the same batched loop as :func:`hypermorph_nb.lambda_sweep`
(:func:`~hypermorph_nb.evaluation.sweeps.score_settings`), so for a λ-only model a grid
``{"lam": [...]}`` scores exactly what ``lambda_sweep`` does.
:func:`hypermorph_nb.viz.hyper_plotting.plot_hyper_sweep` draws the surface.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..checks.pairs import resolve_pairs
from ..networks.hyperparameters import Hyperparameter
from ..networks.models import spec_of
from ..registration.pairs import Registrar
from .results import label_index, quiet_nan_warnings
from .sweeps import dataset_and_registrar, label_presence, labels_of, score_settings

if TYPE_CHECKING:
    import tensorflow as tf

    from ..data.dataset import Dataset

__all__ = ["hyper_sweep", "HyperSweepResult"]


@dataclasses.dataclass
class HyperSweepResult:
    """Scores over a grid of hyperparameter values (see :func:`hyper_sweep`).

    Attributes
    ----------
    names : tuple of str
        The hyperparameters, one per grid axis, in the model's order (``('lam', 'label_weight')``).
    values : tuple of np.ndarray
        The values of each axis.
    labels : np.ndarray
        ``(S,)`` structure label values (empty without label maps).
    pairs : np.ndarray
        ``(P, 2)`` the (moving, fixed) indices scored.
    dice : np.ndarray or None
        ``(*grid_shape, P, S)`` Dice; NaN where a structure is missing from the pair's moving
        or fixed label map. None without label maps.
    folding : np.ndarray
        ``(*grid_shape, P)`` fraction of voxels with Jacobian determinant <= 0.
    mse : np.ndarray
        ``(*grid_shape, P)`` image MSE between moved and fixed.
    label_names : dict or None
        Names of the label values, when known.
    axis_labels : tuple of str
        How figures name each axis (``('λ', 'γ')``).
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    labels: np.ndarray
    pairs: np.ndarray
    dice: np.ndarray | None
    folding: np.ndarray
    mse: np.ndarray
    label_names: dict[int, str] | None = None
    axis_labels: tuple[str, ...] = ()

    def __repr__(self) -> str:
        axes = ", ".join(f"{name}: {len(axis)} values in [{axis.min():g}, {axis.max():g}]"
                         for name, axis in zip(self.names, self.values))
        best = ""
        if self.dice is not None and not np.all(np.isnan(self.mean_dice)):
            point = ", ".join(f"{k}={v:g}" for k, v in self.optimum().items())
            best = f"; best mean Dice {np.nanmax(self.mean_dice):.4f} at {point}"
        return f"HyperSweepResult({axes}; {len(self.pairs)} pairs, {len(self.labels)} structures{best})"

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of values along each axis."""
        return tuple(len(axis) for axis in self.values)

    @property
    def mean_dice(self) -> np.ndarray:
        """``(*grid_shape,)`` mean over pairs of the mean over the structures each pair has."""
        dice = self._require_labels()
        with quiet_nan_warnings():
            return np.nanmean(np.nanmean(dice, axis=-1), axis=-1)

    @property
    def mean_folding(self) -> np.ndarray:
        """``(*grid_shape,)`` fraction of folding voxels, mean over pairs."""
        return np.asarray(self.folding.mean(axis=-1))

    def structure_dice(self, label: int | str) -> np.ndarray:
        """``(*grid_shape,)`` one structure's Dice (label value or name), mean over the pairs that have it."""
        dice = self._require_labels()
        k = label_index(self.labels, label, self.label_names, where="this sweep")
        with quiet_nan_warnings():
            return np.nanmean(dice[..., k], axis=-1)

    def label_name(self, label: int) -> str:
        """Name of a structure label value (its number as text when unknown)."""
        return (self.label_names or {}).get(int(label), str(int(label)))

    def point(self, index: Sequence[int | np.integer]) -> dict[str, float]:
        """The hyperparameter values at a grid index."""
        return {name: float(axis[i]) for name, axis, i in zip(self.names, self.values, index)}

    def optimum(self, structure: int | str | None = None) -> dict[str, float]:
        """The grid point with the highest mean Dice, or the highest Dice of one structure.

        Raises
        ------
        ValueError
            Without label maps, for an unknown structure, or where no pair has the
            structure in both images.
        """
        surface = self.mean_dice if structure is None else self.structure_dice(structure)
        if np.all(np.isnan(surface)):
            what = "the mean Dice" if structure is None else f"Dice of {structure!r}"
            raise ValueError(f"{what} is undefined at every grid point: no pair has this structure in "
                             "both its moving and fixed label maps; use more pairs")
        return self.point(np.unravel_index(int(np.nanargmax(surface)), surface.shape))

    def optimum_per_structure(self) -> dict[int, dict[str, float]]:
        """Structure label value -> its best grid point; structures no pair has in both images are left out."""
        dice = self._require_labels()
        with quiet_nan_warnings():
            per_structure = np.nanmean(dice, axis=-2)  # (*grid_shape, S)
        return {int(label): self.optimum(int(label)) for k, label in enumerate(self.labels)
                if not np.all(np.isnan(per_structure[..., k]))}

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per grid point: the values, mean Dice, % folding, MSE, Dice per structure."""
        import pandas

        rows = []
        mean_dice = self.mean_dice if self.dice is not None else None
        per_structure = {int(label): self.structure_dice(int(label)) for label in self.labels} \
            if self.dice is not None else {}
        for index in itertools.product(*(range(n) for n in self.grid_shape)):
            row: dict[str, float] = self.point(index)
            if mean_dice is not None:
                row["mean_dice"] = float(mean_dice[index])
            row["folding_percent"] = float(100 * self.folding[index].mean())
            row["mse"] = float(self.mse[index].mean())
            for label, surface in per_structure.items():
                row[f"dice[{self.label_name(label)}]"] = float(surface[index])
            rows.append(row)
        return pandas.DataFrame(rows)

    def _require_labels(self) -> np.ndarray:
        if self.dice is None:
            raise ValueError("this sweep has no Dice: the data had no label maps; "
                             "load data with labels (e.g. load_npz on a file with 'segs')")
        return self.dice


def hyper_sweep(model: tf.keras.Model, data: Dataset | np.ndarray, grid: Mapping[str, ArrayLike], *,
                pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                batch_size: int | None = None, progress: bool | str = "auto") -> HyperSweepResult:
    """Register validation pairs at every point of a grid of hyperparameter values and score them.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model (conditioned on λ alone or on several hyperparameters).
    data : Dataset or array_like
        Validation images, ideally a Dataset with label maps (for Dice).
    grid : mapping of str to sequence of float
        Every hyperparameter of the model -> the values to score, e.g.
        ``{"lam": [0, .25, .5, .75, 1], "label_weight": [0, .5, 1]}``; each within its range.
    pairs : array_like, optional
        ``(P, 2)`` (moving, fixed) indices; default ``n_pairs`` random pairs (the same as
        :func:`hypermorph_nb.lambda_sweep` picks for the same ``seed``).
    n_pairs, seed : int
    batch_size : int, optional
        Registrations per model call; default :func:`~hypermorph_nb.evaluation.sweeps.auto_batch_size`.
    progress : {'auto', 'bar', 'log', 'none'} or bool
        A progress bar over all registrations, as in :func:`hypermorph_nb.lambda_sweep`.

    Returns
    -------
    HyperSweepResult

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]],
    ...                              hyperparameters=("lam", "label_weight"), seed=0)
    >>> result = hnb.hyper_sweep(model, data, {"lam": [0, 0.5, 1], "label_weight": [0, 1]},
    ...                          n_pairs=2, progress=False)
    >>> result.names, result.mean_dice.shape, result.dice.shape[:3]
    (('lam', 'label_weight'), (3, 2), (3, 2, 2))
    >>> sorted(result.optimum())
    ['label_weight', 'lam']
    """
    spec = spec_of(model)
    if not spec.is_hypermorph:
        raise ValueError("hyper_sweep needs a HyperMorph model; a baseline has fixed hyperparameters "
                         "(score it with score_pairs(model, data, pairs=...))")
    hypers = spec.hyperparameters
    axes = check_grid(hypers, grid)
    data, registrar = dataset_and_registrar(model, data)
    pairs = resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    labels = labels_of(data, None)
    names = tuple(h.name for h in hypers)
    points = [dict(zip(names, (float(v) for v in values))) for values in itertools.product(*axes)]
    presence = label_presence(data, pairs, labels) if data.has_labels else None
    dice, folding, mse = score_points(registrar, data, pairs, labels, points, presence, batch_size=batch_size,
                                      progress=progress, desc="hyperparameter sweep")
    shape = tuple(len(axis) for axis in axes)

    def on_grid(values: np.ndarray) -> np.ndarray:
        return values.reshape(*shape, *values.shape[1:])

    return HyperSweepResult(names=names, values=axes, labels=labels, pairs=pairs,
                            dice=None if dice is None else on_grid(dice), folding=on_grid(folding), mse=on_grid(mse),
                            label_names=data.label_names, axis_labels=tuple(h.label for h in hypers))


def score_points(registrar: Registrar, data: Dataset, pairs: np.ndarray, labels: np.ndarray,
                 points: Sequence[Mapping[str, float]], presence: np.ndarray | None, *,
                 batch_size: int | None, progress: bool | str, desc: str
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Register every pair at each point (``{'lam': ..., other: ...}``) and score it, point by point.

    ``presence`` is :func:`.sweeps.label_presence` of the pairs (None without label maps),
    computed once by the caller however many times it scores. Returns ``(dice, folding, mse)``:
    ``(points, P, S)`` Dice, NaN where a structure is missing from a pair (None without label
    maps), and ``(points, P)`` folding and MSE.
    """
    settings = [(point["lam"], {k: v for k, v in point.items() if k != "lam"}) for point in points]
    scores = score_settings(registrar, data, pairs, labels, settings, batch_size=batch_size,
                            progress=progress, desc=desc)

    def per_point(values: np.ndarray) -> np.ndarray:
        return values.reshape(len(points), len(pairs), *values.shape[1:])

    dice = None if scores.dice is None or presence is None else np.where(presence, per_point(scores.dice), np.nan)
    return dice, per_point(scores.folding), per_point(scores.mse)


def check_grid(hypers: Sequence[Hyperparameter], grid: Mapping[str, ArrayLike]) -> tuple[np.ndarray, ...]:
    """The grid's axes in the model's order, each a sorted 1-D float64 array of distinct values in range.

    Raises
    ------
    ValueError
        For a name the model lacks, a hyperparameter left out, an empty axis, a repeated
        value or one out of range.

    Examples
    --------
    >>> from hypermorph_nb.networks.hyperparameters import resolve
    >>> [axis.tolist() for axis in check_grid(resolve(["lam", "label_weight"]),
    ...                                      {"label_weight": [1, 0], "lam": 0.5})]
    [[0.5], [0.0, 1.0]]
    """
    names = [h.name for h in hypers]
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must map each hyperparameter to its values, e.g. "
                        f"{ {name: [h.low, h.high] for name, h in zip(names, hypers)} }, got {grid!r}")
    unknown = sorted(set(grid) - set(names))
    if unknown:
        raise ValueError(f"this model takes no {', '.join(unknown)}; its hyperparameters are {names}")
    missing = [name for name in names if name not in grid]
    if missing:
        raise ValueError(f"grid needs values for every hyperparameter of the model ({names}); missing "
                         f"{missing} (give one value to hold it, e.g. {missing[0]!r}: [0.5])")
    axes = []
    for hyper in hypers:
        hyper.check(grid[hyper.name], name=f"grid[{hyper.name!r}]")
        axis = np.asarray(grid[hyper.name], dtype=np.float64).reshape(-1)
        if axis.size == 0:
            raise ValueError(f"grid[{hyper.name!r}] is empty; give at least one value")
        if len(np.unique(axis)) != axis.size:
            raise ValueError(f"grid[{hyper.name!r}] repeats a value: {axis.tolist()}; give each once")
        axes.append(np.sort(axis))
    return tuple(axes)
