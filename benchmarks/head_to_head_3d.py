"""3D head-to-head at matched λ: one λ-conditioned model against VoxelMorph models trained per λ.

HyperMorph's promise is that one network conditioned on λ registers as well, at each λ, as
a VoxelMorph network trained for that λ alone. This trains, for the same number of steps
each, with the 3D recipe (:data:`hypermorph_nb.training.VOLUMES`: the U-Net at half
resolution, NCC, label supervision, warm-up and cosine decay):

- FiLM (the recipe's λ-conditioned network) and HyperMorph (the hypernetwork), λ ~ U(0, 1);
- VoxelMorph baselines at λ 0.3 and at λ 0.7, the same network without conditioning;

on the training subjects of the shared ``ixi3d`` set (the seeded 85/15 split by subject of
``scripts/train_pretrained.py``, so ``pretrained:ixi-t1-2mm``'s held-out subjects are held out
here too), each at the U-Net's own grid on block-averaged copies
(:func:`hypermorph_nb.training.coarse.coarse_copy`), then scores every model at full
resolution on the same held-out pairs at λ 0.3 and 0.7. Dice: mean over the structures
present in both label maps, moving labels warped by nearest neighbour
(:func:`hypermorph_nb.metrics.mean_dice`). The shipped ``pretrained:ixi-t1-2mm``
(the same recipe, more steps) is scored on the same pairs as a last row.

Checkpoints go to ``--work`` (run the same command again to resume), the table to
``benchmarks/results/head_to_head_3d.md`` after each model:

    python benchmarks/head_to_head_3d.py                     # 4000 steps per model
    python benchmarks/head_to_head_3d.py --models film vxm0.3 vxm0.7
    python benchmarks/head_to_head_3d.py --models hypernetwork --results head_to_head_3d_hypermorph
    python benchmarks/head_to_head_3d.py --quick             # smoke run: 20 steps, 2 pairs
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from quality_3d import final_scores  # noqa: E402
from hypermorph_nb.networks.resolution import coarse_shape  # noqa: E402
from hypermorph_nb.training import VOLUMES  # noqa: E402
from hypermorph_nb.training.coarse import coarse_copy  # noqa: E402
from hypermorph_nb.training.options import CheckpointConfig  # noqa: E402

#: The pretrained model's split (``scripts/train_pretrained.py``).
SPLIT_SEED, TRAIN_FRACTION = 0, 0.85
FACTOR = VOLUMES.build_options["downsample"]
LAMS = (0.3, 0.7)
MODELS = {"film": "FiLM", "hypernetwork": "HyperMorph", "vxm0.3": "VoxelMorph λ 0.3", "vxm0.7": "VoxelMorph λ 0.7"}


def build(model, shape, downsample):
    """The recipe's network of ``model`` (a key of MODELS) at ``shape``."""
    if model.startswith("vxm"):
        return hnb.build_vxm(shape, downsample=downsample, seed=0)
    return VOLUMES.build(shape, conditioning=model, downsample=downsample, seed=0)


def train_options(model, data):
    options = VOLUMES.train_options(data)
    if model.startswith("vxm"):   # one λ, the recipe otherwise
        options = {**{k: v for k, v in options.items() if k != "lam_sampling"}, "lam": float(model[3:])}
    return options


def row_of(name, steps, minutes, scores):
    row = {"model": name, "steps": steps, "training minutes": minutes}
    for lam in LAMS:
        if lam in scores:   # a baseline is scored at its own λ only
            affine, dice, folding = scores[lam]
            row[f"Dice λ {lam}"], row[f"over affine λ {lam}"], row[f"% folding λ {lam}"] = dice, dice - affine, folding
        else:
            row[f"Dice λ {lam}"] = row[f"over affine λ {lam}"] = row[f"% folding λ {lam}"] = float("nan")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000, help="training steps of each model")
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=10, help="held-out pairs scored")
    parser.add_argument("--models", nargs="+", default=["film", "vxm0.3", "vxm0.7", "hypernetwork"],
                        choices=sorted(MODELS))
    parser.add_argument("--work", default="runs/head_to_head_3d", help="checkpoint folder (resume: run again)")
    parser.add_argument("--results", default="head_to_head_3d",
                        help="name of the table under benchmarks/results/ (a run of some models apart from the rest)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 24 subjects, 20 steps, 2 pairs")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.steps_per_epoch, args.pairs = 20, 10, 2
        args.work = os.path.join(args.work, "quick")

    data = hnb.data.load_source("ixi3d", subset=24 if args.quick else None)
    train_set, held_out = hnb.data.random_split(data, (TRAIN_FRACTION, 1 - TRAIN_FRACTION), seed=SPLIT_SEED)
    coarse_train = coarse_copy(train_set, FACTOR)
    pairs = [(2 * i, 2 * i + 1) for i in range(min(args.pairs, len(held_out) // 2))]
    command = "python benchmarks/head_to_head_3d.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows, scored = [], {}
    for model in args.models:
        core = build(model, coarse_shape(data.shape, FACTOR), downsample=1)
        history = hnb.train(core, coarse_train, epochs=args.steps // args.steps_per_epoch,
                            steps_per_epoch=args.steps_per_epoch, seed=0, **train_options(model, coarse_train),
                            checkpoints=CheckpointConfig(os.path.join(args.work, model), every=1), resume=True,
                            progress="log", live_plot=False)
        full = build(model, data.shape, downsample=FACTOR)
        full.set_weights(core.get_weights())
        scored[model] = final_scores(full, held_out, pairs, [None] if model.startswith("vxm") else list(LAMS))
        if model.startswith("vxm"):
            scored[model] = {float(model[3:]): scored[model][None]}
        rows.append(row_of(MODELS[model], history.steps, sum(history.epoch_seconds) / 60, scored[model]))
        print(rows[-1], flush=True)
        write(rows, scored, args, train_set, held_out, pairs, command)
    if not args.quick:
        pretrained = hnb.load_model("pretrained:ixi-t1-2mm")
        scores = final_scores(pretrained, held_out, pairs, list(LAMS))
        rows.append(row_of("pretrained:ixi-t1-2mm (FiLM)", hnb.networks.spec_of(pretrained).training.steps,
                           float("nan"), scores))
        write(rows, scored, args, train_set, held_out, pairs, command)


def write(rows, scored, args, train_set, held_out, pairs, command):
    gaps = []
    for conditioned in ("film", "hypernetwork"):
        for lam in LAMS:
            baseline = f"vxm{lam}"
            if conditioned in scored and baseline in scored:
                gap = scored[conditioned][lam][1] - scored[baseline][lam][1]
                gaps.append(f"{MODELS[conditioned]} − {MODELS[baseline]} at λ {lam}: {gap:+.4f} Dice")
    notes = (f"Every model: {args.steps} steps of the 3D recipe (`VOLUMES`) at its U-Net grid "
             f"({'×'.join(map(str, coarse_shape(train_set.shape, FACTOR)))}, block-averaged copies of the "
             f"{len(train_set)} training subjects), scored at full resolution ({'×'.join(map(str, train_set.shape))}) "
             f"on {len(pairs)} pairs {pairs} of the {len(held_out)} held-out subjects (those of "
             "`pretrained:ixi-t1-2mm`). 'training minutes': wall time of the training epochs on this machine "
             "(other work shared its cores, so compare steps, not minutes). Head-to-head at matched λ "
             "(positive: the λ-conditioned model is better): " + ("; ".join(gaps) if gaps else "not yet") + ".")
    write_results(args.results + "_quick" if args.quick else args.results,
                  "3D head-to-head at matched λ (ixi3d)", rows, notes=notes, command=command.strip())


if __name__ == "__main__":
    main()
