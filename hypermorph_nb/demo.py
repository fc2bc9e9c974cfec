"""The README's main job: train HyperMorph on the embedded synthetic data, choose λ, save.

Runs offline and writes, under ``out``:
``metrics.json`` (training and λ-sweep numbers), ``lambda_row.png`` (the moved
image for several λ), ``dice_vs_lambda.png`` and the trained model folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TYPE_CHECKING, cast

import os
import time

import numpy as np

from .data import synthetic
from .evaluation.sweeps import lambda_sweep
from .networks.losses import DEFAULT_IMAGE_SIGMA, LossConfig
from .networks.models import build_hypermorph, count_parameters
from .io.persistence import save_model
from .viz.plotting import lambda_row_figure, plot_sweep
from .io.report import save_metrics
from .training.loop import train

if TYPE_CHECKING:
    from matplotlib.figure import Figure


DEMO_LAMBDAS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def run_demo(out: str | os.PathLike[str], *, n_images: int = 40, shape: Sequence[int] = (64, 64),
             epochs: int = 8, steps_per_epoch: int = 50, learning_rate: float = 1e-3,
             lr_schedule: str = "step", image_sigma: float = DEFAULT_IMAGE_SIGMA, seed: int = 0,
             verbose: bool = True) -> dict[str, Any]:
    """Train a small HyperMorph model on synthetic data and report Dice vs λ.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder (created).
    n_images : int
        Synthetic subjects; a quarter are held out for validation.
    shape : tuple of int
        Image shape (sides multiples of 16).
    epochs, steps_per_epoch, learning_rate, lr_schedule, image_sigma, seed
        Training settings (see :func:`hypermorph_nb.train`); the default is
        the recipe of the amortization benchmark: Adam at 1e-3, the last 25%
        of the steps at a tenth of it.
    verbose : bool

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.

    Notes
    -----
    The figures are drawn with matplotlib's current backend, which is left to the
    caller (the ``hypermorph-nb demo`` command picks Agg); each is closed once saved.
    """
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    data = synthetic(n_images, shape, seed=seed)
    n_val = max(2, n_images // 4)
    train_data, val_data = data[: n_images - n_val], data[n_images - n_val:]
    model = build_hypermorph(shape, seed=seed)
    start = time.perf_counter()
    history = train(model, train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    learning_rate=learning_rate, lr_schedule=lr_schedule, loss=LossConfig(image_sigma=image_sigma),
                    lam_sampling="oversample", seed=seed, verbose=verbose)
    train_seconds = time.perf_counter() - start
    sweep = lambda_sweep(model, val_data, DEMO_LAMBDAS, n_pairs=24, seed=seed, progress=verbose)
    save_model(model, os.path.join(out, "model"))

    moving, fixed = sweep.pairs[0]
    fig = lambda_row_figure(model, val_data.images[moving], val_data.images[fixed], DEMO_LAMBDAS)
    fig.savefig(os.path.join(out, "lambda_row.png"), dpi=100)
    plt.close(fig)
    ax = plot_sweep(sweep)
    ax.set_title("HyperMorph on synthetic validation pairs")
    figure = cast("Figure", ax.figure)  # the axes of a figure, not of a subfigure
    figure.tight_layout()
    figure.savefig(os.path.join(out, "dice_vs_lambda.png"), dpi=100)
    plt.close(figure)

    summary = sweep.summary()
    metrics = {
        "data": data.source,
        "n_train": len(train_data),
        "n_validation": len(val_data),
        "model_parameters": count_parameters(model),
        "training": {
            "epochs": epochs, "steps_per_epoch": steps_per_epoch, "seconds": train_seconds,
            "steps_per_second": history.steps_per_second(), "loss": history.loss,
            "lr_schedule": lr_schedule, "learning_rate": history.learning_rate,
            "stop_reason": history.stop_reason,
        },
        "sweep": summary,
        "identity_dice": summary["identity_dice"],
        "best_dice": float(np.nanmax(summary["mean_dice"])),
        "optimal_lam": summary["optimal_lam"],
    }
    save_metrics(out, metrics)
    if verbose:
        print(f"unregistered Dice {metrics['identity_dice']:.3f} -> best Dice {metrics['best_dice']:.3f} "
              f"at λ = {metrics['optimal_lam']:.2f}; results in {out}")
    return metrics
