"""Train the pretrained λ-conditioned brain model ``pretrained:ixi-t1-2mm`` (CPU-hours).

Trains a FiLM HyperMorph on the training subjects of the shared ``ixi3d`` set (a seeded
85/15 split by subject) on block-averaged, half-resolution copies (40×48×40), with NCC,
label supervision and checkpoints in ``--work`` (run the same command again to resume
exactly). Then it wraps the trained network as a full-resolution model (``downsample=2``:
the same weights see block-averaged 80×96×80 volumes, the field is upsampled), records the
space (ixi3d's grid, the mean training image, the brain mask), scores it on the held-out
subjects at full resolution and writes the shipped folder with its model card:

    python scripts/train_pretrained.py --work runs/pretrained --epochs 60
    # then paste the printed checksums into hypermorph_nb/pretrained/registry.py

With ``--label-weight`` the model also learns γ, the label term's weight (a (λ, γ) model; its
default γ is 1, the shipped model's fixed weight), each pair drawing γ with the endpoints
oversampled (a quarter of pairs at γ = 1, a quarter at 0, the rest uniform):

    python scripts/train_pretrained.py --label-weight --name ixi-t1-2mm-lg --work runs/pretrained-lg
"""
import argparse
import dataclasses
import hashlib
import os
import pathlib
import platform
import shutil
import time

import numpy as np
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.data.sampling import LambdaSampling
from hypermorph_nb.data.sources import find_shared_ixi3d
from hypermorph_nb.metrics import folding_fraction, mean_dice
from hypermorph_nb.networks.description import ModelSpace
from hypermorph_nb.networks.hyperparameters import KNOWN
from hypermorph_nb.networks.models import describe, spec_of
from hypermorph_nb.networks.resolution import coarse_shape
from hypermorph_nb.training.run import DEFAULT_LABEL_STRUCTURES
from hypermorph_nb.training import VOLUMES
from hypermorph_nb.training.coarse import coarse_copy
from hypermorph_nb.training.options import CheckpointConfig, ValidationConfig

NAME = "ixi-t1-2mm"
SPLIT_SEED = 0
TRAIN_FRACTION = 0.85
FACTOR = VOLUMES.build_options["downsample"]
LAMS = np.round(np.linspace(0, 1, 11), 2)
REFINE = 50
REFINE_LAMS = (0.3, 0.5, 0.7)
MAX_FOLDING_PERCENT = 0.5
#: γ of a (λ, γ) model: the label term's weight over [0, 1], 1 (the shipped model's weight) by default
GAMMA = dataclasses.replace(KNOWN["label_weight"], default=1.0)
GAMMA_SAMPLING = LambdaSampling("oversample", oversample_rate=0.5)


def score(model, held_out, pairs, lams, refine=0, **hyperparameters):
    """Per λ: mean (affine Dice, Dice, % folding, seconds) over the pairs at full resolution.

    ``hyperparameters``: the values of a model's hyperparameters besides λ (γ=1.0, ...).
    """
    registrar = hnb.registration.Registrar.for_model(model)
    rows = {}
    for moving, fixed in pairs:
        labels, fixed_labels = held_out.labels[moving], held_out.labels[fixed]
        affine = mean_dice(labels, fixed_labels)
        for lam in lams:
            start = time.perf_counter()
            _, flow = hnb.register(model, held_out.images[moving, ..., 0], held_out.images[fixed, ..., 0],
                                   lam=float(lam), refine=refine, **hyperparameters)
            seconds = time.perf_counter() - start
            warped = registrar.warp(labels[None], flow[None], interp="nearest")[0]
            rows.setdefault(float(lam), []).append(
                (affine, mean_dice(warped, fixed_labels), 100 * folding_fraction(flow), seconds))
    return {lam: np.mean(values, axis=0) for lam, values in rows.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/pretrained")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=10, help="held-out pairs scored for the card")
    parser.add_argument("--name", default=NAME, help="the pretrained name (default: %(default)s)")
    parser.add_argument("--label-weight", action="store_true",
                        help="learn γ, the label term's weight, beside λ (a (λ, γ) model)")
    parser.add_argument("--out", help="the shipped folder (default: hypermorph_nb/pretrained/NAME)")
    args = parser.parse_args()
    out = pathlib.Path(args.out or pathlib.Path(hnb.__file__).parent / "pretrained" / args.name)
    hyperparameters = ("lam", GAMMA) if args.label_weight else ("lam",)
    at_gamma = {"label_weight": GAMMA.default} if args.label_weight else {}
    data = hnb.data.load_source("ixi3d")
    train_set, held_out = hnb.data.random_split(data, (TRAIN_FRACTION, 1 - TRAIN_FRACTION), seed=SPLIT_SEED)
    # the recipe's network at the U-Net's own grid, trained on block-averaged copies (see the card)
    core = VOLUMES.build(coarse_shape(data.shape, FACTOR), downsample=1, seed=0, hyperparameters=hyperparameters)
    start = time.time()
    half_train = coarse_copy(train_set, FACTOR)
    options = VOLUMES.train_options(half_train)
    if args.label_weight:  # γ is drawn per pair, not fixed
        options.pop("label_weight")
        options["hyper_sampling"] = {"label_weight": GAMMA_SAMPLING}
    history = hnb.train(
        core, half_train, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, seed=0, **options,
        checkpoints=CheckpointConfig(f"{args.work}/checkpoints", every=1), resume=True,
        validation=ValidationConfig(coarse_copy(held_out, FACTOR), pairs=8, lams=(0.1, 0.3, 0.5, 0.7, 0.9), every=5),
        progress="log", live_plot=False)
    print(f"this run trained for {time.time() - start:.0f} s", flush=True)

    model = VOLUMES.build(data.shape, seed=0, hyperparameters=hyperparameters)
    model.set_weights(core.get_weights())
    describe(model, training=spec_of(core).training, space=ModelSpace.from_dataset(train_set))
    pairs = [(2 * i, 2 * i + 1) for i in range(min(args.pairs, len(held_out) // 2))]
    per_lam = score(model, held_out, pairs, LAMS, **at_gamma)
    refined = score(model, held_out, pairs, REFINE_LAMS, refine=REFINE, **at_gamma)
    # the λ to suggest: the best refined Dice among those that fold at most MAX_FOLDING_PERCENT of voxels
    best = max((lam for lam in refined if refined[lam][2] <= MAX_FOLDING_PERCENT), key=lambda lam: refined[lam][1])

    hnb.save_model(model, out)
    shutil.copyfile(pathlib.Path(find_shared_ixi3d()).parent / "LICENSE-DATA.md", out / "LICENSE-DATA.md")
    minutes = sum(history.epoch_seconds) / 60
    table = ["| λ | Dice | over affine | % folding | s / pair |", "| --- | --- | --- | --- | --- |"]
    table += [f"| {lam:.1f} | {v[1]:.4f} | {v[1] - v[0]:+.4f} | {v[2]:.3f} | {v[3]:.2f} |"
              for lam, v in sorted(per_lam.items())]
    table += [f"| {lam:.1f}, refine={REFINE} | {v[1]:.4f} | {v[1] - v[0]:+.4f} | {v[2]:.3f} | {v[3]:.2f} |"
              for lam, v in sorted(refined.items())]
    validation = ["| step | minutes | validation Dice (half resolution, mean over λ 0.1–0.9) |",
                  "| --- | --- | --- |"]
    for epoch, dice in zip(history.val_epochs, history.val_dice):
        validation.append(f"| {epoch * args.steps_per_epoch} | "
                          f"{sum(history.epoch_seconds[:epoch]) / 60:.1f} | {np.mean(dice):.4f} |")
    settings = VOLUMES.train_settings
    (out / "README.md").write_text(CARD.format(
        machine=f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), TensorFlow {tf.__version__}",
        coarse="×".join(map(str, coarse_shape(data.shape, FACTOR))), coarse_mm=2 * FACTOR, factor=FACTOR,
        name=args.name, conditioned="(λ, γ)" if args.label_weight else "λ",
        gamma_call=f", label_weight={GAMMA.default:g}" if args.label_weight else "",
        arguments=f"--label-weight --name {args.name} " if args.label_weight else "", work=args.work,
        weight="γ" if args.label_weight else f"{VOLUMES.label_weight:g}",
        gamma_sampling=(f", γ drawn per pair ({GAMMA_SAMPLING.oversample_rate:g} of pairs at γ = 0 or 1, the rest "
                        f"U(0, 1)); scores below at γ = {GAMMA.default:g}") if args.label_weight else "",
        window=settings["loss"].ncc_window, structures=DEFAULT_LABEL_STRUCTURES,
        rate=settings["learning_rate"], warmup=settings["warmup_steps"], labels=len(data.label_values()),
        steps=spec_of(core).training.steps, minutes=minutes, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        train=len(train_set), held=len(held_out), pairs=len(pairs), affine=per_lam[best][0], best=best,
        max_folding=MAX_FOLDING_PERCENT,
        table="\n".join(table), validation="\n".join(validation), refine=REFINE,
        held_names=", ".join(held_out.names)))
    print((out / "README.md").read_text())
    print("files = {")
    for path in sorted(out.iterdir()):
        print(f'    "{path.name}": "{hashlib.sha256(path.read_bytes()).hexdigest()}",')
    print("}")


CARD = """# pretrained:{name}

A {conditioned}-conditioned (FiLM HyperMorph) deformable registration model for skull-stripped T1 brain
MRI at 2 mm, in the space of the shared `ixi3d` set: 80×96×80 voxels, RAS, the grid's affine
and a reference image (the mean training brain) and brain mask saved with it, so that raw
scans are brought to it by `hypermorph_nb.register_scans` / `hypermorph-nb register --raw`.

    model = hypermorph_nb.load_model("pretrained:{name}")
    moved, flow = hypermorph_nb.register(model, moving, fixed, lam={best:.1f}, refine={refine}{gamma_call})

## How it was trained

Command: `python scripts/train_pretrained.py {arguments}--work {work} --epochs {epochs}`
(`--steps-per-epoch {steps_per_epoch}`), on a {machine}: {steps} steps, {minutes:.0f} minutes
of training.

- Data: {train} IXI subjects of `ixi3d` (a seeded 85/15 split by subject, seed 0); the other
  {held} are held out (below). Images block-averaged to {coarse} ({coarse_mm} mm), label maps by
  the most frequent label of each block.
- Network: the 3D recipe `hnb.training.VOLUMES` (a FiLM HyperMorph) built at {coarse} and
  trained there; shipped as `VOLUMES.build((80, 96, 80))` (`downsample={factor}`) with the same
  weights: the U-Net sees block-averaged volumes, its field is upsampled to 2 mm and the moving
  image warped at full resolution.
- Loss: `(1 − λ)·(NCC(window {window}) + {weight}·(1 − Dice of ≤ {structures} warped structures)) + λ·Grad`,
  λ ~ U(0, 1){gamma_sampling}; labels shape training only, registering needs none.
- Adam, learning rate {rate:g} with {warmup} warm-up steps and a half-cosine decay to a hundredth.

Validation during training (8 held-out pairs at 4 mm):

{validation}

## What it scores

{pairs} pairs of the held-out subjects at full resolution (80×96×80); Dice: mean over the
structures present in both label maps (DLMUSE, {labels} structures in all), moving labels
warped by nearest neighbour; affine only (the unregistered pair, `ixi3d` is affinely aligned) {affine:.4f}.

{table}

Suggested: λ = {best:.1f} with `refine={refine}`, the best refined Dice of those folding at most
{max_folding:g} % of voxels (the network alone peaks at small λ: label supervision drove it).

Held-out subjects: {held_names}.

## Data terms

Trained on IXI (CC BY-SA 3.0) volumes and the SBIA-licensed DLMUSE label maps of the shared
`ixi3d` set; `LICENSE-DATA.md` (the set's terms, Part B of the SBIA licence included) travels
with these weights. Research use only.
"""


if __name__ == "__main__":
    main()
