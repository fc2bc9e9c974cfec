"""Static figures for reports and executed notebooks (matplotlib, no widgets)."""

import numpy as np

from .registration import Registrar


def lambda_row_figure(model, moving, fixed, lams=(0.0, 0.25, 0.5, 0.75, 1.0), *, figsize=None):
    """The seed tutorial's figure: moving, fixed, then the moved image per λ.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    moving, fixed : np.ndarray
        One pair, shape ``inshape`` or ``(*inshape, 1)``.
    lams : sequence of float
        λ values to show, one panel each.
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
    >>> fig = lambda_row_figure(model, data.images[0], data.images[1], lams=[0, 1])
    >>> len(fig.axes)
    4
    """
    import matplotlib.pyplot as plt

    registrar = Registrar.for_model(model)
    lams = [float(lam) for lam in lams]
    shape = registrar.spec.inshape
    moving = np.asarray(moving, np.float32).reshape(1, *shape, 1)
    fixed = np.asarray(fixed, np.float32).reshape(1, *shape, 1)
    moved, _ = registrar.predict(np.repeat(moving, len(lams), 0), np.repeat(fixed, len(lams), 0), lams)
    panels = [("moving", moving[0]), ("fixed", fixed[0])]
    panels += [(f"λ = {lam:.2f}", image) for lam, image in zip(lams, moved)]
    fig, axes = plt.subplots(1, len(panels), figsize=figsize or (2.2 * len(panels), 2.6))
    for ax, (title, image) in zip(np.atleast_1d(axes), panels):
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_sweep(result, *, ax=None):
    """Mean Dice (and % folding) against λ from a :class:`~hypermorph_nb.evaluation.SweepResult`.

    Marks the optimal λ and the unregistered Dice. Without label maps, plots
    image MSE instead of Dice.

    Returns
    -------
    matplotlib.axes.Axes
        The Dice (or MSE) axes; the folding axes is its twin.
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
    ax.axvline(result.optimal_lam, color="C2", ls="--", label=f"optimal λ = {result.optimal_lam:.3g}")
    ax.set_xlabel("λ")
    twin = ax.twinx()
    twin.plot(result.lams, 100 * result.folding.mean(1), "s-", color="C3", alpha=0.7, label="% folding")
    twin.set_ylabel("% folding voxels", color="C3")
    handles = ax.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="best", fontsize="small")
    return ax
