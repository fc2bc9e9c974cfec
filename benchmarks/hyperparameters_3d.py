"""Several hyperparameters in 3D: a (λ, γ) model against the shipped λ model at γ = 1.

``pretrained:ixi-t1-2mm`` was trained with the label term at a fixed weight 1; a (λ, γ) model
(``scripts/train_pretrained.py --label-weight``: the same recipe, data, split and number of
steps, γ drawn per pair) should lose nothing at γ = 1 for having learned every γ. Both models
register the same held-out pairs of the shipped model's split (its 23 held-out subjects, pairs
drawn with a seed) at full resolution (80×96×80), λ over a grid; Dice is the mean over the
structures present in both label maps (148 DLMUSE structures, nearest-neighbour labels),
Δ = (λ, γ) model − shipped model, paired over the pairs, with its standard error. Goal: |Δ| ≤
0.005 at every λ. The (λ, γ) model is also scored at γ = 0 and 0.5, to show what γ does.

Run ``python benchmarks/hyperparameters_3d.py --help`` for the options; ``--quick`` is a smoke
run (``results/hyperparameters_3d_quick.md``).
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from hyperparameters import paired  # noqa: E402
from hypermorph_nb.checks import choose_pairs  # noqa: E402
from hypermorph_nb.evaluation.sweeps import score_pairs  # noqa: E402

#: the shipped model's split (scripts/train_pretrained.py)
SPLIT_SEED, TRAIN_FRACTION = 0, 0.85
GOAL = 0.005


def pair_dice(model, data, pairs, lam, **hyperparameters):
    """Per pair: (mean Dice over the structures present in both, % folding)."""
    scores = score_pairs(model, data, pairs=pairs, lam=lam, **hyperparameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(scores.dice, axis=1), 100 * scores.folding


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help="the (λ, γ) model: a folder written by save_model or a pretrained: name")
    parser.add_argument("--reference", default="pretrained:ixi-t1-2mm", help="the λ model it is compared with")
    parser.add_argument("--pairs", type=int, default=24, help="held-out pairs")
    parser.add_argument("--lams", type=float, nargs="+", default=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9))
    parser.add_argument("--gammas", type=float, nargs="+", default=(0.0, 0.5),
                        help="other γ at which the (λ, γ) model is scored (Dice only)")
    parser.add_argument("--quick", action="store_true", help="2 pairs, λ 0.1 and 0.5")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.lams = 2, (0.1, 0.5)

    data = hnb.data.load_source("ixi3d")
    _, held_out = hnb.data.random_split(data, (TRAIN_FRACTION, 1 - TRAIN_FRACTION), seed=SPLIT_SEED)
    pairs = choose_pairs(len(held_out), args.pairs, seed=0)
    candidate, reference = hnb.load_model(args.model), hnb.load_model(args.reference)
    names = [h.name for h in hnb.networks.spec_of(candidate).hyperparameters]
    if names != ["lam", "label_weight"]:
        raise SystemExit(f"{args.model} learns {names}, not (λ, γ) = ['lam', 'label_weight']")

    rows, worst = [], 0.0
    for lam in args.lams:
        mine, my_folding = pair_dice(candidate, held_out, pairs, lam, label_weight=1.0)
        shipped, shipped_folding = pair_dice(reference, held_out, pairs, lam)
        mean_mine, mean_shipped, delta, sem = paired(mine, shipped)
        worst = max(worst, abs(delta))
        row = {"λ": lam, "shipped Dice": mean_shipped, "(λ, γ) Dice at γ=1": mean_mine,
               "Δ ± s.e.": f"{delta:+.4f} ± {sem:.4f}", f"within {GOAL}": "yes" if abs(delta) <= GOAL else "no",
               "% folding shipped": float(shipped_folding.mean()), "% folding (λ, γ)": float(my_folding.mean())}
        for gamma in args.gammas:
            row[f"(λ, γ) Dice at γ={gamma:g}"] = float(pair_dice(candidate, held_out, pairs, lam,
                                                                 label_weight=gamma)[0].mean())
        rows.append(row)
        print(row, flush=True)

    name = "hyperparameters_3d_quick" if args.quick else "hyperparameters_3d"
    notes = (f"{len(pairs)} ordered pairs of the {len(held_out)} held-out subjects of the shipped model's split "
             f"(seed {SPLIT_SEED}), 80×96×80, 148 structures; `{args.model}` against `{args.reference}`. "
             f"Largest |Δ| over λ: {worst:.4f} (goal ≤ {GOAL}: {'met' if worst <= GOAL else 'not met'}).")
    command = "python benchmarks/hyperparameters_3d.py " + " ".join(sys.argv[1:])
    write_results(name, "A (λ, γ) model at γ = 1 against the shipped λ model (3D, held-out ixi3d)", rows,
                  notes=notes, command=command)


if __name__ == "__main__":
    main()
