"""The training engine: the model (or its replica copy), Adam and the compiled steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TYPE_CHECKING

import numpy as np
import tensorflow as tf

from ..networks.losses import weighted_terms
from ..networks.models import ModelSpec, build_from_spec, vxm

if TYPE_CHECKING:
    from ..io.checkpoints import Checkpoint
    from ..networks.losses import LossConfig


#: With ``steps_per_call='auto'``, each compiled call runs about this many seconds of steps.
TARGET_CALL_SECONDS = 0.5
MAX_STEPS_PER_CALL = 100


class Engine:
    """The model (a copy under a distribution strategy), Adam and the compiled steps.

    ``learning_rate`` is a ``LearningRateSchedule``, which Adam
    evaluates at its step counter ``optimizer.iterations`` (saved with its
    moments in checkpoints and in :meth:`remember_good`).
    """

    def __init__(self, model: tf.keras.Model, spec: ModelSpec, strategy: tf.distribute.Strategy, *,
                 use_model: bool, learning_rate: tf.keras.optimizers.schedules.LearningRateSchedule,
                 loss_config: LossConfig, fixed_lam: float | None, global_batch: int,
                 label_weight: float | str = 0.0) -> None:
        self.user_model = model
        self.strategy = strategy
        with strategy.scope():
            if use_model or _created_under(model, strategy):
                self.model = model
            else:
                self.model = build_from_spec(ModelSpec(spec.kind, spec.inshape, {**spec.options, "seed": None}))
                self.model.set_weights(model.get_weights())
            self.schedule = learning_rate
            self.optimizer = tf.keras.optimizers.legacy.Adam(learning_rate)
            self.optimizer._create_all_weights(self.model.trainable_weights)
            tracked = self.model.weights + self.optimizer.variables()
            backup = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in tracked]
        self._save_good = _copier(tracked, backup)
        self._restore_good = _copier(backup, tracked)
        self._run = _compiled_steps(self.model, self.optimizer, strategy, loss_config=loss_config,
                                    hyperparameters=spec.hyperparameters, fixed_lam=fixed_lam,
                                    global_batch=global_batch, label_weight=label_weight)

    def set_schedule(self, schedule: tf.keras.optimizers.schedules.LearningRateSchedule) -> None:
        """Use ``schedule`` (a LearningRateSchedule of the global step) from the next step on."""
        self.schedule = self.optimizer.learning_rate = schedule

    def learning_rate_at(self, step: int) -> float:
        """The rate Adam uses at 0-based global step ``step``."""
        return float(self.schedule(step))

    def run(self, iterator: Any, count: int) -> tuple[np.ndarray, int, bool]:
        """Run up to ``count`` steps; returns (sums of the 3 terms, steps done, all finite)."""
        sums, done, finite = self._run(iterator, tf.constant(count, tf.int32))
        return sums.numpy().astype(float), int(done), bool(finite)

    def diverged(self, error: BaseException) -> bool:
        """Whether a step failed because training diverged, not because of a bug.

        On the CPU a NaN/inf displacement field fails inside the spatial
        transformer (its sampling indices leave the image) before the loss is
        computed; on a GPU the same divergence shows up as a NaN loss.
        """
        if "transformer" in str(error):
            return True
        return not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.model.trainable_weights)

    def remember_good(self) -> None:
        """Keep a copy of the weights and optimizer state (on the device, no host transfer)."""
        self._save_good()

    def restore_good(self) -> None:
        """Return to the copy kept by :meth:`remember_good`."""
        self._restore_good()

    def load(self, checkpoint: Checkpoint, saved_model: tf.keras.Model) -> None:
        """Take the model weights and optimizer state of a checkpoint.

        ``saved_model`` is the model the checkpoint holds: the caller's model, whose weights the
        trained network shares (a ``downsample`` model's coarse network is trained inside it).
        """
        checkpoint.load_weights_into(saved_model)
        if self.model is not self.user_model:
            self.model.set_weights(self.user_model.get_weights())
        weights = checkpoint.optimizer_weights()
        expected = [tuple(v.shape) for v in self.optimizer.variables()]
        if [tuple(w.shape) for w in weights] != expected:
            raise ValueError(f"the optimizer state in {checkpoint.path} does not fit this model "
                             f"({len(weights)} arrays, expected {len(expected)}); use another checkpoint_dir")
        self.optimizer.set_weights(weights)

    def sync(self) -> None:
        """Copy the trained weights back to the caller's model when training ran on a copy."""
        if self.model is not self.user_model:
            self.user_model.set_weights(self.model.get_weights())


def _copier(sources, targets):
    """A function assigning each source variable's value to its target (device-side copies)."""

    def copy() -> None:
        for source, target in zip(sources, targets):
            target.assign(source)

    return copy


def _compiled_steps(model, optimizer, strategy, *, loss_config, hyperparameters, fixed_lam, global_batch,
                    label_weight: float | str = 0.0):
    """A ``tf.function`` running ``count`` training steps on a (distributed) iterator.

    Each replica sums its per-sample losses and divides by the global batch,
    so the gradients summed over replicas are those of the global mean.
    The loop stops after the first step whose loss is not finite. With
    ``label_weight > 0`` the batches carry label maps and ``label_ids``
    (:class:`hypermorph_nb.data.PairBatches` with ``label_structures``), and the
    loss gains the Dice term of :func:`warped_onehots`; with ``label_weight='learned'`` each
    pair's own ``batch['label_weight']`` weighs it. A model with several hyperparameters gets
    them as one input row per pair, each rescaled to [0, 1] over its range.
    """
    if label_weight:
        with strategy.scope():
            network = tf.keras.Model(model.inputs, [*model.outputs, model.references.pos_flow])
        label_warp = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij", fill_value=0.0)

    def replica_step(batch):
        moving, fixed = batch["moving"], batch["fixed"]
        if len(hyperparameters) == 1:
            lam = batch["lam"]
            inputs = [moving, fixed, lam]
        elif hyperparameters:
            lam = batch["lam"]
            inputs = [moving, fixed, tf.concat([(batch[h.name] - h.low) / (h.high - h.low)
                                                for h in hyperparameters], axis=-1)]
        else:
            lam = tf.fill([tf.shape(moving)[0]], fixed_lam)
            inputs = [moving, fixed]
        with tf.GradientTape() as tape:
            if label_weight:
                moved, flow, field = network(inputs, training=True)
                weight = (tf.reshape(batch["label_weight"], [-1]) if label_weight == "learned"
                          else label_weight)
                terms = weighted_terms(fixed, moved, flow, lam, loss_config, label_weight=weight,
                                       labels=warped_onehots(batch, field, label_warp))
            else:
                moved, flow = model(inputs, training=True)
                terms = weighted_terms(fixed, moved, flow, lam, loss_config)
            loss = tf.reduce_sum(terms["total"]) / global_batch
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return tf.stack([tf.reduce_sum(terms[name]) for name in ("total", "image", "smooth")]) / global_batch

    @tf.function
    def run(iterator, count):
        sums = tf.zeros([3])
        done = tf.constant(0)
        finite = tf.constant(True)
        for _ in tf.range(count):
            per_replica = strategy.run(replica_step, args=(next(iterator),))
            terms = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            sums += terms
            done += 1
            finite = tf.reduce_all(tf.math.is_finite(terms))
            if not finite:
                break
        return sums, done, finite

    return run


def warped_onehots(batch: Mapping[str, tf.Tensor], field: tf.Tensor,
                   warp: Callable[[list[tf.Tensor]], tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """``(fixed, moved)`` one-hot maps of a batch's ``label_ids``, the moving ones warped by ``field``.

    Each channel is one label value of ``label_ids`` (``(B, S)``; -1 pads to an
    all-zero channel); the moving maps are warped by linear interpolation of
    their one-hot channels (``warp``, a ``SpatialTransformer``), so the Dice
    term has a gradient with respect to the field.
    """
    ids = batch["label_ids"]
    ndims = len(field.shape) - 2
    ids = tf.reshape(ids, tf.concat([tf.shape(ids)[:1], tf.ones([ndims], tf.int32), tf.shape(ids)[1:]], 0))

    def onehot(labels):
        return tf.cast(tf.equal(labels[..., None], ids), tf.float32)

    return onehot(batch["fixed_labels"]), warp([onehot(batch["moving_labels"]), field])


class CallSize:
    """Steps per compiled call: fixed, or sized from the measured step time ('auto')."""

    def __init__(self, steps_per_call: int | str) -> None:
        self.auto = steps_per_call == "auto"
        self.size = 1 if self.auto else int(steps_per_call)
        self.calls = 0

    def next(self) -> int:
        return self.size

    def observe(self, seconds: float, done: int) -> None:
        self.calls += 1
        if self.auto and self.calls > 1 and done > 0:  # the first call includes tracing
            per_step = seconds / done
            self.size = int(np.clip(TARGET_CALL_SECONDS / max(per_step, 1e-6), 1, MAX_STEPS_PER_CALL))


def _created_under(model, strategy):
    variables = model.trainable_weights
    return bool(variables) and getattr(variables[0], "_distribute_strategy", None) is strategy
