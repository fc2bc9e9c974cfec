"""A matplotlib figure inside a widget, drawn once and then updated by blitting.

Two displays, chosen by ``mode``:

- ``'image'`` (the default path): an off-screen Agg figure whose pixels go, as
  JPEG (default, faster to encode: ``benchmarks/results/widget_latency.md``) or
  PNG bytes, into one ``ipywidgets.Image`` that is replaced in place, so nothing
  accumulates in the cell output. It needs ipywidgets alone, so it works
  wherever core widgets do: JupyterLab, Notebook 7, VS Code, Colab;
- ``'ipympl'``: the figure's canvas is the ipympl widget; an update restores the
  saved background, draws the changed artists and sends ipympl's diff image,
  with no full redraw and no round trip to the browser. ``'auto'`` picks it only
  after ``%matplotlib widget`` and only where ipympl works without set-up
  (:func:`hypermorph_nb.runtime.environment.ipympl_supported`: JupyterLab, Notebook 7);
  Colab, VS Code and papermill get ``'image'`` even then. ``mode='ipympl'``
  forces it (on Colab after turning on its custom widget manager).

Artists registered with :meth:`LiveFigure.animate` are the ones that change;
they are left out of full draws (matplotlib's ``animated`` flag) and drawn over
the cached background by :meth:`LiveFigure.refresh`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TYPE_CHECKING, cast

import io
import itertools
import threading
import warnings

import ipywidgets as widgets
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..runtime import environment

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.transforms import Bbox


MODES = ("auto", "ipympl", "image")
IMAGE_FORMATS = ("jpeg", "png")
_FIGURE_NUMBERS = itertools.count(1)


def resolve_mode(mode: str, *, where: environment.Environment | None = None) -> str:
    """The display path: ``'image'`` unless ipympl is asked for and known to work here.

    Parameters
    ----------
    mode : {'auto', 'ipympl', 'image'}
        ``'auto'`` means ``'ipympl'`` when the ipympl backend is active
        (``%matplotlib widget``) in a front-end of
        :data:`hypermorph_nb.runtime.environment.IPYMPL_FRONTENDS`, else ``'image'``.
    where : hypermorph_nb.runtime.environment.Environment, optional
        The environment (default: :func:`hypermorph_nb.runtime.environment.detect`).

    Examples
    --------
    >>> resolve_mode("image")
    'image'
    >>> resolve_mode("auto")   # a script: inline/Agg backend
    'image'
    """
    if mode not in MODES:
        raise ValueError(f"display must be one of {MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    backend = matplotlib.get_backend().lower()
    if "ipympl" not in backend and backend != "widget":
        return "image"
    return "ipympl" if environment.ipympl_supported(where) else "image"


def _ipympl_classes():
    """ipympl's canvas and manager, without switching the user's pyplot backend.

    Importing ``ipympl`` calls ``matplotlib.use('module://ipympl.backend_nbagg')`` when
    matplotlib is loaded; an explorer asked to use ipympl under another backend
    (e.g. inline) puts that backend back, so later ``plt`` figures behave as before.
    """
    previous = matplotlib.get_backend()
    from ipympl.backend_nbagg import Canvas, FigureManager

    if matplotlib.get_backend() != previous:
        matplotlib.use(previous)
    return Canvas, FigureManager


class LiveFigure:
    """A figure shown by :attr:`widget` and updated in place.

    Parameters
    ----------
    figsize : tuple of float
        Inches.
    dpi : float
    mode : {'auto', 'ipympl', 'image'}
        See the module docstring.
    image_format : {'jpeg', 'png'}
        Encoding of the ``'image'`` display.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        Not registered with pyplot: it never pops up as a separate output.
    widget : ipywidgets.DOMWidget
        The ipympl canvas or the ``ipywidgets.Image``.
    lock : threading.RLock
        Held while the figure is drawn; a background update and a redraw
        requested by the browser never draw at the same time.

    Examples
    --------
    >>> live = LiveFigure(figsize=(2, 2), dpi=50, mode="image", image_format="png")
    >>> line, = live.figure.subplots().plot([0, 1], [0, 1])
    >>> live.animate(line)
    >>> live.refresh(full=True)
    >>> bytes(live.widget.value[:4])
    b'\\x89PNG'
    """

    def __init__(self, *, figsize: tuple[float, float], dpi: int = 90, mode: str = "auto",
                 image_format: str = "jpeg") -> None:
        self.mode = resolve_mode(mode)
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        self.image_format = image_format
        self.lock = threading.RLock()
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.animated: list[Artist] = []
        self._background = None
        if self.mode == "ipympl":
            environment.enable_third_party_widgets()  # Colab's custom widget manager
            Canvas, FigureManager = _ipympl_classes()
            canvas = Canvas(self.figure)
            with warnings.catch_warnings():  # ipympl's toolbar vs matplotlib >= 3.10, harmless
                warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
                FigureManager(canvas, next(_FIGURE_NUMBERS))
            canvas.header_visible = False
            canvas.footer_visible = False
            canvas.resizable = False
            # the browser asks for full redraws (first display, resize, zoom) on
            # the main thread: take the lock so they never overlap a background update
            unlocked_draw = canvas.draw

            def draw() -> None:
                with self.lock:
                    unlocked_draw()

            canvas.draw = draw
            self.widget = canvas
        else:
            FigureCanvasAgg(self.figure)
            self.widget = widgets.Image(format=image_format)
        self.figure.canvas.mpl_connect("draw_event", self._on_draw)

    def animate(self, artist: Artist) -> None:
        """Register an artist that changes on updates (drawn by :meth:`refresh`)."""
        artist.set_animated(True)
        self.animated.append(artist)

    def refresh(self, *, full: bool = False) -> None:
        """Show the current artists.

        Parameters
        ----------
        full : bool
            Redraw everything (needed after static artists changed); otherwise
            only the animated artists are drawn over the cached background.
        """
        with self.lock:
            canvas = cast(FigureCanvasAgg, self.figure.canvas)
            if full or self._background is None:
                canvas.draw()
            else:
                canvas.restore_region(self._background)
                self._draw_animated()
                canvas.blit(self.figure.bbox)
            if self.mode == "image":
                self.widget.value = self.encode()

    def refresh_region(self, artists: Iterable[Artist], bbox: Bbox) -> None:
        """Redraw only ``artists``, all inside ``bbox`` (display pixels), over the cached background.

        For an update that changes one part of the figure (e.g. one plane of a
        volume): the rest of the figure, animated artists included, stays as drawn.
        """
        with self.lock:
            canvas = cast(FigureCanvasAgg, self.figure.canvas)
            if self._background is None:
                return self.refresh(full=True)
            height = self.figure.bbox.height  # the saved region counts rows from the top
            x0, x1 = int(bbox.x0), int(bbox.x1) + 1
            top, bottom = int(height - bbox.y1), int(height - bbox.y0) + 1
            # xy places the saved region's corner (the figure's: 0, 0), so nothing moves
            canvas.restore_region(self._background, bbox=(x0, top, x1, bottom), xy=(0, 0))
            for artist in artists:
                self.figure.draw_artist(artist)
            canvas.blit(bbox)
            if self.mode == "image":
                self.widget.value = self.encode()

    def encode(self) -> bytes:
        """The last drawn pixels as JPEG (quality 90) or PNG (fast compression) bytes."""
        from PIL import Image

        options = {"quality": 90} if self.image_format == "jpeg" else {"compress_level": 1}
        with self.lock:
            canvas = cast(FigureCanvasAgg, self.figure.canvas)
            size = canvas.get_width_height(physical=True)
            image = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
            with io.BytesIO() as buffer:
                image.convert("RGB").save(buffer, format=self.image_format, **options)
                return buffer.getvalue()

    def savefig(self, fname: Any, **kwargs: Any) -> None:
        """Save the figure with every artist, animated ones included (``Figure.savefig`` options)."""
        with self.lock:
            for artist in self.animated:
                artist.set_animated(False)
            try:
                self.figure.savefig(fname, **kwargs)
            finally:
                for artist in self.animated:
                    artist.set_animated(True)
                self._background = None

    def close(self) -> None:
        """Close the display widget."""
        self.widget.close()

    def _on_draw(self, event) -> None:
        # after every full draw: keep the background, then put the animated artists on top
        if any(artist.get_animated() for artist in self.animated):
            self._background = cast(FigureCanvasAgg, self.figure.canvas).copy_from_bbox(self.figure.bbox)
            self._draw_animated()

    def _draw_animated(self) -> None:
        for artist in self.animated:
            self.figure.draw_artist(artist)
