"""The explorer's controls: λ's (:class:`LambdaControls`) and the other hyperparameters' sliders.

λ: a linear slider that *is* λ, plus a log scale on 1 − λ, a text box and play.
With the tutorial's MSE loss, registrations are only useful for λ close to 1
(≳ 0.9 on OASIS slices), the last tenth of a linear slider. The second slider
moves on a log scale of ``1 − λ`` (from 1 down to 10⁻⁴), so every factor of ten
closer to λ = 1 gets the same travel; the text box takes exact values. All
three stay in step both ways, and ``lam_slider.value`` is the one value of λ.

A model conditioned on more than λ (e.g. the label weight γ) gets one more linear
slider per hyperparameter (:class:`HyperparameterSliders`), over the range the model
was trained on; :func:`initial_values` checks the values a caller starts from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import math

import ipywidgets as widgets
import numpy as np

from ..networks.hyperparameters import Hyperparameter
from ..viz.drawing import format_lam


def effective_weight(lam: float, image_sigma: float) -> float:
    """The regularisation weight of the equivalent VoxelMorph loss.

    HyperMorph minimises ``(1 − λ)·MSE/σ² + λ·Grad``, which has the same
    minimiser as ``MSE + w·Grad`` with ``w = λ·σ² / (1 − λ)``: the weight one
    would give a plain VoxelMorph model. It grows without bound as λ → 1.

    Parameters
    ----------
    lam : float
        λ in [0, 1].
    image_sigma : float
        σ of the MSE term the model was trained with (``train``'s default 0.2;
        0.05 in the tutorial).

    Returns
    -------
    float
        ``inf`` at λ = 1.

    Examples
    --------
    >>> round(effective_weight(0.9, 0.05), 6)
    0.0225
    >>> effective_weight(1.0, 0.05)
    inf
    """
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"λ must lie in [0, 1], got {lam!r}")
    if not image_sigma > 0:
        raise ValueError(f"image_sigma must be > 0, got {image_sigma!r}")
    return math.inf if lam == 1.0 else lam * image_sigma ** 2 / (1.0 - lam)


class LambdaControls(widgets.VBox):
    """λ slider (``lam_slider``), ``1 − λ`` log slider, exact-value box and play button.

    Parameters
    ----------
    lam : float
        Initial λ.
    image_sigma : float, optional
        σ of the MSE term the model was trained with; when given, the
        equivalent VoxelMorph weight (:func:`effective_weight`) is shown.
    lam_range : tuple of float
        ``(low, high)``: the λ the model was trained over (within [0, 1]).
    min_one_minus : float
        Smallest ``1 − λ`` on the log slider (it reaches λ = 1 − this, or the range's top).
    play_frames : int
        Frames of the play animation, from λ = 0 to ``1 − min_one_minus``,
        evenly spaced on the log scale.
    play_interval : int
        Milliseconds between play frames.

    Attributes
    ----------
    lam_slider : ipywidgets.FloatSlider
        λ itself, linear in [0, 1]; set ``.value`` to change λ.
    one_minus_slider : ipywidgets.FloatLogSlider
        ``1 − λ`` on a log scale.
    lam_text : ipywidgets.BoundedFloatText
        Type an exact λ.
    play : ipywidgets.Play
        Animates λ through ``play_lams``.
    play_lams : np.ndarray
        λ of each play frame.

    Examples
    --------
    >>> controls = LambdaControls(lam=0.5, image_sigma=0.05)
    >>> controls.one_minus_slider.value = 0.01
    >>> round(controls.lam_slider.value, 6), round(controls.lam_text.value, 6)
    (0.99, 0.99)
    >>> controls.lam_slider.value = 0.9
    >>> round(controls.one_minus_slider.value, 6)
    0.1
    """

    def __init__(self, *, lam: float = 0.5, image_sigma: float | None = None,
                 lam_range: tuple[float, float] = (0.0, 1.0), min_one_minus: float = 1e-4,
                 play_frames: int = 33, play_interval: int = 250) -> None:
        low, high = (float(end) for end in lam_range)
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"lam_range must satisfy 0 <= low < high <= 1, got {lam_range!r}")
        if not low <= float(lam) <= high:
            raise ValueError(f"lam must lie in [{low:g}, {high:g}], got {lam!r}")
        if image_sigma is not None and not image_sigma > 0:
            raise ValueError(f"image_sigma must be > 0 (or None), got {image_sigma!r}")
        if not 0 < min_one_minus < 1:
            raise ValueError(f"min_one_minus must lie in (0, 1), got {min_one_minus!r}")
        if int(play_frames) < 2:
            raise ValueError(f"play_frames must be at least 2, got {play_frames!r}")
        lam = float(lam)
        self.image_sigma = image_sigma
        self.min_one_minus = max(float(min_one_minus), 1.0 - high)
        self.lam_slider = widgets.FloatSlider(
            value=lam, min=low, max=high, step=1e-4, readout_format=".4f", description="λ",
            continuous_update=True, layout=widgets.Layout(width="420px"))
        self.one_minus_slider = widgets.FloatLogSlider(
            value=max(1.0 - lam, self.min_one_minus), base=10, min=math.log10(self.min_one_minus),
            max=math.log10(1.0 - low), step=0.02, readout_format=".1e", description="1 − λ",
            continuous_update=True, layout=widgets.Layout(width="420px"))
        self.lam_text = widgets.BoundedFloatText(
            value=lam, min=low, max=high, step=1e-4, description="exact λ",
            layout=widgets.Layout(width="180px"))
        exponents = np.linspace(math.log10(1.0 - low), math.log10(self.min_one_minus), int(play_frames))
        self.play_lams = 1.0 - 10.0 ** exponents
        self.play = widgets.Play(value=0, min=0, max=len(self.play_lams) - 1, step=1,
                                 interval=int(play_interval), description="play λ")
        self.weight_label = widgets.HTML()
        self._syncing = False
        # values given to the log slider since the browser last moved it: a browser view snaps a
        # value onto the slider's grid and sends it back, possibly much later (queued behind
        # "Run All Cells"), and that echo must not move λ
        self._sent = [self.one_minus_slider.value]
        self.lam_slider.observe(self._on_lam, "value")
        self.one_minus_slider.observe(self._on_one_minus, "value")
        self.lam_text.observe(self._on_text, "value")
        self.play.observe(self._on_play, "value")
        self._show_weight(lam)
        super().__init__([
            widgets.HBox([self.play, self.lam_slider, self.lam_text]),
            widgets.HBox([self.one_minus_slider, self.weight_label]),
        ])

    @property
    def inputs(self
    ) -> tuple[widgets.FloatSlider, widgets.FloatLogSlider, widgets.BoundedFloatText, widgets.Play]:
        """The widgets through which a user can change λ."""
        return (self.lam_slider, self.one_minus_slider, self.lam_text, self.play)

    def _on_lam(self, change) -> None:
        lam = float(change["new"])
        self._syncing, was_syncing = True, self._syncing
        try:
            self._set_one_minus(max(1.0 - lam, self.min_one_minus))
            self.lam_text.value = lam
        finally:
            self._syncing = was_syncing
        self._show_weight(lam)

    def _set_one_minus(self, value) -> None:
        self.one_minus_slider.value = value
        self._sent = [*self._sent[-63:], value]

    def _snapped(self, new, sent):
        return abs(math.log10(new) - math.log10(sent)) <= self.one_minus_slider.step / 2 + 1e-9

    def _on_one_minus(self, change) -> None:
        if self._syncing:
            return
        new = float(change["new"])
        current = max(1.0 - self.lam_slider.value, self.min_one_minus)
        if self._snapped(new, current):
            # the browser snapped a value we sent onto the log slider's grid and sent it
            # back: not a move by the user, and echoing it would drag λ away mid-drag
            return
        if self.one_minus_slider._property_lock:  # sent by the browser
            if any(self._snapped(new, sent) for sent in self._sent):
                # a late echo of an earlier value: put the slider back where λ is
                self._syncing = True
                try:
                    self._set_one_minus(current)
                finally:
                    self._syncing = False
                return
            self._sent = []
        # round off the float noise of 1 - 10**x (0.9900000000000001 -> 0.99)
        self.lam_slider.value = round(1.0 - new, 10)

    def _on_text(self, change) -> None:
        if not self._syncing:
            self.lam_slider.value = float(change["new"])

    def _on_play(self, change) -> None:
        self.lam_slider.value = round(float(self.play_lams[int(change["new"])]), 10)

    def _show_weight(self, lam) -> None:
        if self.image_sigma is None:
            self.weight_label.value = ""
            return
        weight = effective_weight(lam, self.image_sigma)
        text = "∞ (smoothness only)" if math.isinf(weight) else f"{weight:.3g}"
        self.weight_label.value = (
            f"<span title='(1−λ)·MSE/σ² + λ·Grad has the minimiser of MSE + w·Grad'>"
            f"equivalent VoxelMorph weight w = λσ²/(1−λ) = <b>{text}</b> "
            f"(σ = {format_lam(self.image_sigma)})</span>")


class HyperparameterSliders(widgets.VBox):
    """The sliders of a model's hyperparameters: λ's (given) and one linear slider per other one.

    Parameters
    ----------
    hyperparameters : sequence of Hyperparameter
        The model's, λ first (``spec_of(model).hyperparameters``).
    lam_slider : ipywidgets.FloatSlider
        λ's slider (:attr:`LambdaControls.lam_slider`; not among this box's children).
    values : mapping of str to float, optional
        Initial values of the others by name; default their ``default``.

    Attributes
    ----------
    sliders : dict
        Name -> ``ipywidgets.FloatSlider``, ``'lam'`` first; the others are labelled with
        their ``label`` and span their range.

    Examples
    --------
    >>> import ipywidgets
    >>> from hypermorph_nb.networks.hyperparameters import KNOWN
    >>> controls = HyperparameterSliders([KNOWN["lam"], KNOWN["label_weight"]], ipywidgets.FloatSlider(0.5),
    ...                                  {"label_weight": 0.2})
    >>> controls.sliders["label_weight"].description, controls.values
    ('γ', {'lam': 0.5, 'label_weight': 0.2})
    >>> controls.set_values(label_weight=0.9)
    >>> controls.values["label_weight"]
    0.9
    """

    def __init__(self, hyperparameters: Sequence[Hyperparameter], lam_slider: widgets.FloatSlider,
                 values: Mapping[str, float] | None = None) -> None:
        self.hyperparameters = tuple(hyperparameters)
        start = initial_values(self.hyperparameters, {**(values or {}), "lam": lam_slider.value})
        self.sliders = {"lam": lam_slider}
        for hyper in self.hyperparameters[1:]:
            self.sliders[hyper.name] = widgets.FloatSlider(
                value=start[hyper.name], min=hyper.low, max=hyper.high, step=(hyper.high - hyper.low) / 1000,
                readout_format=".3f", description=hyper.label, continuous_update=True,
                layout=widgets.Layout(width="420px"))
        super().__init__([widgets.HBox(list(self.inputs))] if self.inputs else [])

    @property
    def values(self) -> dict[str, float]:
        """The current value of each hyperparameter, by name."""
        return {name: float(slider.value) for name, slider in self.sliders.items()}

    @property
    def inputs(self) -> tuple[widgets.FloatSlider, ...]:
        """The sliders of the hyperparameters other than λ."""
        return tuple(slider for name, slider in self.sliders.items() if name != "lam")

    def set_values(self, **values: float) -> None:
        """Move the sliders named in ``values``, all checked first (see :func:`initial_values`)."""
        checked = initial_values(self.hyperparameters, values)
        for name in values:
            self.sliders[name].value = checked[name]


class HyperparameterValuesMixin:
    """``sliders``, ``values`` and ``set_values`` for a widget whose ``hyper_controls`` are
    :class:`HyperparameterSliders`; the class mixing it in provides ``_update()``, which reads
    the sliders, and skips the updates of its slider observers while ``_holding`` is true."""

    hyper_controls: HyperparameterSliders
    _holding: bool
    _update: Callable[[], None]

    @property
    def sliders(self) -> dict[str, widgets.FloatSlider]:
        """Hyperparameter name -> its slider (``'lam'``: λ's)."""
        return self.hyper_controls.sliders

    @property
    def values(self) -> dict[str, float]:
        """The current value of every hyperparameter by name, λ first (``{'lam': 0.5}`` for a λ-only model)."""
        return self.hyper_controls.values

    def set_values(self, **values: float) -> None:
        """Move the sliders named in ``values`` (``ValueError`` for an unknown name or a value out of
        its range, before any moves) and update once."""
        self._holding = True  # one update for all sliders, not one each
        try:
            self.hyper_controls.set_values(**values)
        finally:
            self._holding = False
        self._update()


def initial_values(hyperparameters: Sequence[Hyperparameter], values: Mapping[str, float]) -> dict[str, float]:
    """Every hyperparameter's value: ``values`` where given (checked), else its ``default``.

    Raises
    ------
    ValueError
        For a name the model is not conditioned on, or a value outside its range.

    Examples
    --------
    >>> from hypermorph_nb.networks.hyperparameters import KNOWN
    >>> initial_values([KNOWN["lam"], KNOWN["label_weight"]], {"label_weight": 1})
    {'lam': 0.5, 'label_weight': 1.0}
    """
    names = [hyper.name for hyper in hyperparameters]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"this model takes no {', '.join(unknown)}; its hyperparameters are {names}")
    for hyper in hyperparameters:
        if hyper.name in values:
            hyper.check(values[hyper.name])  # float32: keep the float given
    return {hyper.name: float(values.get(hyper.name, hyper.default)) for hyper in hyperparameters}
