"""Sweep throughput: registrations scored per second (pairs × λ) by ``lambda_sweep``.

Compares, in the same run and on the same pairs and λ values, the toolkit's
:func:`hypermorph_nb.lambda_sweep` (λ × pairs in batches through one compiled
function, labels warped in the same batch, Dice from one joint histogram per
pair) with the plain tutorial path: ``model.predict`` for every pair and λ, a
``vxm.networks.Transform`` to warp the label map, ``vxm.py.utils.dice`` and
``vxm.py.utils.jacobian_determinant`` per pair.

Two cases, each with its baseline in the same run: 2D slices at the tutorial's
160×192 (OASIS) and 3D volumes at 80×96×80 (the shared IXI set, 148 structures),
where :func:`~hypermorph_nb.lambda_sweep` batches as many registrations per call
as its memory bound allows (``auto_batch_size``). The models are untrained
HyperMorph networks with voxelmorph's default U-Net: throughput does not depend
on the weights. ``python benchmarks/sweep_throughput.py --help``; ``--dims 2`` or
``--dims 3`` runs one case.
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
from hypermorph_nb.checks import choose_pairs  # noqa: E402
from hypermorph_nb.evaluation.sweeps import auto_batch_size  # noqa: E402
from hypermorph_nb.networks.models import vxm  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")
#: per number of dimensions: data file, shape, images, pairs, λ values (full run; --quick is smaller)
CASES = {
    2: {"data": os.path.join(SHARED, "oasis2d", "oasis2d_300.npz"), "shape": (160, 192),
        "images": 40, "pairs": 16, "lams": 6},
    3: {"data": os.path.join(SHARED, "ixi3d", "ixi3d_150.npz"), "shape": (80, 96, 80),
        "images": 8, "pairs": 4, "lams": 3},
}


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


def load(path, shape, images):
    if os.path.isfile(path):
        data = load_npz(path, subset=images)
        return data if data.shape == tuple(shape) else resize(data, shape)
    print(f"{path} not found: using synthetic images")
    return synthetic(images, tuple(shape), seed=0)


def run_case(case, args):
    """Time both paths on one case; returns the table rows and a sentence on their agreement."""
    data = load(case["data"], case["shape"], case["images"])
    pairs = choose_pairs(len(data), case["pairs"], seed=0)
    lams = np.linspace(0.5, 0.99, case["lams"])
    labels = data.label_values()
    model = hnb.build_hypermorph(data.shape, seed=0)
    transform = vxm.networks.Transform(data.shape, interp_method="nearest")
    count = len(pairs) * len(lams)
    batch = args.batch_size or auto_batch_size(data.shape)

    def ours():
        return hnb.lambda_sweep(model, data, lams, pairs=pairs, batch_size=batch, progress=False)

    def tutorial():
        return tutorial_sweep(model, transform, data, pairs, lams, labels)

    paths = {"plain tutorial path (predict per pair and λ)": tutorial,
             f"lambda_sweep (batch {batch})": ours}
    for function in paths.values():   # warm-up: tracing and first calls
        function()
    times = {name: [] for name in paths}
    for _ in range(args.repeats):     # the paths take turns, so outside load hits both alike
        for name, function in paths.items():
            times[name].append(median_seconds(function, repeats=1, warmup=0))
    reference = statistics.median(times[next(iter(paths))])
    shape = "×".join(str(side) for side in data.shape)
    rows = [{"images": shape, "path": name, "registrations": count,
             "median s": statistics.median(seconds),
             "registrations/s": count / statistics.median(seconds),
             "speed-up": reference / statistics.median(seconds)}
            for name, seconds in times.items()]
    result = ours()
    _, folding, mse = tutorial()
    notes = (f"{shape}: {len(pairs)} pairs × {len(lams)} λ ({np.round(lams, 3).tolist()}), "
             f"{len(labels)} structures, data {os.path.basename(case['data']) if os.path.isfile(case['data']) else 'synthetic'}; "
             f"same registrations: mean image MSE {result.mse.mean():.6f} (lambda_sweep) vs "
             f"{mse.mean():.6f} (tutorial path), folding {100 * result.folding.mean():.3f}% vs "
             f"{100 * folding.mean():.3f}%.")
    return rows, notes


def main(argv=None):
    args = parse_args(argv)
    rows, notes = [], []
    for dims in args.dims:
        case = dict(CASES[dims])
        if dims == 2:
            case.update(data=args.data or case["data"], shape=tuple(args.shape or case["shape"]))
        if args.quick:
            case.update(pairs=(4 if dims == 2 else 2), lams=(3 if dims == 2 else 2))
        if args.pairs:
            case["pairs"] = args.pairs
        if args.lams:
            case["lams"] = args.lams
        if args.images:
            case["images"] = args.images
        case_rows, case_notes = run_case(case, args)
        rows += case_rows
        notes.append(case_notes)
    text = f"""
HyperMorph with voxelmorph's default U-Net (untrained: throughput does not depend on the
weights); each path computes moved image, warped label map, Dice per structure, % folding and
image MSE for every registration. Median of {args.repeats} rounds after one warm-up; in each
round the two paths take turns.

""" + "\n".join(f"- {line}" for line in notes) + "\n"
    write_results(args.name, "λ-sweep throughput (pairs × λ per second)", rows, notes=text,
                  command="python benchmarks/sweep_throughput.py " + " ".join(args.argv or []))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", choices=(2, 3), default=[2, 3],
                        help="which cases: 2D slices, 3D volumes or both")
    parser.add_argument("--data", default=None, help="2D .npz (default: the shared OASIS slices)")
    parser.add_argument("--shape", type=int, nargs=2, default=None, help="2D shape (default 160 192)")
    parser.add_argument("--images", type=int, default=None,
                        help="images to draw pairs from (default 40 in 2D, 8 in 3D)")
    parser.add_argument("--pairs", type=int, default=None, help="pairs (default 16 in 2D, 4 in 3D)")
    parser.add_argument("--lams", type=int, default=None,
                        help="number of λ values in [0.5, 0.99] (default 6 in 2D, 3 in 3D)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="lambda_sweep batch (default: auto_batch_size, 8 in 2D, 3 at 80×96×80)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2D: 4 pairs × 3 λ; 3D: 2 pairs × 2 λ; one repeat")
    parser.add_argument("--name", default=None, help="results/<name>.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.repeats = 1
    if args.name is None:
        args.name = "sweep_throughput" + ("_quick" if args.quick else "")
    return args


if __name__ == "__main__":
    main()
