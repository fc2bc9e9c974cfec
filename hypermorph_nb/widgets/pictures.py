"""A static picture of a widget's current view in its own display data, for saved notebooks.

Notebooks rendered without a kernel (GitHub, nbviewer, papermill outputs, HTML
exports) cannot show a widget; ipympl and itkwidgets therefore put an
``image/png`` of the current view next to the widget view in the display data,
and so do the explorer and the sweep panel (:class:`PictureMixin`).

Under papermill (no browser attached) the widget is displayed with a display
id, and a view changed by a later cell (e.g. ``lam_slider.value = 0.97``)
updates that output, so the executed notebook's picture shows the last view. In a
live front-end the picture is the view at display time: replacing the output
there makes the front-end build the widget's views again, and the views it
leaves behind send stale slider values back (found by tests/test_browser.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TYPE_CHECKING

import base64
import io
import warnings

if TYPE_CHECKING:
    from IPython.display import Image



class PictureMixin:
    """Adds ``image/png`` of the current view to a widget's ``_repr_mimebundle_``.

    The class mixing it in provides ``savefig(buffer, format='png')`` and calls
    :meth:`_view_changed` whenever what it shows changes; the PNG is rendered
    when asked for and kept until the view changes again.
    """

    _view_version = 0
    _picture_cache: tuple[int, bytes] | None = None
    _display_handles: tuple[Any, ...] = ()
    savefig: Callable[..., None]  # provided by the class mixing this in

    def picture(self) -> bytes:
        """PNG bytes of the current view (re-rendered only after the view changed)."""
        cached = self._picture_cache
        if cached is None or cached[0] != self._view_version:
            with io.BytesIO() as buffer:
                self.savefig(buffer, format="png")
                cached = self._picture_cache = (self._view_version, buffer.getvalue())
        return cached[1]

    def snapshot(self, *, dpi: float | None = None) -> Image:
        """The current view as a static PNG image, for executed notebooks and reports.

        Displayed widgets already carry this picture in their display data; call
        this for an explicit figure, e.g. at another ``dpi``.

        Returns
        -------
        IPython.display.Image
        """
        from IPython.display import Image

        if dpi is None:
            return Image(data=self.picture(), format="png")
        with io.BytesIO() as buffer:
            self.savefig(buffer, format="png", dpi=dpi)
            return Image(data=buffer.getvalue(), format="png")

    def _view_changed(self, *, from_frontend: bool = False) -> None:
        """Call after the view changed; re-publishes the displayed outputs unless the browser changed it."""
        self._view_version += 1
        if self._display_handles and not from_frontend:
            bundle = self._repr_mimebundle_()
            for handle in self._display_handles:
                handle.update(bundle, raw=True)

    def _ipython_display_(self, **kwargs: Any) -> None:
        from IPython.display import display

        from ..runtime.environment import detect

        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None and detect().papermill:
            self._display_handles = (*self._display_handles, handle)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs) or {  # type: ignore[misc]  # the widget class's
            "text/plain": type(self).__name__}
        try:
            bundle["image/png"] = base64.b64encode(self.picture()).decode("ascii")
        except Exception as err:  # the widget itself still displays
            warnings.warn(f"{type(self).__name__}: no static picture for saved notebooks ({err})",
                          RuntimeWarning, stacklevel=2)
        return bundle
