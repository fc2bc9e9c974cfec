"""An update's exception shown inside the widget (an observer's traceback would be lost)."""

from __future__ import annotations

import html
import traceback

import ipywidgets as widgets


class ErrorBox(widgets.HTML):
    """A hidden HTML box that shows an exception (message and folded traceback) until cleared.

    Examples
    --------
    >>> box = ErrorBox()
    >>> box.show(ValueError("bad λ"))
    >>> box.error.args, "bad λ" in box.value, box.layout.display
    (('bad λ',), True, None)
    >>> box.clear()
    >>> box.error, box.value, box.layout.display
    (None, '', 'none')
    """

    def __init__(self) -> None:
        super().__init__(layout=widgets.Layout(display="none"))
        self.error: BaseException | None = None

    def show(self, err: BaseException) -> None:
        """Show ``err`` with its traceback."""
        self.error = err
        details = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        self.value = (
            f"<div style='color:#b00020'><b>update failed:</b> {html.escape(type(err).__name__)}: "
            f"{html.escape(str(err))}<details><summary>traceback</summary>"
            f"<pre style='font-size:11px'>{html.escape(details)}</pre></details></div>")
        self.layout.display = None

    def clear(self) -> None:
        """Hide the box (after an update that succeeded)."""
        if self.error is not None:
            self.error = None
            self.value = ""
            self.layout.display = "none"
