"""SweepPanel: Dice per structure, image MSE and folding over λ, on validation pairs (2D or 3D).

The numbers come from :func:`hypermorph_nb.lambda_sweep` (all pairs of a λ
registered in batches, images or volumes); the panel draws them with
:func:`hypermorph_nb.viz.plotting.plot_sweep_panels`, lists the optimal λ of the
mean and of every structure, and can send any of them to a
:class:`~hypermorph_nb.widgets.LambdaExplorer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TYPE_CHECKING

import html

from numpy.typing import ArrayLike
import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..evaluation.sweeps import lambda_sweep
from ..viz.drawing import format_lam
from ..viz.plotting import plot_sweep_panels
from .pictures import PictureMixin

if TYPE_CHECKING:
    import tensorflow as tf
    from ..data.dataset import Dataset
    from .explorer import LambdaExplorer

#: Default λ grid: coarse below 0.9, dense towards 1 where the tutorial's loss is useful.
DEFAULT_SWEEP_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0)


class SweepPanel(PictureMixin, widgets.VBox):
    """Sweep λ over validation pairs and show the curves, the optima and the table.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    data : Dataset
        Validation images or volumes, with label maps for Dice.
    lams : sequence of float
        The λ grid (default :data:`DEFAULT_SWEEP_LAMBDAS`).
    pairs, n_pairs, seed, progress
        As for :func:`hypermorph_nb.lambda_sweep`.
    batch_size : int, optional
        Registrations per model call; default that of :func:`hypermorph_nb.lambda_sweep`
        (lower it when volumes do not fit in memory).
    explorer : LambdaExplorer, optional
        When given, a picker sends an optimal λ to the explorer's slider.
    dpi : float
        Resolution of the figure.

    Attributes
    ----------
    result : SweepResult
        The numbers.
    figure : matplotlib.figure.Figure
        The curves (off-screen; shown as a PNG image widget).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> panel = SweepPanel(model, data, [0.0, 0.9, 1.0], n_pairs=2, progress=False)
    >>> panel.optimal_lam in (0.0, 0.9, 1.0), sorted(panel.optimal_lam_per_label) == list(data.label_values())
    (True, True)
    """

    def __init__(self, model: tf.keras.Model, data: Dataset, lams: Sequence[float] = DEFAULT_SWEEP_LAMBDAS, *,
                 pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                 batch_size: int | None = None, progress: bool = True, explorer: LambdaExplorer | None = None,
                 dpi: int = 90) -> None:
        batching = {} if batch_size is None else {"batch_size": batch_size}
        self.result = lambda_sweep(model, data, lams, pairs=pairs, n_pairs=n_pairs, seed=seed,
                                   progress=progress, **batching)
        self.explorer = explorer
        self.figure = Figure(dpi=dpi)
        FigureCanvasAgg(self.figure)
        plot_sweep_panels(self.result, figure=self.figure)
        self.image = widgets.Image(value=_png(self.figure), format="png")
        self._picture_cache = (self._view_version, bytes(self.image.value))  # the figure never changes
        self.summary = widgets.HTML(self._summary_html())
        self.table_view = widgets.HTML(self._table_html())
        children = [self.image, self.summary]
        if explorer is not None:
            options = [(f"mean Dice: λ = {format_lam(self.optimal_lam)}", self.optimal_lam)]
            options += [(f"{name}: λ = {format_lam(lam)}", lam)
                        for name, lam in self._named_optima().items()]
            self.lam_picker = widgets.Dropdown(options=options, description="optimal λ of")
            self.send_button = widgets.Button(description="show in explorer", icon="arrow-right")
            self.send_button.on_click(self._send_to_explorer)
            children.append(widgets.HBox([self.lam_picker, self.send_button]))
        children.append(widgets.Accordion([self.table_view], titles=("numbers per λ",)))
        super().__init__(children)

    @property
    def optimal_lam(self) -> float:
        """λ of the grid with the highest mean Dice (lowest MSE without labels)."""
        return self.result.optimal_lam

    @property
    def optimal_lam_per_label(self) -> dict[int, float]:
        """Dict: label value -> λ of the grid with that structure's highest Dice."""
        return self.result.optimal_lam_per_label if self.result.dice is not None else {}

    def savefig(self, fname: Any, **kwargs: Any) -> None:
        """Save the sweep figure (``Figure.savefig`` options)."""
        self.figure.savefig(fname, **kwargs)

    def table(self) -> Any:
        """Per-λ numbers: mean and per-structure Dice, MSE, % folding.

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame indexed by λ when pandas is installed.
        """
        return self.result.table()

    def optima(self) -> Any:
        """One row per structure (and the mean): its optimal λ, Dice there and unregistered.

        Returns
        -------
        pandas.DataFrame or list of dict
            Columns ``structure``, ``label``, ``optimal_lam``, ``dice``,
            ``unregistered_dice``; empty without label maps.
        """
        rows = []
        result = self.result
        if result.dice is not None:
            best = result.optimum()
            rows.append({"structure": "mean", "label": None, "optimal_lam": best.lam, "dice": best.score,
                         "unregistered_dice": result.identity_dice})
            per_label = result.dice_per_label
            assert result.identity.dice is not None  # scored with the same label maps as result.dice
            with np.errstate(invalid="ignore"):
                identity = np.nanmean(result.identity.dice, axis=0)
            for k, label in enumerate(result.labels):
                if np.all(np.isnan(per_label[:, k])):
                    continue  # no pair has this structure in both images
                index = int(np.nanargmax(per_label[:, k]))
                rows.append({"structure": result.label_name(label), "label": int(label),
                             "optimal_lam": float(result.lams[index]), "dice": float(per_label[index, k]),
                             "unregistered_dice": float(identity[k])})
        try:
            import pandas
        except ImportError:
            return rows
        table = pandas.DataFrame(rows, columns=["structure", "label", "optimal_lam", "dice",
                                                "unregistered_dice"])
        return table.astype({"label": "Int64"})

    def _named_optima(self):
        return {self.result.label_name(label): lam for label, lam in self.optimal_lam_per_label.items()}

    def _summary_html(self):
        result = self.result
        text = (f"<b>optimal λ</b> over {len(result.pairs)} pairs: "
                f"<b>{format_lam(self.optimal_lam)}</b>")
        if result.dice is None:
            return text + " (lowest image MSE; the data has no label maps for Dice)"
        text += (f" (mean Dice {np.nanmax(result.mean_dice):.3f}, "
                 f"unregistered {result.identity_dice:.3f})")
        optima = self._named_optima()
        if optima:
            text += "<br><b>per structure</b>: " + ", ".join(
                f"{html.escape(name)} {format_lam(lam)}" for name, lam in optima.items())
        return text

    def _table_html(self):
        table = self.table()
        if hasattr(table, "to_html"):
            return table.to_html(float_format=lambda value: f"{value:.4g}")
        keys = list(table[0]) if table else []
        head = "".join(f"<th>{html.escape(key)}</th>" for key in keys)
        body = "".join("<tr>" + "".join(f"<td>{row[key]:.4g}</td>" for key in keys) + "</tr>"
                       for row in table)
        return f"<table><tr>{head}</tr>{body}</table>"

    def _send_to_explorer(self, button: widgets.Button | None = None) -> None:
        assert self.explorer is not None  # the button is there only with an explorer
        self.explorer.lam_slider.value = float(self.lam_picker.value)


def _png(figure):
    import io

    with io.BytesIO() as buffer:
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
