"""Training steps/s of hypermorph_nb.train against the seed tutorial's model.fit path.

For the VoxelMorph baseline and HyperMorph, at 160×192 with batch 1, in one process:

- ``train``: :func:`hypermorph_nb.train` (compiled multi-step calls, legacy Adam,
  prefetching tf.data stream), default options, no checkpoints or validation;
- ``fit (tutorial)``: ``model.compile(tf.keras.optimizers.Adam(1e-4), losses)`` +
  ``model.fit`` on the tutorial's Python generator, the seed tutorial's code path.
  For HyperMorph λ reaches the Keras losses through ``y_true`` (an extra channel),
  because the tutorial's closure over the symbolic λ input fails in eager mode;
- ``fit (legacy Adam)``: the same with ``tf.keras.optimizers.legacy.Adam``, the
  optimizer ``train`` uses, to separate the loop from the optimizer.

Every path first runs one untimed epoch (tracing), then each of ``--rounds`` rounds
times one epoch of ``--steps`` steps per path, the paths taking turns, so that
load from other processes spreads over all of them. An epoch is timed from its
first to its last step (``History.epoch_seconds``; a Keras callback for ``fit``),
without per-call set-up. Figures are medians over rounds.

Run: ``python benchmarks/training_throughput.py`` (``--steps 10 --rounds 2`` for a quick check).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from hypermorph_nb.data import hypermorph_generator, synthetic, voxelmorph_generator  # noqa: E402
from hypermorph_nb.models import vxm  # noqa: E402

LEARNING_RATE = 1e-4
BASELINE_LAMBDA = 0.5


def tutorial_losses(kind):
    """The tutorial's two Keras losses; HyperMorph's read λ from the last channel of y_true."""
    if kind == "vxm":
        def image_loss(y_true, y_pred):
            return vxm.losses.MSE(0.1).loss(y_true, y_pred) * (1 - BASELINE_LAMBDA)

        def gradient_loss(y_true, y_pred):
            return vxm.losses.Grad("l2").loss(y_true, y_pred) * BASELINE_LAMBDA
    else:
        def image_loss(y_true, y_pred):
            lam = y_true[:, 0, 0, -1]
            return vxm.losses.MSE(0.05).loss(y_true[..., :1], y_pred) * (1 - lam)

        def gradient_loss(y_true, y_pred):
            lam = y_true[:, 0, 0, -1]
            return vxm.losses.Grad("l2").loss(y_true, y_pred) * lam
    return [image_loss, gradient_loss]


def tutorial_generator(kind, data):
    """The tutorial's generator; for HyperMorph λ is appended to the targets as a channel."""
    if kind == "vxm":
        yield from voxelmorph_generator(data, batch_size=1, seed=0)
        return
    for (moving, fixed, lam), (target, zeros) in hypermorph_generator(data, batch_size=1, seed=0):
        lam_map = np.broadcast_to(lam[:, :, None, None], target.shape).astype(np.float32)
        yield (moving, fixed, lam), (np.concatenate([target, lam_map], -1), zeros + lam_map)


class FitPath:
    """model.compile + model.fit on the tutorial generator, one timed epoch per call."""

    def __init__(self, kind, data, optimizer, steps):
        build = hnb.build_vxm if kind == "vxm" else hnb.build_hypermorph
        self.model = build(data.shape, seed=0)
        self.model.compile(optimizer=optimizer, loss=tutorial_losses(kind))
        self.generator = tutorial_generator(kind, data)
        self.steps = steps
        self.model.fit(self.generator, epochs=1, steps_per_epoch=steps, verbose=0)   # tracing

    def steps_per_second(self):
        timer = EpochTimer()
        self.model.fit(self.generator, epochs=1, steps_per_epoch=self.steps, verbose=0, callbacks=[timer])
        return self.steps / timer.seconds


class EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of the epoch itself (like History.epoch_seconds), without fit's set-up."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


class TrainPath:
    """hypermorph_nb.train: epoch 1 traces, epoch 2 is timed (``History.epoch_seconds``)."""

    def __init__(self, kind, data, steps):
        build = hnb.build_vxm if kind == "vxm" else hnb.build_hypermorph
        self.model = build(data.shape, seed=0)
        self.data = data
        self.steps = steps

    def steps_per_second(self):
        history = hnb.train(self.model, self.data, epochs=2, steps_per_epoch=self.steps,
                            learning_rate=LEARNING_RATE, verbose=False)
        return self.steps / history.epoch_seconds[-1]


def measure(kind, data, *, steps, rounds):
    paths = {
        "train": TrainPath(kind, data, steps),
        "fit (tutorial)": FitPath(kind, data, tf.keras.optimizers.Adam(LEARNING_RATE), steps),
        "fit (legacy Adam)": FitPath(kind, data, tf.keras.optimizers.legacy.Adam(LEARNING_RATE), steps),
    }
    rates = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            rates[name].append(path.steps_per_second())
    return {name: statistics.median(values) for name, values in rates.items()}, rates


TARGET_RATIO = 0.8  # issue goal: HyperMorph training at >= 0.8x the baseline's steps/s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(160, 192))
    parser.add_argument("--steps", type=int, default=50, help="timed steps per epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per path (median)")
    parser.add_argument("--models", nargs="+", choices=("vxm", "hypermorph"), default=("vxm", "hypermorph"))
    args = parser.parse_args(argv)
    data = synthetic(16, tuple(args.shape), seed=0)
    rows = []
    train_rates = {}
    labels = {"vxm": "VoxelMorph baseline", "hypermorph": "HyperMorph"}
    for kind in args.models:
        label = labels[kind]
        medians, rates = measure(kind, data, steps=args.steps, rounds=args.rounds)
        print(kind, {name: [round(r, 2) for r in values] for name, values in rates.items()}, flush=True)
        train_rates[kind] = medians
        for name, value in medians.items():
            rows.append({
                "model": label, "path": name, "steps/s": value,
                "train / this": medians["train"] / value,
            })
    command = "python benchmarks/training_throughput.py " + " ".join(
        f"--{k} {' '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in vars(args).items())
    notes = (f"{args.shape[0]}×{args.shape[1]} synthetic images, batch 1, {args.steps} timed steps per "
             f"epoch, median over {args.rounds} epochs per path (paths alternate). 'train / this' > 1 "
             "means hypermorph_nb.train is faster than that path.")
    if len(train_rates) == 2:
        ratio = {path: train_rates["hypermorph"][path] / train_rates["vxm"][path]
                 for path in train_rates["vxm"]}
        verdict = "met" if ratio["train"] >= TARGET_RATIO else f"missed by {TARGET_RATIO - ratio['train']:.2f}"
        notes += ("\n\nHyperMorph / baseline steps/s: " + ", ".join(f"{path} {r:.2f}×" for path, r in ratio.items())
                  + f". Goal: HyperMorph at >= {TARGET_RATIO}× the baseline with train: {ratio['train']:.2f}× "
                  f"({verdict}).")
    write_results("training_throughput", "Training throughput: train() vs the tutorial's model.fit", rows,
                  notes=notes, command=command)


if __name__ == "__main__":
    main()
