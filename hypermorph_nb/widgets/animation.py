"""Write a λ sweep of an explorer's current view as an animated GIF or a self-contained HTML player."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from numpy.typing import ArrayLike
import numpy as np

from ..checks.values import check_lambdas
from .state import format_values


#: λ of an exported sweep by default: evenly spaced on the log scale of 1 − λ, as the play button.
DEFAULT_ANIMATION_FRAMES = 17
WRITERS = {".gif": "pillow", ".html": "html", ".htm": "html"}


def save_lambda_animation(explorer: Any, path: str | os.PathLike[str], *,
                          lams: ArrayLike | None = None, fps: int = 4, dpi: float | None = None) -> Path:
    """Register the explorer's current pair at each λ and write the frames of its current view.

    Every frame is the whole figure (all planes of a volume, at the current
    slices), with λ (and the model's other hyperparameters, held at their sliders'
    values) in the moved panel's title. The explorer's display is left as it was.

    Parameters
    ----------
    explorer : LambdaExplorer
    path : str or os.PathLike
        ``.gif`` (matplotlib's PillowWriter) or ``.html`` (a self-contained
        JavaScript player with the frames embedded, matplotlib's HTMLWriter).
    lams : sequence of float, optional
        λ of the frames; default 17 values from 0 to 0.9999, evenly spaced on
        the log scale of ``1 − λ`` (the play button's spacing).
    fps : int
        Frames per second.
    dpi : float, optional
        Resolution (default the explorer's).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import os, tempfile, hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> from hypermorph_nb.widgets import LambdaExplorer
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> explorer = LambdaExplorer(model, synthetic(2, (32, 32)), display="image", dpi=30)
    >>> path = explorer.save_animation(os.path.join(tempfile.mkdtemp(), "sweep.gif"), lams=[0, 1])
    >>> path.read_bytes()[:3]
    b'GIF'
    """
    from matplotlib import animation

    path = Path(path)
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix not in WRITERS:
        raise ValueError(f"{path}: write a .gif or an .html file (got {suffix or 'no suffix'!r})")
    if lams is None:
        lams = 1.0 - np.logspace(0, -4, DEFAULT_ANIMATION_FRAMES)
    frame_lams = check_lambdas(lams).tolist()
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent} does not exist; create the folder first")
    writer: animation.AbstractMovieWriter
    if WRITERS[suffix] == "pillow":
        writer = animation.PillowWriter(fps=fps)
    else:
        writer = animation.HTMLWriter(fps=fps, embed_frames=True, default_mode="loop")
    live, figure = explorer.live, explorer.figure
    pair = explorer.pair
    partial = path.with_name(path.name + ".partial" + suffix)  # a failed export leaves no half file
    title = explorer.axes["moved"].title
    labels = {hyper.name: hyper.label for hyper in explorer.hyperparameters}
    with live.lock:
        for artist in live.animated:
            artist.set_animated(False)
        try:
            with writer.saving(figure, os.fspath(partial), dpi or figure.dpi):
                for lam in frame_lams:
                    state = explorer.state_at(lam, *pair)
                    explorer.show_state(state)
                    title.set_text(f"moved, {format_values(state.values, labels)}")
                    writer.grab_frame()
            os.replace(partial, path)
        finally:
            if partial.exists():
                partial.unlink()
            title.set_text("moved")
            for artist in live.animated:
                artist.set_animated(True)
            if explorer.state is not None:  # an explorer whose first update failed shows no state
                explorer.show_state(explorer.state)  # back to what the widget showed
            live.refresh(full=True)
    return path
