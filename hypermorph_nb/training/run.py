"""One :func:`hypermorph_nb.train` call at work: its settings, engine, position, history.

:class:`TrainingRun` holds the epoch loop: compiled calls of several steps on the pair stream,
progress, validation, checkpoints, and the stops (the stop button, a NaN/inf loss, a loss that
blows up), and records on the model how it was trained.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TYPE_CHECKING, cast

import dataclasses
import os
import time
import warnings

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from ..checks.arrays import check_count
from ..checks.inputs import check_model_shape
from ..checks.values import check_lambda
from ..data.dataset import as_dataset
from ..data.generators import PairBatches
from ..data.sampling import LambdaSampling
from ..networks.description import DEFAULT_BASELINE_LAMBDA, ModelSpace, TrainingRecord
from ..networks.models import coarse_network, describe, spec_of
from ..viz import training_display
from .coarse import coarse_copy
from .divergence import DivergenceGuard
from .engine import CallSize, Engine
from .history import History
from .interrupts import StopRequest
from .monitoring import Validation
from .resume import check_resume_config, resume_config
from .schedules import make_schedule, schedule_settings
from .strategy import distribute_batches, resolve_strategy
from .workers import WorkerRole

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from ..networks.losses import LossConfig
    from .options import CheckpointConfig
    from .options import ValidationConfig

#: With label supervision, the most structures one pair's Dice term compares (see ``train``).
DEFAULT_LABEL_STRUCTURES = 32
_TERMS = ("loss", "image", "smooth")


class TrainingRun:
    """The state of one :func:`train` call: settings, engine, position, history."""

    def __init__(self, model: tf.keras.Model, data: Dataset | ArrayLike, *, epochs: int, steps_per_epoch: int,
                 learning_rate: float | None, lr_schedule: Any, warmup_steps: int, lam: float | None,
                 lam_sampling: Any, loss_config: LossConfig, hyper_sampling: Mapping[str, Any] | None, label_weight: float,
                 label_structures: int | None, batch_size: int, seed: int,
                 checkpoints: CheckpointConfig | None, validation: ValidationConfig | None, strategy: Any,
                 steps_per_call: int | str) -> None:
        spec = spec_of(model)
        self.epochs = check_count(epochs, "epochs")
        self.steps_per_epoch = check_count(steps_per_epoch, "steps_per_epoch")
        self.checkpoint_every = 1 if checkpoints is None else checkpoints.every
        self.keep_checkpoints = 2 if checkpoints is None else checkpoints.keep
        self.validate_every = 1 if validation is None else validation.every
        self.steps_per_call = (steps_per_call if steps_per_call == "auto"
                               else check_count(steps_per_call, "steps_per_call"))
        if spec.is_hypermorph:
            if lam is not None:
                raise ValueError("HyperMorph learns every λ at once; pass lam_sampling, not lam")
            sampling, fixed_lam = LambdaSampling.coerce(lam_sampling), None
        else:
            sampling = None
            if lam is not None:
                check_lambda(lam, name="lam")
            fixed_lam = DEFAULT_BASELINE_LAMBDA if lam is None else float(lam)
        schedule, self.learning_rate = schedule_settings(lr_schedule, learning_rate=learning_rate,
                                                         warmup_steps=warmup_steps, ndim=len(spec.inshape))
        self.lr_schedule = lr_schedule
        extra = _extra_sampling(spec, hyper_sampling)
        learned = any(hyper.name == "label_weight" for hyper, _ in extra)
        label_weight, label_structures = _label_settings(data, label_weight, label_structures, learned=learned)
        data = as_dataset(data, name="training images")
        check_model_shape(data.shape, spec.inshape, name="data")
        # a downsample=f model trains its U-Net at the U-Net's own grid, on block averages (coarse.py)
        network = coarse_network(model)
        self.batches = PairBatches(coarse_copy(data, spec.downsample), batch_size=batch_size, seed=seed,
                                   lam_sampling=sampling, include_labels=label_structures is not None,
                                   label_structures=label_structures, extra_sampling=extra)
        self.strategy, default_strategy = resolve_strategy(strategy, self.batches.batch_size)
        self.role = WorkerRole.of(self.strategy)  # chief or another worker of a multi-worker job
        self.validation = None if validation is None else Validation(
            validation.data, spec=spec, pairs=validation.pairs, lams=validation.lams, seed=seed)
        self.checkpoint_dir = None if checkpoints is None else os.fspath(checkpoints.directory)
        self.resume_config = resume_config(
            spec, self.batches.images, fixed_lam=fixed_lam, sampling=sampling, loss_config=loss_config,
            learning_rate=self.learning_rate, lr_schedule=schedule, batch_size=self.batches.batch_size,
            seed=int(seed), steps_per_epoch=self.steps_per_epoch, label_weight=label_weight,
            label_structures=label_structures, labels=self.batches.labels,
            hyper_sampling={hyper.name: sampling.to_json() for hyper, sampling in extra})
        self.history = History(
            config={
                "kind": spec.kind, "epochs": self.epochs, **self.resume_config,
                "schedule_steps": self.total_steps,
                "replicas": int(self.strategy.num_replicas_in_sync),
                "validation": None if self.validation is None else self.validation.config(),
            },
            model=model,
            val_lams=[] if self.validation is None else list(self.validation.lams),
        )
        self.model = model
        self.record = TrainingRecord(
            image_loss=loss_config.image_loss, image_sigma=float(loss_config.image_sigma),
            ncc_window=int(loss_config.ncc_window),
            lam_sampling="fixed" if sampling is None else sampling.mode, lam=fixed_lam,
            label_weight=label_weight,
            hyper_sampling={hyper.name: sampling.mode for hyper, sampling in extra} or None)
        self.space = ModelSpace.from_dataset(data)
        self.engine = Engine(network, spec_of(network), self.strategy, use_model=default_strategy,
                              learning_rate=self._schedule(self.total_steps), loss_config=loss_config,
                              fixed_lam=fixed_lam, global_batch=self.batches.batch_size,
                              label_weight="learned" if learned else label_weight)
        self.step = 0
        self.epoch_sums = np.zeros(3)
        self.epoch_steps = 0
        self.epoch_carried_seconds = 0.0
        self.notices: list[str] = []

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def _schedule(self, total_steps: int) -> tf.keras.optimizers.schedules.LearningRateSchedule:
        # learning_rate is None only beside a schedule object, which make_schedule returns as it is
        return make_schedule(self.lr_schedule, learning_rate=cast(float, self.learning_rate),
                             total_steps=total_steps,
                             warmup_steps=self.resume_config["lr_schedule"].get("warmup_steps", 0))

    def resume(self) -> None:
        """Load the newest intact checkpoint (or note that training starts from scratch)."""
        if self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, the folder the checkpoints were written to")
        checkpoint = self.role.latest_checkpoint(self.checkpoint_dir)
        if checkpoint is None:
            self.notices.append(f"no checkpoint in {self.checkpoint_dir} yet: starting from scratch")
            return
        check_resume_config(checkpoint, self.resume_config)
        state = checkpoint.state
        schedule_steps = state.get("config", {}).get("schedule_steps")
        if schedule_steps and schedule_steps != self.total_steps:   # the schedule keeps its first length
            self.engine.set_schedule(self._schedule(schedule_steps))
            self.history.config["schedule_steps"] = schedule_steps
            if isinstance(self.lr_schedule, str):
                self.notices.append(f"lr_schedule={self.lr_schedule!r} spans the {schedule_steps} steps of the "
                                    "first call; later steps train at its final rate")
        self.engine.load(checkpoint, self.model)
        self.history.extend_from_json(state["history"])
        self.history.checkpoint = checkpoint.path
        self.history.resumed_from_step = self.step = int(state["step"])
        partial = state.get("partial")
        if partial:
            self.epoch_sums = np.asarray(partial["sums"], dtype=float)
            self.epoch_steps = int(partial["steps"])
            self.epoch_carried_seconds = float(partial["seconds"])
        where = f"epoch {self.history.epochs}" + (f" + {self.epoch_steps} steps" if self.epoch_steps else "")
        self.notices.append(f"resumed from {checkpoint.path} ({where}, step {self.step})")
        if self.step >= self.total_steps:
            self.notices.append(f"the checkpoint already covers epochs={self.epochs}; "
                                "raise epochs to train further")

    def run(self, *, progress: str, live_plot: bool) -> History:
        history = self.history
        reporter = self.role.progress(progress, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
                                      start_step=min(self.step, self.total_steps))
        plot = training_display.LiveLossPlot(history) if live_plot and self.role.is_chief else None
        for notice in self.notices:
            reporter.message(notice)
        self._describe_model()
        self.role.share_chief_state(self.engine.model.weights + self.engine.optimizer.variables())
        self.engine.remember_good()
        good_step = self.step
        guard = DivergenceGuard()
        call_size = CallSize(self.steps_per_call)
        epoch_start = time.perf_counter()
        try:
            with StopRequest() as stop:
                iterator = self._iterator() if self.step < self.total_steps else None
                while self.step < self.total_steps:
                    epoch_end = (self.step // self.steps_per_epoch + 1) * self.steps_per_epoch
                    count = self.role.agree_on_count(min(call_size.next(), epoch_end - self.step))
                    call_start = time.perf_counter()
                    try:
                        sums, done, finite = self.engine.run(iterator, count)
                    except tf.errors.InvalidArgumentError as err:
                        if not self.engine.diverged(err):
                            raise
                        self._stop_on_nonfinite(good_step, failed_step=self.step + 1,
                                                what="the displacement field")
                        break
                    call_size.observe(time.perf_counter() - call_start, done)
                    self.step += done
                    self.epoch_sums += sums
                    self.epoch_steps += done
                    history.steps = self.step
                    if not finite:
                        self._stop_on_nonfinite(good_step, failed_step=self.step, what="the loss")
                        break
                    call_loss = sums[0] / done
                    if guard.check(call_loss=call_loss, epoch_mean=self.epoch_sums[0] / self.epoch_steps,
                                   epoch_losses=history.loss):
                        self._stop_on_divergence(guard, good_step, failed_step=self.step, loss=call_loss)
                        break
                    reporter.steps(self.step, self.epoch_sums[0] / self.epoch_steps)
                    if self.step == epoch_end:
                        seconds = self.epoch_carried_seconds + time.perf_counter() - epoch_start
                        self._end_epoch(seconds, reporter, plot)
                        self.engine.remember_good()
                        good_step = self.step
                        epoch_start = time.perf_counter()
                    if self.role.stop_everywhere(stop.requested):
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.epoch_carried_seconds += time.perf_counter() - epoch_start
            self._interrupted(reporter)
        finally:
            self.engine.sync()
            self._describe_model()
            if plot is not None and history.epochs:
                plot.update(history, force=True)
            reporter.close()
        return history

    def _describe_model(self) -> None:
        """Record on the model how it is trained and, when the data had one affine, its space."""
        describe(self.model, training=dataclasses.replace(self.record, steps=int(self.step)),
                 space=self.space)

    def _iterator(self):
        return iter(distribute_batches(self.strategy, self.batches, self.step, self.total_steps))

    def _end_epoch(self, seconds, reporter, plot) -> None:
        history = self.history
        for name, value in zip(_TERMS, self.epoch_sums / self.epoch_steps):
            getattr(history, name).append(float(value))
        history.learning_rate.append(self.engine.learning_rate_at(self.step - 1))
        history.epoch_seconds.append(float(seconds))
        self.epoch_sums, self.epoch_steps, self.epoch_carried_seconds = np.zeros(3), 0, 0.0
        last = self.step >= self.total_steps
        if self.validation is not None and self.role.is_chief and (history.epochs % self.validate_every == 0
                                                                   or last):
            self.engine.sync()
            mse, dice = self.validation.scores(history.model)
            history.val_epochs.append(history.epochs)
            history.val_mse.append(mse)
            if dice is not None:
                history.val_dice.append(dice)
        if self.checkpoint_dir is not None and (history.epochs % self.checkpoint_every == 0 or last):
            self._write_checkpoint()
        reporter.epoch_end(history)
        if plot is not None:
            plot.update(history)  # the last epoch is drawn by run()'s forced redraw

    def _write_checkpoint(self) -> None:
        self.engine.sync()
        partial = None
        if self.epoch_steps:
            partial = {"steps": self.epoch_steps, "sums": self.epoch_sums.tolist(),
                       "seconds": self.epoch_carried_seconds}
        state = {"step": self.step, "epoch": self.history.epochs, "partial": partial,
                 "history": self.history.to_json(), "config": self.history.config}
        assert self.checkpoint_dir is not None  # checkpoints are written only with a checkpoint_dir
        self.history.checkpoint = self.role.write_checkpoint(
            self.checkpoint_dir, model=self.history.model,
            optimizer_weights=self.engine.optimizer.get_weights(),
            state=state, keep=self.keep_checkpoints)

    def _restore(self, good_step, failed_step):
        """Return to the last good epoch; returns (failed epoch, where the restored state is from)."""
        epoch = (failed_step - 1) // self.steps_per_epoch + 1
        self.engine.restore_good()
        self.step = self.history.steps = good_step
        self.epoch_sums, self.epoch_steps = np.zeros(3), 0
        if good_step and good_step % self.steps_per_epoch == 0:
            origin = f"the end of epoch {good_step // self.steps_per_epoch}"
        else:
            origin = "the start of this run"
        return epoch, origin

    def _rate_text(self):
        if self.learning_rate is None:
            return "set by your lr_schedule"
        return f"{self.learning_rate:g}" + (f" with lr_schedule={self.lr_schedule!r}" if self.lr_schedule else "")

    def _stop(self, message) -> None:
        self.history.stop_reason = message
        warnings.warn(message, RuntimeWarning, stacklevel=5)

    def _stop_on_nonfinite(self, good_step, *, failed_step, what) -> None:
        epoch, origin = self._restore(good_step, failed_step)
        self._stop(
            f"training stopped: {what} became NaN or infinite in epoch {epoch}; the weights and "
            f"optimizer state from {origin} (step {good_step}) were restored. Lower learning_rate "
            f"(now {self._rate_text()}), or check the data and image_sigma.")

    def _stop_on_divergence(self, guard, good_step, *, failed_step, loss) -> None:
        epoch, origin = self._restore(good_step, failed_step)
        self._stop(guard.message(loss=loss, epoch=epoch, origin=origin, good_step=good_step,
                                 learning_rate=self._rate_text()))

    def _interrupted(self, reporter) -> None:
        history = self.history
        history.interrupted = True
        history.stop_reason = (f"interrupted at step {self.step} (epoch {history.epochs} complete"
                               + (f", {self.epoch_steps} steps into the next" if self.epoch_steps else "")
                               + ")")
        text = f"{history.stop_reason}: the model and history are kept"
        if self.checkpoint_dir is not None:
            self._write_checkpoint()
            text += f"; checkpoint {history.checkpoint}. Call train(..., resume=True) to continue"
        reporter.message(text)


def _extra_sampling(spec, hyper_sampling):
    """``[(hyperparameter, LambdaSampling)]`` for the model's hyperparameters besides λ, checked."""
    extra = [hyper for hyper in spec.hyperparameters if hyper.name != "lam"]
    given = dict(hyper_sampling or {})
    unknown = sorted(set(given) - {hyper.name for hyper in extra})
    if unknown:
        learned = [hyper.name for hyper in extra] or "λ alone"
        raise ValueError(f"hyper_sampling names {unknown}, which this model does not learn (it learns "
                         f"{learned}; λ is drawn by lam_sampling)")
    return [(hyper, LambdaSampling.coerce(given.get(hyper.name, "uniform"))) for hyper in extra]


def _label_settings(data, label_weight, label_structures, *, learned=False):
    """``(label_weight, label_structures)`` checked; ``label_structures`` is None without label supervision.

    ``learned``: the model takes γ as a hyperparameter (each pair's own weight), so the fixed
    ``label_weight`` must stay 0 and the data must carry label maps.
    """
    try:
        weight = float(label_weight)
    except (TypeError, ValueError):
        raise TypeError(f"label_weight must be a number >= 0, got {label_weight!r}") from None
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"label_weight must be a finite number >= 0 (0: images only), got {label_weight!r}")
    if learned and weight:
        raise ValueError(f"this model learns label_weight as a hyperparameter (each pair draws its own γ), so "
                         f"train(..., label_weight={weight:g}) has no meaning: leave label_weight out, and set "
                         "how γ is drawn with hyper_sampling={'label_weight': ...}")
    if weight == 0 and not learned:
        return 0.0, None
    if getattr(data, "labels", None) is None:
        what = "a model that learns label_weight" if learned else f"label_weight={weight:g}"
        raise ValueError(
            f"{what} needs training data with label maps: pass a Dataset with labels "
            "(e.g. hnb.data.load_source('ixi3d') or synthetic(...)), or train on images only "
            "(label_weight=0 and a model built without 'label_weight')")
    return weight, check_count(label_structures, "label_structures")
