"""What ``hnb.enable_determinism()`` costs: training steps/s with and without op determinism.

Op determinism cannot be switched off again in a process, so every run is a fresh
process: for each of ``--processes`` rounds, one process trains without and one
with determinism (taking turns, so that load from other processes spreads over
both). Each process builds the model with ``seed=0``, trains one untimed epoch
(tracing), then ``--epochs`` epochs of ``--steps`` steps with ``hnb.train(seed=0)``;
its speed is the median over those epochs (``History.epoch_seconds``, first to
last step). The table gives the median over processes, the ratio on/off, and
whether all processes of a mode ended with bit-identical weights (a SHA-256 of
the weights), which is what determinism buys.

Run: ``python benchmarks/determinism.py`` (160×192, HyperMorph and the baseline);
``--quick`` for a smoke run (64×64, a few steps) that writes
``results/determinism_quick.md``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODELS = ("hypermorph", "vxm")


def worker(model_kind, deterministic, shape, steps, epochs):
    """One process: build, trace, time ``epochs`` epochs; print a JSON line."""
    import hashlib

    import hypermorph_nb as hnb
    from hypermorph_nb.data import synthetic

    if deterministic:
        hnb.enable_determinism(seed=0)
    data = synthetic(16, tuple(shape), seed=0)
    build = hnb.build_hypermorph if model_kind == "hypermorph" else hnb.build_vxm
    model = build(tuple(shape), seed=0)
    options = {"lam": 0.5} if model_kind == "vxm" else {}
    history = hnb.train(model, data, epochs=1 + epochs, steps_per_epoch=steps, seed=0, verbose=False,
                        **options)
    seconds = history.epoch_seconds[1:]   # the first epoch traces the compiled steps
    weights = b"".join(w.tobytes() for w in model.get_weights())
    print(json.dumps({"steps_per_s": steps / statistics.median(seconds),
                      "weights": hashlib.sha256(weights).hexdigest()}))


def run_worker(model_kind, deterministic, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker", model_kind,
               "on" if deterministic else "off", "--shape", *map(str, args.shape),
               "--steps", str(args.steps), "--epochs", str(args.epochs)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"worker {model_kind}/{deterministic} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(160, 192), metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=50, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    parser.add_argument("--processes", type=int, default=3, help="processes per model and mode")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="smoke run: 64x64, 5 steps, 2 epochs, 2 processes")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1] == "on", args.shape, args.steps, args.epochs)
        return
    if args.quick:
        args.shape, args.steps, args.epochs, args.processes = (64, 64), 5, 2, 2

    rows = []
    for model_kind in args.models:
        runs = {False: [], True: []}
        for round_ in range(args.processes):
            for deterministic in (False, True):
                run = run_worker(model_kind, deterministic, args)
                runs[deterministic].append(run)
                print(f"{model_kind} determinism {'on ' if deterministic else 'off'} process {round_ + 1}: "
                      f"{run['steps_per_s']:.2f} steps/s", flush=True)
        speed = {mode: statistics.median(r["steps_per_s"] for r in runs[mode]) for mode in runs}
        for deterministic in (False, True):
            rows.append({
                "model": model_kind, "determinism": "on" if deterministic else "off",
                "steps/s": speed[deterministic], "relative to off": speed[deterministic] / speed[False],
                "processes": len(runs[deterministic]),
                "identical weights": "yes" if len({r["weights"] for r in runs[deterministic]}) == 1 else "no",
            })

    import hypermorph_nb  # noqa: F401  (before TensorFlow: keeps its start-up lines out of the log)
    from common import write_results

    name = "determinism_quick" if args.quick else "determinism"
    shape = "×".join(map(str, args.shape))
    write_results(
        name, f"Training speed with and without op determinism ({shape}, batch 1)", rows,
        notes=(f"{args.processes} fresh processes per model and mode, taking turns; each: one untimed epoch, "
               f"then {args.epochs} epochs of {args.steps} steps, median epoch. 'identical weights': all "
               "processes of that mode ended with bit-identical weights."),
        command=" ".join(["python benchmarks/determinism.py", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    main()
