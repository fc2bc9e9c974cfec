"""Command line: ``hypermorph-nb {demo,notebooks,register,train} ...`` and ``hypermorph-nb --version``.

Each subcommand is one ``(add_arguments, run)`` pair in :data:`COMMANDS`; ``run``
returns the exit status. User errors (``ValueError``, ``OSError``) print one
line, ``hypermorph-nb: error: ...``, and exit with status 2; warnings print as
``hypermorph-nb: note: ...``.
"""

import argparse
import sys
import warnings


def _demo_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder for metrics.json, figures and the model")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--images", type=int, default=40, help="number of synthetic subjects")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)


def _demo(args):
    from .demo import run_demo

    run_demo(args.out, n_images=args.images, shape=tuple(args.size), epochs=args.epochs,
             steps_per_epoch=args.steps_per_epoch, seed=args.seed)
    return 0


def _notebooks_arguments(parser):
    parser.add_argument("--out", required=True, help="results folder (executed notebooks, metrics, models)")
    parser.add_argument("--notebooks", default=None, help="notebooks folder (default: the repository's)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only these notebooks, e.g. 03_explore_lambda")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="parameters for every notebook, e.g. epochs=5 image_shape=[80,96]")
    parser.add_argument("--quick", action="store_true",
                        help="a quick run: scale=0.05 (5%% of every epoch count) and image_shape=[80,96]; "
                             "--set overrides either")


def _notebooks(args):
    from .notebooks import QUICK, NotebookFailed, default_notebook_folder, parse_assignments, run_all

    parameters = {**(QUICK if args.quick else {}), **parse_assignments(args.set)}
    try:
        run_all(args.notebooks or default_notebook_folder(), args.out,
                parameters=parameters, names=args.only)
    except NotebookFailed as err:
        print(f"hypermorph-nb: {err}", file=sys.stderr)
        return 1
    return 0


def _register_arguments(parser):
    parser.add_argument("--model", required=True, help="model folder (from save_model or a checkpoint)")
    parser.add_argument("--moving", required=True, help="moving image, NIfTI/MGZ (e.g. a.nii.gz)")
    parser.add_argument("--fixed", required=True, help="fixed image, NIfTI/MGZ; its affine is written out")
    parser.add_argument("--out", required=True,
                        help="output folder: moved, moved_labels, flow, jacobian .nii.gz + registration.json")
    parser.add_argument("--lam", type=float, default=None, help="λ in [0, 1] (HyperMorph models)")
    parser.add_argument("--moving-labels", default=None, help="label map of the moving image (warped by nearest neighbour)")
    parser.add_argument("--resample", action="store_true",
                        help="resample the moving image onto the fixed grid when their affines differ")
    parser.add_argument("--normalize", choices=("auto", "minmax", "none"), default="auto",
                        help="intensities: auto keeps [0, 1], divides 8-bit by 255, else min-max")
    parser.add_argument("--units", choices=("voxel", "mm"), default="voxel",
                        help="flow.nii.gz in voxels of the fixed grid, or in mm along RAS world axes")


def _register(args):
    from .export import export_registration
    from .persistence import load_model

    model = load_model(args.model)
    paths = export_registration(model, args.moving, args.fixed, args.out, lam=args.lam,
                                moving_labels=args.moving_labels, resample=args.resample,
                                normalize=args.normalize, units=args.units)
    for path in paths.values():
        print(path)
    return 0


def _train_arguments(parser):
    from .training.command import add_arguments

    add_arguments(parser)


def _train(args):
    from .training.command import run

    return run(args)


#: name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS = {
    "demo": ("train HyperMorph on the embedded synthetic data and report Dice vs λ",
             _demo_arguments, _demo),
    "notebooks": ("execute the tutorial notebooks with papermill (full scale by default)",
                  _notebooks_arguments, _notebooks),
    "register": ("register a moving to a fixed NIfTI image with a saved model and write "
                 "moved image, labels, displacement field and Jacobian as NIfTI",
                 _register_arguments, _register),
    "train": ("train a model on a data source, in one process, as one worker of the job that "
              "TF_CONFIG names, or as N local workers (--workers N)", _train_arguments, _train),
}


def main(argv=None):
    """Entry point of the ``hypermorph-nb`` console command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="hypermorph-nb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"hypermorph-nb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)

    def note(message, category, filename, lineno, file=None, line=None):
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
