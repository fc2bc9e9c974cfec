"""What the λ explorer shows: one registration of the current pair, and the numbers under the figure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import dataclasses

from numpy.typing import ArrayLike
import numpy as np

from ..metrics import dice_batch, jacobian_determinant
from ..viz.drawing import format_lam
from .controls import effective_weight

if TYPE_CHECKING:
    from ..data.dataset import Dataset


@dataclasses.dataclass
class ExplorerState:
    """What the explorer shows: one registration of the current pair at the current λ (and others).

    Arrays are ``spatial``: ``(H, W)`` for 2D images, ``(D, H, W)`` for volumes.

    Attributes
    ----------
    lam : float
    hyperparameters : dict
        The model's other hyperparameters by name (``{'label_weight': 0.3}``); empty for a
        model conditioned on λ alone. :attr:`values` has them all, λ included.
    moving_index, fixed_index : int
        Indices into the explorer's data.
    moved : np.ndarray
        The moving image warped onto the fixed one.
    flow : np.ndarray
        ``(*spatial, ndims)`` displacement in voxels.
    jacobian : np.ndarray
        Jacobian determinant of ``x -> x + flow(x)``.
    folding : float
        Fraction of voxels (of the whole volume) with Jacobian determinant <= 0.
    mse : float
        Mean squared difference between moved and fixed.
    warped_labels : np.ndarray or None
        Moving labels warped with nearest-neighbour interpolation.
    dice_per_label : np.ndarray or None
        Dice per structure of :attr:`LambdaExplorer.label_values` (NaN when
        the structure is in neither map), over the whole image or volume.
    dice : float
        Mean over the structures present (NaN without labels).
    seconds : dict
        Wall time of the update: ``model``, ``metrics``, ``draw``, ``total``.
    """

    lam: float
    moving_index: int
    fixed_index: int
    moved: np.ndarray
    flow: np.ndarray
    jacobian: np.ndarray
    folding: float
    mse: float
    warped_labels: np.ndarray | None = None
    dice_per_label: np.ndarray | None = None
    dice: float = float("nan")
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    hyperparameters: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def values(self) -> dict[str, float]:
        """Every hyperparameter value of this registration by name, λ first (``'lam'``)."""
        return {"lam": self.lam, **self.hyperparameters}

    @classmethod
    def scored(cls, *, lam: float, moving_index: int, fixed_index: int, moved: np.ndarray, flow: np.ndarray,
               fixed: np.ndarray, warped_labels: np.ndarray | None = None,
               fixed_labels: np.ndarray | None = None, label_values: ArrayLike = (),
               hyperparameters: Mapping[str, float] | None = None) -> ExplorerState:
        """The state of one registration, with its Jacobian, folding, MSE and (with labels) Dice.

        Examples
        --------
        >>> import numpy as np
        >>> state = ExplorerState.scored(lam=0.5, moving_index=0, fixed_index=1, moved=np.ones((8, 8)),
        ...                              flow=np.zeros((8, 8, 2)), fixed=np.zeros((8, 8)))
        >>> state.folding, state.mse
        (0.0, 1.0)
        """
        jacobian = jacobian_determinant(flow)
        state = cls(lam=lam, moving_index=moving_index, fixed_index=fixed_index, moved=moved, flow=flow,
                    jacobian=jacobian, folding=float(np.mean(jacobian <= 0)),
                    mse=float(np.mean((moved - fixed) ** 2)), warped_labels=warped_labels,
                    hyperparameters=dict(hyperparameters or {}))
        if fixed_labels is not None:
            assert warped_labels is not None, "fixed_labels are scored against warped_labels: pass both"
            state.dice_per_label = dice_batch(warped_labels[None], fixed_labels[None], label_values)[0]
            state.dice = mean_present(state.dice_per_label)
        return state


def mean_present(scores: np.ndarray) -> float:
    """Mean of the non-NaN scores (NaN when there are none)."""
    present = scores[~np.isnan(scores)]
    return float(present.mean()) if present.size else float("nan")


def unregistered_scores(data: Dataset, moving_index: int, fixed_index: int,
                        label_values: ArrayLike = ()) -> dict[str, float]:
    """The pair's image MSE and (with label maps) mean Dice before registration."""
    moving, fixed = data.images[moving_index, ..., 0], data.images[fixed_index, ..., 0]
    scores = {"mse": float(np.mean((moving - fixed) ** 2))}
    if data.labels is not None:
        scores["dice"] = mean_present(dice_batch(data.labels[moving_index][None], data.labels[fixed_index][None],
                                                 label_values)[0])
    return scores


def format_values(values: Mapping[str, float], labels: Mapping[str, str] | None = None) -> str:
    """``'λ = 0.5, γ = 0.3'``: hyperparameter values by their labels (default: λ for ``lam``, else the name).

    Examples
    --------
    >>> format_values({"lam": 0.9, "label_weight": 0.25}, {"label_weight": "γ"})
    'λ = 0.9, γ = 0.25'
    """
    labels = {"lam": "λ", **(labels or {})}
    return ", ".join(f"{labels.get(name, name)} = {format_lam(value)}" for name, value in values.items())


def readout_html(state: ExplorerState, *, unregistered: Mapping[str, float], image_sigma: float | None,
                 model_runs: int, labels: Mapping[str, str] | None = None) -> str:
    """The table under the figure: λ, the equivalent weight, the other hyperparameters (by their
    ``labels``), MSE, Dice and folding against the unregistered pair (``unregistered``: dict
    with ``mse`` and, with labels, ``dice``), update time."""
    cells = [("λ", format_lam(state.lam)), ("1 − λ", f"{1 - state.lam:.1e}")]
    if image_sigma is not None:
        weight = effective_weight(state.lam, image_sigma)
        cells.append(("w = λσ²/(1−λ)", "∞" if np.isinf(weight) else f"{weight:.3g}"))
    cells += [((labels or {}).get(name, name), format_lam(value)) for name, value in state.hyperparameters.items()]
    cells += [("image MSE", f"{state.mse:.4f} <small>(unregistered {unregistered['mse']:.4f})</small>")]
    if state.warped_labels is not None:
        cells.append(("mean Dice", f"{state.dice:.3f} "
                                   f"<small>(unregistered {unregistered['dice']:.3f})</small>"))
    cells += [("folding", f"{100 * state.folding:.2f}%"),
              ("update", f"{1000 * state.seconds['total']:.0f} ms "
                         f"<small>(model {1000 * state.seconds['model']:.0f} ms, "
                         f"model run {model_runs})</small>")]
    return ("<table style='border-collapse:collapse'><tr>"
            + "".join(f"<th style='padding:0 10px;text-align:left'>{name}</th>" for name, _ in cells)
            + "</tr><tr>"
            + "".join(f"<td style='padding:0 10px'>{value}</td>" for _, value in cells)
            + "</tr></table>")
