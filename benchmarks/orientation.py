"""The left–right check of prepared scans on the 40 ``ixi_raw`` heads and their flipped copies.

Each head of ``../shared/data/ixi_raw`` is prepared onto the shipped model's space (its mean
training brain and mask, as ``register_scans`` does) twice: as it is, and as a copy whose data
were flipped along the voxel axis that runs left–right in world space with its header unchanged
(written to a temporary folder, removed afterwards). For each, the check
(:func:`hypermorph_nb.data.orientation.check_orientation`) gives its score (mutual information
with the template minus its mirror image's, after aligning both alike) and flags it below the
threshold. The table gives, per group, how many were flagged (want: no original, every flipped
copy), the score's minimum, median and maximum, and the check's seconds per scan (wall and CPU).

Run from the repository root: ``python benchmarks/orientation.py`` (``--scans 12`` for a subset,
``--quick`` for 4 scans and a smoke table in ``results/orientation_quick.md``).
"""
import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ROOT = pathlib.Path(__file__).resolve().parents[1]
IXI_RAW = ROOT.parent / "shared" / "data" / "ixi_raw"
PRETRAINED = ROOT / "hypermorph_nb" / "pretrained" / "ixi-t1-2mm"


def flipped_copy(path, folder):
    """The scan and its label map with the data flipped along the world's left–right axis, header kept."""
    import nibabel

    copies = []
    for source, target in ((path, folder / path.name), (path.parent / "labels" / path.name, folder / "labels" / path.name)):
        image = nibabel.load(source)
        axis = int(np.argmax(np.abs(image.affine[0, :3])))   # the voxel axis along RAS x
        target.parent.mkdir(parents=True, exist_ok=True)
        nibabel.save(nibabel.Nifti1Image(np.flip(np.asarray(image.dataobj), axis).copy(), image.affine, image.header),
                     target)
        copies.append(target)
    return copies


def main(argv=None):
    """Run the benchmark; print and write its table."""
    import nibabel

    from common import write_results

    from hypermorph_nb.data.orientation import FLIP_THRESHOLD, check_orientation
    from hypermorph_nb.data.scans import Reference, Scan, prepare_scan

    args = parse(argv)
    paths = sorted(IXI_RAW.glob("IXI*.nii.gz"))[:args.scans]
    template = nibabel.load(PRETRAINED / "reference.nii.gz")
    reference = Reference(image=np.asarray(template.dataobj, np.float32), affine=template.affine,
                          mask=np.asarray(nibabel.load(PRETRAINED / "reference_mask.nii.gz").dataobj) > 0)
    groups = {"original": [], "flipped": []}
    with tempfile.TemporaryDirectory(prefix="flipped-") as folder:
        for path in paths:
            for group, (scan_path, labels) in (("original", (path, path.parent / "labels" / path.name)),
                                               ("flipped", flipped_copy(path, pathlib.Path(folder)))):
                scan = Scan.read(scan_path, labels=labels)
                start = time.perf_counter()
                prepared = prepare_scan(scan, reference, orientation=False)
                preparing = time.perf_counter() - start
                start, cpu = time.perf_counter(), time.process_time()
                check = check_orientation(prepared.image, reference)
                groups[group].append({"name": scan.name, "score": check.score, "flipped": check.flipped,
                                      "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                                      "prepare": preparing, "correlation": prepared.correlation})
                print(f"{group:8s} {scan.name}: score {check.score:+.4f} flagged {check.flipped} "
                      f"({groups[group][-1]['seconds']:.2f} s; correlation {prepared.correlation:.3f})", flush=True)
    rows = []
    for group, results in groups.items():
        scores = [result["score"] for result in results]
        rows.append({"group": group, "scans": len(results), "flagged": sum(r["flipped"] for r in results),
                     "score min": min(scores), "score median": statistics.median(scores), "score max": max(scores),
                     "check s/scan": statistics.median(r["seconds"] for r in results),
                     "check CPU s/scan": statistics.median(r["cpu"] for r in results),
                     "prepare s/scan": statistics.median(r["prepare"] for r in results)})
    lowest = sorted(groups["original"], key=lambda r: r["score"])[:3]
    highest = sorted(groups["flipped"], key=lambda r: -r["score"])[:3]
    notes = (f"Threshold {FLIP_THRESHOLD:g} (flagged: score below it, the mirror image fits the template better). "
             f"Margin: the lowest original lies {rows[0]['score min'] - FLIP_THRESHOLD:+.4f} from it, the highest "
             f"flipped copy {rows[1]['score max'] - FLIP_THRESHOLD:+.4f}. Lowest originals: "
             + ", ".join(f"{r['name']} {r['score']:+.4f} (correlation {r['correlation']:.3f})" for r in lowest)
             + "; highest flipped copies: " + ", ".join(f"{r['name']} {r['score']:+.4f}" for r in highest)
             + ". Seconds: the check alone (two rigid + affine alignments on the model's 80×96×80 grid), "
             "SimpleITK's default threads; `prepare s/scan`: the preparation before it, for scale. Load average "
             f"at the end: {os.getloadavg()[0]:.1f} (above the cores, wall seconds grow; CPU seconds do not).\n")
    name = "orientation_quick" if args.quick else "orientation"
    command = "python benchmarks/orientation.py" + (" --quick" if args.quick else
                                                   f" --scans {args.scans}" if args.scans != 40 else "")
    write_results(name, "Left-right check: ixi_raw heads and their flipped copies, pretrained template", rows,
                  notes=notes, command=command)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=40, help="how many ixi_raw heads (default all 40)")
    parser.add_argument("--quick", action="store_true", help="4 scans: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.scans = 4
    return args


if __name__ == "__main__":
    main()
