"""The explorer's small map for a model conditioned on two hyperparameters (e.g. λ and γ).

A coarse grid over both ranges (5 × 5 by default) is registered and scored on the
explorer's pair: mean Dice where the data has label maps, else image MSE, with the
fraction of folding voxels. :class:`HyperMap` draws it as a small heat map (the score's
value in each cell, the best cell in bold, folding as dashed contours in %) with a
marker where the sliders stand. Slider moves only move the marker; the grid is scored
when a pair is first shown (and kept per pair), through :func:`_hyper_map`, the one
place that computes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TYPE_CHECKING

import dataclasses

import numpy as np

from ..evaluation.hyper_sweeps import hyper_sweep
from ..networks.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    import tensorflow as tf
    from matplotlib.axes import Axes

    from ..data.dataset import Dataset

#: Grid points per hyperparameter of the map, by default.
DEFAULT_MAP_POINTS = 5
#: Folding levels (% of the voxels) drawn as contours where the grid reaches them.
FOLDING_LEVELS = (0.1, 1.0, 5.0, 20.0)


@dataclasses.dataclass
class HyperMapScores:
    """Scores of one pair over a grid of two hyperparameters.

    Attributes
    ----------
    names : tuple of str
        The two hyperparameters (the map's x and y axes).
    values : tuple of np.ndarray
        The grid values of each.
    score : np.ndarray
        ``(len(values[0]), len(values[1]))``: mean Dice over the structures present, or image MSE.
    metric : {'mean Dice', 'image MSE'}
        What ``score`` is (Dice: higher is better; MSE: lower).
    folding : np.ndarray
        Same shape: the fraction of voxels with Jacobian determinant <= 0.
    pair : tuple of int
        (moving, fixed) indices.
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    score: np.ndarray
    metric: str
    folding: np.ndarray
    pair: tuple[int, int]

    def best(self) -> tuple[int, ...] | None:
        """Grid index of the best score (highest Dice, lowest MSE); None if no structure is in both images."""
        if np.all(np.isnan(self.score)):
            return None
        flat = np.nanargmax(self.score) if self.metric == "mean Dice" else np.nanargmin(self.score)
        return tuple(int(i) for i in np.unravel_index(flat, self.score.shape))


def _hyper_map(model: tf.keras.Model, data: Dataset, pair: tuple[int, int],
               grid: Mapping[str, np.ndarray]) -> HyperMapScores:
    """Register ``pair`` at every point of ``grid`` (name -> values, the model's order) and score it.

    One :func:`hypermorph_nb.hyper_sweep` of the pair: as many registrations as grid points,
    each like one slider move, batched.
    """
    result = hyper_sweep(model, data, grid, pairs=[pair], progress="none")
    score = result.mse[..., 0] if result.dice is None else result.mean_dice
    return HyperMapScores(names=result.names, values=tuple(np.asarray(v, float) for v in result.values),
                          score=np.asarray(score, float), folding=np.asarray(result.folding[..., 0], float),
                          pair=pair, metric="image MSE" if result.dice is None else "mean Dice")


class HyperMap:
    """A small heat map of one pair's scores over two hyperparameters, with a marker at the sliders.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw (the explorer's figure gives it square axes right of its panels).
    hyperparameters : sequence of Hyperparameter
        The two: x axis, then y axis.
    points : int
        Grid points per hyperparameter (``points ** 2`` registrations per pair).

    Attributes
    ----------
    scores : HyperMapScores or None
        What the map shows (None before :meth:`show_pair`).
    marker : matplotlib.lines.Line2D
        The ring at the sliders' values (redrawn on every update; give it to the live figure).
    computed : int
        How many pairs have been scored so far.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from matplotlib.figure import Figure
    >>> from hypermorph_nb.data import synthetic
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0,
    ...                              hyperparameters=("lam", "label_weight"))
    >>> hyper_map = HyperMap(Figure().add_subplot(), hnb.networks.spec_of(model).hyperparameters, points=3)
    >>> hyper_map.show_pair(model, synthetic(2, (32, 32)), (0, 1))
    >>> hyper_map.scores.score.shape, hyper_map.scores.metric
    ((3, 3), 'mean Dice')
    >>> hyper_map.mark({"lam": 0.2, "label_weight": 0.7})
    >>> hyper_map.marker.get_data()
    ([0.2], [0.7])
    """

    def __init__(self, ax: Axes, hyperparameters: Sequence[Hyperparameter], *,
                 points: int = DEFAULT_MAP_POINTS) -> None:
        if len(hyperparameters) != 2:
            raise ValueError(f"a map has two axes; got {len(hyperparameters)} hyperparameters "
                             f"{[h.name for h in hyperparameters]}")
        if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
            raise ValueError(f"points must be an integer >= 2 (grid points per hyperparameter), got {points!r}")
        self.ax, self.hyperparameters = ax, tuple(hyperparameters)
        self.grid = {hyper.name: hyper.grid(int(points)) for hyper in self.hyperparameters}
        self.scores: HyperMapScores | None = None
        self.computed = 0
        self._kept: dict[tuple[int, int], HyperMapScores] = {}
        self._contours: Any = None
        x, y = self.hyperparameters
        half = [(h.high - h.low) / (int(points) - 1) / 2 for h in (x, y)]
        self.image = ax.imshow(np.zeros((int(points), int(points))), origin="lower", aspect="auto",
                               interpolation="nearest", extent=(x.low - half[0], x.high + half[0],
                                                                y.low - half[1], y.high + half[1]))
        self.texts = [[ax.text(u, v, "", ha="center", va="center", fontsize=5.5) for v in self.grid[y.name]]
                      for u in self.grid[x.name]]
        self.marker, = ax.plot([x.default], [y.default], "o", markersize=8, markerfacecolor="none",
                               markeredgecolor="red", markeredgewidth=1.8)
        ax.set_xlabel(x.label, fontsize=8, labelpad=1)
        ax.set_ylabel(y.label, fontsize=8, labelpad=1, rotation=0)
        ax.set_xticks([x.low, x.high])
        ax.set_yticks([y.low, y.high])
        ax.tick_params(labelsize=6, length=2, pad=1)
        self.caption = ax.text(0.5, -0.3, "○ sliders   bold: best\n– –: folding %", transform=ax.transAxes,
                               ha="center", va="top", fontsize=6)

    def show_pair(self, model: tf.keras.Model, data: Dataset, pair: tuple[int, int]) -> None:
        """Show the map of ``pair``: scored now the first time (see :func:`_hyper_map`), then kept."""
        pair = (int(pair[0]), int(pair[1]))
        scores = self._kept.get(pair)
        if scores is None:
            scores = self._kept[pair] = _hyper_map(model, data, pair, self.grid)
            self.computed += 1
        self.show(scores)

    def show(self, scores: HyperMapScores) -> None:
        """Draw ``scores`` (the next full redraw of the figure shows them)."""
        self.scores = scores
        dice = scores.metric == "mean Dice"
        best = scores.best()
        low, high = (0.0, 1.0) if best is None else (np.nanmin(scores.score), np.nanmax(scores.score))
        self.image.set_data(scores.score.T)
        self.image.set_cmap("viridis" if dice else "viridis_r")
        self.image.set_clim(low, max(high, low + 1e-6))
        for index in np.ndindex(*scores.score.shape):
            value = scores.score[index]
            shade = (value - low) / max(high - low, 1e-12)
            text = self.texts[index[0]][index[1]]
            text.set_text("" if np.isnan(value) else f"{value:.2f}" if dice else f"{value:.3g}")
            text.set_color("black" if (shade > 0.6) == dice else "white")
            text.set_fontweight("bold" if index == best else "normal")
        if self._contours is not None:
            self._contours.remove()
            self._contours = None
        percent = 100 * scores.folding.T
        levels = [level for level in FOLDING_LEVELS if percent.min() < level < percent.max()]
        if levels:
            self._contours = self.ax.contour(*scores.values, percent, levels=levels, colors="white",
                                             linewidths=0.7, linestyles="--")
            self.ax.clabel(self._contours, fontsize=5, fmt="%g%%")
        self.ax.set_title(f"{scores.metric}, this pair", fontsize=8)

    def mark(self, values: Mapping[str, float]) -> None:
        """Put the marker at ``values`` (name -> value; both of the map's hyperparameters)."""
        x, y = self.hyperparameters
        self.marker.set_data([float(values[x.name])], [float(values[y.name])])
