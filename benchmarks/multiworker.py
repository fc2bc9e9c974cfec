"""Training steps/s of one process vs N local workers under MultiWorkerMirroredStrategy.

Each configuration runs ``hypermorph-nb train`` in fresh processes on the same
global batch: ``--workers 1`` is one process on the default strategy, ``--workers
N`` is N local worker processes on 127.0.0.1 (``TF_CONFIG`` with free ports),
each drawing its share of every global batch. A run trains ``--epochs`` epochs
of ``--steps`` steps; the first epoch (tracing, start-up) is left out and the
steps/s of a run is ``--steps`` over its median epoch time. The configurations
take turns for ``--rounds`` rounds; the table shows medians over rounds and the
ratio to one process.

On ONE machine the workers share its CPU cores, memory bandwidth and a loopback
network, so the ratio measures the overhead of multi-worker training (a second
process, gradient all-reduce over gRPC every step), not a speed-up: it is
expected below 1 on a 2-core machine. A speed-up needs workers on separate
machines (or GPUs), where each brings its own compute and the global batch
grows with the number of workers.

Run: ``python benchmarks/multiworker.py`` (``--quick`` for a smoke run).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up lines, here and in the workers

from common import write_results  # noqa: E402

TINY_FEATURES = "[[8,8,8,8],[8,8,8,8,8,8,8]]"


def run_job(workers, args, folder):
    """Train once with ``workers`` processes; returns (steps/s after the first epoch, wall seconds)."""
    out = os.path.join(folder, f"workers-{workers}-{time.monotonic_ns()}")
    command = [sys.executable, "-m", "hypermorph_nb.cli", "train", "--out", out, "--workers", str(workers),
               "--data", "synthetic", "--images", str(args.images), "--size", *map(str, args.shape),
               "--model", args.model, "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps),
               "--batch-size", str(args.batch_size), "--seed", "0"]
    if args.features:
        command += ["--features", args.features]
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    with open(os.path.join(out, "history.json")) as handle:
        history = json.load(handle)
    timed = history["epoch_seconds"][1:]
    return args.steps / statistics.median(timed), wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=(1, 2), help="configurations to compare")
    parser.add_argument("--shape", type=int, nargs="+", default=(64, 64))
    parser.add_argument("--model", choices=("hypermorph", "vxm"), default="hypermorph")
    parser.add_argument("--features", default=None, help="U-Net features as JSON (default: the tutorial's)")
    parser.add_argument("--batch-size", type=int, default=2, help="global batch (a multiple of every --workers)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32x32, tiny U-Net, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.shape, args.features, args.images = (32, 32), TINY_FEATURES, 8
        args.steps, args.epochs, args.rounds = 10, 2, 1
    odd = [n for n in args.workers if args.batch_size % n]
    if odd:
        parser.error(f"--batch-size {args.batch_size} does not split over {odd} workers")

    speeds = {n: [] for n in args.workers}
    walls = {n: [] for n in args.workers}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            for workers in args.workers:
                speed, wall = run_job(workers, args, folder)
                speeds[workers].append(speed)
                walls[workers].append(wall)
                print(f"round {round_index + 1}/{args.rounds}: {workers} worker(s): {speed:.2f} steps/s "
                      f"({wall:.0f} s with start-up)", flush=True)
    base = statistics.median(speeds[args.workers[0]])
    rows = []
    for workers in args.workers:
        speed = statistics.median(speeds[workers])
        rows.append({
            "workers": workers, "global batch": args.batch_size, "per worker": args.batch_size // workers,
            "steps/s": speed, "pairs/s": speed * args.batch_size,
            f"ratio to {args.workers[0]}": speed / base,
            "run wall s (with start-up)": statistics.median(walls[workers]),
        })
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    notes = (
        f"All workers ran on this one machine ({cores} CPU cores): they share its cores, so the ratio "
        "measures the overhead of multi-worker training (extra processes, a gradient all-reduce over "
        "gRPC every step), NOT a speed-up. A speed-up needs workers on separate machines or GPUs. "
        f"{args.model} at {'x'.join(map(str, args.shape))}, {args.steps} steps per timed epoch, "
        f"medians over {args.rounds} round(s).\n")
    name = "multiworker_quick" if args.quick else "multiworker"
    command = "python benchmarks/multiworker.py" + (" --quick" if args.quick else "")
    write_results(name, "Multi-worker training: steps/s of 1 process vs N local workers", rows,
                  notes=notes, command=command)


if __name__ == "__main__":
    main()
