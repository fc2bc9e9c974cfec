"""Memory: peak resident set size (RSS) of training and of an explorer-like update loop.

Every scenario runs in its own Python process, so each peak is measured from
a clean start (``resource.getrusage(RUSAGE_SELF).ru_maxrss``); the ``import``
scenario (import the toolkit and load the data, nothing else) is the floor
that the others add to. Scenarios:

- ``import``: ``import hypermorph_nb`` and load the images;
- ``fit-tutorial``: the seed tutorial's baseline training, ``model.fit`` on its
  Python generator with voxelmorph's losses;
- ``train-vxm`` / ``train-hypermorph``: :func:`hypermorph_nb.train`;
- ``explorer``: what a λ slider does per move: register one pair at a new λ,
  warp its label map, compute the Jacobian determinant and Dice.

``python benchmarks/memory.py`` measures 2D at 160×192 (the OASIS slices);
``python benchmarks/memory.py --ndim 3`` 3D at 80×96×80 (the shared IXI volumes; goal:
3D HyperMorph training peaks at ≤ 4 GB); ``--shape`` any other size; ``--help`` for
the options.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = {2: os.path.join(REPO, "..", "shared", "data", "oasis2d", "oasis2d_300.npz"),
                3: os.path.join(REPO, "..", "shared", "data", "ixi3d", "ixi3d_150.npz")}
#: 3D volumes loaded for the scenarios (the whole IXI set would put 370 MB into every floor).
SUBSET_3D = 32
GOAL_3D_MIB = 4 * 1024  # issue goal: 3D HyperMorph training at 80×96×80 peaks at <= 4 GB
SCENARIOS = ("import", "fit-tutorial", "train-vxm", "train-hypermorph", "explorer")
DESCRIPTIONS = {
    "import": "import hypermorph_nb + load images (floor)",
    "fit-tutorial": "baseline, tutorial model.fit on its generator",
    "train-vxm": "baseline, hnb.train",
    "train-hypermorph": "HyperMorph, hnb.train",
    "explorer": "explorer-like loop: register + warp labels + Jacobian + Dice per λ",
}


def peak_rss_mib():
    """Peak RSS of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_scenario(args):
    """Inside the child process: do one scenario and print its figures as JSON."""
    import numpy as np

    import hypermorph_nb as hnb
    from hypermorph_nb.data import load_npz, resize, synthetic

    if os.path.isfile(args.data):
        data = load_npz(args.data, subset=SUBSET_3D if len(args.shape) == 3 else None)
        data = data if data.shape == tuple(args.shape) else resize(data, args.shape)
    else:
        data = synthetic(64, tuple(args.shape), seed=0)
    start = time.perf_counter()
    if args.scenario == "fit-tutorial":
        import tensorflow as tf

        from hypermorph_nb.data import voxelmorph_generator
        from hypermorph_nb.networks.models import vxm

        model = hnb.build_vxm(data.shape, seed=0)
        model.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-4),
                      loss=[vxm.losses.MSE(0.1).loss, vxm.losses.Grad("l2").loss],
                      loss_weights=[0.5, 0.5])
        model.fit(voxelmorph_generator(data, batch_size=1), epochs=1, steps_per_epoch=args.steps,
                  verbose=0)
    elif args.scenario in ("train-vxm", "train-hypermorph"):
        build = hnb.build_vxm if args.scenario == "train-vxm" else hnb.build_hypermorph
        hnb.train(build(data.shape, seed=0), data, epochs=1, steps_per_epoch=args.steps,
                  learning_rate=1e-4, verbose=False, progress="none", live_plot=False)
    elif args.scenario == "explorer":
        from hypermorph_nb.metrics import dice, folding_fraction
        from hypermorph_nb.registration.pairs import Registrar

        registrar = Registrar.for_model(hnb.build_hypermorph(data.shape, seed=0))
        moving, fixed = data.images[:1], data.images[1:2]
        for lam in np.linspace(0, 1, args.steps):
            moved, flow = registrar.predict(moving, fixed, float(lam))
            folding_fraction(flow[0])
            if data.has_labels:
                warped = registrar.warp(data.labels[:1], flow, interp="nearest")
                dice(warped[0], data.labels[1])
    print(json.dumps({"peak_mib": peak_rss_mib(), "end_mib": current_rss_mib(),
                      "seconds": time.perf_counter() - start}))


def measure(args, scenario):
    command = [sys.executable, os.path.abspath(__file__), "--scenario", scenario,
               "--steps", str(args.steps), "--data", args.data, "--ndim", str(len(args.shape)),
               "--shape", *map(str, args.shape)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        raise RuntimeError(f"scenario {scenario} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.scenario:
        run_scenario(args)
        return
    from common import write_results

    figures = {}
    for scenario in SCENARIOS:
        peaks = [measure(args, scenario) for _ in range(args.repeats)]
        peaks.sort(key=lambda figure: figure["peak_mib"])
        figures[scenario] = peaks[len(peaks) // 2]
        print(f"{scenario}: peak {figures[scenario]['peak_mib']:.0f} MiB", flush=True)
    floor = figures["import"]["peak_mib"]
    rows = [{"scenario": scenario, "what": DESCRIPTIONS[scenario],
             "peak RSS MiB": figure["peak_mib"], "above floor MiB": figure["peak_mib"] - floor,
             "RSS at end MiB": figure["end_mib"], "work s": figure["seconds"]}
            for scenario, figure in figures.items()]
    notes = f"""
Images {tuple(args.shape)} ({os.path.basename(args.data) if os.path.isfile(args.data) else "synthetic"}),
voxelmorph's default U-Net, batch 1; training scenarios run
{args.steps} steps, the explorer {args.steps} λ updates. Each scenario in a fresh process; peak RSS
is ru_maxrss (median of {args.repeats} processes). "above floor" subtracts the `import` scenario
(TensorFlow, the toolkit and the images loaded). CPU-only figures: on a GPU, model and activations
live in GPU memory instead.
"""
    if len(args.shape) == 3:
        peak = figures["train-hypermorph"]["peak_mib"]
        verdict = "met" if peak <= GOAL_3D_MIB else "missed"
        notes += (f"\nGoal: 3D HyperMorph training (80×96×80) peaks at <= {GOAL_3D_MIB} MiB: {peak:.0f} MiB "
                  f"at {tuple(args.shape)} ({verdict}).\n")
    write_results(args.name, f"Peak memory (RSS) of training and the explorer, {'×'.join(map(str, args.shape))}",
                  rows, notes=notes,
                  command="python benchmarks/memory.py " + " ".join(args.argv))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--ndim", type=int, choices=(2, 3), default=2,
                        help="2: 160×192 OASIS slices; 3: 80×96×80 IXI volumes")
    parser.add_argument("--data", default=None,
                        help="images (default: the shared OASIS 2D / IXI 3D file; synthetic when missing)")
    parser.add_argument("--shape", type=int, nargs="+", default=None,
                        help="2 or 3 sides, any size (default 160 192, or 80 96 80 with --ndim 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps, or λ updates of the explorer loop (2D 200, 3D 20)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per scenario (median)")
    parser.add_argument("--quick", action="store_true",
                        help="one process per scenario, 30 steps (2D) or 3 steps at 32×32×32 (3D, unless --shape)")
    parser.add_argument("--name", default=None, help="results/<name>.md")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.shape is None:
        args.shape = {2: (160, 192), 3: (32, 32, 32) if args.quick else (80, 96, 80)}[args.ndim]
    if len(args.shape) not in (2, 3):
        parser.error(f"--shape takes 2 or 3 sides, got {args.shape}")
    three_d = len(args.shape) == 3
    args.data = args.data or DEFAULT_DATA[len(args.shape)]
    if args.quick:
        args.steps, args.repeats = args.steps or (3 if three_d else 30), 1
    args.steps = args.steps or (20 if three_d else 200)
    if args.name is None:
        args.name = "memory" + ("_3d" if three_d else "") + ("_quick" if args.quick else "")
    return args


if __name__ == "__main__":
    main()
