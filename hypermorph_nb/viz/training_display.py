"""What :func:`hypermorph_nb.train` shows while it runs: progress and a live loss plot.

In a notebook: one progress bar (``tqdm.auto``, an ipywidgets bar) with the
running loss and the ETA, and one loss figure that is redrawn in place
(an IPython display handle receives each new PNG), so a long training adds
two outputs to the cell, not one per epoch. In a script, in CI or under
papermill: one short log line per epoch. :func:`in_notebook` decides; ``progress=`` and ``live_plot=``
of :func:`~hypermorph_nb.train` override it.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING, TextIO

import io
import sys
import time

import numpy as np

from ..runtime.environment import in_kernel, detect

if TYPE_CHECKING:
    from matplotlib.figure import Figure


PROGRESS_MODES = ("auto", "bar", "log", "none")

_TERMS = (("loss", "total loss"), ("image", "image term"), ("smooth", "smoothness term"))


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab, papermill).

    Examples
    --------
    >>> in_notebook()   # doctests run in a plain Python process
    False
    """
    return in_kernel(sys.modules)   # the test hypermorph_nb.runtime.environment.detect makes


def resolve_progress(progress: str, *, verbose: bool) -> str:
    """Turn ``progress`` (one of :data:`PROGRESS_MODES`) into 'bar', 'log' or 'none'.

    Examples
    --------
    >>> resolve_progress("auto", verbose=True)   # not in a notebook
    'log'
    >>> resolve_progress("auto", verbose=False)
    'none'
    """
    if progress not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES}, got {progress!r}")
    if progress != "auto":
        return progress
    if not verbose:
        return "none"
    # papermill: a log line per epoch in the saved notebook rather than a frozen bar widget
    environment = detect()
    return "bar" if environment.kernel and not environment.papermill else "log"


def resolve_live_plot(live_plot: str | bool, *, verbose: bool) -> bool:
    """Turn ``live_plot`` ('auto', True or False) into a bool: 'auto' means in a notebook, when verbose.

    Examples
    --------
    >>> resolve_live_plot("auto", verbose=True), resolve_live_plot(True, verbose=False)
    (False, True)
    """
    if live_plot == "auto":
        return bool(verbose) and in_notebook()
    if isinstance(live_plot, bool):
        return live_plot
    raise ValueError(f"live_plot must be 'auto', True or False, got {live_plot!r}")


def make_progress(mode: str, *, epochs: int, steps_per_epoch: int, start_step: int,
                  stream: TextIO | None = None) -> SilentProgress:
    """A progress reporter for :func:`hypermorph_nb.train` ('bar', 'log' or 'none')."""
    reporters = {"bar": BarProgress, "log": LogProgress, "none": SilentProgress}
    return reporters[mode](epochs=epochs, steps_per_epoch=steps_per_epoch, start_step=start_step,
                           stream=stream)


class SilentProgress:
    """Shows nothing (``verbose=False``); the base of the other reporters."""

    def __init__(self, *, epochs: int, steps_per_epoch: int, start_step: int,
                 stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = epochs * steps_per_epoch
        self.start_step = start_step
        self.stream = sys.stdout if stream is None else stream
        self._start_time = time.perf_counter()

    def steps(self, step: int, running_loss: float) -> None:
        """Called after each compiled call with the global step reached."""

    def epoch_end(self, history: Any) -> None:
        """Called once per completed epoch."""

    def message(self, text: str) -> None:
        """A one-off notice (resume, interrupt, stop)."""

    def close(self) -> None:
        """Called once at the end of training."""

    def eta_seconds(self, step: int) -> float:
        """Seconds left at this pace, from the steps run in this call."""
        done = step - self.start_step
        if done <= 0:
            return float("nan")
        return (time.perf_counter() - self._start_time) / done * (self.total_steps - step)


class LogProgress(SilentProgress):
    """Plain log lines: one per epoch, with the loss terms, speed and ETA."""

    def epoch_end(self, history: Any) -> None:
        epoch = history.epochs
        parts = [f"epoch {epoch}/{self.epochs}", f"loss {history.loss[-1]:.4g}",
                 f"image {history.image[-1]:.4g}", f"smooth {history.smooth[-1]:.4g}"]
        parts += validation_summary(history)
        seconds = history.epoch_seconds[-1]
        if seconds > 0:
            parts.append(f"{self.steps_per_epoch / seconds:.1f} steps/s")
        step = epoch * self.steps_per_epoch
        if step < self.total_steps:
            parts.append(f"ETA {format_seconds(self.eta_seconds(step))}")
        print("  ".join(parts), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class BarProgress(SilentProgress):
    """One ``tqdm.auto`` bar over all steps (a widget in notebooks) with loss and ETA."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total_steps, initial=self.start_step, unit="step",
                         desc=self._description(self.start_step), dynamic_ncols=True, mininterval=0.5)

    def _description(self, step) -> str:
        epoch = min(step // self.steps_per_epoch + 1, self.epochs)
        return f"epoch {epoch}/{self.epochs}"

    def steps(self, step: int, running_loss: float) -> None:
        self._bar.set_description(self._description(step), refresh=False)
        self._bar.set_postfix(loss=f"{running_loss:.4g}", refresh=False)
        self._bar.update(step - self._bar.n)

    def epoch_end(self, history: Any) -> None:
        postfix = {"loss": f"{history.loss[-1]:.4g}"}
        summary = validation_summary(history)
        if summary:
            postfix["val"] = " ".join(summary)
        self._bar.set_postfix(postfix)

    def message(self, text: str) -> None:
        self._bar.write(text)

    def close(self) -> None:
        self._bar.close()


def validation_summary(history: Any) -> list[str]:
    """Short strings with the latest validation figures (mean over λ), or []."""
    if not history.val_epochs or history.val_epochs[-1] != history.epochs:
        return []
    parts = [f"val mse {np.mean(history.val_mse[-1]):.4g}"]
    if history.val_dice:
        parts.append(f"val dice {np.nanmean(history.val_dice[-1]):.3f}")
    return parts


def format_seconds(seconds: float) -> str:
    """'1h02m', '3m05s' or '42s'.

    Examples
    --------
    >>> format_seconds(185), format_seconds(3720), format_seconds(float("nan"))
    ('3m05s', '1h02m', '?')
    """
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def loss_figure(history: Any) -> Figure:
    """Draw a training history: total loss, image and smoothness terms, validation beside them.

    Parameters
    ----------
    history : hypermorph_nb.training.History

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot (display it, or save it with ``savefig``).

    Examples
    --------
    >>> from hypermorph_nb.training import History
    >>> figure = loss_figure(History(loss=[3.0, 2.0], image=[4.0, 2.5], smooth=[0.1, 0.2]))
    >>> [axes.get_title() for axes in figure.axes]
    ['total loss', 'image term', 'smoothness term']
    >>> scheduled = History(loss=[3.0, 2.0], image=[4.0, 2.5], smooth=[0.1, 0.2], learning_rate=[1e-3, 1e-4],
    ...                     config={"lr_schedule": {"name": "step", "warmup_steps": 0}})
    >>> loss_figure(scheduled).axes[-1].get_ylabel()
    'learning rate (dashed)'
    """
    return LossFigure(history).update(history)


class LossFigure:
    """A loss figure whose lines are created once and then moved with ``set_data``."""

    def __init__(self, history: Any) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.val_lams = list(history.val_lams)
        panels = [title for _, title in _TERMS]
        if self.val_lams:
            panels.append("validation MSE")
            if history.has_validation_dice:
                panels.append("validation Dice")
        self.figure = Figure(figsize=(3.0 * len(panels), 2.6), layout="constrained")
        FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, len(panels), squeeze=False)[0]
        self.lines = {}
        for ax, (name, title) in zip(axes, _TERMS):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            (self.lines[name],) = ax.plot([], [], marker="." if name == "loss" else None)
        for ax, key in zip(axes[len(_TERMS):], ("val_mse", "val_dice")):
            ax.set_title("validation " + ("MSE" if key == "val_mse" else "Dice"))
            ax.set_xlabel("epoch")
            self.lines[key] = [ax.plot([], [], marker=".", label=_lam_label(lam))[0]
                               for lam in self.val_lams]
            if len(self.val_lams) > 1:
                ax.legend(fontsize="small")
        self.axes = list(axes)
        schedule = history.config.get("lr_schedule") or {}
        if schedule.get("name") is not None or "class_name" in schedule:   # a rate that changes
            rate_axis = axes[0].twinx()
            rate_axis.set_ylabel("learning rate (dashed)", fontsize="small")
            (self.lines["learning_rate"],) = rate_axis.plot([], [], color="gray", linestyle="--", linewidth=1)
            self.axes.append(rate_axis)

    def update(self, history: Any) -> Figure:
        """Move every line to ``history``'s data and rescale the axes; returns the figure."""
        epochs = np.arange(1, history.epochs + 1)
        for name, _ in _TERMS:
            self.lines[name].set_data(epochs, getattr(history, name))
        if "learning_rate" in self.lines:   # (a checkpoint of an older version may lack the first epochs')
            rates = history.learning_rate
            self.lines["learning_rate"].set_data(epochs[len(epochs) - len(rates):], rates)
        for key in ("val_mse", "val_dice"):
            values = np.asarray(getattr(history, key), dtype=float)
            for index, line in enumerate(self.lines.get(key, [])):
                line.set_data(history.val_epochs, values[:, index] if values.size else [])
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
        return self.figure

    def png(self) -> bytes:
        """The figure rendered as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()


def _lam_label(lam):
    return "λ fixed" if lam is None else f"λ={lam:g}"


class LiveLossPlot:
    """The loss figure shown once in a notebook and replaced in place as training goes on.

    Parameters
    ----------
    history : hypermorph_nb.training.History
        Decides the panels (validation λ values, Dice or not).
    min_interval : float
        Seconds between two redraws (the last epoch is always drawn).
    """

    def __init__(self, history: Any, *, min_interval: float = 2.0) -> None:
        from IPython import display

        self._display = display
        self._figure = LossFigure(history)
        self.min_interval = float(min_interval)
        self._handle = None
        self._last_draw = -np.inf
        self.draws = 0

    def update(self, history: Any, *, force: bool = False) -> None:
        """Redraw with the latest epochs, unless the last redraw was under ``min_interval`` ago."""
        if not force and time.perf_counter() - self._last_draw < self.min_interval:
            return
        self._figure.update(history)
        image = self._display.Image(data=self._figure.png(), format="png")
        if self._handle is None:
            self._handle = self._display.display(image, display_id=True)
        else:
            self._handle.update(image)
        self._last_draw = time.perf_counter()
        self.draws += 1
