"""Several hyperparameters: one (λ, γ) model against a 3×3 grid of separately trained models.

On the OASIS 2D slices (split by subject, as ``amortization.py``), labels of half of the 24
structures (the odd label values, :data:`SUPERVISED`) are given to training: the label maps
that training sees keep those and set the others to 0. One FiLM model conditioned on λ
(smoothness) and γ (the label term's weight, ``hyperparameters=("lam", "label_weight")``)
trains with both drawn uniformly per pair; nine VoxelMorph models train at the nine (λ, γ)
points of a grid with ``train(..., lam=λ, label_weight=γ)``, the same recipe, σ and learning-rate
schedule. All are scored on the same held-out pairs against all 24 structures: mean Dice over
the supervised structures and over the unsupervised ones separately, and % folding, at every
grid point; Δ = one model − separate model, paired over the pairs. Training wall time is
measured for each model.

Run ``python benchmarks/hyperparameters.py --help`` for the options; ``--quick`` is a smoke
run of a few minutes (``results/hyperparameters_quick.md``), the defaults fit a shared 2-core CPU.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from amortization import DEFAULT_DATA, load_data, train_scheduled  # noqa: E402
from common import RESULTS_DIR, markdown_table, write_results  # noqa: E402
from hypermorph_nb.checks import choose_pairs  # noqa: E402
from hypermorph_nb.evaluation.sweeps import identity_scores, score_pairs  # noqa: E402

#: the label values whose maps training sees (every other one of the 24: both hemispheres,
#: every kind of structure); the even values are the unsupervised structures
SUPERVISED = tuple(range(1, 25, 2))


def supervised_only(data, supervised):
    """``data`` with every label value outside ``supervised`` set to 0 (background)."""
    labels = np.where(np.isin(data.labels, supervised), data.labels, 0).astype(data.labels.dtype)
    return dataclasses.replace(data, labels=labels)


def group_dice(dice, columns):
    """Per pair, the mean Dice over the structures of ``columns`` present in both images."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pair with none of the group: NaN
        return np.nanmean(dice[:, columns], axis=1)


def paired(candidate, reference):
    """(mean of candidate, mean of reference, mean paired difference, its standard error)."""
    finite = np.isfinite(candidate) & np.isfinite(reference)
    difference = candidate[finite] - reference[finite]
    sem = difference.std(ddof=1) / np.sqrt(difference.size) if difference.size > 1 else float("nan")
    return (float(candidate[finite].mean()), float(reference[finite].mean()), float(difference.mean()),
            float(sem))


def score(model, validation, pairs, labels, **hyperparameters):
    """(Dice ``(pairs, structures)``, folding ``(pairs,)``) of one model at one grid point."""
    scores = score_pairs(model, validation, pairs=pairs, labels=labels, **hyperparameters)
    return scores.dice, scores.folding


def main(argv=None):
    args = parse_args(argv)
    train, validation = load_data(args)
    train = supervised_only(train, SUPERVISED)
    pairs = choose_pairs(len(validation), args.val_pairs, seed=args.seed + 1)
    labels = np.arange(1, 25)
    sup = np.isin(labels, SUPERVISED)
    grid = [(float(lam), float(gamma)) for lam in args.lams for gamma in args.gammas]
    print(f"{len(train)} training and {len(validation)} validation subjects at {train.shape}, "
          f"{len(pairs)} validation pairs, grid λ {args.lams} × γ {args.gammas}, σ={args.sigma}", flush=True)
    common = {"label_structures": len(SUPERVISED)}

    separate, separate_seconds, separate_wall, records = {}, {}, {}, {}
    for lam, gamma in grid:
        model = hnb.build_vxm(train.shape, seed=args.seed)
        seconds, steps, record, wall = train_scheduled(
            model, train, validation, pairs, steps=args.separate_steps, sigma=args.sigma, args=args,
            lam=lam, label_weight=gamma, **common)
        separate_seconds[lam, gamma], separate_wall[lam, gamma] = seconds, wall
        records[f"separate λ={lam} γ={gamma}"] = record
        separate[lam, gamma] = score(model, validation, pairs, labels)
        print(f"separate λ={lam} γ={gamma}: {steps} steps, {seconds:.0f} s training ({wall:.0f} s with "
              f"validation)", flush=True)
    separate_steps = steps

    model = hnb.build_hypermorph(train.shape, conditioning="film", seed=args.seed,
                                 hyperparameters=("lam", "label_weight"))
    one_seconds, one_steps, one_record, one_wall = train_scheduled(
        model, train, validation, pairs, steps=args.one_steps, sigma=args.sigma, args=args,
        lam_sampling="uniform", hyper_sampling={"label_weight": "uniform"},
        validation_lams=[float(lam) for lam in args.lams], **common)
    records["one (λ, γ) model"] = one_record
    print(f"one (λ, γ) model: {one_steps} steps, {one_seconds:.0f} s training ({one_wall:.0f} s with "
          f"validation)", flush=True)
    start = time.perf_counter()
    one = {(lam, gamma): score(model, validation, pairs, labels, lam=lam, label_weight=gamma)
           for lam, gamma in grid}
    one_score_seconds = time.perf_counter() - start
    identity = identity_scores(validation, pairs=pairs, labels=labels).dice

    report(args, grid, separate, one, sup, identity, separate_steps, one_steps,
           separate_seconds, separate_wall, one_seconds, one_wall, one_score_seconds, records,
           len(train), len(validation), len(pairs))


def levelling(records):
    """Validation Dice (all structures, mean over validation λ) at a half, three quarters and the end."""
    rows = []
    for name, record in records.items():
        row = {"model": name}
        for fraction in (0.5, 0.75, 1.0):
            entry = record[max(0, round(fraction * len(record)) - 1)]
            row[f"at {fraction:.0%} of its steps"] = float(np.mean(entry["dice"]))
        rows.append(row)
    return rows


def report(args, grid, separate, one, sup, identity, separate_steps, one_steps, separate_seconds,
           separate_wall, one_seconds, one_wall, one_score_seconds, records, n_train, n_validation,
           n_pairs):
    rows, deltas = [], []
    for point in grid:
        row = {"λ": point[0], "γ": point[1]}
        for name, columns in (("sup", sup), ("unsup", ~sup)):
            mine, theirs, delta, sem = paired(group_dice(one[point][0], columns),
                                              group_dice(separate[point][0], columns))
            row.update({f"separate {name}": theirs, f"one {name}": mine, f"Δ {name}": delta,
                        f"± s.e. {name}": sem})
            deltas.append(delta)
        row["separate fold %"] = float(100 * separate[point][1].mean())
        row["one fold %"] = float(100 * one[point][1].mean())
        rows.append(row)
    rows.append({"λ": "no registration", "γ": "",
                 "separate sup": float(np.nanmean(group_dice(identity, sup))),
                 "one sup": "", "Δ sup": "", "± s.e. sup": "",
                 "separate unsup": float(np.nanmean(group_dice(identity, ~sup)))})

    nine = sum(separate_seconds.values())
    nine_wall = sum(separate_wall.values())
    worst = float(np.max(np.abs(deltas)))
    held = sum(abs(d) <= args.goal for d in deltas)

    def best(scores, columns):
        means = [np.nanmean(group_dice(scores[point][0], columns)) for point in grid]
        return grid[int(np.nanargmax(means))]

    optima = [{"structures": name, "separate (λ, γ)*": best(separate, columns),
               "one model (λ, γ)*": best(one, columns)}
              for name, columns in (("supervised", sup), ("unsupervised", ~sup))]
    summary = [{
        "models": f"{len(grid)} separate VoxelMorph", "steps each": separate_steps,
        "training s": round(nine), "wall s (with validation)": round(nine_wall), "time / nine": 1.0,
    }, {
        "models": "one (λ, γ) FiLM", "steps each": one_steps, "training s": round(one_seconds),
        "wall s (with validation)": round(one_wall), "time / nine": one_seconds / nine,
    }]
    names = ", ".join(str(v) for v in SUPERVISED)
    notes = f"""
Setting: OASIS 2D slices `{os.path.basename(args.data)}` at {tuple(args.shape)} ({n_train} training /
{n_validation} validation subjects, split by subject, seed {args.seed}); {n_pairs} validation pairs, the
same for every model and grid point. Training label maps keep the 12 supervised structures (label
values {names}: every other one of the 24, both hemispheres) and set the other 12 to 0. All models:
MSE with σ={args.sigma}, loss `(1 − λ)(MSE/σ² + γ·(1 − soft Dice)) + λ·smoothness`, Adam at lr
{args.learning_rate}, the last {args.decay_fraction:.0%} of each run at lr × {args.decay_factor}
(`StepDecay`), batch {args.batch_size}, validated every {args.steps_per_epoch} steps. Separate models:
`hnb.build_vxm` trained with `lam=λ, label_weight=γ`, {separate_steps} steps each; one model:
`hnb.build_hypermorph(shape, conditioning="film", hyperparameters=("lam", "label_weight"))`,
λ and γ drawn uniformly over [0, 1] per pair, {one_steps} steps.

Dice: per pair the mean over the structures of the group present in both images (scored against all
24 held-out label maps), then the mean over pairs; "sup" = the 12 supervised structures, "unsup" =
the 12 others. Δ = one model − separate model, paired over the same pairs, ± its standard error.
Goal: |Δ| ≤ {args.goal} at every point for both groups: {held}/{len(deltas)} held, largest |Δ| {worst:.4f}.

Training time (steps only, validation during training excluded) and wall time measured per model in
this run: the one model took {one_seconds / nine:.3f} of the nine models' training time
({one_wall / nine_wall:.3f} of their wall time); scoring it at the nine points took {one_score_seconds:.0f} s.

{markdown_table(summary)}
Best grid point per structure group (mean Dice over the group)

{markdown_table(optima)}
Levelling off: validation Dice during training (all 24 structures, the same pairs; the one model
at γ = 0.5, its default, averaged over the grid's λ)

{markdown_table(levelling(records))}"""
    command = "python benchmarks/hyperparameters.py " + " ".join(
        sys.argv[1:] if args.argv is None else args.argv)
    path = write_results(args.name, "Several hyperparameters: one (λ, γ) model vs nine separately trained models",
                         rows, notes=notes, command=command)
    print(f"wrote {path}")
    with open(os.path.join(RESULTS_DIR, f"{args.name}.json"), "w") as handle:
        json.dump({"args": {k: v for k, v in vars(args).items()}, "supervised": SUPERVISED,
                   "rows": rows, "separate_seconds": {str(k): v for k, v in separate_seconds.items()},
                   "one_seconds": one_seconds, "one_wall": one_wall, "separate_wall": nine_wall},
                  handle, indent=1, default=float)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="OASIS 2D .npz with segs and subjects")
    parser.add_argument("--shape", type=int, nargs=2, default=(80, 96),
                        help="image size (H W); images resized linearly, labels by nearest")
    parser.add_argument("--lams", type=float, nargs="+", default=(0.2, 0.5, 0.8), help="the λ of the grid")
    parser.add_argument("--gammas", type=float, nargs="+", default=(0.0, 0.5, 1.0), help="the γ of the grid")
    parser.add_argument("--sigma", type=float, default=0.1, help="image-noise σ of every model")
    parser.add_argument("--separate-steps", type=int, default=5000, help="training steps per separate model")
    parser.add_argument("--one-steps", type=int, default=12000, help="training steps of the (λ, γ) model")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decay-fraction", type=float, default=0.25,
                        help="share of the steps trained at the decayed learning rate")
    parser.add_argument("--decay-factor", type=float, default=0.1)
    parser.add_argument("--steps-per-epoch", type=int, default=1000, help="steps between validations")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--val-pairs", type=int, default=64)
    parser.add_argument("--goal", type=float, default=0.01, help="the largest |Δ Dice| the claim allows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100/250 steps, 16 pairs")
    parser.add_argument("--name", default=None,
                        help="results/<name>.md (default hyperparameters or hyperparameters_quick)")
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    args = parser.parse_args(argv)
    args.argv = argv
    given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
    if args.quick:
        for key, value in {"separate_steps": 100, "one_steps": 250, "steps_per_epoch": 50,
                           "val_pairs": 16}.items():
            if "--" + key.replace("_", "-") not in given:
                setattr(args, key, value)
    if args.name is None:
        args.name = "hyperparameters" + ("_quick" if args.quick else "")
    if not os.path.isfile(args.data):
        parser.error(f"--data {args.data} not found; point it at oasis2d_300.npz")
    if not all(0 <= v <= 1 for v in (*args.lams, *args.gammas)):
        parser.error("--lams and --gammas must lie in [0, 1] (the ranges the (λ, γ) model is trained over)")
    return args


if __name__ == "__main__":
    main()
