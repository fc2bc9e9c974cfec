"""3D training stability: the loss per epoch of plain VoxelMorph on IXI volumes under several recipes.

The issue's probe (VoxelMorph at 48³, lr 1e-3, batch 1, the last quarter at
lr/10) saw the loss go from 0.011 at step 1000 to 6810 at step 2000 without a
NaN. This script trains the same model from the same initial weights with each
recipe and prints, per recipe, the loss of every epoch, whether ``train``'s
divergence guard stopped it, and the folding of the final fields on held-out
pairs. Each recipe is ``key=value`` pairs passed to :func:`hypermorph_nb.train`,
e.g. ``learning_rate=1e-3,lr_schedule=step`` (the old recipe) or
``learning_rate=1e-3,lr_schedule=cosine,warmup_steps=200``.

    python benchmarks/stability_3d.py                 # 48³, 2000 steps per recipe (slow on a CPU)
    python benchmarks/stability_3d.py --quick         # smoke run: 32³, a few steps
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from hypermorph_nb.metrics import folding_fraction  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "ixi3d", "ixi3d_150.npz")
DEFAULT_RECIPES = (
    "learning_rate=1e-3,lr_schedule=step",                      # the probe (old recipe)
    "learning_rate=1e-3,lr_schedule=cosine,warmup_steps=200",
    "learning_rate=1e-4,lr_schedule=step",
)


def parse_recipe(text):
    """``"learning_rate=1e-3,lr_schedule=step"`` -> train keyword arguments."""
    options = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "lr_schedule":
            options[key] = None if value == "none" else value
        elif key in ("warmup_steps",):
            options[key] = int(value)
        elif key in ("learning_rate", "image_sigma", "lam"):
            options[key] = float(value)
        else:
            raise SystemExit(f"recipe {text!r}: unknown key {key!r}; use learning_rate, lr_schedule, "
                             "warmup_steps, image_sigma, lam")
    return options


def load_volumes(path, n, shape):
    """The first ``n`` volumes of an ixi3d-style npz (``images`` uint8 or [0, 1]), resampled to ``shape``."""
    from scipy.ndimage import zoom

    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found; pass --data PATH to ixi3d_150.npz (see its README)")
    with np.load(path) as arrays:
        images = arrays["images"][:n]
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    factors = [t / s for t, s in zip(shape, images.shape[1:])]
    volumes = [zoom(image.astype(np.float32) / scale, factors, order=1) for image in images]
    return np.clip(np.stack(volumes), 0, 1)[..., None].astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 48, 48))
    parser.add_argument("--subjects", type=int, default=40, help="training volumes (4 more are held out)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--recipe", action="append", help="key=value,... (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="results/<name>.md (default stability_3d)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32³, 6 volumes, 2x5 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.shape, args.subjects, args.steps, args.steps_per_epoch = (32, 32, 32), 6, 10, 5
    recipes = args.recipe or list(DEFAULT_RECIPES)
    volumes = load_volumes(args.data, args.subjects + 4, tuple(args.shape))
    train, held_out = volumes[:args.subjects], volumes[args.subjects:]
    epochs = max(1, args.steps // args.steps_per_epoch)
    print(f"{len(train)} volumes at {tuple(args.shape)}, {epochs} epochs x {args.steps_per_epoch} steps, "
          "batch 1, plain VoxelMorph (λ 0.5)", flush=True)
    initial = hnb.build_vxm(tuple(args.shape), seed=args.seed).get_weights()
    rows, traces = [], []
    for text in recipes:
        model = hnb.build_vxm(tuple(args.shape), seed=args.seed)
        model.set_weights(initial)
        start = time.perf_counter()
        history = hnb.train(model, train, epochs=epochs, steps_per_epoch=args.steps_per_epoch,
                            seed=args.seed, progress="log", live_plot=False,
                            **parse_recipe(text))
        seconds = time.perf_counter() - start
        folds = [folding_fraction(hnb.register(model, held_out[i], held_out[i + 1])[1])
                 for i in range(len(held_out) - 1)]
        trace = " ".join(f"{loss:.4g}" for loss in history.loss)
        print(f"\n{text}: {seconds:.0f} s\n  loss per epoch: {trace}\n  folding % of held-out fields: "
              f"{100 * np.mean(folds):.3f}\n  stop: {history.stop_reason or 'ran all epochs'}", flush=True)
        traces.append(f"- `{text}`: loss per epoch {trace}; {history.stop_reason or 'ran all epochs'}")
        rows.append({"recipe": text, "epochs run": history.epochs,
                     "first loss": history.loss[0] if history.loss else float("nan"),
                     "min loss": min(history.loss) if history.loss else float("nan"),
                     "last loss": history.loss[-1] if history.loss else float("nan"),
                     "max/min": max(history.loss) / min(history.loss) if history.loss else float("nan"),
                     "fold %": 100 * float(np.mean(folds)),
                     "guard stopped": "yes" if history.stop_reason else "no"})
    name = args.name or ("stability_3d_quick" if args.quick else "stability_3d")
    write_results(name, "3D training stability (VoxelMorph, IXI)", rows,
                  command=" ".join(["python benchmarks/stability_3d.py", *(sys.argv[1:] if argv is None else argv)]),
                  notes="\n".join(traces))


if __name__ == "__main__":
    main()
