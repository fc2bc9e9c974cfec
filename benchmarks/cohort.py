"""A cohort in one call: ``register_scans`` and ``prepare_scans`` here, on two processes, on a Dask cluster.

On ``../shared/data/ixi_raw`` (raw IXI T1 heads with label maps), the first scan as the fixed
scan (a subject as template) and the next N as moving scans, with the shipped model
(``pretrained:ixi-t1-2mm``, λ 0.5), in one run:

- N single ``register_scans`` calls one after the other (the plain path; after one warm-up call);
- the cohort path in one call: ``workers=1``, ``workers=2`` (local "spawn" processes: each starts
  TensorFlow and loads the model) and a ``distributed.LocalCluster`` of 2 single-thread workers;
- ``prepare_scans`` of the same scans onto the model's grid, ``workers=1`` / ``2`` / the cluster;
- the largest difference of any written volume from the ``workers=1`` run.

Goals: the cohort's time per pair at ``workers=1`` ≤ 1.2× a single call's, and ``workers=2``
≥ 1.7× faster than ``workers=1`` on two free cores (the start of the workers counts).

Run from the repository root: ``python benchmarks/cohort.py`` (``--scans N`` for fewer than the 39 others), or ``--quick`` (4
scans, a smoke table in ``results/cohort_quick.md``).
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ROOT = pathlib.Path(__file__).resolve().parents[1]
IXI_RAW = ROOT.parent / "shared" / "data" / "ixi_raw"


def largest_difference(first, second):
    """The largest absolute difference between same-named volumes of two folders, relative to their range."""
    import nibabel

    worst = 0.0
    for path in sorted(first.rglob("*.nii.gz")):
        ours = np.asarray(nibabel.load(path).dataobj, dtype=np.float64)
        theirs = np.asarray(nibabel.load(second / path.relative_to(first)).dataobj, dtype=np.float64)
        worst = max(worst, float(np.abs(ours - theirs).max() / max(np.abs(ours).max(), 1e-12)))
    return worst


def largest_dice_difference(first, second):
    """The largest difference of a pair's Dice between two runs' ``results.csv``."""
    import csv

    def dice(folder):
        with open(folder / "results.csv", newline="") as handle:
            return {row["pair"]: float(row["dice"]) for row in csv.DictReader(handle)}

    ours, theirs = dice(first), dice(second)
    return max(abs(ours[pair] - theirs[pair]) for pair in ours)


def main(argv=None):
    args = parse_args(argv)
    import distributed

    import hypermorph_nb as hnb
    from common import write_results

    scans = sorted(pathlib.Path(args.data).glob("*.nii.gz"))[: args.scans + 1]
    fixed, moving = scans[0], scans[1:]
    labels = [path.parent / "labels" / path.name for path in moving]
    keywords = dict(lam=0.5, moving_labels=labels, fixed_labels=fixed.parent / "labels" / fixed.name)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cohort-benchmark-"))
    model = hnb.load_model(args.model)
    hnb.register_scans(model, moving[0], fixed, work / "warm", lam=0.5)   # compile once
    start = time.perf_counter()
    for path, label in zip(moving, labels):
        hnb.register_scans(model, path, fixed, work / "single" / path.name, lam=0.5, moving_labels=label,
                           fixed_labels=keywords["fixed_labels"])
    single = (time.perf_counter() - start) / len(moving)
    print(f"single calls: {single:.2f} s per pair", flush=True)

    seconds = {}
    for name, options in (("workers=1", {}), ("workers=2", {"workers": 2})):
        start = time.perf_counter()
        result = hnb.register_scans(args.model, moving, fixed, work / name, **options, **keywords)
        seconds[name] = time.perf_counter() - start
        print(f"cohort {name}: {seconds[name]:.1f} s, failed {result.failed}", flush=True)
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        started = time.perf_counter()
        hnb.register_scans(args.model, moving, fixed, work / "dask", executor=client.get_executor(), **keywords)
        seconds["dask"] = time.perf_counter() - started
        seconds["dask, cluster start included"] = time.perf_counter() - start
        prepare = {}
        for name, options in (("workers=1", {}), ("workers=2", {"workers": 2}),
                              ("dask", {"executor": client.get_executor()})):
            start = time.perf_counter()
            hnb.prepare_scans(moving, work / f"prepared {name}", reference=model, **options)
            prepare[name] = time.perf_counter() - start
            print(f"prepare_scans {name}: {prepare[name]:.1f} s", flush=True)
    differences = {name: largest_difference(work / "workers=1", work / name) for name in ("workers=2", "dask")}
    dice = {name: largest_dice_difference(work / "workers=1", work / name) for name in ("workers=2", "dask")}

    rows = [
        {"run": "single register_scans calls", "s per pair": single, "speed-up vs workers=1": "",
         "largest volume / Dice difference vs workers=1": "", "goal": ""},
        {"run": "cohort, workers=1", "s per pair": seconds["workers=1"] / len(moving),
         "speed-up vs workers=1": 1.0, "largest volume / Dice difference vs workers=1": "0 / 0",
         "goal": f"≤ 1.2 × single ({seconds['workers=1'] / len(moving) / single:.2f} ×)"},
        {"run": "cohort, workers=2 (spawn, start included)", "s per pair": seconds["workers=2"] / len(moving),
         "speed-up vs workers=1": seconds["workers=1"] / seconds["workers=2"],
         "largest volume / Dice difference vs workers=1": f"{differences['workers=2']:.2g} / {dice['workers=2']:.2g}",
         "goal": "≥ 1.7 ×"},
        {"run": "cohort, LocalCluster 2 × 1 thread", "s per pair": seconds["dask"] / len(moving),
         "speed-up vs workers=1": seconds["workers=1"] / seconds["dask"],
         "largest volume / Dice difference vs workers=1": f"{differences['dask']:.2g} / {dice['dask']:.2g}",
         "goal": ""},
    ] + [{"run": f"prepare_scans, {name}", "s per pair": value / len(moving),
          "speed-up vs workers=1": prepare["workers=1"] / value, "largest volume / Dice difference vs workers=1": "", "goal": ""}
         for name, value in prepare.items()]
    notes = f"""
{len(moving)} raw scans of `{args.data}` registered to `{fixed.name}` with `{args.model}` at λ 0.5, moving and
fixed label maps given (Dice in each pair's sidecar and in `results.csv`). Single calls reuse one loaded
and compiled model; the cohort runs get the model by name, so each worker process starts TensorFlow and
loads it (counted). The LocalCluster's own start ({seconds['dask, cluster start included'] - seconds['dask']:.1f} s)
is not counted. Largest volume difference: over every written volume, relative to its largest magnitude;
Dice difference: the largest over the pairs. They are not 0 because SimpleITK's multi-threaded Mattes
mutual information is not bit-reproducible (two runs with 2 threads in one process already differ in the
7th digit of the affine; 1 thread is reproducible), and the affine optimizer carries such differences
further for some scans, into a few voxels of the nearest-neighbour label maps. Each `workers=2` process
runs ITK with 1 thread (its share of the cores); `workers=1` and the Dask workers with all cores. Other processes may have shared
the CPU cores.
"""
    name = "cohort_quick" if args.quick else "cohort"
    write_results(name, "A cohort in one call: here, on two processes, on a Dask LocalCluster", rows, notes=notes,
                  command="python benchmarks/cohort.py " + " ".join(args.argv))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(IXI_RAW), help="folder of raw scans with labels/ (default ixi_raw)")
    parser.add_argument("--scans", type=int, default=39, help="moving scans (the first scan is the fixed one)")
    parser.add_argument("--model", default="pretrained:ixi-t1-2mm")
    parser.add_argument("--quick", action="store_true", help="4 moving scans: a smoke run")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.scans = 4
    return args


if __name__ == "__main__":
    main()
