"""λ-aware instance optimisation on IXI volumes: Dice and seconds per pair against iterations.

For a few held-out pairs of the shared ``ixi3d`` set (80×96×80, 2 mm, 148 labelled
structures) this script registers each pair at one λ

- with a network, then ``register(..., refine=N)``: N Adam steps on the pair's own
  λ-weighted loss, starting from the network's field;
- from zero (no network): the same optimiser started from the identity
  (:func:`hypermorph_nb.registration.refine.refine_field` with a zero field);

and prints, per start and N, the mean Dice of the warped label maps (structures present
in both maps, nearest-neighbour warp), the gain over affine-only (the volumes are
affinely aligned already, so affine-only is the unregistered pair), % folding, and wall
seconds per pair (the network's forward pass included; the compiled loop is traced once
before timing). The network is a saved model (``--model``) or, by default, a FiLM
HyperMorph trained briefly here on the first 100 subjects with the README's 3D recipe.

    python benchmarks/refine_3d.py                      # 3 pairs, N = 0, 25, 50, 100 (~10 min on 2 cores)
    python benchmarks/refine_3d.py --quick              # smoke run: 2 pairs, N = 0, 10, 5 training steps
    python benchmarks/refine_3d.py --model my-model --lam 0.5 --iterations 0 50
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
from hypermorph_nb.networks.losses import LossConfig  # noqa: E402
from hypermorph_nb.networks.models import spec_of  # noqa: E402
from hypermorph_nb.registration import Registrar  # noqa: E402
from hypermorph_nb.registration.refine import refine_field  # noqa: E402

TRAIN_SUBJECTS = 100


def trained_network(data, steps, seed):
    """A FiLM HyperMorph trained ``steps`` steps on the first subjects; returns (model, seconds)."""
    model = hnb.build_hypermorph(data.shape, conditioning="film", seed=seed)
    start = time.perf_counter()
    if steps:
        hnb.train(model, data[:TRAIN_SUBJECTS], epochs=1, steps_per_epoch=steps, learning_rate=1e-4,
                  lr_schedule="step", lam_sampling="oversample", seed=seed, verbose=False)
    return model, time.perf_counter() - start


def score(registrar, labels, fixed_labels, field):
    warped = registrar.warp(labels[None], field[None], interp="nearest")[0]
    return mean_dice(warped, fixed_labels), 100.0 * folding_fraction(field)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a saved λ-conditioned 3D model (default: train one here)")
    parser.add_argument("--train-steps", type=int, default=150, help="steps of the network trained here")
    parser.add_argument("--lam", type=float, default=0.5)
    parser.add_argument("--iterations", type=int, nargs="+", default=[0, 25, 50, 100])
    parser.add_argument("--pairs", type=int, default=3, help="held-out pairs (subjects 100 and up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 pairs, N = 0, 10, 5 training steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.iterations, args.train_steps = 2, [0, 10], 5

    data = hnb.data.load_source("ixi3d")
    if args.model:
        model, train_seconds = hnb.load_model(args.model), 0.0
        network = f"`{args.model}`"
    else:
        model, train_seconds = trained_network(data, args.train_steps, args.seed)
        network = f"FiLM HyperMorph, {args.train_steps} steps here ({train_seconds / 60:.1f} min)"
    training = spec_of(model).training
    config = LossConfig() if training is None else training.loss_config()
    registrar = Registrar.for_model(model)
    held_out = np.arange(TRAIN_SUBJECTS, len(data))
    pairs = [(int(held_out[2 * i]), int(held_out[2 * i + 1])) for i in range(args.pairs)]
    zero = np.zeros((*data.shape, data.ndim), np.float32)

    first_moving, first_fixed = data.images[pairs[0][0], ..., 0], data.images[pairs[0][1], ..., 0]
    hnb.register(model, first_moving, first_fixed, lam=args.lam, refine=2)      # trace the compiled loops
    refine_field(first_moving, first_fixed, zero, lam=args.lam, iterations=2, loss_config=config)

    results = {}
    for moving_index, fixed_index in pairs:
        moving, fixed = data.images[moving_index, ..., 0], data.images[fixed_index, ..., 0]
        labels, fixed_labels = data.labels[moving_index], data.labels[fixed_index]
        results.setdefault(("affine only", 0), []).append((mean_dice(labels, fixed_labels), 0.0, 0.0))
        for iterations in args.iterations:
            start = time.perf_counter()
            _, field = hnb.register(model, moving, fixed, lam=args.lam, refine=iterations)
            seconds = time.perf_counter() - start
            results.setdefault(("network", iterations), []).append((*score(registrar, labels, fixed_labels, field),
                                                                    seconds))
            if iterations == 0:
                continue
            start = time.perf_counter()
            field = refine_field(moving, fixed, zero, lam=args.lam, iterations=iterations, loss_config=config)
            seconds = time.perf_counter() - start
            results.setdefault(("zero", iterations), []).append((*score(registrar, labels, fixed_labels, field),
                                                                 seconds))
        print(f"pair {moving_index}->{fixed_index} done", flush=True)

    affine = float(np.mean([r[0] for r in results[("affine only", 0)]]))
    rows = []
    for (start_from, iterations), values in results.items():
        values = np.asarray(values)
        rows.append({"start": start_from, "iterations": iterations, "Dice": float(values[:, 0].mean()),
                     "over affine": float(values[:, 0].mean()) - affine, "% folding": float(values[:, 1].mean()),
                     "s / pair": float(values[:, 2].mean())})
    order = {"affine only": 0, "network": 1, "zero": 2}
    rows.sort(key=lambda row: (order[row["start"]], row["iterations"]))
    notes = (f"λ = {args.lam}; {len(pairs)} held-out pairs {pairs} of ixi3d (80×96×80, 2 mm, affinely aligned, "
             f"so affine only = the unregistered pair); network: {network}; loss {config}. Dice: mean over the "
             "structures present in both label maps, moving labels warped by nearest neighbour. 'zero' refines "
             "from the identity without a network; N iterations run half at half resolution, half at full.")
    command = "python benchmarks/refine_3d.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results("refine_3d_quick" if args.quick else "refine_3d", "Instance optimisation on IXI volumes",
                  rows, notes=notes, command=command.strip())


if __name__ == "__main__":
    main()
