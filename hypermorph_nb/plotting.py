"""Static figures for reports and executed notebooks, and the drawing helpers the widgets share.

- :func:`image_row`: a row of images with titles (moving, fixed, moved, ...);
- :func:`lambda_row_figure`: the seed tutorial's figure, a row of moved images for several λ;
- :func:`plot_sweep`, :func:`plot_sweep_panels`: Dice, image MSE and folding against λ;
- :func:`plot_comparison`: HyperMorph against separately trained baselines, per λ;
- :func:`set_lam_axis`: an axis scale that gives the useful range near λ = 1 room;
- :func:`label_outlines`, :func:`grid_lines`: label contours and a deformed grid as
  arrays that an existing artist can take with ``set_data``.
"""

import numpy as np

from .metrics import dice_batch
from .models import spec_of
from .registration import Registrar, one_image_batch

#: λ values labelled on an axis scaled by :func:`set_lam_axis`.
LAM_TICKS = (0.0, 0.5, 0.9, 0.99, 0.999, 1.0)
#: Up to this many structures get their own colour and legend entry in :func:`plot_sweep_panels`;
#: more (e.g. the 148 of a whole-brain parcellation) are drawn as thin grey lines.
MAX_NAMED_STRUCTURES = 24


def format_lam(lam):
    """Format λ with the digits that matter near 1.

    Examples
    --------
    >>> [format_lam(x) for x in (0, 0.25, 0.99, 0.9995, 1)]
    ['0', '0.25', '0.99', '0.9995', '1']
    """
    return f"{float(lam):.4g}"


def set_lam_axis(ax, *, axis="x", floor=1e-4, ticks=LAM_TICKS):
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


def label_colors(max_label):
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


def label_outlines(labels, *, lut=None):
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


def grid_lines(flow, *, step=8):
    """A regular grid whose vertices are moved by a displacement field, as one polyline.

    The vertex at pixel ``x = (row, col)`` is placed at ``x + u(x)``: where the
    moved image samples the moving image. Parallel lines that cross or bunch up
    show folding and compression. The lines are joined into one array with NaN
    breaks, so a single ``Line2D`` draws them (3x faster than a ``LineCollection``).

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


def image_row(images, *, titles=None, cmap="gray", vmin=0.0, vmax=1.0, figsize=None):
    """Show 2D images side by side, without axes.

    Parameters
    ----------
    images : sequence of np.ndarray
        Each ``(H, W)`` or ``(H, W, 1)``.
    titles : sequence of str, optional
    cmap : str
    vmin, vmax : float
        Intensity window shared by all panels.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = image_row([np.zeros((8, 8)), np.ones((8, 8, 1))], titles=["a", "b"])
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    images = [np.asarray(image) for image in images]
    if not images:
        raise ValueError("image_row needs at least one image")
    titles = list(titles) if titles is not None else [""] * len(images)
    if len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    fig, axes = plt.subplots(1, len(images), squeeze=False, figsize=figsize or (2.6 * len(images), 2.8))
    for ax, image, title in zip(axes[0], images, titles):
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim != 2:
            raise ValueError(f"image_row shows 2D images, got shape {image.shape}")
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def lambda_row_figure(model, moving, fixed, lams=(0.0, 0.25, 0.5, 0.75, 1.0), *,
                      moving_labels=None, fixed_labels=None, show_difference=False, figsize=None):
    """The seed tutorial's figure: moving, fixed, then the moved image per λ.

    All λ values are registered in one batched call of the compiled model.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    moving, fixed : np.ndarray
        One pair, shape ``inshape`` or ``(*inshape, 1)``.
    lams : sequence of float
        λ values to show, one panel each.
    moving_labels, fixed_labels : np.ndarray, optional
        Label maps of the pair: each panel then shows the mean Dice of the
        warped moving labels (and the unregistered Dice under "moving").
    show_difference : bool
        Add a second row with ``|moved − fixed|`` per λ.
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(2, (32, 32))
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> fig = lambda_row_figure(model, data.images[0], data.images[1], lams=[0, 1],
    ...                         moving_labels=data.labels[0], fixed_labels=data.labels[1])
    >>> len(fig.axes), fig.axes[2].get_title()
    (4, 'λ = 0')
    """
    import matplotlib.pyplot as plt

    require_2d_hypermorph(model, "lambda_row_figure")
    registrar = Registrar.for_model(model)
    lams = [float(lam) for lam in np.atleast_1d(lams)]
    if not lams:
        raise ValueError("lams is empty; pass at least one λ, e.g. lams=[0.5, 0.9, 0.99]")
    shape = registrar.spec.inshape
    moving = one_image_batch(moving, "moving", shape)[0]
    fixed = one_image_batch(fixed, "fixed", shape)[0]
    if (moving_labels is None) != (fixed_labels is None):
        raise ValueError("pass both moving_labels and fixed_labels, or neither")
    if moving_labels is not None:
        moving_labels = _one_label_map(moving_labels, "moving_labels", shape)
        fixed_labels = _one_label_map(fixed_labels, "fixed_labels", shape)
    moved, flow = registrar.predict(np.repeat(moving[None], len(lams), 0),
                                    np.repeat(fixed[None], len(lams), 0), lams)
    dice, identity_dice = None, None
    if moving_labels is not None:
        values = np.union1d(np.unique(moving_labels), np.unique(fixed_labels))
        values = values[values != 0]
        warped = registrar.warp(np.repeat(moving_labels[None], len(lams), 0), flow, interp="nearest")
        dice = np.nanmean(dice_batch(warped, np.repeat(fixed_labels[None], len(lams), 0), values), 1)
        identity_dice = np.nanmean(dice_batch(moving_labels[None], fixed_labels[None], values))

    columns = 2 + len(lams)
    rows = 2 if show_difference else 1
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=figsize or (2.2 * columns, 2.5 * rows + 0.3 * (dice is not None)))
    panels = [("moving", moving[..., 0]), ("fixed", fixed[..., 0])]
    panels += [(f"λ = {format_lam(lam)}", image[..., 0]) for lam, image in zip(lams, moved)]
    for column, (ax, (title, image)) in enumerate(zip(axes[0], panels)):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title)
        if dice is not None and column != 1:
            score = identity_dice if column == 0 else dice[column - 2]
            ax.set_xlabel(f"Dice {score:.3f}" + (" (unregistered)" if column == 0 else ""),
                          fontsize="small")
    if show_difference:
        differences = [np.abs(moving - fixed)[..., 0], None]
        differences += [np.abs(image - fixed)[..., 0] for image in moved]
        vmax = max(float(differences[0].max()), 1e-6)
        for ax, difference in zip(axes[1], differences):
            if difference is not None:
                ax.imshow(difference, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        axes[1, 0].set_title("|moving − fixed|", fontsize="small")
        axes[1, 2].set_title("|moved − fixed|", fontsize="small")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout()
    return fig


def plot_sweep(result, *, ax=None, near_one=True):
    """Mean Dice (and % folding) against λ from a :class:`~hypermorph_nb.evaluation.SweepResult`.

    Marks the optimal λ and the unregistered Dice. Without label maps, plots
    image MSE instead of Dice.

    Parameters
    ----------
    result : SweepResult
    ax : matplotlib.axes.Axes, optional
    near_one : bool
        Stretch the λ axis near 1 (see :func:`set_lam_axis`).

    Returns
    -------
    matplotlib.axes.Axes
        The Dice (or MSE) axes; the folding axes is its twin.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> result = hnb.lambda_sweep(model, data, [0.0, 0.9, 1.0], n_pairs=2, progress=False)
    >>> plot_sweep(result).get_ylabel()
    'mean Dice'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if result.dice is not None:
        ax.plot(result.lams, result.mean_dice, "o-", color="C0", label="mean Dice")
        ax.axhline(result.identity_dice, color="C0", ls=":", label="unregistered")
        ax.set_ylabel("mean Dice")
    else:
        ax.plot(result.lams, result.mse.mean(1), "o-", color="C0", label="image MSE")
        ax.set_ylabel("image MSE")
    ax.axvline(result.optimal_lam, color="C2", ls="--",
               label=f"optimal λ = {format_lam(result.optimal_lam)}")
    if near_one:
        set_lam_axis(ax)
    else:
        ax.set_xlabel("λ")
    twin = ax.twinx()
    twin.plot(result.lams, 100 * result.folding.mean(1), "s-", color="C3", alpha=0.7, label="% folding")
    twin.set_ylabel("% folding voxels", color="C3")
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="best", fontsize="small")
    return ax


def plot_sweep_panels(result, *, figure=None, near_one=True):
    """Dice per structure, image MSE and % folding against λ, side by side.

    The Dice panel draws the mean over structures (black) and every structure
    (thin; grey and unnamed beyond :data:`MAX_NAMED_STRUCTURES`), with a star at each structure's optimal λ and a dashed line at
    the optimal λ of the mean, which the other panels repeat. Dotted lines
    are the unregistered pairs. Without label maps the Dice panel is left out.

    Parameters
    ----------
    result : SweepResult
        From :func:`hypermorph_nb.lambda_sweep`.
    figure : matplotlib.figure.Figure, optional
        Drawn into (cleared first); default a new pyplot figure.
    near_one : bool
        Stretch the λ axes near 1 (see :func:`set_lam_axis`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> result = hnb.lambda_sweep(model, data, [0.0, 0.9, 1.0], n_pairs=2, progress=False)
    >>> [ax.get_title() for ax in plot_sweep_panels(result).axes]
    ['Dice', 'image MSE', '% folding voxels']
    """
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    figure.clear()
    has_dice = result.dice is not None
    axes = figure.subplots(1, 3 if has_dice else 2, squeeze=False)[0]
    figure.set_size_inches(4.2 * len(axes), 3.6)
    best = result.optimal_lam
    if has_dice:
        ax = axes[0]
        per_label = result.dice_per_label
        named = len(result.labels) <= MAX_NAMED_STRUCTURES  # else a legend would hide the panels
        for k, label in enumerate(result.labels):
            color = f"C{k % 10}" if named else "0.55"
            ax.plot(result.lams, per_label[:, k], "-", lw=0.9 if named else 0.5,
                    alpha=0.75 if named else 0.35, color=color,
                    label=result.label_name(label) if named else None)
            if not np.all(np.isnan(per_label[:, k])):  # the structure's optimum
                index = int(np.nanargmax(per_label[:, k]))
                ax.plot(result.lams[index], per_label[index, k], "*", ms=9 if named else 5, color=color)
        if not named:
            ax.plot([], [], "-", lw=0.5, color="0.55", label=f"{len(result.labels)} structures")
        ax.plot(result.lams, result.mean_dice, "o-", color="black", lw=2, label="mean")
        ax.axhline(result.identity_dice, color="black", ls=":", lw=1, label="unregistered")
        ax.set_title("Dice")
    ax = axes[-2]
    ax.plot(result.lams, result.mse.mean(1), "o-", color="C0")
    ax.axhline(float(result.identity.mse.mean()), color="C0", ls=":", lw=1)
    ax.set_title("image MSE")
    ax = axes[-1]
    ax.plot(result.lams, 100 * result.folding.mean(1), "s-", color="C3")
    ax.set_title("% folding voxels")
    for ax in axes:
        ax.axvline(best, color="C2", ls="--", lw=1)
        if near_one:
            set_lam_axis(ax)
        else:
            ax.set_xlabel("λ")
        ax.grid(alpha=0.3)
    criterion = "mean Dice; ★ optimum of each structure" if has_dice else "image MSE"
    figure.suptitle(f"optimal λ = {format_lam(best)} (dashed, by {criterion})", fontsize="medium")
    bottom = 0.0
    if has_dice:
        handles, names = axes[0].get_legend_handles_labels()
        columns = min(8, len(handles))
        rows = -(-len(handles) // columns)
        figure.set_size_inches(4.2 * len(axes), 3.6 + 0.22 * rows)
        figure.legend(handles, names, loc="lower center", ncol=columns, fontsize="x-small", frameon=False)
        bottom = (0.1 + 0.22 * rows) / (3.6 + 0.22 * rows)
    figure.tight_layout(rect=(0, bottom, 1, 1))
    return figure


def _one_label_map(labels, name, shape):
    array = np.asarray(labels)
    if array.shape not in (tuple(shape), (*shape, 1)) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be an integer label map of shape {tuple(shape)}, "
                         f"got {array.dtype} {array.shape}")
    return array.reshape(shape)


def require_hypermorph(model, what):
    """Return the model's spec; raise a clear error unless it is a HyperMorph model (2D or 3D).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> vxm = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]])
    >>> require_hypermorph(vxm, "the explorer")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the explorer needs a HyperMorph model (λ is its input); ...
    """
    spec = spec_of(model)
    if not spec.is_hypermorph:
        raise ValueError(f"{what} needs a HyperMorph model (λ is its input); this VoxelMorph "
                         "baseline was trained at one fixed λ: build one with "
                         "hypermorph_nb.build_hypermorph")
    return spec


def require_2d_hypermorph(model, what):
    """Return the model's spec; raise a clear error unless it is a 2D HyperMorph model.

    Parameters
    ----------
    model : tf.keras.Model
    what : str
        The caller's name, for the message.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> vxm = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]])
    >>> require_2d_hypermorph(vxm, "this figure")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: this figure needs a HyperMorph model (λ is its input); ...
    """
    spec = require_hypermorph(model, what)
    if len(spec.inshape) != 2:
        raise ValueError(f"{what} shows 2D images; this model is {len(spec.inshape)}D "
                         f"{spec.inshape}: explore a 2D model, or slice your volumes")
    return spec


def plot_comparison(comparison, *, axes=None):
    """Dice and % folding per λ of two sweeps (e.g. HyperMorph and a grid of baselines).

    Parameters
    ----------
    comparison : hypermorph_nb.evaluation.SweepComparison
        From :func:`hypermorph_nb.evaluation.compare_sweeps`.
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> from hypermorph_nb.evaluation import baseline_sweep, compare_sweeps
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> features = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
    >>> grid = baseline_sweep({lam: hnb.build_vxm((32, 32), nb_features=features, seed=0)
    ...                        for lam in (0.5, 0.9)}, data, n_pairs=4, progress=False)
    >>> hyper = hnb.build_hypermorph((32, 32), nb_features=features, seed=0)
    >>> ours = hnb.lambda_sweep(hyper, data, [0.5, 0.9], pairs=grid.pairs, progress=False)
    >>> len(plot_comparison(compare_sweeps(ours, grid)).axes)
    2
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    else:
        fig = axes[0].figure
    dice_ax, folding_ax = axes
    position = np.arange(len(comparison.candidate.lams))
    for offset, (sweep, name) in zip((-0.2, 0.2), zip((comparison.candidate, comparison.reference),
                                                      comparison.names)):
        dice_ax.errorbar(position + offset, sweep.mean_dice, yerr=sweep.mean_dice_sem, fmt="o",
                         capsize=3, label=name)
        folding_ax.bar(position + offset, 100 * sweep.folding.mean(1), width=0.4, label=name)
    dice_ax.axhline(comparison.reference.identity_dice, color="gray", ls=":", label="unregistered")
    for ax, ylabel in ((dice_ax, "mean Dice (± s.e. over pairs)"), (folding_ax, "% folding pixels")):
        ax.set_xticks(position, [format_lam(lam) for lam in comparison.candidate.lams])
        ax.set_xlabel("λ")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
