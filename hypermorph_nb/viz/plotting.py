"""Static figures for reports and executed notebooks.

- :func:`image_row`: a row of images with titles (moving, fixed, moved, ...);
- :func:`lambda_row_figure`: the seed tutorial's figure, a row of moved images for several λ;
- :func:`plot_sweep`, :func:`plot_sweep_panels`: Dice, image MSE and folding against λ;
- :func:`plot_comparison`: HyperMorph against separately trained baselines, per λ.

The drawing helpers they share with the widgets are in :mod:`hypermorph_nb.viz.drawing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TYPE_CHECKING, cast

import numpy as np

from ..checks.inputs import prepare_labels
from ..checks.values import check_lambdas
from .drawing import format_lam, set_lam_axis
from ..metrics import dice_batch
from ..networks.models import require_hypermorph
from ..registration.pairs import Registrar, one_image_batch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    import tensorflow as tf
    from ..networks.models import ModelSpec

#: Up to this many structures get their own colour and legend entry in :func:`plot_sweep_panels`;
#: more (e.g. the 148 of a whole-brain parcellation) are drawn as thin grey lines.
MAX_NAMED_STRUCTURES = 24


def image_row(images: Sequence[np.ndarray], *, titles: Sequence[str] | None = None, cmap: str = "gray",
              vmin: float = 0.0, vmax: float = 1.0, figsize: tuple[float, float] | None = None) -> Figure:
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


def lambda_row_figure(model: tf.keras.Model, moving: np.ndarray, fixed: np.ndarray,
                      lams: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), *,
                      moving_labels: np.ndarray | None = None, fixed_labels: np.ndarray | None = None,
                      show_difference: bool = False, figsize: tuple[float, float] | None = None,
                      **hyperparameters: float) -> Figure:
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
    **hyperparameters : float
        A model conditioned on more than λ: the others' values, held in every panel (e.g.
        ``label_weight=0.5``).

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
    lams = check_lambdas(lams).tolist()
    registrar.hyper_inputs(lams, batch=len(lams), **hyperparameters)   # refuse bad values before any work
    shape = registrar.spec.inshape
    moving = one_image_batch(moving, "moving", shape)[0]
    fixed = one_image_batch(fixed, "fixed", shape)[0]
    if (moving_labels is None) != (fixed_labels is None):
        raise ValueError("pass both moving_labels and fixed_labels, or neither")
    if moving_labels is not None and fixed_labels is not None:  # both or neither, checked above
        moving_labels = prepare_labels(moving_labels, moving[..., 0], role="moving",
                                       name="moving_labels", image_name="moving", inshape=shape)
        fixed_labels = prepare_labels(fixed_labels, fixed[..., 0], role="fixed",
                                      name="fixed_labels", image_name="fixed", inshape=shape)
    moved, flow = registrar.predict(np.repeat(moving[None], len(lams), 0),
                                    np.repeat(fixed[None], len(lams), 0), lams, **hyperparameters)
    dice, identity_dice = None, None
    if moving_labels is not None and fixed_labels is not None:
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


def plot_sweep(result: Any, *, ax: Axes | None = None, near_one: bool = True) -> Axes:
    """Mean Dice (and % folding) against λ from a :class:`~hypermorph_nb.evaluation.sweeps.SweepResult`.

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


def plot_sweep_panels(result: Any, *, figure: Figure | None = None, near_one: bool = True) -> Figure:
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


def require_2d_hypermorph(model: tf.keras.Model, what: str) -> ModelSpec:
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


def plot_comparison(comparison: Any, *, axes: Sequence[Axes] | None = None) -> Figure:
    """Dice and % folding per λ of two sweeps (e.g. HyperMorph and a grid of baselines).

    Parameters
    ----------
    comparison : hypermorph_nb.evaluation.sweeps.SweepComparison
        From :func:`hypermorph_nb.evaluation.sweeps.compare_sweeps`.
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> from hypermorph_nb import baseline_sweep, compare_sweeps
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
        fig = cast("Figure", axes[0].figure)  # a figure's axes, not a subfigure's
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
