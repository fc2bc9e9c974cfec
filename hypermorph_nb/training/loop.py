"""Train a baseline or HyperMorph model on a dataset with one call.

:func:`train` runs compiled training steps (several per ``tf.function`` call)
on a prefetching ``tf.data`` stream of random pairs whose batch number ``s``
depends only on ``(seed, s)``. Around that loop it adds what a notebook user
needs: a progress bar and a live loss plot (:mod:`hypermorph_nb.viz.training_display`),
validation scores, atomic checkpoints with exact resume
(:mod:`hypermorph_nb.io.checkpoints`), a clean stop on the notebook's stop
button, learning-rate schedules (:mod:`.schedules`), recovery from a NaN/inf
loss or a diverging one (:mod:`.divergence`), and ``tf.distribute`` data
parallelism.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from ..viz import training_display
from ..io.checkpoints import list_checkpoints
from ..data.dataset import Dataset
from ..data.sampling import LambdaSampling
from ..networks.losses import LossConfig
from .history import History
from .options import CheckpointConfig, ValidationConfig, group_legacy_options
from .run import DEFAULT_LABEL_STRUCTURES, TrainingRun



def train(model: tf.keras.Model, data: Dataset | np.ndarray, *, epochs: int, steps_per_epoch: int,
          learning_rate: float | None = None, lr_schedule: str | tf.keras.optimizers.schedules.LearningRateSchedule | None = None,
          warmup_steps: int = 0, lam: float | None = None,
          lam_sampling: str | dict | LambdaSampling = "uniform", loss: LossConfig | None = None,
          hyper_sampling: Mapping[str, str | dict | LambdaSampling] | None = None, label_weight: float = 0.0, label_structures: int = DEFAULT_LABEL_STRUCTURES, batch_size: int = 1,
          seed: int = 0, checkpoints: CheckpointConfig | str | os.PathLike[str] | None = None,
          resume: bool = False, validation: ValidationConfig | Dataset | None = None,
          strategy: str | tf.distribute.Strategy | None = "auto", steps_per_call: str | int = "auto",
          progress: str = "auto", live_plot: str | bool = "auto", verbose: bool = True,
          **deprecated: Any) -> History:
    """Train ``model`` on random pairs of ``data`` with the λ-weighted loss.

    Parameters
    ----------
    model : tf.keras.Model
        From :func:`hypermorph_nb.build_vxm` or :func:`hypermorph_nb.build_hypermorph`
        (or :func:`hypermorph_nb.load_model`); trained in place. A model built with
        ``downsample=f`` trains its U-Net at the U-Net's own grid: on block-averaged copies of
        ``data`` (:func:`hypermorph_nb.training.coarse.coarse_copy`), the loss on the coarse
        field, a fraction of a full-resolution step's cost; its checkpoints, validation and
        recorded space are the full-resolution model's.
    data : Dataset or np.ndarray
        Training images of the model's shape; arrays as :func:`hypermorph_nb.data.as_dataset`
        takes them (in [0, 1], not rescaled).
    epochs : int
        Total number of epochs; when resuming, training continues up to it.
    steps_per_epoch : int
        Training steps (batches) per epoch.
    learning_rate : float, optional
        Adam's (peak) learning rate; default 1e-3 for 2D images and 1e-4 for
        volumes (1e-3 diverged on 3D brain MRI, see
        :data:`.schedules.DEFAULT_LEARNING_RATE`).
    lr_schedule : None, 'step', 'cosine' or tf.keras.optimizers.schedules.LearningRateSchedule
        None: constant ``learning_rate``. 'step': ``learning_rate``, then a tenth
        of it for the last 25% of the steps. 'cosine': a half cosine from
        ``learning_rate`` down to a hundredth of it. A named schedule spans the
        ``epochs * steps_per_epoch`` of the call that starts training (kept when
        resuming: extra epochs run at its final rate). A ``LearningRateSchedule``
        (e.g. :class:`hypermorph_nb.training.schedules.StepDecay` with other
        factors) gives the rate itself: leave out ``learning_rate`` and
        ``warmup_steps``. All are functions of the global step, so a resumed
        run continues the schedule exactly (see :mod:`.schedules`).
    warmup_steps : int
        Linear warm-up of a named schedule (or of the constant rate) over its
        first steps.
    lam : float, optional
        Baseline only: the fixed λ (default 0.5, the tutorial's).
    lam_sampling : str, dict or LambdaSampling
        HyperMorph only: how λ is drawn per pair (see
        :class:`hypermorph_nb.data.LambdaSampling`).
    hyper_sampling : mapping of str to str, dict or LambdaSampling, optional
        A model conditioned on more than λ (``build_hypermorph(..., hyperparameters=...)``):
        how each other hyperparameter is drawn per pair, over [0, 1] mapped onto its range
        (default ``'uniform'`` for each). A learned ``label_weight`` γ needs label maps in
        ``data``: the loss is ``(1 − λ) · (image + γ · (1 − Dice)) + λ · smooth`` with the
        pair's own γ, and the ``label_weight`` argument stays 0.
    loss : LossConfig, optional
        The similarity term and its scale (:class:`hypermorph_nb.networks.LossConfig`: MSE
        with σ, default 0.2, or NCC with its window). The tutorial's σ values are 0.1 for the
        baseline and 0.05 for HyperMorph. Replaces ``image_loss=``/``image_sigma=`` of 0.1.
    label_weight : float
        Weight ``w`` of a label term (VoxelMorph's auxiliary segmentation):
        when ``w > 0`` and ``data`` carries label maps, the moving image's
        one-hot label maps are warped through the same field (linear
        interpolation) and compared with the fixed image's by soft Dice, and
        the loss becomes ``(1 − λ) · (image + w · (1 − Dice)) + λ · smooth``
        (:func:`hypermorph_nb.networks.losses.weighted_terms`). Labels shape
        training only: registering needs none. 0 (default) trains on images only.
    label_structures : int
        With ``label_weight > 0``: the most structures one pair's Dice term
        compares (background left out). Pairs with more structures draw this
        many at random each step (from the ``(seed, step)`` stream), which keeps
        the one-hot maps small for atlases of a hundred structures or more.
    batch_size : int
        Pairs per step (over all replicas).
    seed : int
        Seed of the pair/λ stream: step ``s`` always trains on the same batch.
    verbose : bool
        False shows nothing (unless ``progress``/``live_plot`` ask for it).
    checkpoints : CheckpointConfig or str or os.PathLike, optional
        Write checkpoints (:class:`hypermorph_nb.training.CheckpointConfig`: the folder, every
        how many epochs, how many to keep; a path alone takes the defaults). Replaces
        ``checkpoint_dir=``, ``checkpoint_every=``, ``keep_checkpoints=`` of 0.1.
    resume : bool
        Continue from the newest intact checkpoint in the checkpoint folder
        (its weights, optimizer state, history and position in the stream);
        start from scratch when there is none yet. The call must use the
        same model, data and settings; only ``epochs`` (and display options)
        may change.
    validation : ValidationConfig or Dataset, optional
        Score fixed validation pairs as training goes
        (:class:`hypermorph_nb.training.ValidationConfig`: the data, the pairs, the λ values,
        every how many epochs; a Dataset alone takes the defaults). Replaces
        ``validation_data=``, ``validation_pairs=``, ``validation_lams=``, ``validate_every=``.
    strategy : 'auto', None or tf.distribute.Strategy
        'auto' uses the strategy whose scope is active, else a
        ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several
        workers (see :mod:`.workers`: the chief alone shows progress, validates
        and writes checkpoints), else a ``MirroredStrategy`` over all GPUs when
        there are several and ``batch_size`` divides evenly among them, else
        one device. None: one device. A strategy: train under it
        (``batch_size``, the global batch, must be a multiple of its replicas).
    steps_per_call : 'auto' or int
        Training steps per compiled call; 'auto' aims at about half a second
        per call, which keeps Python overhead low and the stop button responsive.
    progress : {'auto', 'bar', 'log', 'none'}
        'auto': a progress bar in notebooks, one log line per epoch in scripts.
    live_plot : 'auto' or bool
        A loss figure updated in place; 'auto' shows it in notebooks.

    Returns
    -------
    History
        With ``interrupted=True`` when stopped by KeyboardInterrupt (the model
        keeps the weights reached; a checkpoint is written when
        ``checkpoint_dir`` is set) and ``stop_reason`` set when a NaN/inf loss,
        or a loss that blew up far above its recent range, stopped training
        (the weights and Adam state of the last good epoch are restored; see
        :mod:`.divergence`).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> history = hnb.train(model, synthetic(4, (32, 32)), epochs=2, steps_per_epoch=3, verbose=False)
    >>> history.epochs, len(history.loss), history.interrupted
    (2, 2, False)
    >>> history = hnb.train(model, synthetic(4, (32, 32)), epochs=4, steps_per_epoch=2, verbose=False,
    ...                     learning_rate=1e-3, lr_schedule="step")
    >>> [round(rate, 6) for rate in history.learning_rate]
    [0.001, 0.001, 0.001, 0.0001]
    """
    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = CheckpointConfig(checkpoints)
    if validation is not None and not isinstance(validation, ValidationConfig):
        validation = ValidationConfig(validation)
    options = group_legacy_options(deprecated, loss=loss, checkpoints=checkpoints, validation=validation)
    run = TrainingRun(
        model, data, epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate,
        lr_schedule=lr_schedule, warmup_steps=warmup_steps, lam=lam, lam_sampling=lam_sampling,
        hyper_sampling=hyper_sampling, loss_config=options.loss, label_weight=label_weight, label_structures=label_structures,
        batch_size=batch_size, seed=seed, checkpoints=options.checkpoints, validation=options.validation,
        strategy=strategy, steps_per_call=steps_per_call)
    if resume:
        run.resume()
    elif run.checkpoint_dir is not None and list_checkpoints(run.checkpoint_dir):
        raise FileExistsError(
            f"the checkpoint folder {run.checkpoint_dir} already holds checkpoints; pass resume=True to "
            "continue from the newest, or give an empty folder to start over")
    return run.run(progress=training_display.resolve_progress(progress, verbose=verbose),
                   live_plot=training_display.resolve_live_plot(live_plot, verbose=verbose))
