"""Training steps/s of hypermorph_nb.train against the plain code paths, in 2D or 3D.

For the VoxelMorph baseline and HyperMorph, at 160×192 (``--ndim 3``: 80×96×80,
the shared IXI grid) with batch 1, in one process:

- ``train``: :func:`hypermorph_nb.train` (compiled multi-step calls, legacy Adam,
  prefetching tf.data stream), default options, no checkpoints or validation;
- ``bare step``: one compiled ``tf.function`` step (forward, backward, legacy Adam)
  called on the same pair of tensors, no input pipeline: the floor any loop adds to;
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

Run: ``python benchmarks/training_throughput.py`` (2D, 160×192),
``python benchmarks/training_throughput.py --ndim 3`` (3D, 80×96×80, ``train`` vs ``bare
step`` vs ``fit (tutorial)``), ``--shape`` for any other size, ``--quick`` for a smoke run
(results ``*_quick.md``). Every run ends with HyperMorph / baseline steps/s per path
(goal: ≥ 0.8× with ``train``).
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
from hypermorph_nb.networks.models import vxm  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
        def lam_of(y_true):  # λ is the last channel, constant over the image
            return y_true[(slice(None),) + (0,) * (len(y_true.shape) - 2) + (-1,)]

        def image_loss(y_true, y_pred):
            return vxm.losses.MSE(0.05).loss(y_true[..., :1], y_pred) * (1 - lam_of(y_true))

        def gradient_loss(y_true, y_pred):
            return vxm.losses.Grad("l2").loss(y_true, y_pred) * lam_of(y_true)
    return [image_loss, gradient_loss]


def tutorial_generator(kind, data):
    """The tutorial's generator; for HyperMorph λ is appended to the targets as a channel."""
    if kind == "vxm":
        yield from voxelmorph_generator(data, batch_size=1, seed=0)
        return
    for (moving, fixed, lam), (target, zeros) in hypermorph_generator(data, batch_size=1, seed=0):
        lam_map = np.broadcast_to(lam.reshape(-1, *[1] * (target.ndim - 1)), target.shape).astype(np.float32)
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


class BarePath:
    """One compiled step on one fixed pair (legacy Adam, the tutorial's losses), no input pipeline."""

    def __init__(self, kind, data, steps):
        build = hnb.build_vxm if kind == "vxm" else hnb.build_hypermorph
        self.model = build(data.shape, seed=0)
        self.steps = steps
        optimizer = tf.keras.optimizers.legacy.Adam(LEARNING_RATE)
        moving, fixed = tf.constant(data.images[:1]), tf.constant(data.images[1:2])
        lam = tf.constant([[BASELINE_LAMBDA]])
        inputs = [moving, fixed] if kind == "vxm" else [moving, fixed, lam]
        image_loss, smooth_loss = vxm.losses.MSE(0.05).loss, vxm.losses.Grad("l2").loss

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                moved, flow = self.model(inputs, training=True)
                loss = (1 - lam[:, 0]) * image_loss(fixed, moved) + lam[:, 0] * smooth_loss(None, flow)
                loss = tf.reduce_mean(loss)
            weights = self.model.trainable_weights
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return loss

        self.step = step
        self.run_epoch()   # tracing, then an untimed epoch as the other paths have

    def run_epoch(self):
        for _ in range(self.steps):
            loss = self.step()
        loss.numpy()

    def steps_per_second(self):
        start = time.perf_counter()
        self.run_epoch()
        return self.steps / (time.perf_counter() - start)


PATHS = {
    "train": lambda kind, data, steps: TrainPath(kind, data, steps),
    "bare": lambda kind, data, steps: BarePath(kind, data, steps),
    "fit": lambda kind, data, steps: FitPath(kind, data, tf.keras.optimizers.Adam(LEARNING_RATE), steps),
    "fit-legacy": lambda kind, data, steps: FitPath(kind, data, tf.keras.optimizers.legacy.Adam(LEARNING_RATE),
                                                    steps),
}
PATH_NAMES = {"train": "train", "bare": "bare step", "fit": "fit (tutorial)", "fit-legacy": "fit (legacy Adam)"}


def measure(kind, data, *, steps, rounds, paths):
    paths = {PATH_NAMES[name]: PATHS[name](kind, data, steps) for name in paths}
    rates = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            rates[name].append(path.steps_per_second())
    return {name: statistics.median(values) for name, values in rates.items()}, rates


TARGET_RATIO = 0.8  # issue goal: HyperMorph training at >= 0.8x the baseline's steps/s


def main(argv=None):
    args = parse_args(argv)
    data, source = benchmark_data(args.shape, args.data)
    rows = []
    train_rates = {}
    labels = {"vxm": "VoxelMorph baseline", "hypermorph": "HyperMorph"}
    for kind in args.models:
        label = labels[kind]
        medians, rates = measure(kind, data, steps=args.steps, rounds=args.rounds, paths=args.paths)
        print(kind, {name: [round(r, 3) for r in values] for name, values in rates.items()}, flush=True)
        train_rates[kind] = medians
        for name, value in medians.items():
            row = {"model": label, "path": name, "steps/s": value, "s/step": 1 / value}
            if "train" in medians:
                row["train / this"] = medians["train"] / value
            rows.append(row)
    command = "python benchmarks/training_throughput.py " + " ".join(args.argv)
    size = "×".join(map(str, args.shape))
    notes = (f"{size} images ({source}), batch 1, {args.steps} timed steps per epoch, median over "
             f"{args.rounds} epochs per path (paths alternate). 'train / this' > 1 means "
             "hypermorph_nb.train is faster than that path.")
    if len(train_rates) == 2:
        ratio = {path: train_rates["hypermorph"][path] / train_rates["vxm"][path]
                 for path in train_rates["vxm"]}
        notes += "\n\nHyperMorph / baseline steps/s: " + ", ".join(f"{path} {r:.2f}×" for path, r in ratio.items())
        if "train" in ratio:
            verdict = "met" if ratio["train"] >= TARGET_RATIO else f"missed by {TARGET_RATIO - ratio['train']:.2f}"
            notes += (f". Goal: HyperMorph at >= {TARGET_RATIO}× the baseline with train: {ratio['train']:.2f}× "
                      f"({verdict}).")
    name = "training_throughput" + ("_3d" if len(args.shape) == 3 else "") + ("_quick" if args.quick else "")
    write_results(name, f"Training throughput at {size}: train() vs the plain paths", rows,
                  notes=notes, command=command)


def benchmark_data(shape, path):
    """Sixteen images of ``shape`` and where they came from: ``path`` (resized when needed), else synthetic."""
    from hypermorph_nb.data import load_npz, resize

    if path and os.path.isfile(path):
        data = load_npz(path, subset=16)
        return (data if data.shape == shape else resize(data, shape)), os.path.basename(path)
    return synthetic(16, shape, seed=0), "synthetic"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--ndim", type=int, choices=(2, 3), default=2,
                        help="2: 160×192 slices; 3: 80×96×80 volumes (the shared IXI grid)")
    parser.add_argument("--shape", type=int, nargs="+", default=None,
                        help="image shape, 2 or 3 sides (any size; default from --ndim)")
    parser.add_argument("--data", default=None,
                        help="an .npz of images (default for 3D: ../shared/data/ixi3d/ixi3d_150.npz when "
                             "present); synthetic images when missing")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per epoch (2D 50, 3D 20)")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs per path, median (2D 5, 3D 3)")
    parser.add_argument("--models", nargs="+", choices=("vxm", "hypermorph"), default=("vxm", "hypermorph"))
    parser.add_argument("--paths", nargs="+", choices=tuple(PATHS), default=None,
                        help="paths to time (2D: all; 3D: train bare fit)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 steps, 1 round, 3D at 32×32×32 unless --shape; results *_quick.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.shape is None:
        args.shape = {2: (160, 192), 3: (32, 32, 32) if args.quick else (80, 96, 80)}[args.ndim]
    args.shape = tuple(args.shape)
    if len(args.shape) not in (2, 3):
        parser.error(f"--shape takes 2 or 3 sides, got {args.shape}")
    three_d = len(args.shape) == 3
    if args.data is None and three_d:
        args.data = os.path.join(REPO, "..", "shared", "data", "ixi3d", "ixi3d_150.npz")
    if args.quick:
        args.steps, args.rounds = args.steps or 3, args.rounds or 1
    args.steps = args.steps or (20 if three_d else 50)
    args.rounds = args.rounds or (3 if three_d else 5)
    args.paths = args.paths or (["train", "bare", "fit"] if three_d else list(PATHS))
    return args


if __name__ == "__main__":
    main()
