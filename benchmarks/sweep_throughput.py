"""Sweep throughput: registrations scored per second (pairs × λ) by ``lambda_sweep``.

Compares, in the same run and on the same pairs and λ values, the toolkit's
:func:`hypermorph_nb.lambda_sweep` (λ × pairs in batches through one compiled
function, labels warped in the same batch, Dice from one joint histogram per
pair) with the plain tutorial path: ``model.predict`` for every pair and λ, a
``vxm.networks.Transform`` to warp the label map, ``vxm.py.utils.dice`` and
``vxm.py.utils.jacobian_determinant`` per pair.

The model is an untrained HyperMorph at the tutorial's size: throughput does
not depend on the weights. ``python benchmarks/sweep_throughput.py --help``.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import median_seconds, write_results  # noqa: E402
from hypermorph_nb.data import load_npz, resize, synthetic  # noqa: E402
from hypermorph_nb.evaluation import choose_pairs  # noqa: E402
from hypermorph_nb.models import vxm  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "oasis2d", "oasis2d_300.npz")


def tutorial_sweep(model, transform, data, pairs, lams, labels):
    """The seed tutorial's way: one ``model.predict`` per pair and λ, numpy metrics per pair."""
    dice, folding, mse = [], [], []
    for lam in lams:
        for moving_index, fixed_index in pairs:
            moving = data.images[moving_index][None]
            fixed = data.images[fixed_index][None]
            moved, warp = model.predict([moving, fixed, np.array([[lam]])], verbose=0)
            warped = transform.predict([data.labels[moving_index][None, ..., None].astype(np.float32),
                                        warp], verbose=0)
            dice.append(vxm.py.utils.dice(warped[0, ..., 0], data.labels[fixed_index], labels))
            folding.append(np.mean(vxm.py.utils.jacobian_determinant(warp[0]) <= 0))
            mse.append(np.mean((moved - fixed) ** 2))
    return np.array(dice), np.array(folding), np.array(mse)


def load(args):
    if os.path.isfile(args.data):
        data = load_npz(args.data)[: args.images]
        return data if data.shape == tuple(args.shape) else resize(data, args.shape)
    print(f"{args.data} not found: using synthetic images")
    return synthetic(args.images, tuple(args.shape), seed=0)


def main(argv=None):
    args = parse_args(argv)
    data = load(args)
    pairs = choose_pairs(len(data), args.pairs, seed=0)
    lams = np.linspace(0.5, 0.99, args.lams)
    labels = data.label_values()
    model = hnb.build_hypermorph(data.shape, seed=0)
    transform = vxm.networks.Transform(data.shape, interp_method="nearest")
    count = len(pairs) * len(lams)

    def ours():
        return hnb.lambda_sweep(model, data, lams, pairs=pairs, batch_size=args.batch_size,
                                progress=False)

    def tutorial():
        return tutorial_sweep(model, transform, data, pairs, lams, labels)

    paths = {"plain tutorial path (predict per pair and λ)": tutorial,
             f"lambda_sweep (batch {args.batch_size})": ours}
    for function in paths.values():   # warm-up: tracing and first calls
        function()
    times = {name: [] for name in paths}
    for _ in range(args.repeats):     # the paths take turns, so outside load hits both alike
        for name, function in paths.items():
            times[name].append(median_seconds(function, repeats=1, warmup=0))
    reference = statistics.median(times[next(iter(paths))])
    rows = [{"path": name, "registrations": count, "median s": statistics.median(seconds),
             "registrations/s": count / statistics.median(seconds),
             "speed-up": reference / statistics.median(seconds)}
            for name, seconds in times.items()]

    result = ours()
    _, folding, mse = tutorial()
    agreement = (f"Same registrations: mean image MSE {result.mse.mean():.5f} (lambda_sweep) vs "
                 f"{mse.mean():.5f} (tutorial path); folding {100 * result.folding.mean():.3f}% vs "
                 f"{100 * folding.mean():.3f}%.")
    notes = f"""
{len(pairs)} pairs × {len(lams)} λ ({np.round(lams, 3).tolist()}) at {data.shape}, HyperMorph with
voxelmorph's default U-Net (untrained: throughput does not depend on the weights), {len(labels)}
structures; each path computes moved image, warped label map, Dice per structure, % folding and
image MSE for every registration. Median of {args.repeats} rounds after one warm-up; in each round
the two paths take turns. {agreement}
"""
    write_results(args.name, "λ-sweep throughput (pairs × λ per second)", rows, notes=notes,
                  command="python benchmarks/sweep_throughput.py " + " ".join(args.argv or []))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--shape", type=int, nargs=2, default=(160, 192))
    parser.add_argument("--images", type=int, default=40, help="validation images to draw pairs from")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--lams", type=int, default=6, help="number of λ values in [0.5, 0.99]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 pairs × 3 λ, one repeat")
    parser.add_argument("--name", default=None, help="results/<name>.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.pairs, args.lams, args.repeats = 4, 3, 1
    if args.name is None:
        args.name = "sweep_throughput" + ("_quick" if args.quick else "")
    return args


if __name__ == "__main__":
    main()
