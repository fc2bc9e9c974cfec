"""LambdaExplorer: move λ and watch a trained HyperMorph model re-register a pair, 2D or 3D.

A model conditioned on more than λ gets one slider per hyperparameter
(:mod:`hypermorph_nb.widgets.controls`) and, for two, a small map of the pair's
scores over both (:mod:`hypermorph_nb.widgets.hyper_map`). A λ (or other) change
runs the model's compiled function once (fixed input signature, so
no retracing; on the GPU when TensorFlow sees one), warps the moving label map
and computes the Jacobian determinant of the whole field; the results are kept.
Moving a slice slider of a volume redraws that plane from the kept volumes
without running the model. Only artists are redrawn, over a cached background
(:mod:`hypermorph_nb.widgets.live_figure`); the figure layout is in
:mod:`hypermorph_nb.widgets.panels`, the plane geometry in
:mod:`hypermorph_nb.widgets.views`. Browser input is served by a background
thread that skips stale values (:mod:`hypermorph_nb.widgets.updates`); a value
set from Python is applied before the assignment returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import os
from pathlib import Path
from typing import Any, TYPE_CHECKING

import functools
import time

from numpy.typing import ArrayLike
import ipywidgets as widgets
import numpy as np

from ..checks.pairs import check_pair
from ..data.dataset import Dataset, as_dataset
from ..networks.description import FROM_MODEL, resolve_image_sigma
from ..viz.drawing import label_colors
from ..networks.models import require_hypermorph
from ..checks.values import check_refine
from .controls import HyperparameterSliders, HyperparameterValuesMixin, LambdaControls
from .explorer_inputs import FromArraysMixin, pair_pickers, slice_sliders
from .error_box import ErrorBox
from .hyper_map import DEFAULT_MAP_POINTS, HyperMap
from .live_figure import LiveFigure
from .panels import PlanePanels, build_panels, figure_size, summary_line
from .pictures import PictureMixin
from .state import ExplorerState, format_values, readout_html, unregistered_scores
from .step import RegistrationStep, registration_state
from .updates import Coalescer, changed_by_frontend
from .views import plane_views

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["ExplorerState", "LambdaExplorer", "RegistrationStep"]


class LambdaExplorer(HyperparameterValuesMixin, FromArraysMixin, PictureMixin, widgets.VBox):
    """Explore a trained HyperMorph model's registrations over λ, inline, in 2D or 3D.

    Panels, per plane (one for a 2D image; axial, coronal and sagittal for a
    volume, each with its slice slider): moving, fixed, moved,
    ``|moved − fixed|``, the deformation as a grid of the in-plane field
    components whose vertices sit at ``x + u(x)`` over the moving image, the
    Jacobian determinant of the whole field (folding voxels, det <= 0, in black,
    with their percentage of the image or volume), and, when the data has
    label maps, the warped moving labels' outlines over the fixed image with the
    mean Dice over the image or volume. Under the figure: λ, image MSE, Dice
    and % folding, each against the unregistered pair.

    A model conditioned on several hyperparameters (``hyperparameters=("lam", "label_weight")``)
    gets one slider per hyperparameter (its label, over its trained range), all used by every
    registration; with two, a small map right of the panels shows the pair's mean Dice (image
    MSE without label maps) and folding over a coarse grid of both, with a ring where the
    sliders stand (:class:`~hypermorph_nb.widgets.hyper_map.HyperMap`: ``hyper_map ** 2``
    registrations, like as many slider moves, once per pair shown; ``hyper_map=0``: no map).

    Volumes are oriented by their affine (RAS, as in NIfTI; :func:`plane_views`): superior and
    anterior up, the subject's left on the left of axial and coronal views by default
    (``convention='radiological'``: on the right), anterior on the left of sagittal views;
    the convention is printed under the figure and edge letters (L/R, A/P, S/I) mark each plane.

    Parameters
    ----------
    model : tf.keras.Model
        A trained 2D or 3D HyperMorph model (:func:`hypermorph_nb.build_hypermorph`
        or :func:`hypermorph_nb.load_model`).
    data : Dataset or array_like
        Images to pick pairs from, of the model's shape: a Dataset, or an
        ``(N, *spatial)`` array of images in [0, 1] (as :func:`hypermorph_nb.data.as_dataset`
        takes them). To explore two arrays or NIfTI files of your own, use :meth:`from_arrays`.
    pair : tuple of int
        Initial (moving, fixed) indices.
    lam : float, optional
        Initial λ (default: the model's default λ, 0.5).
    values : mapping of str to float, optional
        Initial values of the model's other hyperparameters by name (default: their
        ``default``), e.g. ``{"label_weight": 1.0}`` (``lam`` wins over a ``'lam'`` here).
    hyper_map : int
        Grid points per hyperparameter of the map of a two-hyperparameter model (0: no map).
    image_sigma : float, 'model' or None
        σ of the MSE loss, for the equivalent VoxelMorph weight readout (see
        :func:`effective_weight`): by default the σ the model was trained with (from its
        saved description); a number that disagrees with it warns; None hides the readout.
    affine : array_like, optional
        ``(4, 4)`` voxel-to-world matrix of the volumes; default ``data.affine``
        (identity when the data has none). Ignored for 2D images.
    convention : {'neurological', 'radiological'}
        Left-right display convention of axial and coronal views.
    slices : dict, optional
        Initial slice index per plane name (default: the middle of each axis).
    display : {'auto', 'ipympl', 'image'}
        ``'auto'`` embeds the ipympl canvas under ``%matplotlib widget`` and
        otherwise refreshes one image widget in place.
    image_format : {'jpeg', 'png'}
        Encoding of the ``'image'`` display (JPEG encodes faster;
        ``benchmarks/results/widget_latency.md``).
    grid_step : int, optional
        Spacing of the deformation grid in pixels (default ~1/20 of the image).
    dpi : float
        Figure resolution.
    play_interval : int
        Milliseconds between frames of the play button.

    Attributes
    ----------
    lam_slider : ipywidgets.FloatSlider
        λ; setting ``.value`` from Python re-runs the model before returning.
    sliders : dict
        Hyperparameter name -> its slider (``'lam'``: ``lam_slider``), each like ``lam_slider``;
        :meth:`set_values` sets several with one model run.
    hyperparameters : tuple of Hyperparameter
        What the model is conditioned on.
    hyper_controls : HyperparameterSliders
        All the sliders; shows those besides λ (none for a λ-only model).
    hyper_map : HyperMap or None
        The map of a two-hyperparameter model.
    slice_sliders : dict
        Plane name (``'axial'``, ``'coronal'``, ``'sagittal'``) -> ``ipywidgets.IntSlider``;
        empty for 2D images. Setting ``.value`` redraws that plane without running the model.
    controls : LambdaControls
        The slider, the log scale of ``1 − λ``, the exact-value box and play.
    moving_picker, fixed_picker : ipywidgets.Dropdown
        The pair picker.
    state : ExplorerState
        What is shown now.
    planes : list of PlanePanels
        Per plane: its view (orientation), axes and artists.
    artists, axes : dict
        The first plane's artists and axes by panel name (``'moved'``,
        ``'difference'``, ``'grid'``, ``'jacobian'``, ``'outlines'``, ...); the
        only plane of a 2D image.
    refine_box : ipywidgets.BoundedIntText
        Iterations for the refine button.
    refine_button : ipywidgets.Button
        Refines the shown pair at the shown λ (:meth:`refine`).
    refined : int
        Iterations of instance optimisation behind the shown registration (0: the network's).
    n_updates : int
        Number of model runs for the display so far (slice changes run none).
    last_seconds : dict
        Wall time of the last redraw, a λ change or a slice change: ``draw``, ``total``.
    last_error : Exception or None
        The error of the last update, also shown in the widget.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(3, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> explorer = LambdaExplorer(model, data, display="image")
    >>> explorer.lam_slider.value = 0.9
    >>> explorer.state.lam, explorer.n_updates
    (0.9, 2)
    >>> both = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0,
    ...                             hyperparameters=("lam", "label_weight"))
    >>> explorer = LambdaExplorer(both, data, display="image", hyper_map=3)
    >>> explorer.set_values(lam=0.8, label_weight=0.2)
    >>> explorer.values, explorer.state.values == explorer.values
    ({'lam': 0.8, 'label_weight': 0.2}, True)
    """

    def __init__(self, model: tf.keras.Model, data: Dataset | ArrayLike, *, pair: Sequence[int] = (0, 1),
                 lam: float | None = None, values: Mapping[str, float] | None = None,
                 hyper_map: int = DEFAULT_MAP_POINTS, image_sigma: float | str | None = FROM_MODEL,
                 affine: ArrayLike | None = None, convention: str = "neurological",
                 slices: Mapping[str, int] | None = None, display: str = "auto", image_format: str = "jpeg",
                 grid_step: int | None = None, dpi: int = 90, play_interval: int = 250) -> None:
        spec = require_hypermorph(model, "LambdaExplorer")
        self.model, self.hyperparameters = model, spec.hyperparameters
        start = {**(values or {}), **({} if lam is None else {"lam": lam})}
        self.data = as_dataset(data, inshape=spec.inshape)
        if len(self.data) < 2:
            raise ValueError(f"data holds {len(self.data)} image; the explorer needs a pair: "
                             "pass at least two images, or use LambdaExplorer.from_arrays")
        moving_index, fixed_index = check_pair(pair, len(self.data))
        if affine is None:
            affine = getattr(self.data, "affine", None)
        self.convention = convention
        self.views = plane_views(self.data.shape, affine, convention=convention)
        self._step = RegistrationStep.for_model(model)
        self.label_values = self.data.label_values()
        self.grid_step = int(grid_step) if grid_step is not None else max(4, min(spec.inshape) // 20)
        self.state: ExplorerState | None = None
        self.n_updates = 0
        self.last_seconds: dict[str, float] = {}
        # (λ, moving index, fixed index, the other hyperparameters' values) on display
        self._shown_key: tuple[float, int, int, tuple[float, ...]] | None = None
        self._shown_slices: dict[str, int] | None = None
        self._identity: dict[str, float] = {}
        self._pair_images: tuple[np.ndarray, np.ndarray] | None = None
        self._holding = False
        self._refine = self.refined = 0

        image_sigma = resolve_image_sigma(spec.training, image_sigma)
        lam_hyper = self.hyperparameters[0]  # λ comes first (hypermorph_nb.networks.hyperparameters)
        self.controls = LambdaControls(lam=start.get("lam", lam_hyper.default), image_sigma=image_sigma,
                                       lam_range=(lam_hyper.low, lam_hyper.high), play_interval=play_interval)
        self.lam_slider = self.controls.lam_slider
        self.hyper_controls = HyperparameterSliders(self.hyperparameters, self.lam_slider, start)
        self._labels = {hyper.name: hyper.label for hyper in self.hyperparameters}
        self.slice_sliders = slice_sliders(self.views, slices)
        self.moving_picker, self.fixed_picker = pair_pickers(self.data.names or len(self.data), moving_index,
                                                             fixed_index)
        self.readout = widgets.HTML()
        self.error_box = ErrorBox()
        self.refine_box = widgets.BoundedIntText(value=50, min=1, max=10000, description="iterations")
        self.refine_button = widgets.Button(description="refine this pair",
                                            tooltip="optimise the shown pair's loss at the shown λ, "
                                                    "starting from the network's field")
        self.refine_button.on_click(lambda _: self.refine(self.refine_box.value))
        blank = np.zeros(self.data.shape)
        shapes = [view.image(blank, 0).shape for view in self.views]
        with_map = len(self.hyperparameters) == 2 and bool(hyper_map)
        self.live = LiveFigure(figsize=figure_size(self.views, shapes, self.data.has_labels, with_map=with_map),
                               dpi=dpi, mode=display, image_format=image_format)
        self.figure = self.live.figure
        self._lut = label_colors(max(int(self.data.labels.max()), 1)) if self.data.labels is not None else None
        self.planes, self._summary, map_axes = build_panels(
            self.live, self.views, shapes, lut=self._lut, grid_step=self.grid_step, convention=convention,
            with_map=with_map)
        self.hyper_map = None if map_axes is None else HyperMap(map_axes, self.hyperparameters, points=hyper_map)
        if self.hyper_map is not None:
            self.live.animate(self.hyper_map.marker)
        self.artists, self.axes = self.planes[0].artists, self.planes[0].axes
        self._updates = Coalescer(functools.partial(self._update, from_frontend=True),
                                  on_error=self.error_box.show)

        for widget in (self.lam_slider, *self.hyper_controls.inputs, self.moving_picker, self.fixed_picker,
                       *self.slice_sliders.values()):
            widget.observe(self._on_input, "value")
        rows = [self.controls, *([self.hyper_controls] if self.hyper_controls.inputs else []),
                widgets.HBox([self.moving_picker, self.fixed_picker]),
                widgets.HBox([self.refine_button, self.refine_box])]
        if self.slice_sliders:
            rows.append(widgets.HBox(list(self.slice_sliders.values())))
        super().__init__(rows + [self.live.widget, self.readout, self.error_box])
        self._update()

    @property
    def last_error(self) -> BaseException | None:
        """The exception of the last update that failed (None once one succeeds)."""
        return self.error_box.error

    @property
    def lam(self) -> float:
        """The current λ (``lam_slider.value``)."""
        return float(self.lam_slider.value)

    @property
    def pair(self) -> tuple[int, int]:
        """The current (moving, fixed) indices."""
        return int(self.moving_picker.value), int(self.fixed_picker.value)

    @property
    def slices(self) -> dict[str, int]:
        """The current slice index per plane name (empty for 2D images)."""
        return {name: int(slider.value) for name, slider in self.slice_sliders.items()}

    def show_pair(self, moving: int, fixed: int) -> None:
        """Switch to another pair of the data (indices) and update."""
        moving, fixed = check_pair((moving, fixed), len(self.data))
        self._holding = True  # one update for both pickers, not one each
        try:
            self.moving_picker.value = moving
            self.fixed_picker.value = fixed
        finally:
            self._holding = False
        self._update()

    def refresh(self) -> None:
        """Re-run the model at the current values and pair (e.g. after training the model further)."""
        with self.live.lock:
            self._shown_key = None
            self._update()

    def refine(self, iterations: int = 50) -> None:
        """Refine the shown pair at the shown λ by instance optimisation, and show the result.

        Starting from the network's field, ``iterations`` Adam steps minimise the
        pair's λ-weighted loss (:func:`hypermorph_nb.registration.refine.refine_registration`,
        as ``register(..., refine=iterations)``). The refined registration stays on
        display, in every panel and the readout, until λ or the pair changes; then
        the network's registration is shown again.

        Examples
        --------
        >>> import hypermorph_nb as hnb
        >>> from hypermorph_nb.data import synthetic
        >>> model = hnb.build_hypermorph((32, 32), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], seed=0)
        >>> explorer = LambdaExplorer(model, synthetic(2, (32, 32), seed=0), display="image")
        >>> explorer.refine(10)
        >>> explorer.refined, explorer.n_updates
        (10, 2)
        >>> explorer.lam_slider.value = 0.7
        >>> explorer.refined
        0
        """
        iterations = check_refine(iterations)
        with self.live.lock:
            self._refine = iterations
            self._shown_key = None
            self._update()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until updates started from the browser have been drawn (False: ``timeout`` s passed first)."""
        return self._updates.wait(timeout)

    def savefig(self, fname: Any, **kwargs: Any) -> None:
        """Save the current figure, with λ (and any other values) in the moved panel's title
        (``Figure.savefig`` options)."""
        title = self.axes["moved"].title
        if self.state is not None:
            title.set_text(f"moved, {format_values(self.state.values, self._labels)}")
        try:
            self.live.savefig(fname, **kwargs)
        finally:
            title.set_text("moved")

    def save_animation(self, path: str | os.PathLike[str], *, lams: ArrayLike | None = None, fps: int = 4,
                       dpi: float | None = None) -> Path:
        """Write a λ sweep of the current view (pair and slices) as an animated GIF or HTML player.

        See :func:`hypermorph_nb.widgets.animation.save_lambda_animation`.
        """
        from .animation import save_lambda_animation

        return save_lambda_animation(self, path, lams=lams, fps=fps, dpi=dpi)

    def close(self) -> None:
        """Close the widgets and release the figure."""
        if getattr(self, "_updates", None) is None:  # the constructor failed part-way
            return super().close()
        self.wait(10)
        self.live.close()
        for child in (self.controls, *self.hyper_controls.inputs, self.hyper_controls, self.moving_picker,
                      self.fixed_picker, self.readout, self.error_box, self.refine_button, self.refine_box,
                      *self.slice_sliders.values()):
            child.close()
        super().close()

    # ---- updates ---------------------------------------------------------------------------

    def _on_input(self, change) -> None:
        if self._holding:
            return
        if changed_by_frontend(*self.controls.inputs, *self.hyper_controls.inputs, self.moving_picker,
                               self.fixed_picker, *self.slice_sliders.values()):
            self._updates.request()  # the browser is waiting on this kernel: don't block it
        else:
            self._update()

    def _update(self, *, from_frontend: bool = False) -> None:
        with self.live.lock:
            values, (moving_index, fixed_index), slices = self.values, self.pair, self.slices
            others = {name: value for name, value in values.items() if name != "lam"}
            key = (values["lam"], moving_index, fixed_index, tuple(others.values()))
            if key == self._shown_key and slices == self._shown_slices:
                return
            if self._shown_key is not None and key != self._shown_key:
                self._refine = 0   # a refinement belongs to the pair and values it was made for
            try:
                start = time.perf_counter()
                pair_changed = self._shown_key is None or self._shown_key[1:3] != key[1:3]
                if pair_changed:
                    self._load_pair(moving_index, fixed_index)
                state = self.state
                if key != self._shown_key or state is None:  # no state is shown before the first key
                    state = self.state_at(values["lam"], moving_index, fixed_index, **others)
                drawn = time.perf_counter()
                shown = self._shown_slices or {}
                changed = [plane for plane in self.planes if state is not self.state
                           or slices.get(plane.view.name) != shown.get(plane.view.name)]
                self._show(changed, state, slices)
                if pair_changed or state is not self.state:
                    self.live.refresh(full=pair_changed)
                else:  # slices moved: redraw those planes alone from the kept volumes
                    for plane in changed:
                        self.live.refresh_region(plane.animated, plane.bbox())
                seconds = {"draw": time.perf_counter() - drawn, "total": time.perf_counter() - start}
            except Exception as err:  # shown in the widget: an observer's traceback would be lost
                self.error_box.show(err)
                return
            if state is not self.state:
                state.seconds.update(seconds)
                self.state = state
                self.n_updates += 1
                self.refined = self._refine
            self.last_seconds = seconds
            self._shown_key, self._shown_slices = key, slices
            self._view_changed(from_frontend=from_frontend)
            self.readout.value = readout_html(state, unregistered=self._identity,
                                              image_sigma=self.controls.image_sigma,
                                              model_runs=self.n_updates, labels=self._labels)
            self.error_box.clear()

    def show_state(self, state: ExplorerState) -> None:
        """Put ``state`` into every plane at the current slices (drawn by the next refresh).

        Used with :meth:`state_at` by :func:`hypermorph_nb.widgets.animation.save_lambda_animation`
        to draw frames at other λ without changing the widget's controls (the map's ring follows).
        """
        self._show(self.planes, state, self.slices)

    def _show(self, planes: list[PlanePanels], state: ExplorerState, slices: dict[str, int]) -> None:
        """Put ``state`` into ``planes`` at ``slices`` and update the volume's summary line."""
        for plane in planes:  # _pair_images: set by _load_pair before any state is shown
            plane.show(self._pair_images, state, slices.get(plane.view.name, 0))  # type: ignore[arg-type]
        if self._summary is not None:
            self._summary.set_text(summary_line(state, self._labels))
        if self.hyper_map is not None:
            self.hyper_map.mark(state.values)

    def _load_pair(self, moving_index: int, fixed_index: int) -> None:
        moving = self.data.images[moving_index, ..., 0]
        fixed = self.data.images[fixed_index, ..., 0]
        self._pair_images = (moving, fixed)
        largest = max(float(np.abs(moving - fixed).max()), 1e-6)
        for plane in self.planes:
            plane.artists["difference"].set_clim(0.0, largest)
        self._identity = unregistered_scores(self.data, moving_index, fixed_index, self.label_values)
        if self.hyper_map is not None:
            self.hyper_map.show_pair(self.model, self.data, (moving_index, fixed_index))

    def state_at(self, lam: float, moving_index: int, fixed_index: int, **hyperparameters: float) -> ExplorerState:
        """Register pair ``(moving_index, fixed_index)`` at ``lam`` (and the other hyperparameters, by
        name; default the sliders' values), refined as the widget refines, and score it; an
        :class:`ExplorerState` that nothing shows until :meth:`show_state`."""
        values = {**self.values, **hyperparameters, "lam": lam}
        return registration_state(self.model, self.data, moving_index, fixed_index, values=values,
                                  refine=self._refine, label_values=self.label_values, step=self._step)
