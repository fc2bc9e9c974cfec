"""Keep a widget responsive: run slow updates off the kernel's main thread, never queued.

In a kernel, every slider message runs its observers to completion before the
next message is read. If an observer registers an image pair (tens of
milliseconds), the messages of a fast drag pile up and the display trails the
slider. :class:`Coalescer` runs the update in a background thread instead; the
observer only asks for one, and any number of requests made while an update
runs collapse into a single re-run that reads the newest value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import threading


class Coalescer:
    """Run ``task()`` in a background thread; requests made while it runs collapse into one.

    ``task`` takes no arguments: it reads the current state (e.g. the slider
    value) when it starts, so the re-run after a burst of requests shows the
    latest request and the ones in between are skipped.

    Parameters
    ----------
    task : callable
        The update. Exceptions it raises go to ``on_error``.
    on_error : callable, optional
        Called with the exception; default: ignore (the task should report
        its own errors).

    Attributes
    ----------
    runs : int
        How many times ``task`` has run.

    Examples
    --------
    >>> calls = []
    >>> updates = Coalescer(lambda: calls.append(1))
    >>> updates.request(); updates.wait(5)
    True
    >>> len(calls), updates.runs
    (1, 1)
    """

    def __init__(self, task: Callable[[], object], *,
                 on_error: Callable[[BaseException], object] | None = None) -> None:
        self._task = task
        self._on_error = on_error
        self._condition = threading.Condition()
        self._requested = False
        self._active = False
        self.runs = 0

    def request(self) -> None:
        """Ask for one run of ``task`` soon; returns at once."""
        with self._condition:
            self._requested = True
            if not self._active:
                self._active = True
                threading.Thread(target=self._loop, name="hypermorph-nb-update", daemon=True).start()

    @property
    def busy(self) -> bool:
        """True while a run is in progress or requested."""
        with self._condition:
            return self._active

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is in progress or requested.

        Returns
        -------
        bool
            False if ``timeout`` seconds passed first.
        """
        with self._condition:
            return self._condition.wait_for(lambda: not self._active, timeout)

    def _loop(self) -> None:
        while True:
            with self._condition:
                if not self._requested:
                    self._active = False
                    self._condition.notify_all()
                    return
                self._requested = False
            try:
                self._task()
            except Exception as err:  # reported, so that the thread keeps serving requests
                if self._on_error is not None:
                    self._on_error(err)
            finally:
                with self._condition:
                    self.runs += 1


def changed_by_frontend(*widgets: Any) -> bool:
    """True while an observer runs for a value that the browser sent.

    ipywidgets applies a value from the frontend inside ``Widget.set_state``,
    which holds the sent keys in ``_property_lock`` while the observers run;
    a value set from Python leaves it empty. So a cell that sets
    ``slider.value = 0.9`` gets a synchronous update it can rely on on the
    next line, and a drag in the browser gets the non-blocking path.

    Examples
    --------
    >>> import ipywidgets
    >>> slider = ipywidgets.FloatSlider()
    >>> seen = []
    >>> slider.observe(lambda change: seen.append(changed_by_frontend(slider)), "value")
    >>> slider.value = 0.5
    >>> slider.set_state({"value": 0.7})
    >>> seen
    [False, True]
    """
    return any(bool(getattr(widget, "_property_lock", None)) for widget in widgets)
