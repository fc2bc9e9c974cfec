"""Command line: ``hypermorph-nb demo --out DIR`` and ``hypermorph-nb notebooks --out DIR``."""

import argparse
import sys


def main(argv=None):
    """Entry point of the ``hypermorph-nb`` console command."""
    parser = argparse.ArgumentParser(prog="hypermorph-nb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train HyperMorph on the embedded synthetic data and report Dice vs λ")
    demo.add_argument("--out", required=True, help="output folder for metrics.json, figures and the model")
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--steps-per-epoch", type=int, default=50)
    demo.add_argument("--images", type=int, default=40, help="number of synthetic subjects")
    demo.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    demo.add_argument("--seed", type=int, default=0)
    notebooks = commands.add_parser(
        "notebooks", help="execute the tutorial notebooks with papermill (full scale by default)")
    notebooks.add_argument("--out", required=True, help="results folder (executed notebooks, metrics, models)")
    notebooks.add_argument("--notebooks", default=None, help="notebooks folder (default: the repository's)")
    notebooks.add_argument("--only", nargs="*", default=None, metavar="NAME",
                           help="run only these notebooks, e.g. 03_explore_lambda")
    notebooks.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                           help="parameters for every notebook, e.g. epochs=5 image_shape=[80,96]")
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, n_images=args.images, shape=tuple(args.size), epochs=args.epochs,
                     steps_per_epoch=args.steps_per_epoch, seed=args.seed)
        else:
            from .notebooks import NotebookFailed, default_notebook_folder, parse_assignments, run_all

            try:
                run_all(args.notebooks or default_notebook_folder(), args.out,
                        parameters=parse_assignments(args.set), names=args.only)
            except NotebookFailed as err:
                print(f"hypermorph-nb: {err}", file=sys.stderr)
                return 1
    except (ValueError, OSError) as err:
        print(f"hypermorph-nb: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
