"""λ chosen by gradient (``optimize_lambda``) against a fine grid sweep, overall and per structure.

Trains the default HyperMorph on the OASIS 2D slices (train/validation split by
subject) with the README's recipe, sweeps a fine λ grid on validation pairs
(``lambda_sweep``: Dice of nearest-neighbour warped label maps), then runs
``optimize_lambda`` (soft Dice of linearly warped one-hot maps: a coarse sweep
of 5 λ, then the gradient from the best of them) on the same pairs for the mean
Dice and for every structure, and prints per
target: both optima, how many grid steps apart, the grid's Dice at each (so
"Dice lost" is what choosing λ by gradient costs in the sweep's own metric),
how many grid λ score within one standard error of the best (how flat the
curve is, i.e. how well-defined its optimum is), and the registrations each
needed.

Run: ``python benchmarks/lambda_tuning.py`` (about 6 minutes on 2 cores);
``--quick`` for a smoke run.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import markdown_table, write_results  # noqa: E402
from hypermorph_nb.data import load_npz, random_split, resize  # noqa: E402
from hypermorph_nb.checks import choose_pairs  # noqa: E402
from hypermorph_nb.evaluation.results import sem_over_pairs, label_index  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "oasis2d", "oasis2d_300.npz")


def score_target(sweep, label, found):
    """One row: the grid's and the gradient's optimum for ``label`` (None: mean Dice)."""
    optimum = sweep.optimum(label)
    per_pair = sweep.pair_dice if label is None else sweep.dice[:, :, label_index(sweep.labels, label)]
    best = int(np.nanargmax(optimum.curve))
    at_found = int(np.argmin(np.abs(sweep.lams - found.lam)))
    sem = float(sem_over_pairs(per_pair)[best])
    step = float(sweep.lams[1] - sweep.lams[0])
    return {"target": "mean Dice" if label is None else optimum.name,
            "pairs": int(np.sum(np.isfinite(per_pair[best]))), "grid λ*": optimum.lam,
            "gradient λ*": found.lam, "steps apart": abs(found.lam - optimum.lam) / step,
            "Dice at grid λ*": optimum.score, "Dice at gradient λ*": float(optimum.curve[at_found]),
            "Dice lost": float(optimum.score - optimum.curve[at_found]), "s.e. at grid λ*": sem,
            "grid λ within 1 s.e.": int(np.sum(optimum.curve >= optimum.score - sem)),
            "gradient calls": found.model_calls}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--shape", type=int, nargs=2, default=(80, 96))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--grid-step", type=float, default=0.025)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="64×64, 1 epoch of 100 steps, 8 pairs, step 0.1")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.shape, args.epochs, args.steps_per_epoch, args.pairs, args.grid_step = (64, 64), 1, 100, 8, 0.1
    name = args.name or ("lambda_tuning_quick" if args.quick else "lambda_tuning")

    data = load_npz(args.data)
    if tuple(args.shape) != data.shape:
        data = resize(data, args.shape)
    train, validation = random_split(data, (0.8, 0.2), seed=args.seed)
    model = hnb.build_hypermorph(train.shape, seed=args.seed)
    hnb.train(model, train, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, learning_rate=1e-3,
              lr_schedule="step", seed=args.seed, verbose=False, progress="none", live_plot=False)
    pairs = choose_pairs(len(validation), args.pairs, seed=args.seed + 1)
    grid = np.round(np.arange(0.0, 1.0 + args.grid_step / 2, args.grid_step), 4)
    start = time.perf_counter()
    sweep = hnb.lambda_sweep(model, validation, grid, pairs=pairs, progress=False)
    grid_seconds = time.perf_counter() - start

    rows, seconds = [], []
    targets = [None] + [int(label) for label in sweep.labels
                        if int(label) in sweep.optimal_lam_per_label]
    for label in targets:
        start = time.perf_counter()
        found = hnb.optimize_lambda(model, validation, pairs=pairs, label=label)
        seconds.append(time.perf_counter() - start)
        rows.append(score_target(sweep, label, found))
        print(rows[-1], flush=True)

    structures = rows[1:]
    summary = [{"target": "mean Dice", "grid calls": len(grid) * len(pairs),
                "gradient calls": rows[0]["gradient calls"], "grid s": grid_seconds,
                "gradient s": seconds[0], "steps apart": rows[0]["steps apart"],
                "Dice lost": rows[0]["Dice lost"], "within 1 step": int(rows[0]["steps apart"] <= 1 + 1e-9),
                "within 1 s.e. of the best": int(rows[0]["Dice lost"] <= rows[0]["s.e. at grid λ*"])},
               {"target": f"{len(structures)} structures, one at a time", "grid calls": len(grid) * len(pairs),
                "gradient calls": float(np.mean([r["gradient calls"] for r in structures])),
                "grid s": grid_seconds, "gradient s": float(np.mean(seconds[1:])),
                "steps apart": float(np.median([r["steps apart"] for r in structures])),
                "Dice lost": float(np.mean([r["Dice lost"] for r in structures])),
                "within 1 step": sum(r["steps apart"] <= 1 + 1e-9 for r in structures),
                "within 1 s.e. of the best": sum(r["Dice lost"] <= r["s.e. at grid λ*"] for r in structures)}]
    notes = (f"Summary (structures: gradient calls and seconds are per structure, steps apart is the "
             f"median, Dice lost the mean; max Dice lost {max(r['Dice lost'] for r in structures):.4f}):\n\n"
             + markdown_table(summary)
             + f"\nSetting: {os.path.basename(args.data)} at {tuple(args.shape)}, {len(train)} training / "
             f"{len(validation)} validation subjects; default HyperMorph, {args.epochs}×{args.steps_per_epoch} "
             f"steps, lr 1e-3 with step decay; {len(pairs)} validation pairs; grid step {args.grid_step}. "
             "The sweep scores nearest-neighbour warped label maps; optimize_lambda maximises the soft "
             "Dice of linearly warped one-hot maps, so where a curve is flat (many grid λ within one "
             "standard error of the best) the two can pick λ several steps apart at equal Dice.")
    write_results(name, "λ by gradient vs a fine grid sweep (per target)", rows, notes=notes,
                  command="python benchmarks/lambda_tuning.py " + " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
