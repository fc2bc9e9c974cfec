"""Train a baseline or HyperMorph model on a dataset with one call."""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from .data.dataset import Dataset
from .data.generators import PairBatches
from .data.sampling import LambdaSampling
from .losses import LossConfig, weighted_terms
from .models import spec_of

#: λ of the seed tutorial's baseline.
DEFAULT_BASELINE_LAMBDA = 0.5


@dataclasses.dataclass
class History:
    """Per-epoch training record returned by :func:`train`.

    Attributes
    ----------
    loss, image, smooth : list of float
        Epoch means of the total loss and of its two unweighted terms.
    epoch_seconds : list of float
        Wall time of each epoch.
    config : dict
        The training settings (JSON-serialisable).
    model : tf.keras.Model
        The trained model (trained in place).
    """

    loss: list = dataclasses.field(default_factory=list)
    image: list = dataclasses.field(default_factory=list)
    smooth: list = dataclasses.field(default_factory=list)
    epoch_seconds: list = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)
    model: object = None

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(self.loss)

    def steps_per_second(self):
        """Mean training throughput over the recorded epochs."""
        seconds = sum(self.epoch_seconds)
        steps = self.config.get("steps_per_epoch", 0) * len(self.epoch_seconds)
        return steps / seconds if seconds else float("nan")


def train(model, data, *, epochs, steps_per_epoch, learning_rate=1e-4, lam=None,
          lam_sampling="uniform", image_loss="mse", image_sigma=0.05, batch_size=1, seed=0,
          verbose=True):
    """Train ``model`` on random pairs of ``data`` with the λ-weighted loss.

    Parameters
    ----------
    model : tf.keras.Model
        From :func:`hypermorph_nb.build_vxm` or :func:`hypermorph_nb.build_hypermorph`.
    data : Dataset or np.ndarray
        Training images ``(N, H, W, 1)``.
    epochs, steps_per_epoch : int
        Training length.
    learning_rate : float
        Adam learning rate.
    lam : float, optional
        Baseline only: the fixed λ (default 0.5, the tutorial's).
    lam_sampling : str, dict or LambdaSampling
        HyperMorph only: how λ is drawn per pair (see
        :class:`hypermorph_nb.data.LambdaSampling`).
    image_loss : {'mse', 'ncc'}
    image_sigma : float
        σ of the MSE term.
    batch_size : int
    seed : int
        Seed of the pair/λ stream.
    verbose : bool
        Print one line per epoch.

    Returns
    -------
    History
    """
    spec = spec_of(model)
    epochs, steps_per_epoch = int(epochs), int(steps_per_epoch)
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(f"epochs and steps_per_epoch must be >= 1, got {epochs} and {steps_per_epoch}")
    images = data.images if isinstance(data, Dataset) else np.asarray(data, np.float32)
    if images.shape[1:-1] != spec.inshape:
        raise ValueError(
            f"images have shape {images.shape[1:-1]} but the model was built for {spec.inshape}; "
            "build the model with inshape=data.shape")
    loss_config = LossConfig(image_loss=image_loss, image_sigma=image_sigma)
    if spec.is_hypermorph:
        if lam is not None:
            raise ValueError("HyperMorph learns every λ at once; pass lam_sampling, not lam")
        sampling = LambdaSampling.coerce(lam_sampling)
        fixed_lam = None
    else:
        sampling = None
        fixed_lam = DEFAULT_BASELINE_LAMBDA if lam is None else float(lam)
        if not 0.0 <= fixed_lam <= 1.0:
            raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    batches = PairBatches(images, batch_size=batch_size, seed=seed, lam_sampling=sampling)
    optimizer = tf.keras.optimizers.legacy.Adam(learning_rate)
    step_fn = _make_train_step(model, optimizer, loss_config, spec.is_hypermorph, fixed_lam)
    history = History(
        config={
            "kind": spec.kind, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "learning_rate": learning_rate, "lam": fixed_lam,
            "lam_sampling": None if sampling is None else sampling.to_json(),
            "loss": dataclasses.asdict(loss_config), "batch_size": batch_size, "seed": seed,
        },
        model=model,
    )
    iterator = iter(batches.dataset(0, epochs * steps_per_epoch))
    for epoch in range(epochs):
        start = time.perf_counter()
        sums = np.zeros(3)
        for _ in range(steps_per_epoch):
            terms = step_fn(next(iterator))
            sums += [float(terms["total"]), float(terms["image"]), float(terms["smooth"])]
        history.epoch_seconds.append(time.perf_counter() - start)
        for name, value in zip(("loss", "image", "smooth"), sums / steps_per_epoch):
            getattr(history, name).append(float(value))
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  loss {history.loss[-1]:.4g}  "
                  f"image {history.image[-1]:.4g}  smooth {history.smooth[-1]:.4g}  "
                  f"{steps_per_epoch / history.epoch_seconds[-1]:.1f} steps/s")
    return history


def _make_train_step(model, optimizer, loss_config, is_hypermorph, fixed_lam):
    """A compiled step: forward, λ-weighted loss, gradients, Adam update."""

    @tf.function
    def step(batch):
        moving, fixed = batch["moving"], batch["fixed"]
        if is_hypermorph:
            lam = batch["lam"]
            inputs = [moving, fixed, lam]
        else:
            lam = tf.fill([tf.shape(moving)[0]], fixed_lam)
            inputs = [moving, fixed]
        with tf.GradientTape() as tape:
            moved, flow = model(inputs, training=True)
            terms = weighted_terms(fixed, moved, flow, lam, loss_config)
            loss = tf.reduce_mean(terms["total"])
        gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return {name: tf.reduce_mean(value) for name, value in terms.items()}

    return step
