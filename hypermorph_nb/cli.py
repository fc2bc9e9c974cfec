"""Command line: ``hypermorph-nb {demo,notebooks,prepare,register,apply,train} ...`` and ``hypermorph-nb --version``.

Each subcommand is one ``(add_arguments, run)`` pair in :data:`COMMANDS`; ``run``
returns the exit status. User errors (``ValueError``, ``OSError``) print one
line, ``hypermorph-nb: error: ...``, and exit with status 2; warnings print as
``hypermorph-nb: note: ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

import argparse
import sys
import warnings
from pathlib import Path


def _demo_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder for metrics.json, figures and the model")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--images", type=int, default=40, help="number of synthetic subjects")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)


def _demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command writes PNG files and opens no window
    from .demo import run_demo

    run_demo(args.out, n_images=args.images, shape=tuple(args.size), epochs=args.epochs,
             steps_per_epoch=args.steps_per_epoch, seed=args.seed)
    return 0


def _notebooks_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="results folder (executed notebooks, metrics, models)")
    parser.add_argument("--notebooks", default=None, help="notebooks folder (default: the repository's)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only these notebooks, e.g. 03_explore_lambda")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="parameters for every notebook, e.g. epochs=5 image_shape=[80,96]")
    parser.add_argument("--quick", action="store_true",
                        help="a quick run: scale=0.05 (5%% of every epoch count) and image_shape=[80,96]; "
                             "--set overrides either")


def _notebooks(args: argparse.Namespace) -> int:
    from .notebooks import QUICK, NotebookFailed, default_notebook_folder, parse_assignments, run_all

    parameters = {**(QUICK if args.quick else {}), **parse_assignments(args.set)}
    try:
        run_all(args.notebooks or default_notebook_folder(), args.out,
                parameters=parameters, names=args.only)
    except NotebookFailed as err:
        print(f"hypermorph-nb: {err}", file=sys.stderr)
        return 1
    return 0


def _register_arguments(parser) -> None:
    parser.add_argument("--model", required=True,
                        help="model folder (from save_model or a checkpoint), or pretrained:NAME "
                             "(e.g. pretrained:ixi-t1-2mm)")
    parser.add_argument("--moving", required=True, nargs="+", metavar="MOVING",
                        help="moving image, NIfTI/MGZ (e.g. a.nii.gz); with --raw several, or a folder: a cohort "
                             "against one --fixed, one folder per pair in --out and results.csv")
    parser.add_argument("--fixed", required=True, help="fixed image, NIfTI/MGZ; its affine is written out")
    parser.add_argument("--out", required=True,
                        help="output folder: moved, moved_labels, flow, jacobian .nii.gz + registration.json "
                             "(with --raw: moved, moved_labels, transform, jacobian [, inverse_transform] .nii.gz, "
                             "moving_affine.tfm, fixed_affine.tfm + registration.json)")
    parser.add_argument("--lam", type=float, default=None, help="λ in [0, 1] (HyperMorph models); the same as "
                                                                "--hyper lam=X")
    parser.add_argument("--hyper", nargs="+", default=[], metavar="NAME=VALUE",
                        help="the values of a model conditioned on several hyperparameters, each in its range, "
                             "e.g. --hyper lam=0.3 label_weight=0.5 (model.json lists them)")
    parser.add_argument("--moving-labels", default=None, nargs="+", metavar="LABELS",
                        help="label map of the moving image (warped by nearest neighbour); for a cohort one per "
                             "--moving in the same order, or a folder holding one named as each scan")
    parser.add_argument("--refine", type=int, default=0, metavar="N",
                        help="N iterations of instance optimisation of the network's field at λ (default 0: none)")
    parser.add_argument("--resample", action="store_true",
                        help="resample the moving image onto the fixed grid when their affines differ")
    parser.add_argument("--normalize", choices=("auto", "minmax", "none"), default="auto",
                        help="intensities: auto keeps [0, 1], divides 8-bit by 255, else min-max")
    parser.add_argument("--units", choices=("voxel", "mm"), default="voxel",
                        help="flow.nii.gz in voxels of the fixed grid, or in mm along RAS world axes")
    parser.add_argument("--raw", action="store_true",
                        help="raw scans (any grid, orientation, intensities): bring both into the model's "
                             "space (affine alignment to its template), write moved image and labels on the "
                             "fixed scan's own grid and the whole transform as an ITK displacement field "
                             "(transform.nii.gz, LPS mm); the model must know its space")
    parser.add_argument("--fixed-labels", default=None,
                        help="with --raw: label map of the fixed scan (brain mask; Dice in registration.json)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="with --raw and several --moving: register the pairs on N local processes (default 1)")
    parser.add_argument("--moving-mask", default=None,
                        help="with --raw: brain mask of the moving scan (else its labels, else the template's mask); "
                             "for a cohort, a folder holding one named as each scan")
    parser.add_argument("--fixed-mask", default=None,
                        help="with --raw: brain mask of the fixed scan (else its labels, else the template's mask)")
    parser.add_argument("--inverse", action="store_true",
                        help="with --raw: also write inverse_transform.nii.gz (fixed <- moving, on the moving "
                             "scan's grid: brings the fixed scan onto the moving one)")


def _recorded_config(model: str) -> dict[str, Any] | None:
    """A saved model's ``model.json`` (its ``kind``, ``options``, ...), read without TensorFlow.

    None when the file cannot be read as a JSON object (loading the model then says what is wrong).
    """
    import json

    from .pretrained.registry import is_pretrained_name, pretrained_folder

    folder = pretrained_folder(model) if is_pretrained_name(model) else Path(model)
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(f"--model {model}: no model.json there; give a folder that hnb.save_model (or a "
                                "training checkpoint) wrote, or pretrained:NAME (e.g. pretrained:ixi-t1-2mm)")
    try:
        config = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _hyper_values(lam: float | None, assignments: Sequence[str]) -> dict[str, Any]:
    """``--lam`` and ``--hyper NAME=VALUE ...`` as one mapping of name to value (``lam`` when given).

    Examples
    --------
    >>> _hyper_values(None, ["lam=0.3", "label_weight=0.5"])
    {'lam': 0.3, 'label_weight': 0.5}
    >>> _hyper_values(0.5, ["lam=0.3"])
    Traceback (most recent call last):
    ...
    ValueError: --lam 0.5 and --hyper lam=0.3 disagree; give λ once (--lam X is --hyper lam=X)
    """
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        name = name.strip()
        if not equals or not name.isidentifier():
            raise ValueError(f"--hyper {assignment}: give NAME=VALUE pairs, e.g. --hyper lam=0.3 label_weight=0.5")
        if name in values:
            raise ValueError(f"--hyper names {name} twice; give each hyperparameter once")
        try:
            values[name] = float(text)
        except ValueError:
            raise ValueError(f"--hyper {assignment}: {text!r} is not a number; e.g. --hyper {name}=0.5") from None
    if lam is not None and values.setdefault("lam", lam) != lam:
        raise ValueError(f"--lam {lam:g} and --hyper lam={values['lam']:g} disagree; give λ once "
                         "(--lam X is --hyper lam=X)")
    return values


def _check_register(args: argparse.Namespace) -> dict[str, Any]:
    """Every argument of ``register`` checked before the model (and TensorFlow) loads.

    Sets ``args.lam`` from ``--lam`` or ``--hyper lam=X``; returns the other hyperparameters' values.
    """
    values = _hyper_values(args.lam, args.hyper)   # its syntax first: a mistake there needs no import
    from .checks.files import check_out_folder, check_scan_arguments
    from .checks.values import check_lambda, check_model_hyperparameters, check_refine

    args.lam = values.pop("lam", None)
    config = _recorded_config(args.model)
    if config is not None:
        options = config.get("options")
        recorded = options.get("hyperparameters") if isinstance(options, dict) else None
        check_model_hyperparameters({"lam": args.lam, **values}, recorded, hypermorph=config.get("kind") == "hypermorph",
                                    model=args.model, command_line=True)
    if args.raw:
        changed = [option for option, value, default in (("--resample", args.resample, False),
                                                         ("--normalize", args.normalize, "auto"),
                                                         ("--units", args.units, "voxel")) if value != default]
        if changed:
            raise ValueError(f"{', '.join(changed)}: not used with --raw (raw scans are resampled, normalised and "
                             "aligned by the preparation; the transform is written in mm); leave them out")
        if len(args.moving) > 1 or Path(args.moving[0]).is_dir():   # a cohort: register_scans names every bad file
            if args.lam is not None:
                check_lambda(args.lam)
            check_refine(args.refine)
            return values
        check_scan_arguments(lam=args.lam, refine=args.refine, out_dir=args.out, scans={
            "moving": (args.moving[0], {"labels": (args.moving_labels or [None])[0], "mask": args.moving_mask}),
            "fixed": (args.fixed, {"labels": args.fixed_labels, "mask": args.fixed_mask})})
        return values
    if len(args.moving) > 1 or len(args.moving_labels or ()) > 1 or args.workers != 1:
        raise ValueError("several --moving (a cohort) and --workers are read with --raw only; add --raw, or "
                         "give one --moving")
    raw_only = [option for option, value in (("--fixed-labels", args.fixed_labels), ("--moving-mask", args.moving_mask),
                                             ("--fixed-mask", args.fixed_mask), ("--inverse", args.inverse or None))
                if value is not None]
    if raw_only:
        raise ValueError(f"{', '.join(raw_only)}: read with --raw only; add --raw to register raw scans")
    if args.lam is not None:
        check_lambda(args.lam)
    check_refine(args.refine)
    check_out_folder(args.out)
    return values


def _register(args):
    hyperparameters = _check_register(args)
    from .io.persistence import load_model
    from .networks.models import spec_of
    from .registration.export import export_registration

    if args.raw:
        return _register_raw(args, hyperparameters)
    args.moving, args.moving_labels = args.moving[0], (args.moving_labels or [None])[0]
    model = load_model(args.model)
    if args.lam is None and spec_of(model).is_hypermorph:
        raise ValueError(f"{args.model} is a HyperMorph model, which registers at a λ you choose: "
                         "give it with --lam, a value in [0, 1] (e.g. --lam 0.5; a larger λ gives "
                         "a smoother field)")
    paths = export_registration(model, args.moving, args.fixed, args.out, lam=args.lam, refine=args.refine,
                                moving_labels=args.moving_labels, resample=args.resample,
                                normalize=args.normalize, units=args.units, **hyperparameters)
    for path in paths.written().values():
        print(path)
    return 0


def _register_raw(args: argparse.Namespace, hyperparameters: dict[str, Any]) -> int:
    from .io.persistence import load_model
    from .networks.models import spec_of
    from .registration.files import RegistrationFiles
    from .registration.native import register_scans

    model = load_model(args.model)
    if args.lam is None and spec_of(model).is_hypermorph:
        raise ValueError(f"{args.model} is a HyperMorph model, which registers at a λ you choose: "
                         "give it with --lam, a value in [0, 1] (e.g. --lam 0.5)")
    moving = args.moving[0] if len(args.moving) == 1 else args.moving
    labels = args.moving_labels[0] if args.moving_labels and len(args.moving_labels) == 1 else args.moving_labels
    result = register_scans(model, moving, args.fixed, args.out, lam=args.lam, refine=args.refine,
                            moving_labels=labels, fixed_labels=args.fixed_labels, moving_mask=args.moving_mask,
                            fixed_mask=args.fixed_mask, inverse=args.inverse, workers=args.workers,
                            **hyperparameters)
    if isinstance(result, RegistrationFiles):
        for path in result.written().values():
            print(path)
        return 0
    print(f"{len(result.pairs) - len(result.failed)} of {len(result.pairs)} pairs registered in {result.out_dir}"
          + (f"; failed: {', '.join(result.failed)}" if result.failed else ""))
    print(result.table)
    return 1 if result.failed else 0


def _apply_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transform", required=True, action="extend", nargs="+", metavar="T",
                        help="a displacement field (transform.nii.gz) or an ITK affine (.tfm, .mat); repeat it "
                             "to chain them in ANTs' order: the last given is applied to the point first")
    parser.add_argument("--image", required=True, help="the image or label map to warp, NIfTI/MGZ")
    parser.add_argument("--reference", required=True, help="an image whose grid the output takes (e.g. the fixed scan)")
    parser.add_argument("--out", required=True, help="output file, .nii or .nii.gz")
    parser.add_argument("--interpolation", choices=("linear", "nearest"), default="linear",
                        help="linear for intensities, nearest for label maps and masks (keeps values and type)")


def _apply(args: argparse.Namespace) -> int:
    from .registration.apply import apply_transform

    print(apply_transform(args.transform, args.image, args.reference, interpolation=args.interpolation,
                          out=args.out))
    return 0


def _prepare_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", help="a folder of NIfTI/MGZ scans, or scan files "
                        "(label maps: NAME_seg.* or labels/NAME.*; masks: NAME_mask.* or masks/NAME.*)")
    parser.add_argument("--out", required=True,
                        help="output folder: prepared scans, labels/, transforms/, template/, manifest.json, qc/qc.png")
    parser.add_argument("--reference", default=None,
                        help="index or path of one of the scans, a template file, or a model whose space the "
                             "scans go to: pretrained:NAME or a saved model folder (default: a template "
                             "built from the scans)")
    parser.add_argument("--reference-mask", default=None, help="brain mask of a template file")
    parser.add_argument("--spacing", type=float, default=None,
                        help="voxel size of the grid in mm (default 2, or the model's with a model reference)")
    parser.add_argument("--shape", type=int, nargs=3, default=None, metavar=("D", "H", "W"),
                        help="grid shape (default: the reference brain plus a margin, multiples of 8)")
    parser.add_argument("--template-rounds", type=int, default=2,
                        help="average-and-realign rounds of the cohort template")


def _prepare(args) -> int:
    from .data.preparation import prepare_scans
    from .pretrained.registry import is_pretrained_name

    inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    reference = int(args.reference) if args.reference is not None and args.reference.lstrip("-").isdigit() \
        else args.reference
    if isinstance(reference, str) and (is_pretrained_name(reference) or (Path(reference) / "model.json").is_file()):
        from .io.persistence import load_model

        reference = load_model(reference)
    result = prepare_scans(inputs, args.out, reference=reference, spacing=args.spacing, shape=args.shape,
                           reference_mask=args.reference_mask, template_rounds=args.template_rounds)
    print(f"{len(result.dataset)} of {len(result.scans)} scans prepared on a {result.dataset.shape} grid "
          f"in {args.out}" + (f"; left out: {', '.join(result.failed)}" if result.failed else ""))
    print(result.paths["manifest"])
    print(result.paths["qc"])
    return 0


def _train_arguments(parser) -> None:
    from .training.command import add_arguments

    add_arguments(parser)


def _train(args):
    from .training.command import run

    return run(args)


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser that adds its arguments only when that subcommand is parsed.

    Some subcommands' arguments come from modules that load TensorFlow
    (``train``); added lazily, ``hypermorph-nb --version`` and ``--help`` load
    none of them.
    """

    def __init__(self, *args: Any, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_arguments = add_arguments

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        if self.add_arguments is not None:
            add_arguments, self.add_arguments = self.add_arguments, None
            add_arguments(self)
        return super().parse_known_args(args, namespace)


#: name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS = {
    "demo": ("train HyperMorph on the embedded synthetic data and report Dice vs λ",
             _demo_arguments, _demo),
    "notebooks": ("execute the tutorial notebooks with papermill (full scale by default)",
                  _notebooks_arguments, _notebooks),
    "prepare": ("prepare raw scans for registration: reorient, resample, normalise, brain-mask and "
                "affinely align them onto one grid (with transforms, manifest and QC picture)",
                _prepare_arguments, _prepare),
    "register": ("register a moving to a fixed NIfTI image with a saved model and write "
                 "moved image, labels, displacement field and Jacobian as NIfTI",
                 _register_arguments, _register),
    "apply": ("warp an image or label map onto a reference grid with written transforms (displacement "
              "fields, ITK affines), as antsApplyTransforms", _apply_arguments, _apply),
    "train": ("train a model on a data source, in one process, as one worker of the job that "
              "TF_CONFIG names, or as N local workers (--workers N)", _train_arguments, _train),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hypermorph-nb`` console command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="hypermorph-nb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"hypermorph-nb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        commands.add_parser(name, help=help_text, description=help_text, add_arguments=add_arguments)
    args = parser.parse_args(argv)

    def note(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        print(f"hypermorph-nb: note: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)
            warnings.showwarning = note
            return COMMANDS[args.command][2](args)
    except (ValueError, OSError) as err:
        print(f"hypermorph-nb: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
