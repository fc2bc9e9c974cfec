"""Drawing helpers shared by the static figures and the widgets.

- :func:`format_lam`: λ as text, with as many digits as its distance from 1 needs;
- :func:`set_lam_axis`: an axis scale that gives the useful range near λ = 1 room;
- :func:`label_colors`: one colour per label value;
- :func:`label_outlines`, :func:`grid_lines`: label contours and a deformed grid as
  arrays that an existing artist can take with ``set_data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from numpy.typing import ArrayLike
import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes


#: λ values labelled on an axis scaled by :func:`set_lam_axis`.
LAM_TICKS = (0.0, 0.5, 0.9, 0.99, 0.999, 1.0)


def format_lam(lam: float) -> str:
    """Format λ with the digits that matter near 1.

    Examples
    --------
    >>> [format_lam(x) for x in (0, 0.25, 0.99, 0.9995, 1)]
    ['0', '0.25', '0.99', '0.9995', '1']
    """
    return f"{float(lam):.4g}"


def set_lam_axis(ax: Axes, *, axis: str = "x", floor: float = 1e-4,
                 ticks: Sequence[float] = LAM_TICKS) -> None:
    """Scale an axis as ``-log10(1 - λ + floor)`` so that λ near 1 gets room.

    On a linear axis the range where registrations are useful (λ ≳ 0.9 with the
    tutorial's MSE loss) is squeezed into the last tenth; here each factor of
    ten in ``1 - λ`` takes the same length, and ticks are labelled in λ.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    axis : {'x', 'y'}
    floor : float
        Where the scale stops stretching: λ = 1 lands at ``-log10(floor)``.
    ticks : sequence of float
        λ values to label.

    Examples
    --------
    >>> import matplotlib.figure
    >>> ax = matplotlib.figure.Figure().subplots()
    >>> set_lam_axis(ax)
    >>> ax.get_xscale()
    'function'
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    if not 0 < floor < 1:
        raise ValueError(f"floor must lie in (0, 1), got {floor!r}")

    def forward(lam):
        return -np.log10(np.clip(1.0 - np.asarray(lam, dtype=float), 0.0, None) + floor)

    def inverse(value):
        return 1.0 + floor - 10.0 ** (-np.asarray(value, dtype=float))

    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    setter("function", functions=(forward, inverse))
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks(list(ticks), [format_lam(t) for t in ticks])
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)("λ (log scale of 1 − λ)")


def label_colors(max_label: int) -> np.ndarray:
    """RGBA lookup table (uint8) for label values ``0..max_label``; 0 is transparent.

    Examples
    --------
    >>> lut = label_colors(3)
    >>> lut.shape, int(lut[0, 3]), int(lut[1, 3])
    ((4, 4), 0, 255)
    """
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    lut = np.zeros((int(max_label) + 1, 4), np.uint8)
    for value in range(1, int(max_label) + 1):
        lut[value] = np.round(255 * np.asarray(cmap((value - 1) % cmap.N)))
    return lut


def label_outlines(labels: np.ndarray, *, lut: np.ndarray | None = None) -> np.ndarray:
    """The border pixels of every structure in a label map, as an RGBA image.

    A pixel is on a border when a 4-neighbour has another label; background
    (0) stays transparent. Cheap enough to recompute on every slider step.

    Parameters
    ----------
    labels : array_like of int
        ``(H, W)`` label map.
    lut : np.ndarray, optional
        ``(max_label + 1, 4)`` uint8 colours, default :func:`label_colors`.

    Returns
    -------
    np.ndarray
        ``(H, W, 4)`` uint8, for ``imshow`` / ``set_data``.

    Examples
    --------
    >>> import numpy as np
    >>> square = np.zeros((6, 6), int); square[1:5, 1:5] = 1
    >>> edge = label_outlines(square)[..., 3] > 0
    >>> int(edge.sum()), bool(edge[2, 2])
    (12, False)
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 2D integer label map, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 is background)")
    if lut is None:
        lut = label_colors(labels.max(initial=0))
    if labels.max(initial=0) >= len(lut):
        raise ValueError(f"lut has {len(lut)} colours but labels go up to {labels.max()}")
    edge = np.zeros(labels.shape, bool)
    rows = labels[1:, :] != labels[:-1, :]
    cols = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= rows
    edge[:-1, :] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    return lut[np.where(edge, labels, 0)]


def grid_lines(flow: ArrayLike, *, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A regular grid whose vertices are moved by a displacement field, as one polyline.

    The vertex at pixel ``x = (row, col)`` is placed at ``x + u(x)``: where the
    moved image samples the moving image. Parallel lines that cross or bunch up
    show folding and compression. The lines are joined into one array with NaN
    breaks, so a single ``Line2D`` draws them (faster than a ``LineCollection``).

    Parameters
    ----------
    flow : array_like
        ``(H, W, 2)`` displacement in pixels (row, column).
    step : int
        Grid spacing in pixels.

    Returns
    -------
    x, y : np.ndarray
        Column and row coordinates, NaN between lines, for ``Line2D.set_data``.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = grid_lines(np.zeros((16, 16, 2)), step=8)
    >>> int(np.isnan(x).sum()), x[:3].tolist(), y[:3].tolist()
    (4, [0.0, 1.0, 2.0], [0.0, 0.0, 0.0])
    """
    flow = np.asarray(flow, dtype=float)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    if int(step) < 1:
        raise ValueError(f"step must be a positive int, got {step!r}")
    step = int(step)
    height, width = flow.shape[:2]
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    x, y = cols + flow[..., 1], rows + flow[..., 0]
    gap = np.full((1, 1), np.nan)

    def join(lines):  # (n_lines, n_points) -> n_lines * (n_points + 1) with NaN breaks
        return np.concatenate([lines, np.repeat(gap, len(lines), 0)], axis=1).ravel()

    return (np.concatenate([join(x[::step]), join(x[:, ::step].T)]),
            np.concatenate([join(y[::step]), join(y[:, ::step].T)]))
