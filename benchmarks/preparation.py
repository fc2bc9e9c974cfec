"""Preparing raw scans (``prepare_scans``) against a plain SimpleITK script, and raw-to-raw registration.

On ``../shared/data/ixi_raw`` (40 IXI T1 heads as they come, with DLMUSE label maps), in one run:

- ``prepare_scans`` (cohort template: align to the first scan, average, realign, twice) and a
  plain SimpleITK script doing the same steps (read, orient by the header, percentile
  normalisation inside the label mask, masking, centre-of-mass start, rigid then affine Mattes
  MI with the same settings, the same template rounds, resampling onto the same grid): seconds
  per scan;
- for both, the mean affine-only label Dice between pairs of prepared subjects, next to the same
  pairs of the same subjects in ``../shared/data/ixi3d/ixi3d_150.npz`` (prepared elsewhere;
  goal: ours ≥ ixi3d − 0.02);
- the template's brain mask as the mask of scans given without label maps: its Dice with each
  scan's own label-map brain mask;
- ``register_scans`` on two raw scans (both preparations, the model call, the native-space
  writing) against the model call plus the two preparations alone (goal: ≤ 2×), with the default
  HyperMorph on the prepared grid.

Run from the repository root: ``python benchmarks/preparation.py`` (``--scans 12`` for a subset,
``--quick`` for 6 scans and a smoke table in ``results/preparation_quick.md``).
"""
import argparse
import itertools
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ROOT = pathlib.Path(__file__).resolve().parents[1]
IXI_RAW = ROOT.parent / "shared" / "data" / "ixi_raw"
IXI3D = ROOT.parent / "shared" / "data" / "ixi3d" / "ixi3d_150.npz"


def plain_simpleitk(paths, grid_shape, grid_affine, *, rounds=2):
    """The same steps written directly with SimpleITK: returns label maps on the grid and seconds."""
    import SimpleITK as sitk

    from hypermorph_nb.data.alignment import to_sitk

    start = time.perf_counter()
    grid = to_sitk(np.zeros(grid_shape, np.float32), grid_affine)
    scans = []
    for path in paths:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
        labels = sitk.ReadImage(str(path.parent / "labels" / path.name))
        values = sitk.GetArrayFromImage(image)
        brain = sitk.GetArrayFromImage(labels) > 0
        low, high = np.percentile(values[brain], (0.5, 99.5))
        normalised = sitk.GetImageFromArray((np.clip((values - low) / (high - low), 0, 1) * brain).astype(np.float32))
        normalised.CopyInformation(image)
        scans.append((normalised, labels))

    def register(fixed, fixed_mask, moving, affine_levels):
        initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                    sitk.CenteredTransformInitializerFilter.MOMENTS)
        rigid = sitk.Euler3DTransform(initial)
        for transform, levels in ((rigid, (4, 2)), (None, affine_levels)):
            if transform is None:
                transform = sitk.AffineTransform(3)
                transform.SetCenter(rigid.GetCenter())
                transform.SetMatrix(rigid.GetMatrix())
                transform.SetTranslation(rigid.GetTranslation())
            method = sitk.ImageRegistrationMethod()
            method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
            method.SetMetricSamplingStrategy(method.RANDOM)
            method.SetMetricSamplingPercentagePerLevel([min(1.0, 0.05 * f) for f in levels], 1)
            method.SetMetricFixedMask(fixed_mask)
            method.SetInterpolator(sitk.sitkLinear)
            method.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, 100, relaxationFactor=0.6,
                                                            gradientMagnitudeTolerance=1e-8)
            method.SetOptimizerScalesFromPhysicalShift()
            method.SetShrinkFactorsPerLevel(list(levels))
            method.SetSmoothingSigmasPerLevel([factor / 2 for factor in levels])
            method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
            method.SetInitialTransform(transform, inPlace=True)
            method.Execute(fixed, moving)
        return transform

    template = sitk.Resample(scans[0][0], grid, sitk.Transform(), sitk.sitkLinear, 0.0)
    for round_ in range(rounds + 1):
        mask = sitk.BinaryDilate(sitk.BinaryThreshold(template, 1e-3, 2.0), [4, 4, 4])
        transforms = [register(template, mask, image, (4, 2) if round_ < rounds else (2, 1))
                      for image, _ in scans]
        moved = [sitk.GetArrayFromImage(sitk.Resample(image, grid, transform, sitk.sitkLinear, 0.0))
                 for (image, _), transform in zip(scans, transforms)]
        if round_ < rounds:
            average = sitk.GetImageFromArray(np.mean(moved, axis=0).astype(np.float32))
            average.CopyInformation(grid)
            template = average
    labels = [sitk.GetArrayFromImage(sitk.Resample(label, grid, transform, sitk.sitkNearestNeighbor, 0))
              for (_, label), transform in zip(scans, transforms)]
    return [label.transpose(2, 1, 0) for label in labels], time.perf_counter() - start


def pairwise_dice(label_maps, pairs):
    from hypermorph_nb.metrics import mean_dice

    return float(np.mean([mean_dice(label_maps[a], label_maps[b]) for a, b in pairs]))


def main(argv=None):
    args = parse_args(argv)
    import hypermorph_nb as hnb
    from common import write_results
    from hypermorph_nb import prepare_scans
    from hypermorph_nb.data.alignment import resample
    from hypermorph_nb.data.scans import Reference, Scan, prepare_scan
    from hypermorph_nb.networks.description import ModelSpace
    from hypermorph_nb.networks.models import describe
    from hypermorph_nb.registration.pairs import Registrar

    paths = sorted(pathlib.Path(args.data).glob("*.nii.gz"))[: args.scans]
    work = pathlib.Path(tempfile.mkdtemp(prefix="preparation-benchmark-"))
    start = time.perf_counter()
    prepared = prepare_scans(paths, work / "ours", spacing=args.spacing)
    ours_seconds = time.perf_counter() - start
    print(f"prepare_scans: {ours_seconds / len(paths):.2f} s per scan, failed {prepared.failed}", flush=True)
    plain_labels, plain_seconds = plain_simpleitk(paths, prepared.dataset.shape, prepared.dataset.affine)
    print(f"plain SimpleITK: {plain_seconds / len(paths):.2f} s per scan", flush=True)

    with np.load(args.ixi3d) as archive:
        subjects = list(archive["subjects"])
        segs = archive["segs"]
    names = [name.replace("_T1", "") for name in prepared.dataset.names]
    pairs = list(itertools.combinations(range(len(names)), 2))
    pairs = [pairs[i] for i in np.random.default_rng(0).permutation(len(pairs))[: args.pairs]]
    kept = [paths.index(next(p for p in paths if p.name.startswith(name))) for name in names]
    dice_ours = pairwise_dice(prepared.dataset.labels, pairs)
    dice_plain = pairwise_dice([plain_labels[i] for i in kept], pairs)
    dice_ixi3d = pairwise_dice([segs[subjects.index(name)] for name in names], pairs)
    print(f"pairwise affine-only Dice: ours {dice_ours:.4f}, plain {dice_plain:.4f}, ixi3d {dice_ixi3d:.4f}",
          flush=True)

    # scans without label maps: masked with the template's brain mask after alignment
    unlabelled = work / "unlabelled"
    unlabelled.mkdir()
    sample = paths[: args.mask_scans]
    for path in sample:
        os.symlink(path, unlabelled / path.name)
    masked = prepare_scans(unlabelled, work / "masked", reference=prepared.paths["template"],
                           reference_mask=prepared.paths["template_mask"], labels=None)
    mask_dice = []
    for path, transform in zip(sample, masked.transforms):
        truth = Scan.read(path, labels=path.parent / "labels" / path.name)
        own = resample(truth.labels > 0, truth.affine, masked.dataset.shape, masked.dataset.affine,
                       transform=transform, order=0)
        template_mask = masked.reference.mask
        mask_dice.append(2 * (own & template_mask).sum() / (own.sum() + template_mask.sum()))
    print(f"template mask vs own label mask: Dice {np.mean(mask_dice):.4f}", flush=True)

    # raw-to-raw registration against its parts
    model = hnb.build_hypermorph(prepared.dataset.shape, seed=0)
    describe(model, space=ModelSpace.from_dataset(prepared.dataset))
    moving, fixed = paths[-1], paths[-2]
    labels = moving.parent / "labels" / moving.name, fixed.parent / "labels" / fixed.name
    hnb.register_scans(model, moving, fixed, work / "warm", lam=0.5, moving_labels=labels[0])   # compile
    timings = {"register_scans": [], "model": [], "preparations": []}
    space = ModelSpace.from_dataset(prepared.dataset)
    reference = Reference(image=space.reference, affine=space.affine, mask=space.reference_mask)
    registrar = Registrar.for_model(model)
    for repeat in range(args.repeats):
        start = time.perf_counter()
        hnb.register_scans(model, moving, fixed, work / f"raw{repeat}", lam=0.5, moving_labels=labels[0])
        timings["register_scans"].append(time.perf_counter() - start)
        start = time.perf_counter()
        pair = [prepare_scan(Scan.read(path, labels=label), reference) for path, label in zip((moving, fixed), labels)]
        timings["preparations"].append(time.perf_counter() - start)
        start = time.perf_counter()
        registrar.predict(pair[0].image[None, ..., None], pair[1].image[None, ..., None], 0.5)
        timings["model"].append(time.perf_counter() - start)
    median = {key: float(np.median(values)) for key, values in timings.items()}
    ratio = median["register_scans"] / (median["model"] + median["preparations"])
    print(f"raw-to-raw {median['register_scans']:.2f} s = {ratio:.2f} x (model + two preparations)", flush=True)

    rows = [
        {"what": "seconds per scan (cohort template, 2 rounds + final)", "prepare_scans": ours_seconds / len(paths),
         "plain SimpleITK": plain_seconds / len(paths), "ixi3d (prepared elsewhere)": "", "goal": "≤ 5 s"},
        {"what": f"mean affine-only label Dice, {len(pairs)} subject pairs", "prepare_scans": dice_ours,
         "plain SimpleITK": dice_plain, "ixi3d (prepared elsewhere)": dice_ixi3d,
         "goal": f"≥ {dice_ixi3d - 0.02:.3f} (ixi3d − 0.02)"},
        {"what": f"template brain mask vs own label mask, Dice ({len(sample)} scans given without labels)",
         "prepare_scans": float(np.mean(mask_dice)), "plain SimpleITK": "", "ixi3d (prepared elsewhere)": "",
         "goal": ""},
        {"what": "raw-to-raw register_scans, s", "prepare_scans": median["register_scans"],
         "plain SimpleITK": "", "ixi3d (prepared elsewhere)": "",
         "goal": f"≤ 2 × {median['model'] + median['preparations']:.2f} s"},
        {"what": "  of which: model call / two preparations, s", "prepare_scans":
         f"{median['model']:.2f} / {median['preparations']:.2f}", "plain SimpleITK": "",
         "ixi3d (prepared elsewhere)": "", "goal": ""},
        {"what": "  ratio register_scans / (model + two preparations)", "prepare_scans": ratio,
         "plain SimpleITK": "", "ixi3d (prepared elsewhere)": "", "goal": "≤ 2"},
    ]
    outliers = [scan.name for scan in prepared.scans if scan.outlier]

    def ixi3d_dice_with_the_others(name):
        subject = name.replace("_T1", "")
        maps = [segs[subjects.index(subject)]] + [segs[subjects.index(n)] for n in names if n != subject]
        return pairwise_dice(maps, [(0, j) for j in range(1, len(maps))])

    outlier_ixi3d = ", ".join(f"{ixi3d_dice_with_the_others(name):.3f}" for name in outliers) or "-"
    notes = f"""
{len(paths)} scans of `{args.data}` ({len(prepared.dataset)} aligned, left out: {prepared.failed or 'none'};
kept but flagged as label-Dice outliers: {outliers or 'none'}, their ixi3d copies' mean Dice with the other
subjects: {outlier_ixi3d}), prepared at {args.spacing} mm onto a {prepared.dataset.shape} grid. Both pipelines build the cohort template
the same way (align to the first scan, average, realign; 2 rounds with the affine stage at shrink factors
4, 2, then the final alignment at 2, 1) with the same registration settings and the same output grid;
`prepare_scans` also resamples each scan once from its own voxels, crops to the head, checks and
reports each alignment (manifest, QC picture) and writes the prepared files. Dice: mean over
structures present in both maps, averaged over the same random subject pairs for all three columns;
ixi3d holds the same subjects skull-stripped and affinely aligned elsewhere. The template-mask row
prepares {len(sample)} scans without their label maps against the template (and its mask) of the first
run, then compares the template's mask with each scan's own label-map mask on the grid. Raw-to-raw:
the default HyperMorph (untrained: timing only) on the prepared grid, λ 0.5, moving labels warped,
median of {args.repeats} repeats after a warm-up call. Other processes shared the 2 CPU cores.
"""
    name = "preparation_quick" if args.quick else "preparation"
    write_results(name, "Preparing raw scans: prepare_scans vs plain SimpleITK, and raw-to-raw registration",
                  rows, notes=notes, command="python benchmarks/preparation.py " + " ".join(args.argv))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(IXI_RAW), help="folder of raw scans with labels/ (default ixi_raw)")
    parser.add_argument("--ixi3d", default=str(IXI3D), help="the prepared ixi3d stack to compare with")
    parser.add_argument("--scans", type=int, default=40, help="use the first N scans")
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--pairs", type=int, default=150, help="subject pairs scored")
    parser.add_argument("--mask-scans", type=int, default=8, help="scans prepared without their label maps")
    parser.add_argument("--repeats", type=int, default=3, help="raw-to-raw timing repeats")
    parser.add_argument("--quick", action="store_true", help="6 scans, 1 repeat: a smoke run")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.scans, args.pairs, args.mask_scans, args.repeats = 6, 15, 2, 1
    return args


if __name__ == "__main__":
    main()
