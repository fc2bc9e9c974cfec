"""LambdaExplorer: move λ and watch a trained HyperMorph model re-register a pair.

Each update runs the model's compiled function (fixed input signature, so no
retracing; on the GPU when TensorFlow sees one), warps the moving label map,
computes the Jacobian determinant, and redraws only the λ-dependent artists
(see :mod:`hypermorph_nb.widgets.live_figure`). Slider drags in the browser are
served by a background thread that skips stale values
(:mod:`hypermorph_nb.widgets.updates`); a value set from Python is applied
before the assignment returns.
"""

import dataclasses
import html
import time
import traceback

import weakref

import ipywidgets as widgets
import numpy as np
import tensorflow as tf

from ..data.dataset import Dataset
from ..losses import DEFAULT_IMAGE_SIGMA
from ..metrics import dice_batch, jacobian_determinant
from ..plotting import format_lam, grid_lines, label_colors, label_outlines, require_2d_hypermorph
from ..registration import Registrar
from .controls import LambdaControls, effective_weight
from .live_figure import LiveFigure
from .updates import Coalescer, changed_by_frontend


@dataclasses.dataclass
class ExplorerState:
    """What the explorer shows: one registration of the current pair at the current λ.

    Attributes
    ----------
    lam : float
    moving_index, fixed_index : int
        Indices into the explorer's data.
    moved : np.ndarray
        ``(H, W)`` the moving image warped onto the fixed one.
    flow : np.ndarray
        ``(H, W, 2)`` displacement in pixels.
    jacobian : np.ndarray
        ``(H, W)`` Jacobian determinant of ``x -> x + flow(x)``.
    folding : float
        Fraction of pixels with Jacobian determinant <= 0.
    mse : float
        Mean squared difference between moved and fixed.
    warped_labels : np.ndarray or None
        ``(H, W)`` moving labels warped with nearest-neighbour interpolation.
    dice_per_label : np.ndarray or None
        Dice per structure of :attr:`LambdaExplorer.label_values` (NaN when
        the structure is in neither map).
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
    warped_labels: np.ndarray = None
    dice_per_label: np.ndarray = None
    dice: float = float("nan")
    seconds: dict = dataclasses.field(default_factory=dict)


class LambdaExplorer(widgets.VBox):
    """Explore a trained HyperMorph model's registrations over λ, inline.

    Panels: moving, fixed, moved, ``|moved − fixed|``, the deformation as a
    grid whose vertices sit at ``x + u(x)`` over the moving image, the Jacobian
    determinant (folding pixels, det <= 0, in black, with their percentage),
    and, when the data has label maps, the warped moving labels' outlines over
    the fixed image with the mean Dice. Under the figure: λ, image MSE, Dice
    and % folding, each against the unregistered pair.

    Parameters
    ----------
    model : tf.keras.Model
        A trained 2D HyperMorph model (:func:`hypermorph_nb.build_hypermorph`
        or :func:`hypermorph_nb.load_model`).
    data : Dataset or array_like
        Images to pick pairs from (``(N, H, W)`` or ``(N, H, W, 1)`` arrays are
        converted with :meth:`Dataset.from_arrays`). To explore two arrays of
        your own, use :meth:`from_arrays`.
    pair : tuple of int
        Initial (moving, fixed) indices.
    lam : float
        Initial λ.
    image_sigma : float or None
        σ of the MSE loss the model was trained with, for the equivalent
        VoxelMorph weight readout (see :func:`effective_weight`); None hides it.
    display : {'auto', 'ipympl', 'image'}
        ``'auto'`` embeds the ipympl canvas under ``%matplotlib widget`` and
        otherwise refreshes one image widget in place.
    image_format : {'jpeg', 'png'}
        Encoding of the ``'image'`` display (JPEG encodes ~5x faster).
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
    controls : LambdaControls
        The slider, the log scale of ``1 − λ``, the exact-value box and play.
    moving_picker, fixed_picker : ipywidgets.Dropdown
        The pair picker.
    state : ExplorerState
        What is shown now.
    artists : dict
        The matplotlib artists by panel name (``'moved'``, ``'difference'``,
        ``'grid'``, ``'jacobian'``, ``'outlines'``, ...).
    n_updates : int
        Number of model runs so far.
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
    """

    def __init__(self, model, data, *, pair=(0, 1), lam=0.5, image_sigma=DEFAULT_IMAGE_SIGMA,
                 display="auto", image_format="jpeg", grid_step=None, dpi=90, play_interval=250):
        spec = require_2d_hypermorph(model, "LambdaExplorer")
        self.model = model
        self.data = _as_dataset(data, spec.inshape)
        if len(self.data) < 2:
            raise ValueError(f"data holds {len(self.data)} image; the explorer needs a pair: "
                             "pass at least two images, or use LambdaExplorer.from_arrays")
        moving_index, fixed_index = _check_pair(pair, len(self.data))
        self._step = RegistrationStep.for_model(model)
        self.label_values = self.data.label_values()
        self.grid_step = int(grid_step) if grid_step is not None else max(4, min(spec.inshape) // 20)
        self.state = None
        self.n_updates = 0
        self.last_error = None
        self._shown_key = None  # (λ, moving index, fixed index) on display
        self._identity = {}
        self._holding = False

        self.controls = LambdaControls(lam=lam, image_sigma=image_sigma, play_interval=play_interval)
        self.lam_slider = self.controls.lam_slider
        names = self.data.names or [f"#{index}" for index in range(len(self.data))]
        options = [(str(name), index) for index, name in enumerate(names)]
        self.moving_picker = widgets.Dropdown(options=options, value=moving_index, description="moving")
        self.fixed_picker = widgets.Dropdown(options=options, value=fixed_index, description="fixed")
        self.readout = widgets.HTML()
        self.error_box = widgets.HTML(layout=widgets.Layout(display="none"))
        self.live = LiveFigure(figsize=self._figsize(), dpi=dpi, mode=display, image_format=image_format)
        self.figure = self.live.figure
        self.artists = self._build_panels()
        self._updates = Coalescer(self._update, on_error=self._show_error)

        self.lam_slider.observe(self._on_input, "value")
        self.moving_picker.observe(self._on_input, "value")
        self.fixed_picker.observe(self._on_input, "value")
        super().__init__([
            self.controls,
            widgets.HBox([self.moving_picker, self.fixed_picker]),
            self.live.widget,
            self.readout,
            self.error_box,
        ])
        self._update()

    @classmethod
    def from_arrays(cls, model, moving, fixed, *, moving_labels=None, fixed_labels=None, **options):
        """Explore one pair of your own arrays.

        Parameters
        ----------
        model : tf.keras.Model
        moving, fixed : array_like
            ``(H, W)`` or ``(H, W, 1)`` images of the model's shape (rescaled to
            [0, 1] as :meth:`Dataset.from_arrays` does).
        moving_labels, fixed_labels : array_like, optional
            ``(H, W)`` integer label maps (both or neither).
        **options
            As for :class:`LambdaExplorer` (``lam``, ``display``, ...).

        Returns
        -------
        LambdaExplorer

        Examples
        --------
        >>> import numpy as np, hypermorph_nb as hnb
        >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
        >>> rng = np.random.default_rng(0)
        >>> explorer = LambdaExplorer.from_arrays(model, rng.random((32, 32)), rng.random((32, 32)),
        ...                                       display="image")
        >>> explorer.moving_picker.label
        'moving'
        """
        if (moving_labels is None) != (fixed_labels is None):
            raise ValueError("pass both moving_labels and fixed_labels, or neither")
        moving, fixed = np.asarray(moving), np.asarray(fixed)
        if moving.shape != fixed.shape:
            raise ValueError(f"moving {moving.shape} and fixed {fixed.shape} must have the same shape")
        labels = None
        if moving_labels is not None:
            labels = np.stack([np.asarray(moving_labels), np.asarray(fixed_labels)])
        data = Dataset.from_arrays(np.stack([moving, fixed]), labels, names=["moving", "fixed"],
                                   source="arrays")
        return cls(model, data, pair=(0, 1), **options)

    @property
    def lam(self):
        """The current λ (``lam_slider.value``)."""
        return float(self.lam_slider.value)

    @property
    def pair(self):
        """The current (moving, fixed) indices."""
        return int(self.moving_picker.value), int(self.fixed_picker.value)

    def show_pair(self, moving, fixed):
        """Switch to another pair of the data (indices) and update."""
        moving, fixed = _check_pair((moving, fixed), len(self.data))
        self._holding = True  # one update for both pickers, not one each
        try:
            self.moving_picker.value = moving
            self.fixed_picker.value = fixed
        finally:
            self._holding = False
        self._update()

    def refresh(self):
        """Re-run the model at the current λ and pair (e.g. after training the model further)."""
        with self.live.lock:
            self._shown_key = None
            self._update()

    def wait(self, timeout=None):
        """Block until updates started from the browser have been drawn.

        Returns
        -------
        bool
            False if ``timeout`` seconds passed first.
        """
        return self._updates.wait(timeout)

    def savefig(self, fname, **kwargs):
        """Save the current figure, with λ in the moved panel's title (``Figure.savefig`` options)."""
        title = self.axes["moved"].title
        if self.state is not None:
            title.set_text(f"moved, λ = {format_lam(self.state.lam)}")
        try:
            self.live.savefig(fname, **kwargs)
        finally:
            title.set_text("moved")

    def snapshot(self, *, dpi=None):
        """The current figure as a static PNG image, for executed notebooks and reports.

        Widgets do not show in a notebook rendered without a kernel (nbviewer,
        papermill output); display this instead.

        Returns
        -------
        IPython.display.Image
        """
        import io

        from IPython.display import Image

        with io.BytesIO() as buffer:
            self.savefig(buffer, format="png", dpi=dpi)
            return Image(data=buffer.getvalue(), format="png")

    def close(self):
        """Close the widgets and release the figure."""
        if getattr(self, "_updates", None) is None:  # the constructor failed part-way
            return super().close()
        self.wait(10)
        self.live.close()
        for child in (self.controls, self.moving_picker, self.fixed_picker, self.readout, self.error_box):
            child.close()
        super().close()

    # ---- updates ---------------------------------------------------------------------------

    def _on_input(self, change):
        if self._holding:
            return
        if changed_by_frontend(*self.controls.inputs, self.moving_picker, self.fixed_picker):
            self._updates.request()  # the browser is waiting on this kernel: don't block it
        else:
            self._update()

    def _update(self):
        with self.live.lock:
            lam, (moving_index, fixed_index) = self.lam, self.pair
            key = (lam, moving_index, fixed_index)
            if key == self._shown_key:
                return
            try:
                start = time.perf_counter()
                pair_changed = self._shown_key is None or self._shown_key[1:] != key[1:]
                if pair_changed:
                    self._show_pair_images(moving_index, fixed_index)
                state = self._register(lam, moving_index, fixed_index)
                drawn = time.perf_counter()
                self._show_state(state)
                self.live.refresh(full=pair_changed)
                state.seconds["draw"] = time.perf_counter() - drawn
                state.seconds["total"] = time.perf_counter() - start
            except Exception as err:  # shown in the widget: an observer's traceback would be lost
                self._show_error(err)
                return
            self.state = state
            self._shown_key = key
            self.n_updates += 1
            self._show_readout(state)
            self._clear_error()

    def _register(self, lam, moving_index, fixed_index):
        data = self.data
        start = time.perf_counter()
        moving_labels = data.labels[moving_index] if data.has_labels else None
        moved, flow, warped_labels = self._step(data.images[moving_index], data.images[fixed_index], lam,
                                                moving_labels)
        computed = time.perf_counter()
        fixed = data.images[fixed_index, ..., 0]
        jacobian = jacobian_determinant(flow)
        state = ExplorerState(
            lam=lam, moving_index=moving_index, fixed_index=fixed_index, moved=moved, flow=flow,
            jacobian=jacobian, folding=float(np.mean(jacobian <= 0)),
            mse=float(np.mean((moved - fixed) ** 2)), warped_labels=warped_labels)
        if data.has_labels:
            state.dice_per_label = dice_batch(
                warped_labels[None], data.labels[fixed_index:fixed_index + 1], self.label_values)[0]
            state.dice = _mean_present(state.dice_per_label)
        state.seconds = {"model": computed - start, "metrics": time.perf_counter() - computed}
        return state

    # ---- drawing ---------------------------------------------------------------------------

    def _figsize(self):
        height, width = self.data.shape
        row = 2.1 * height / width + 0.35  # image height at ~2.1 in wide, plus its title
        return (2.3 * (4 if self.data.has_labels else 3), 2 * row + 0.1)

    def _build_panels(self):
        figure, live = self.figure, self.live
        shape = self.data.shape
        columns = 4 if self.data.has_labels else 3
        axes = figure.subplots(2, columns)
        figure.subplots_adjust(left=0.01, right=0.95, top=0.93, bottom=0.02, wspace=0.06, hspace=0.14)
        blank = np.zeros(shape, np.float32)
        gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, "interpolation": "none"}
        if self.data.has_labels:
            names = ["moving", "fixed", "moved", "difference", "labels", "grid", "jacobian"]
            axes[1, 3].remove()
        else:
            names = ["moving", "fixed", "moved", "difference", "grid", "jacobian"]
        ax = dict(zip(names, axes.ravel()))
        titles = {"moving": "moving", "fixed": "fixed", "moved": "moved", "difference": "|moved − fixed|",
                  "labels": "warped labels on fixed", "grid": "deformation grid",
                  "jacobian": "Jacobian determinant"}
        for name in names:
            ax[name].set_title(titles[name], fontsize=9)
            ax[name].set_xticks([])
            ax[name].set_yticks([])
            for spine in ax[name].spines.values():  # the λ images are drawn over them anyway
                spine.set_visible(False)
        artists = {
            "moving": ax["moving"].imshow(blank, **gray),
            "fixed": ax["fixed"].imshow(blank, **gray),
            "moved": ax["moved"].imshow(blank, **gray),
            "difference": ax["difference"].imshow(blank, cmap="magma", vmin=0.0, vmax=1.0,
                                                  interpolation="none"),
            "grid_background": ax["grid"].imshow(blank, alpha=0.35, **gray),
            "jacobian": ax["jacobian"].imshow(blank, cmap=_jacobian_cmap(), vmin=0.0, vmax=2.0,
                                              interpolation="none"),
        }
        artists["grid"], = ax["grid"].plot([], [], color="C0", linewidth=0.6)
        ax["grid"].set_xlim(-0.5, shape[1] - 0.5)
        ax["grid"].set_ylim(shape[0] - 0.5, -0.5)
        colorbar = figure.colorbar(artists["jacobian"], ax=ax["jacobian"], fraction=0.046, pad=0.02,
                                   extend="min")
        colorbar.ax.tick_params(labelsize=7)
        artists["folding_text"] = _corner_text(ax["jacobian"])
        if self.data.has_labels:
            self._lut = label_colors(max(int(self.data.labels.max()), 1))
            artists["labels_background"] = ax["labels"].imshow(blank, **gray)
            artists["outlines"] = ax["labels"].imshow(np.zeros((*shape, 4), np.uint8),
                                                      interpolation="none")
            artists["dice_text"] = _corner_text(ax["labels"])
        for name in ("moved", "difference", "grid", "jacobian", "outlines",
                     "folding_text", "dice_text"):
            if name in artists:
                live.animate(artists[name])
        self.axes = ax
        return artists

    def _show_pair_images(self, moving_index, fixed_index):
        moving = self.data.images[moving_index, ..., 0]
        fixed = self.data.images[fixed_index, ..., 0]
        self.artists["moving"].set_data(moving)
        self.artists["fixed"].set_data(fixed)
        self.artists["grid_background"].set_data(moving)
        difference = np.abs(moving - fixed)
        self.artists["difference"].set_clim(0.0, max(float(difference.max()), 1e-6))
        self._identity = {"mse": float(np.mean(difference ** 2))}
        if self.data.has_labels:
            self.artists["labels_background"].set_data(fixed)
            identity = dice_batch(self.data.labels[moving_index][None], self.data.labels[fixed_index][None],
                                  self.label_values)[0]
            self._identity["dice"] = _mean_present(identity)

    def _show_state(self, state):
        fixed = self.data.images[state.fixed_index, ..., 0]
        self.artists["moved"].set_data(state.moved)
        self.artists["difference"].set_data(np.abs(state.moved - fixed))
        self.artists["grid"].set_data(*grid_lines(state.flow, step=self.grid_step))
        self.artists["jacobian"].set_data(state.jacobian)
        self.artists["folding_text"].set_text(f"folding {100 * state.folding:.2f}%")
        if state.warped_labels is not None:
            self.artists["outlines"].set_data(label_outlines(state.warped_labels, lut=self._lut))
            self.artists["dice_text"].set_text(f"Dice {state.dice:.3f}")

    def _show_readout(self, state):
        cells = [("λ", format_lam(state.lam)), ("1 − λ", f"{1 - state.lam:.1e}")]
        if self.controls.image_sigma is not None:
            weight = effective_weight(state.lam, self.controls.image_sigma)
            cells.append(("w = λσ²/(1−λ)", "∞" if np.isinf(weight) else f"{weight:.3g}"))
        cells += [("image MSE", f"{state.mse:.4f} <small>(unregistered {self._identity['mse']:.4f})</small>")]
        if state.warped_labels is not None:
            cells.append(("mean Dice", f"{state.dice:.3f} "
                                       f"<small>(unregistered {self._identity['dice']:.3f})</small>"))
        cells += [("folding", f"{100 * state.folding:.2f}%"),
                  ("update", f"{1000 * state.seconds['total']:.0f} ms "
                             f"<small>(model {1000 * state.seconds['model']:.0f} ms)</small>")]
        self.readout.value = (
            "<table style='border-collapse:collapse'><tr>"
            + "".join(f"<th style='padding:0 10px;text-align:left'>{name}</th>" for name, _ in cells)
            + "</tr><tr>"
            + "".join(f"<td style='padding:0 10px'>{value}</td>" for _, value in cells)
            + "</tr></table>")

    def _show_error(self, err):
        self.last_error = err
        details = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        self.error_box.value = (
            f"<div style='color:#b00020'><b>update failed:</b> {html.escape(type(err).__name__)}: "
            f"{html.escape(str(err))}<details><summary>traceback</summary>"
            f"<pre style='font-size:11px'>{html.escape(details)}</pre></details></div>")
        self.error_box.layout.display = None

    def _clear_error(self):
        if self.last_error is not None:
            self.last_error = None
            self.error_box.value = ""
            self.error_box.layout.display = "none"


class RegistrationStep:
    """The explorer's model call: one pair at one λ, and its label map warped, in one compiled call.

    Same computation as :meth:`hypermorph_nb.registration.Registrar.predict` followed by
    ``Registrar.warp(..., interp='nearest')`` (the same inference model and warp layer),
    fused into one ``tf.function`` with a fixed batch-of-one signature: one dispatch per
    slider step instead of two, and no retracing.
    Runs on the GPU when TensorFlow sees one.

    Get it with :meth:`for_model` (cached per model).

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> step = RegistrationStep.for_model(model)
    >>> moved, flow, labels = step(np.zeros((32, 32)), np.zeros((32, 32)), 0.5, np.ones((32, 32), int))
    >>> moved.shape, flow.shape, labels.dtype.kind
    ((32, 32), (32, 32, 2), 'i')
    """

    _cache = weakref.WeakKeyDictionary()

    def __init__(self, model):
        spec = require_2d_hypermorph(model, "RegistrationStep")
        self.inshape = tuple(spec.inshape)
        registrar = Registrar.for_model(model)
        inference, warp = registrar.inference, registrar.warpers["nearest"]
        image = tf.TensorSpec([1, *self.inshape, 1], tf.float32)
        lam = tf.TensorSpec([1, 1], tf.float32)

        def register(moving, fixed, lam):
            return inference([moving, fixed, lam], training=False)

        def register_and_warp(moving, fixed, lam, labels):
            moved, flow = inference([moving, fixed, lam], training=False)
            return moved, flow, warp([labels, flow])

        self._register = tf.function(register, input_signature=[image, image, lam])
        self._register_and_warp = tf.function(register_and_warp, input_signature=[image, image, lam, image])

    @classmethod
    def for_model(cls, model):
        """The cached step of ``model`` (compiled on first use)."""
        step = cls._cache.get(model)
        if step is None:
            step = cls._cache[model] = cls(model)
        return step

    def __call__(self, moving, fixed, lam, moving_labels=None):
        """Register ``moving`` to ``fixed`` at ``lam``; warp ``moving_labels`` when given.

        Returns
        -------
        moved : np.ndarray
            ``(H, W)``.
        flow : np.ndarray
            ``(H, W, 2)``.
        warped_labels : np.ndarray or None
            ``(H, W)`` with the dtype of ``moving_labels``.
        """
        shape = (1, *self.inshape, 1)
        moving = tf.constant(np.reshape(moving, shape), tf.float32)
        fixed = tf.constant(np.reshape(fixed, shape), tf.float32)
        lam = tf.constant([[lam]], tf.float32)
        if moving_labels is None:
            moved, flow = self._register(moving, fixed, lam)
            return moved.numpy()[0, ..., 0], flow.numpy()[0], None
        labels = np.asarray(moving_labels)
        moved, flow, warped = self._register_and_warp(
            moving, fixed, lam, tf.constant(labels.reshape(shape), tf.float32))
        warped = np.rint(warped.numpy()[0, ..., 0]).astype(labels.dtype)
        return moved.numpy()[0, ..., 0], flow.numpy()[0], warped


def _as_dataset(data, inshape):
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (np.ndarray, list, tuple)):
        dataset = Dataset.from_arrays(np.asarray(data))
    else:
        raise TypeError(f"data must be a hypermorph_nb.data.Dataset or an (N, H, W) array, "
                        f"got {type(data).__name__}; for two arrays use LambdaExplorer.from_arrays")
    if dataset.shape != tuple(inshape):
        raise ValueError(f"data images are {dataset.shape} but the model was built for {tuple(inshape)}; "
                         "explore data of the model's shape (or build the model with inshape=data.shape)")
    return dataset


def _check_pair(pair, n_images):
    try:
        moving, fixed = (int(index) for index in pair)
    except (TypeError, ValueError) as err:
        raise ValueError(f"pair must be two image indices (moving, fixed), got {pair!r}") from err
    for name, index in (("moving", moving), ("fixed", fixed)):
        if not 0 <= index < n_images:
            raise ValueError(f"{name} index {index} is out of range for {n_images} images")
    return moving, fixed


def _mean_present(scores):
    present = scores[~np.isnan(scores)]
    return float(present.mean()) if present.size else float("nan")


def _corner_text(ax):
    return ax.text(0.03, 0.97, "", transform=ax.transAxes, va="top", ha="left", fontsize=8,
                   bbox={"facecolor": "white", "alpha": 0.75, "linewidth": 0, "pad": 1.5})


def _jacobian_cmap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(under="black")
