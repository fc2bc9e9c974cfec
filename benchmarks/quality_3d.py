"""3D training recipes on a CPU budget: validation Dice against λ and against training time.

Trains each recipe for the same wall-clock budget on the training subjects of the shared
``ixi3d`` set (80×96×80, 2 mm; a seeded 85/15 split by subject) and scores held-out pairs at full resolution, in one run:

- ``0.2 README``: the 3D recipe of version 0.2 — U-Net at full resolution, MSE (σ 0.2),
  learning rate 1e-4 with the step schedule, λ oversampled at the ends;
- ``half-res``: the U-Net on block-averaged volumes (``downsample=2``), learning rate 2e-4
  with 200 warm-up steps and a cosine decay, MSE;
- ``half-res + NCC``: the same with NCC (window 5) as the similarity;
- ``half-res + NCC + labels``: the same with label supervision (``label_weight=1``):
  :data:`hypermorph_nb.training.VOLUMES`, the 3D recipe (``pretrained:ixi-t1-2mm`` was
  trained with it).

The recipes run as FiLM (``half-res`` with ``--all``); the last also as HyperMorph
(hypernetwork; the first too with ``--all``) and as VoxelMorph baselines trained at one λ each
(0.3, 0.7), for the head-to-head at matched λ. The table
gives, per recipe, the steps the budget allowed, the validation Dice (mean over λ 0.1–0.9)
after each third of the budget, the Dice at the best λ of a λ grid, its gain over affine
only (the volumes are affinely aligned, so affine only = the unregistered pair) and the
% of folding voxels there. Dice: mean over the structures present in both label maps,
moving labels warped by nearest neighbour (:func:`hypermorph_nb.metrics.mean_dice`).

    python benchmarks/quality_3d.py                  # 6 runs × 3 minutes of training, then scoring
    python benchmarks/quality_3d.py --minutes 10     # a longer budget per run
    python benchmarks/quality_3d.py --quick          # smoke run: 2 runs, 10 s each, 2 pairs
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from hypermorph_nb.metrics import folding_fraction, mean_dice  # noqa: E402
from hypermorph_nb.training import VOLUMES  # noqa: E402
from hypermorph_nb.training.options import ValidationConfig  # noqa: E402

LAMS = (0.1, 0.3, 0.5, 0.7, 0.9)
THIRDS = 3
HALF_RES = {"downsample": VOLUMES.build_options["downsample"]}
SCHEDULE = {k: VOLUMES.train_settings[k] for k in ("learning_rate", "lr_schedule", "warmup_steps", "lam_sampling")}
RECIPES = {
    "0.2 README": ({}, {"learning_rate": 1e-4, "lr_schedule": "step", "lam_sampling": "oversample"}),
    "half-res": (HALF_RES, SCHEDULE),
    "half-res + NCC": (HALF_RES, {**SCHEDULE, "loss": VOLUMES.train_settings["loss"]}),
    "half-res + NCC + labels": (HALF_RES, {**VOLUMES.train_settings, "label_weight": VOLUMES.label_weight}),
}
#: λ of the VoxelMorph baselines trained with the 3D recipe: the head-to-head at matched λ.
BASELINE_LAMS = (0.3, 0.7)
#: (conditioning, or a baseline's λ; recipe) of each run; ``--all`` adds FiLM with ``half-res`` and HyperMorph
#: with the 0.2 recipe.
RUNS = ([("film", "0.2 README"), ("film", "half-res + NCC"), ("film", "half-res + NCC + labels"),
         ("hypernetwork", "half-res + NCC + labels")] + [(lam, "half-res + NCC + labels") for lam in BASELINE_LAMS])
MORE_RUNS = [("film", "half-res"), ("hypernetwork", "0.2 README")]


def seconds_per_step(build, train_set, options, steps=6):
    """Wall seconds per training step of a fresh model: the second epoch (the first one traces)."""
    history = hnb.train(build(), train_set, epochs=2, steps_per_epoch=steps, verbose=False, progress="none",
                        live_plot=False, **options)
    return history.epoch_seconds[-1] / steps


def final_scores(model, held_out, pairs, lams):
    """Per λ (None: a baseline's own): mean (affine Dice, Dice, % folding) over the pairs."""
    registrar = hnb.registration.Registrar.for_model(model)
    rows = {}
    for moving, fixed in pairs:
        labels, fixed_labels = held_out.labels[moving], held_out.labels[fixed]
        affine = mean_dice(labels, fixed_labels)
        for lam in lams:
            _, flow = hnb.register(model, held_out.images[moving, ..., 0], held_out.images[fixed, ..., 0], lam=lam)
            warped = registrar.warp(labels[None], flow[None], interp="nearest")[0]
            rows.setdefault(lam, []).append((affine, mean_dice(warped, fixed_labels), 100 * folding_fraction(flow)))
    return {lam: np.mean(values, axis=0) for lam, values in rows.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget of each run")
    parser.add_argument("--pairs", type=int, default=6, help="held-out pairs scored")
    parser.add_argument("--all", action="store_true", help="also FiLM half-res (MSE) and HyperMorph with the 0.2 recipe")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 runs of 10 s, 2 pairs, 24 subjects")
    args = parser.parse_args(argv)
    runs = RUNS[2:3] + RUNS[-1:] if args.quick else RUNS + (MORE_RUNS if args.all else [])
    if args.quick:
        args.minutes, args.pairs = 10 / 60, 2

    data = hnb.data.load_source("ixi3d", subset=24 if args.quick else None)
    train_set, held_out = hnb.data.random_split(data, (0.85, 0.15), seed=0)
    pairs = np.array([(2 * i, 2 * i + 1) for i in range(args.pairs)])
    rows = []
    for conditioning, name in runs:
        build_options, options = RECIPES[name]
        baseline = not isinstance(conditioning, str)
        if baseline:   # a VoxelMorph baseline at one λ, the same recipe otherwise
            options = {**{k: v for k, v in options.items() if k != "lam_sampling"}, "lam": conditioning}

        def build():
            if baseline:
                return hnb.build_vxm(data.shape, seed=0, **build_options)
            return hnb.build_hypermorph(data.shape, conditioning=conditioning, seed=0, **build_options)

        per_step = seconds_per_step(build, train_set, options)
        steps = max(THIRDS, int(args.minutes * 60 / per_step) // THIRDS * THIRDS)
        model = build()
        start = time.perf_counter()
        history = hnb.train(model, train_set, epochs=THIRDS, steps_per_epoch=steps // THIRDS, seed=0,
                            validation=ValidationConfig(held_out, pairs=pairs, lams=None if baseline else LAMS,
                                                        every=1),
                            verbose=False, progress="none", live_plot=False, **options)
        train_minutes = (time.perf_counter() - start) / 60
        scores = final_scores(model, held_out, pairs, [None] if baseline else LAMS)
        best = max(scores, key=lambda lam: scores[lam][1])
        affine, dice, folding = scores[best]
        model_name = (f"VoxelMorph λ {conditioning}" if baseline else
                      "FiLM" if conditioning == "film" else "HyperMorph")
        row = {"model": model_name, "recipe": name, "s / step": per_step, "steps": steps, "minutes": train_minutes}
        for third, epoch_dice in enumerate(history.val_dice, start=1):
            row[f"val Dice at {third}/{THIRDS}"] = float(np.mean(epoch_dice))
        row.update({"best λ": conditioning if baseline else best, "Dice": float(dice),
                    "over affine": float(dice - affine), "% folding": float(folding)})
        for lam in BASELINE_LAMS:   # the conditioned models at the baselines' λ
            row[f"Dice at λ {lam}"] = (float(dice) if conditioning == lam else float("nan")) if baseline \
                else float(scores[lam][1])
        rows.append(row)
        print(row, flush=True)

    notes = (f"Each run: {args.minutes:g} minutes of training (steps = budget / the measured s per step), "
             f"{len(train_set)} training subjects, {len(pairs)} held-out pairs {pairs.tolist()} of the "
             f"{len(held_out)} held-out subjects. 'val Dice at k/{THIRDS}': train's validation after each "
             f"third of the steps, mean over λ {list(LAMS)} (mean over the labels of the pair). Dice, over "
             "affine and % folding: at the best λ of that grid, scored at full resolution after training. "
             "FiLM: `conditioning='film'`; HyperMorph: the hypernetwork; VoxelMorph λ x: a baseline trained at "
             "that one λ with the same recipe and budget, 'Dice at λ x' its head-to-head with the "
             "λ-conditioned models at the same λ.")
    command = "python benchmarks/quality_3d.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results("quality_3d_quick" if args.quick else "quality_3d", "3D recipes on a CPU budget (ixi3d)",
                  rows, notes=notes, command=command.strip())


if __name__ == "__main__":
    main()
