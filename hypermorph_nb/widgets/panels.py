"""The explorer's figure: one set of panels per plane, drawn once and then updated with ``set_data``.

Per plane: moving, fixed, moved, ``|moved − fixed|``, the deformation grid of the
in-plane field components over the moving image, the Jacobian determinant of the
whole field (folding, det <= 0, in black) and, with label maps, the warped moving
labels' outlines over the fixed image. A 2D image is one plane on two rows; a
volume gets one row per plane (axial, coronal, sagittal). A model conditioned on two
hyperparameters adds, right of the panels, the axes of its small map
(:mod:`hypermorph_nb.widgets.hyper_map`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TYPE_CHECKING

import numpy as np

from ..viz.drawing import grid_lines, label_outlines
from .state import format_values
from .views import convention_note

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    from .live_figure import LiveFigure
    from .state import ExplorerState
    from .views import PlaneView


TITLES = {"moving": "moving", "fixed": "fixed", "moved": "moved", "difference": "|moved − fixed|",
          "grid": "deformation grid", "jacobian": "Jacobian determinant",
          "labels": "warped labels on fixed"}
_COLUMN_INCHES = {2: 2.1, 3: 1.7}
#: Width the hyperparameter map adds to the figure, and the side of its square axes.
MAP_INCHES, MAP_SIDE_INCHES = 2.5, 1.8


def panel_names(has_labels: bool) -> list[str]:
    """The panels of one plane, in drawing order."""
    names = ["moving", "fixed", "moved", "difference", "grid", "jacobian"]
    return names + ["labels"] if has_labels else names


class PlanePanels:
    """The axes and artists of one plane, and how to show a slice of the cached volumes in them.

    Parameters
    ----------
    view : PlaneView
    axes : dict
        Panel name -> matplotlib Axes.
    shape : tuple of int
        The plane's displayed (rows, columns).
    lut : np.ndarray or None
        Label colours (None without label maps).
    grid_step : int
        Spacing of the deformation grid in pixels.
    volume_wide : bool
        Whether the folding and Dice texts describe a whole volume (3D).

    Attributes
    ----------
    artists : dict
        Panel name -> artist (``'moved'``, ``'difference'``, ``'grid'``, ``'jacobian'``,
        ``'outlines'``, ...).
    animated : list
        The artists redrawn by blitting on every update: those that λ changes and, for a
        volume, those that a slice change changes (all of them).
    """

    def __init__(self, view: PlaneView, axes: dict[str, Any], shape: tuple[int, ...], *,
                 lut: np.ndarray | None, grid_step: int, volume_wide: bool) -> None:
        self.view, self.axes, self.lut, self.grid_step = view, axes, lut, int(grid_step)
        self.volume_wide = volume_wide
        blank = np.zeros(shape, np.float32)
        gray: dict[str, Any] = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, "interpolation": "none",
                                "aspect": view.aspect}
        artists: dict[str, Any] = {
            "moving": axes["moving"].imshow(blank, **gray),
            "fixed": axes["fixed"].imshow(blank, **gray),
            "moved": axes["moved"].imshow(blank, **gray),
            "difference": axes["difference"].imshow(blank, cmap="magma", vmin=0.0, vmax=1.0,
                                                    interpolation="none", aspect=view.aspect),
            "grid_background": axes["grid"].imshow(blank, alpha=0.35, **gray),
            "jacobian": axes["jacobian"].imshow(blank, cmap=_jacobian_cmap(), vmin=0.0, vmax=2.0,
                                                interpolation="none", aspect=view.aspect),
        }
        artists["grid"], = axes["grid"].plot([], [], color="C0", linewidth=0.6)
        axes["grid"].set_xlim(-0.5, shape[1] - 0.5)
        axes["grid"].set_ylim(shape[0] - 0.5, -0.5)
        if not volume_wide:  # a volume's numbers are in one line under all planes (summary_text)
            artists["folding_text"] = corner_text(axes["jacobian"])
        if lut is not None:
            artists["labels_background"] = axes["labels"].imshow(blank, **gray)
            artists["outlines"] = axes["labels"].imshow(np.zeros((*shape, 4), np.uint8),
                                                        interpolation="none", aspect=view.aspect)
            if not volume_wide:
                artists["dice_text"] = corner_text(axes["labels"])
        if view.axis is not None:
            artists["slice_text"] = axes["moving"].text(
                0.03, 0.97, "", transform=axes["moving"].transAxes, va="top", ha="left", fontsize=7,
                color="yellow")
            for side, letter in zip(("left", "right", "bottom"), _edge_letters(axes["moving"], view.letters)):
                artists[f"letter_{side}"] = letter  # drawn over the images, so animated too
        self.artists = artists
        static = () if view.axis is not None else ("moving", "fixed", "grid_background", "labels_background")
        self.animated = [artist for name, artist in artists.items() if name not in static]

    def bbox(self) -> Bbox:
        """The display area of this plane's panels (pixels), for a redraw of this plane alone."""
        from matplotlib.transforms import Bbox

        return Bbox.union([ax.bbox for ax in self.axes.values()]).expanded(1.01, 1.01)

    def show(self, pair: tuple[np.ndarray, np.ndarray], state: ExplorerState, index: int) -> None:
        """Show slice ``index`` of the pair (moving, fixed volumes) and of ``state``'s volumes."""
        view, artists = self.view, self.artists
        fixed = view.image(pair[1], index)
        moving = view.image(pair[0], index)
        artists["moving"].set_data(moving)
        artists["fixed"].set_data(fixed)
        artists["grid_background"].set_data(moving)
        if "slice_text" in artists:
            artists["slice_text"].set_text(f"{view.name} {index}/{view.size - 1}")
        moved = view.image(state.moved, index)
        artists["moved"].set_data(moved)
        artists["difference"].set_data(np.abs(moved - fixed))
        artists["grid"].set_data(*grid_lines(view.vectors(state.flow, index), step=self.grid_step))
        artists["jacobian"].set_data(view.image(state.jacobian, index))
        if "folding_text" in artists:
            artists["folding_text"].set_text(f"folding {100 * state.folding:.2f}%")
        if state.warped_labels is not None:
            artists["labels_background"].set_data(fixed)
            artists["outlines"].set_data(label_outlines(view.image(state.warped_labels, index), lut=self.lut))
            if "dice_text" in artists:
                artists["dice_text"].set_text(f"Dice {state.dice:.3f}")


def summary_line(state: ExplorerState, labels: Mapping[str, str] | None = None) -> str:
    """A volume's numbers under its planes: the hyperparameters (by their ``labels``), folding and Dice."""
    values = format_values(state.values, labels).replace(", ", "   ")
    text = f"{values}   folding {100 * state.folding:.2f}% of the volume"
    if state.warped_labels is not None:
        text += f"   mean Dice {state.dice:.3f} over the volume"
    return text


def figure_size(views: Sequence[PlaneView], shapes: Sequence[tuple[int, int]],
                has_labels: bool, *, with_map: bool = False) -> tuple[float, float]:
    """Inches for the panels of ``views`` whose displayed shapes are ``shapes`` (and the map's)."""
    column = _COLUMN_INCHES[2 if views[0].axis is None else 3]
    extra = MAP_INCHES if with_map else 0.0
    if views[0].axis is None:  # 2D: two rows of four
        (height, width), = shapes
        row = column * height * views[0].aspect / width + 0.35
        return (2.3 * (4 if has_labels else 3) + extra, max(2 * row + 0.1, MAP_SIDE_INCHES + 1.0 if with_map else 0.0))
    columns = len(panel_names(has_labels))
    rows = [column * height * view.aspect / width + 0.12 for view, (height, width) in zip(views, shapes)]
    return (column * columns + 0.6 + extra, max(sum(rows) + 0.55, MAP_SIDE_INCHES + 1.0 if with_map else 0.0))


def build_panels(live: LiveFigure, views: Sequence[PlaneView], shapes: Sequence[tuple[int, int]], *,
                 lut: np.ndarray | None, grid_step: int, convention: str,
                 with_map: bool = False) -> tuple[list[PlanePanels], Text | None, Axes | None]:
    """Lay out the panels of every plane in ``live.figure`` (sized by :func:`figure_size`).

    Returns
    -------
    planes : list of PlanePanels
        One per view.
    summary : matplotlib.text.Text or None
        For a volume, the line under the planes for :func:`summary_line` (animated).
    map_axes : matplotlib.axes.Axes or None
        With ``with_map``, square axes right of the panels, at the top.
    """
    figure = live.figure
    has_labels = lut is not None
    names = panel_names(has_labels)
    width, height = figure.get_size_inches()
    extra = MAP_INCHES if with_map else 0.0  # the panels keep the margins they have without the map
    if views[0].axis is None:
        grid = figure.subplots(2, 4 if has_labels else 3)
        figure.subplots_adjust(left=0.01, right=1 - (0.05 * (width - extra) + extra) / width, top=0.93,
                               bottom=0.02, wspace=0.06, hspace=0.14)
        order = ["moving", "fixed", "moved", "difference"] + (["labels"] if has_labels else []) + \
            ["grid", "jacobian"]
        if has_labels:
            grid[1, 3].remove()
        rows = [dict(zip(order, grid.ravel()))]
        summary = None
    else:
        ratios = [height * view.aspect / width for view, (height, width) in zip(views, shapes)]
        grid = figure.subplots(len(views), len(names), squeeze=False,
                               gridspec_kw={"height_ratios": ratios})
        figure.subplots_adjust(left=0.01, right=1 - (0.55 + extra) / width, top=1 - 0.3 / height,
                               bottom=0.25 / height, wspace=0.05, hspace=0.05)
        rows = [dict(zip(names, row)) for row in grid]
        figure.text(0.01, 0.005, convention_note(views, convention), fontsize=7, va="bottom")
        summary = figure.text(0.99, 0.005, "", fontsize=8, va="bottom", ha="right", fontweight="bold")
        live.animate(summary)
    planes = []
    for number, (view, shape, axes) in enumerate(zip(views, shapes, rows)):
        for name, ax in axes.items():
            if number == 0 or views[0].axis is None:
                ax.set_title(TITLES[name], fontsize=9 if views[0].axis is None else 8)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # the images are drawn over them anyway
                spine.set_visible(False)
        plane = PlanePanels(view, axes, shape, lut=lut, grid_step=grid_step,
                            volume_wide=view.axis is not None)
        if view.axis is None:
            colorbar = figure.colorbar(plane.artists["jacobian"], ax=axes["jacobian"], fraction=0.046,
                                       pad=0.02, extend="min")
            colorbar.ax.tick_params(labelsize=7)
        elif number == 0:  # one colour bar for the Jacobian panels of all planes, right of them
            colorbar = figure.colorbar(plane.artists["jacobian"], extend="min", cax=figure.add_axes(
                (1 - (0.4 + extra) / width, 0.2, 0.1 / width, 0.6)))
            colorbar.ax.tick_params(labelsize=6)
        for artist in plane.animated:
            live.animate(artist)
        planes.append(plane)
    map_axes = None
    if with_map:
        map_axes = figure.add_axes(((width - extra + 0.55) / width, 1 - (MAP_SIDE_INCHES + 0.35) / height,
                                    MAP_SIDE_INCHES / width, MAP_SIDE_INCHES / height))
    return planes, summary, map_axes


def corner_text(ax: Axes) -> Text:
    """A text in the top-left corner of ``ax`` on a light box (for numbers that change)."""
    return ax.text(0.03, 0.97, "", transform=ax.transAxes, va="top", ha="left", fontsize=7,
                   bbox={"facecolor": "white", "alpha": 0.75, "linewidth": 0, "pad": 1.5})


def _edge_letters(ax: Axes, letters: Any) -> tuple[Text, Text, Text]:
    style: dict[str, Any] = {"transform": ax.transAxes, "fontsize": 7, "color": "yellow", "fontweight": "bold"}
    left, right, top, bottom = letters
    return (ax.text(0.02, 0.5, left, ha="left", va="center", **style),
            ax.text(0.98, 0.5, right, ha="right", va="center", **style),
            ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style))


def _jacobian_cmap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(under="black")
