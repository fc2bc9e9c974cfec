"""TensorFlow's oneDNN CPU kernels on and off: training steps and registration, in one run.

TensorFlow enables its oneDNN kernels by default only on some Intel CPUs; elsewhere
``TF_ENABLE_ONEDNN_OPTS=1`` turns them on (the README says when). This runs the same
work in two child processes, one with ``TF_ENABLE_ONEDNN_OPTS=0`` (TensorFlow's own kernels)
and one with ``=1``, and prints seconds per step (median of the timed epochs, after an untimed
one that traces) and per registration:

- 3D: the recipe's FiLM network (:data:`hypermorph_nb.training.VOLUMES`) training at its U-Net
  grid (40×48×40, label supervision), and one registration by a ``downsample=2`` model at
  80×96×80;
- 2D: HyperMorph (hypernetwork) training at 160×192, batch 1.

    python benchmarks/onednn.py            # 3 timed epochs of 8 steps per case
    python benchmarks/onednn.py --quick    # smoke run: 1 timed epoch of 2 steps
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import write_results  # noqa: E402

SETTINGS = ("0", "1")


def child(steps, epochs):
    """Measure every case in this process; print one JSON line."""
    import numpy as np

    import hypermorph_nb as hnb
    from hypermorph_nb.data import synthetic
    from hypermorph_nb.training import VOLUMES

    quiet = {"verbose": False, "progress": "none", "live_plot": False}

    def per_step(model, data, **options):
        history = hnb.train(model, data, epochs=epochs + 1, steps_per_epoch=steps, **quiet, **options)
        return statistics.median(history.epoch_seconds[1:]) / steps

    volumes = synthetic(4, (40, 48, 40), seed=0)
    results = {"3D FiLM training step (VOLUMES, 40×48×40, labels)": per_step(
        VOLUMES.build((40, 48, 40), downsample=1, seed=0), volumes, **VOLUMES.train_options(volumes))}
    model = VOLUMES.build((80, 96, 80), seed=0)
    rng = np.random.default_rng(0)
    moving, fixed = rng.random((2, 80, 96, 80), dtype=np.float32)
    hnb.register(model, moving, fixed, lam=0.5)   # traces
    times = []
    for _ in range(3 * epochs):
        start = time.perf_counter()
        hnb.register(model, moving, fixed, lam=0.5)
        times.append(time.perf_counter() - start)
    results["3D registration (downsample=2, 80×96×80)"] = statistics.median(times)
    images = synthetic(8, (160, 192), seed=0)
    results["2D HyperMorph training step (160×192, batch 1)"] = per_step(
        hnb.build_hypermorph((160, 192), seed=0), images, batch_size=1)
    print("RESULTS" + json.dumps({"seconds": results}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 timed epoch of 2 steps")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.epochs = 2, 1
    if args.child:
        child(args.steps, args.epochs)
        return
    measured = {}
    for setting in SETTINGS:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
        completed = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps),
                                    "--epochs", str(args.epochs)], env=env, capture_output=True, text=True)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULTS")]
        if completed.returncode or not lines:
            raise RuntimeError(f"TF_ENABLE_ONEDNN_OPTS={setting} failed:\n{completed.stderr[-3000:]}")
        measured[setting] = json.loads(lines[0][len("RESULTS"):])
    rows = [{"case": case, "s, oneDNN off": measured["0"]["seconds"][case],
             "s, oneDNN on": measured["1"]["seconds"][case],
             "speed-up": measured["0"]["seconds"][case] / measured["1"]["seconds"][case]}
            for case in measured["0"]["seconds"]]
    notes = (f"Median seconds per training step ({args.epochs} timed epochs of {args.steps} steps after an "
             f"untimed one) or per registration ({3 * args.epochs} after a traced one).")
    command = "python benchmarks/onednn.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results("onednn_quick" if args.quick else "onednn", "oneDNN CPU kernels off and on", rows,
                  notes=notes, command=command.strip())


if __name__ == "__main__":
    main()
