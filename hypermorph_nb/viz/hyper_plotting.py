"""The Dice surface of a sweep over several hyperparameters, with folding contours and its optimum.

:func:`plot_hyper_sweep` draws a :class:`~hypermorph_nb.evaluation.HyperSweepResult` (from
:func:`hypermorph_nb.hyper_sweep`): a heat map of Dice over the two axes that vary, or a curve
where one does. It lives here, beside the other figures, because the evaluation package
draws nothing (the two packages stay independent; ``tests/test_layers.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_hyper_sweep"]


def plot_hyper_sweep(result: Any, *, structure: int | str | None = None, ax: Axes | None = None) -> Axes:
    """Dice over the grid of a hyperparameter sweep: a heat map with % folding contours, or a curve.

    The axes with more than one value are drawn (an axis held at one value is left out);
    the best point is marked.

    Parameters
    ----------
    result : HyperSweepResult
        From :func:`hypermorph_nb.hyper_sweep`, with label maps.
    structure : int or str, optional
        One structure's Dice (label value or name); default the mean over structures.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        When more than two hyperparameters vary (sweep the others at one value).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]],
    ...                              hyperparameters=("lam", "label_weight"), seed=0)
    >>> result = hnb.hyper_sweep(model, data, {"lam": [0, 0.5, 1], "label_weight": [0, 1]},
    ...                          n_pairs=2, progress=False)
    >>> plot_hyper_sweep(result).get_xlabel(), plot_hyper_sweep(result, structure=1).get_ylabel()
    ('λ', 'γ')
    """
    import matplotlib.pyplot as plt

    surface = result.mean_dice if structure is None else result.structure_dice(structure)
    what = "mean Dice" if structure is None else f"Dice of {structure}"
    varying = [i for i, axis in enumerate(result.values) if len(axis) > 1]
    if len(varying) > 2:
        varied = [result.names[i] for i in varying]
        raise ValueError(f"plot_hyper_sweep draws one or two hyperparameters; this sweep varies {varied}: "
                         "sweep all but two at one value")
    labels = result.axis_labels or result.names
    kept = [i for i in range(len(result.values)) if i in varying] or [0]
    surface = np.asarray(surface).reshape([len(result.values[i]) for i in kept])
    folding = 100 * np.asarray(result.mean_folding).reshape(surface.shape)
    optimum = result.optimum(structure)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    if len(kept) == 1:
        x = result.values[kept[0]]
        ax.plot(x, surface, "o-", color="C0", label=what)
        ax.axvline(optimum[result.names[kept[0]]], color="C2", ls="--", label="best")
        ax.set_xlabel(labels[kept[0]])
        ax.set_ylabel(what)
        twin = ax.twinx()
        twin.plot(x, folding, "s-", color="C3", alpha=0.7)
        twin.set_ylabel("% folding voxels", color="C3")
        ax.legend(loc="best", fontsize="small")
        return ax
    first, second = kept
    x, y = result.values[first], result.values[second]
    mesh = ax.pcolormesh(x, y, surface.T, shading="nearest", cmap="viridis")
    ax.figure.colorbar(mesh, ax=ax, label=what)
    if np.ptp(folding) > 0 and min(surface.shape) > 1:
        lines = ax.contour(x, y, folding.T, levels=4, colors="white", linewidths=0.8)
        ax.clabel(lines, fmt="%.2g%%", fontsize="x-small")
    ax.plot(optimum[result.names[first]], optimum[result.names[second]], marker="*", color="C1",
            markersize=14, markeredgecolor="black", linestyle="none", label="best")
    ax.set_xlabel(labels[first])
    ax.set_ylabel(labels[second])
    ax.set_title(f"{what}; white: % folding", fontsize="small")
    return ax
