"""A clean stop on Ctrl-C or the notebook's stop button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TYPE_CHECKING

import signal
import threading

if TYPE_CHECKING:
    from types import FrameType



class StopRequest:
    """Turn the first SIGINT (Ctrl-C, the notebook's stop button) into a flag checked between calls.

    Training then stops after the running compiled call, in a consistent
    state. A second SIGINT raises KeyboardInterrupt at once. Outside the
    main thread signals cannot be caught, and KeyboardInterrupt is handled
    as it comes.

    Examples
    --------
    >>> with StopRequest() as stop:
    ...     stop.requested
    False
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> Literal[False]:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
