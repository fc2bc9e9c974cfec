"""A cohort in one call: ``register_scans`` and ``prepare_scans`` here, on two processes, on a Dask cluster.

On ``../shared/data/ixi_raw`` (40 raw IXI T1 heads with label maps), the first N scans registered
to the model's template (each subject → template: the reference image and brain mask that
``pretrained:ixi-t1-2mm`` carries, written as a NIfTI) at λ 0.5, their label maps warped with them,
in one run:

- N single ``register_scans`` calls one after the other (the plain path: a loop a user writes,
  with the model loaded and compiled once before; the baseline);
- the cohort path in one call: ``workers=1`` (given the model's name, as the workers are, and
  given the loaded model the single calls use), ``workers=2`` (local "spawn" processes: each starts
  TensorFlow and loads the model, counted) and a ``distributed.LocalCluster`` of 2 single-thread
  worker processes through ``Client.get_executor()`` (each given its share of the cores by
  :func:`hypermorph_nb.runtime.parallel.share_cores`, as ``workers=2`` does for its processes);
- ``prepare_scans`` of the same scans onto the model's grid, ``workers=1`` / ``2`` / the cluster;
- how far the files written by ``workers=2`` and the cluster are from those of ``workers=1``.

Goals (issue 28): the cohort's time per pair at ``workers=1`` ≤ 1.2× a single call's, and
``workers=2`` ≥ 1.7× faster than ``workers=1`` on two free cores (the start of the workers
counts). The 1-minute load average at the start and the end of the run is in the table's title:
other work on the same cores lowers every speed-up.

    python benchmarks/cohort.py                  # all 40 scans -> results/cohort_40.md
    python benchmarks/cohort.py --scans 12       # the first 12 -> results/cohort_12.md
    python benchmarks/cohort.py --quick          # 4 scans, a smoke table in results/cohort_quick.md
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
LAM = 0.5


def differences(first: pathlib.Path, second: pathlib.Path) -> tuple[float, float]:
    """How far two runs' files are apart: (largest volume difference, % of label voxels that differ).

    The volume difference is the largest absolute difference of any image, field or Jacobian,
    relative to that volume's largest magnitude; label maps count the voxels whose label differs.
    """
    import nibabel

    worst, differing, voxels = 0.0, 0, 0
    for path in sorted(first.rglob("*.nii.gz")):
        ours = np.asarray(nibabel.load(path).dataobj, dtype=np.float64)
        theirs = np.asarray(nibabel.load(second / path.relative_to(first)).dataobj, dtype=np.float64)
        if "labels" in path.name:
            differing, voxels = differing + int(np.sum(ours != theirs)), voxels + ours.size
        else:
            worst = max(worst, float(np.abs(ours - theirs).max() / max(np.abs(ours).max(), 1e-12)))
    return worst, 100.0 * differing / max(voxels, 1)


def write_template(model, folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The model's reference image and brain mask as NIfTI files (the template scans are registered to)."""
    import nibabel

    from hypermorph_nb.networks.models import spec_of

    space = spec_of(model).space
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = folder / "template.nii.gz", folder / "template_mask.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.asarray(space.reference, np.float32), space.affine), image)
    nibabel.save(nibabel.Nifti1Image(np.asarray(space.reference_mask, np.uint8), space.affine), mask)
    return image, mask


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import distributed

    import hypermorph_nb as hnb
    from common import write_results
    from hypermorph_nb.runtime.parallel import share_cores

    load_start = os.getloadavg()[0]
    scans = sorted(pathlib.Path(args.data).glob("*.nii.gz"))[: args.scans]
    labels = [path.parent / "labels" / path.name for path in scans]
    work = pathlib.Path(tempfile.mkdtemp(prefix="cohort-benchmark-"))
    model = hnb.load_model(args.model)
    template, template_mask = write_template(model, work / "template")
    keywords = dict(lam=LAM, fixed_mask=template_mask)

    hnb.register_scans(model, scans[0], template, work / "warm", moving_labels=labels[0], **keywords)   # compile once
    start = time.perf_counter()
    for path, label in zip(scans, labels):
        hnb.register_scans(model, path, template, work / "single" / path.name, moving_labels=label, **keywords)
    single = (time.perf_counter() - start) / len(scans)
    print(f"single calls: {single:.2f} s per pair", flush=True)

    seconds, prepare = {}, {}
    for name, given, options in (("workers=1", args.model, {}), ("workers=1, loaded model", model, {}),
                                 ("workers=2", args.model, {"workers": 2})):
        start = time.perf_counter()
        result = hnb.register_scans(given, scans, template, work / name, moving_labels=labels, **options, **keywords)
        seconds[name] = time.perf_counter() - start
        print(f"cohort {name}: {seconds[name]:.1f} s, failed {result.failed}", flush=True)
    cluster_start = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.run(share_cores, 1)   # before TensorFlow starts in the workers: one core's threads each
        cluster_seconds = time.perf_counter() - cluster_start
        start = time.perf_counter()
        result = hnb.register_scans(args.model, scans, template, work / "dask", moving_labels=labels,
                                    executor=client.get_executor(), **keywords)
        seconds["dask"] = time.perf_counter() - start
        print(f"cohort dask: {seconds['dask']:.1f} s, failed {result.failed}", flush=True)
        for name, options in (("workers=1", {}), ("workers=2", {"workers": 2}),
                              ("dask", {"executor": client.get_executor()})):
            start = time.perf_counter()
            hnb.prepare_scans(scans, work / f"prepared {name}", reference=model, **options)
            prepare[name] = time.perf_counter() - start
            print(f"prepare_scans {name}: {prepare[name]:.1f} s", flush=True)
    apart = {name: differences(work / "workers=1", work / name) for name in ("workers=2", "dask")}
    load_end = os.getloadavg()[0]

    def row(run: str, total: float | None, per_pair: float, goal: str = "", apart_from: str = "") -> dict:
        volume, label_voxels = apart.get(apart_from, ("", ""))
        return {"run": run, "s per pair": per_pair,
                "speed-up vs workers=1": "" if total is None else seconds["workers=1"] / total,
                "largest volume difference vs workers=1": volume, "% label voxels differing": label_voxels,
                "goal": goal}

    per_pair = {name: value / len(scans) for name, value in seconds.items()}
    rows = [
        row("single register_scans calls (baseline)", None, single),
        row("cohort, workers=1", seconds["workers=1"], per_pair["workers=1"],
            f"≤ 1.2 × single: {per_pair['workers=1'] / single:.2f} ×"),
        row("cohort, workers=1, the loaded and compiled model", seconds["workers=1, loaded model"],
            per_pair["workers=1, loaded model"], f"≤ 1.2 × single: {per_pair['workers=1, loaded model'] / single:.2f} ×"),
        row("cohort, workers=2 (spawn, start included)", seconds["workers=2"], per_pair["workers=2"],
            f"≥ 1.7 × workers=1: {seconds['workers=1'] / seconds['workers=2']:.2f} ×", "workers=2"),
        row("cohort, LocalCluster 2 × 1 thread (worker start included)", seconds["dask"], per_pair["dask"],
            "", "dask"),
    ] + [{"run": f"prepare_scans, {name}", "s per pair": value / len(scans),
          "speed-up vs workers=1": prepare["workers=1"] / value, "largest volume difference vs workers=1": "",
          "% label voxels differing": "", "goal": ""} for name, value in prepare.items()]
    notes = f"""
{len(scans)} raw scans of `{args.data}` registered to `{args.model}`'s template (its reference image, with its
brain mask as `fixed_mask`) at λ {LAM}, each with its label map (warped as `moved_labels.nii.gz`). Single calls
reuse one loaded and compiled model; the cohort runs get the model by name (so each worker process starts
TensorFlow and loads it, counted), except "the loaded and compiled model", which gets the single calls' one. The LocalCluster's own start ({cluster_seconds:.1f} s) is not counted. Threads:
`workers=1` and the single calls run TensorFlow and ITK on every core of this process
({len(os.sched_getaffinity(0))}); each `workers=2` process and each Dask worker on 1 (`share_cores(1)`). Largest
volume difference: over every written image, field and Jacobian, relative to its largest magnitude; label maps:
the share of their voxels that differ. The alignment runs on one ITK thread everywhere
(`ALIGNMENT_THREADS`), so differences come from TensorFlow's kernels summing in another order with another
thread count. Load average (1 min): {load_start:.2f}
at the start, {load_end:.2f} at the end; above 0 other processes shared the cores, which lowers the speed-ups.
"""
    name = "cohort_quick" if args.quick else f"cohort_{len(scans)}"
    write_results(name, f"A cohort of {len(scans)} scans in one call: here, on two processes, on a Dask "
                  f"LocalCluster (load average {load_start:.1f} → {load_end:.1f})", rows, notes=notes,
                  command="python benchmarks/cohort.py " + " ".join(args.argv))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(IXI_RAW), help="folder of raw scans with labels/ (default ixi_raw)")
    parser.add_argument("--scans", type=int, default=40, help="moving scans: the first N of --data (default 40)")
    parser.add_argument("--model", default="pretrained:ixi-t1-2mm", help="a model that knows its space")
    parser.add_argument("--quick", action="store_true", help="4 scans: a smoke run")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.scans = 4
    if args.scans < 2:
        parser.error(f"--scans must be at least 2 (a cohort), got {args.scans}")
    return args


if __name__ == "__main__":
    main()
