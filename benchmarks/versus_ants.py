"""The shipped model against ANTs on the pretrained model's held-out ixi3d pairs: Dice, folding, seconds.

On the first held-out pairs of ``pretrained:ixi-t1-2mm`` (the seeded 85/15 split by subject of
``scripts/train_pretrained.py``: held-out subjects 2i → 2i+1, the pairs of its model card), 80×96×80
at 2 mm and already affinely aligned, in one run on the same cores:

- affine only (the unregistered pair): the floor;
- the shipped model alone (``hnb.register``) at the model card's λ 0.5 and at λ 0 (the card's best
  network-alone Dice), and with instance optimisation ``refine=50`` (the card's recommendation) and
  ``refine=100`` at λ 0.5;
- ANTs through ANTsPy (``antspyx``, the optional ``benchmarks`` extra):
  ``ants.registration(type_of_transform="antsRegistrationSyN[s]")`` (the standard
  ``antsRegistrationSyN.sh -t s`` settings: rigid + affine with mutual information, SyN with CC
  radius 2, 100×70×50×20 iterations) and the default ``"SyN"`` (affine + SyN with mutual
  information, 40×20×0 iterations). Each volume goes to ANTs as a NIfTI with its own affine, so
  ANTs sees 2 mm voxels.

Every method's moving label map is warped by nearest neighbour (ANTs: ``ants.apply_transforms``
with ``nearestNeighbor``) and scored with :func:`hypermorph_nb.metrics.mean_dice` (mean over the
structures present in both maps, of 148). Folding: the share of brain voxels (the fixed scan's
non-zero voxels) where :func:`hypermorph_nb.metrics.jacobian_determinant` of the displacement
field in voxels is ≤ 0, the same function for every method: ANTs' forward transforms (affine and
warp) are composed into one displacement field on the fixed grid
(``ants.apply_transforms(..., compose=...)``), in millimetres of ITK's LPS world, and mapped to
voxels of the fixed grid; the run checks that this field warps the labels to ANTs' own result.
Seconds per pair: the registration call alone (``hnb.register`` / ``ants.registration``; the
compiled loops of the model are traced before timing). ITK's threads
(``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``) and TensorFlow's intra-op threads are both set to
``--threads`` (default: every core this process may use).

    python benchmarks/versus_ants.py              # 6 pairs (~25 min on 2 cores, ANTs SyN[s] most of it)
    python benchmarks/versus_ants.py --quick      # 1 pair, few iterations (SyNQuick[s] for SyN[s])
    python benchmarks/versus_ants.py --pairs 10 --threads 4
"""

import argparse
import os
import sys
import tempfile
import time
from types import ModuleType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import write_results  # noqa: E402

#: The pretrained model's split (``scripts/train_pretrained.py``).
SPLIT_SEED, TRAIN_FRACTION = 0, 0.85
MODEL = "pretrained:ixi-t1-2mm"
#: λ the model card recommends (with ``refine=50``), and λ of its best network-alone Dice.
CARD_LAM, BEST_NETWORK_LAM = 0.5, 0.0


def import_ants() -> ModuleType:
    """ANTsPy, or exit with the command that installs it."""
    try:
        import ants
    except ImportError:
        sys.exit("benchmarks/versus_ants.py needs ANTsPy, an optional benchmark dependency: "
                 "pip install 'hypermorph-nb[benchmarks]' (or pip install antspyx), then run it again")
    return ants


def voxel_field(ants: ModuleType, fixed, transforms: list[str], prefix: str) -> np.ndarray:
    """ANTs' forward transforms composed into one displacement field in voxels of ``fixed``'s grid.

    ANTs writes displacements in millimetres of ITK's LPS world; voxel index ``v`` lies at
    ``origin + direction @ (spacing * v)``, so a displacement ``d`` is ``inv(direction @ diag(spacing)) @ d``
    voxels, component ``i`` along array axis ``i`` (the convention of ``hnb.register``'s field).
    """
    composed = ants.image_read(ants.apply_transforms(fixed, fixed, transforms, compose=prefix))
    millimetres = composed.numpy()   # (*spatial, 3)
    to_world = np.asarray(fixed.direction) @ np.diag(fixed.spacing)
    return (millimetres @ np.linalg.inv(to_world).T).astype(np.float32)


def ants_image(ants: ModuleType, volume: np.ndarray, affine: np.ndarray, path: str):
    """``volume`` as an ANTs image with ``affine``'s voxel size and orientation (via a NIfTI file)."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.asarray(volume, np.float32), affine), path)
    return ants.image_read(path)


def methods(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    """(name, kind, options) of every registration scored, in table order."""
    refine = [10] if args.quick else [50, 100]
    ours = [(f"hypermorph-nb, network, λ {lam}", "ours", {"lam": lam, "refine": 0})
            for lam in (CARD_LAM, BEST_NETWORK_LAM)]
    ours += [(f"hypermorph-nb, refine={n}, λ {CARD_LAM}", "ours", {"lam": CARD_LAM, "refine": n}) for n in refine]
    if args.quick:
        classical = [("ANTs antsRegistrationSyNQuick[s]", "ants", {"type_of_transform": "antsRegistrationSyNQuick[s]"}),
                     ("ANTs SyN (reg_iterations 10×5×0)", "ants",
                      {"type_of_transform": "SyN", "reg_iterations": (10, 5, 0)})]
    else:
        classical = [("ANTs antsRegistrationSyN[s]", "ants", {"type_of_transform": "antsRegistrationSyN[s]"}),
                     ("ANTs SyN (default)", "ants", {"type_of_transform": "SyN"})]
    return ours + classical


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(args.threads)   # before ITK starts in ANTs
    ants = import_ants()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import hypermorph_nb as hnb
    from hypermorph_nb.metrics import jacobian_determinant, mean_dice

    load_before = os.getloadavg()
    data = hnb.data.load_source("ixi3d")
    _, held_out = hnb.data.random_split(data, (TRAIN_FRACTION, 1 - TRAIN_FRACTION), seed=SPLIT_SEED)
    pairs = [(2 * i, 2 * i + 1) for i in range(min(args.pairs, len(held_out) // 2))]
    model = hnb.load_model(MODEL)
    registrar = hnb.registration.Registrar.for_model(model)
    images = held_out.images[..., 0]
    for refine in (0, 2):   # trace the compiled network call and refinement loop once
        hnb.register(model, images[0], images[1], lam=CARD_LAM, refine=refine)

    scores: dict[str, list[tuple[float, float, float, float]]] = {}
    affine_dice: list[float] = []
    agreement: list[float] = []
    with tempfile.TemporaryDirectory(prefix="versus-ants-") as work:
        for moving, fixed in pairs:
            labels, fixed_labels = held_out.labels[moving], held_out.labels[fixed]
            brain = images[fixed] > 0
            affine_dice.append(mean_dice(labels, fixed_labels))
            moving_image = ants_image(ants, images[moving], held_out.affines[moving], f"{work}/moving.nii.gz")
            fixed_image = ants_image(ants, images[fixed], held_out.affines[fixed], f"{work}/fixed.nii.gz")
            label_image = ants_image(ants, labels, held_out.affines[moving], f"{work}/labels.nii.gz")
            for name, kind, options in methods(args):
                start = time.perf_counter()
                if kind == "ours":
                    _, field = hnb.register(model, images[moving], images[fixed], **options)
                    seconds = time.perf_counter() - start
                    warped = registrar.warp(labels[None], field[None], interp="nearest")[0]
                else:
                    result = ants.registration(fixed_image, moving_image, outprefix=f"{work}/ants", **options)
                    seconds = time.perf_counter() - start
                    warped = ants.apply_transforms(fixed_image, label_image, result["fwdtransforms"],
                                                   interpolator="nearestNeighbor").numpy().astype(labels.dtype)
                    field = voxel_field(ants, fixed_image, result["fwdtransforms"], f"{work}/composed")
                    ours = registrar.warp(labels[None], field[None], interp="nearest")[0]
                    agreement.append(float(np.mean(ours[brain] == warped[brain])))
                folds = jacobian_determinant(field) <= 0
                scores.setdefault(name, []).append((mean_dice(warped, fixed_labels), 100 * float(folds[brain].mean()),
                                                    100 * float(folds.mean()), seconds))
                print(f"pair {held_out.names[moving]} → {held_out.names[fixed]}: {name}: Dice "
                      f"{scores[name][-1][0]:.4f}, % folding (brain) {scores[name][-1][1]:.3f}, {seconds:.1f} s",
                      flush=True)
            # after each pair, so that a run stopped early keeps the pairs it finished
            write_table(args, [held_out.names[i] for i in np.ravel(pairs)], scores, affine_dice, agreement,
                        load_before[0])


def write_table(args: argparse.Namespace, names: list[str], scores: dict[str, list[tuple[float, float, float, float]]],
                affine_dice: list[float], agreement: list[float], load_before: float) -> None:
    """The table of the pairs done so far (``names``: moving, fixed of every pair planned), printed and written."""
    done = len(affine_dice)
    affine = float(np.mean(affine_dice))
    rows = [{"method": "affine only (no deformation)", "Dice": affine, "over affine": 0.0, "% folding (brain)": 0.0,
             "% folding (volume)": 0.0, "s / pair": 0.0, "Dice per pair": " ".join(f"{d:.3f}" for d in affine_dice)}]
    for name, values in scores.items():
        values_array = np.asarray(values[:done])
        dice, brain_folding, volume_folding, seconds = values_array.mean(0)
        rows.append({"method": name, "Dice": dice, "over affine": dice - affine, "% folding (brain)": brain_folding,
                     "% folding (volume)": volume_folding, "s / pair": seconds,
                     "Dice per pair": " ".join(f"{d:.3f}" for d in values_array[:, 0])})
    planned = len(names) // 2
    notes = (f"{done} {'' if done == planned else f'(of {planned} planned: the run was stopped) '}"
             f"held-out pairs of `{MODEL}` (ixi3d, 80×96×80, 2 mm, affinely aligned): "
             + ", ".join(f"{names[2 * i]} → {names[2 * i + 1]}" for i in range(done))
             + f". Threads: ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={args.threads} for ANTs, TensorFlow intra-op "
             f"{args.threads}, on {len(os.sched_getaffinity(0))} cores; load average (1 min) "
             f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other work on the same cores "
             "slows every method; compare ratios within this run). λ: the model card's recommended "
             f"{CARD_LAM} (with refine), and {BEST_NETWORK_LAM}, the card's best network-alone Dice. Dice: mean over "
             "the structures present in both label maps, moving labels warped by nearest neighbour. % folding: "
             "Jacobian determinant ≤ 0 of each method's displacement field in voxels (ANTs: affine and warp "
             "composed), over the fixed brain and over the whole volume. The composed ANTs fields warp the labels "
             f"to ANTs' own nearest-neighbour result in {100 * min(agreement, default=float('nan')):.2f} % of "
             "brain voxels at least (the convention check).")
    command = "python benchmarks/versus_ants.py " + " ".join(args.argv)
    write_results("versus_ants_quick" if args.quick else "versus_ants",
                  f"The shipped model against ANTs on held-out ixi3d pairs ({args.threads} threads each)",
                  rows, notes=notes, command=command.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6, help="held-out pairs scored (at most 11)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of ITK (ANTs) and of TensorFlow (default: the cores this process may use)")
    parser.add_argument("--quick", action="store_true",
                        help="1 pair, refine=10, SyNQuick[s] and SyN with 10×5×0 iterations: a smoke run")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.pairs = 1
    return args


if __name__ == "__main__":
    main()
