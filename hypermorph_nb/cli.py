"""Command line: ``hypermorph-nb demo --out DIR``."""

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
    args = parser.parse_args(argv)

    from .demo import run_demo

    try:
        run_demo(args.out, n_images=args.images, shape=tuple(args.size), epochs=args.epochs,
                 steps_per_epoch=args.steps_per_epoch, seed=args.seed)
    except (ValueError, OSError) as err:
        print(f"hypermorph-nb: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
