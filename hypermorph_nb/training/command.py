"""``hypermorph-nb train``: train from the shell, in one process or as a multi-worker job.

One process trains on its own devices. With ``TF_CONFIG`` naming several
workers (set by you, a cluster manager or a cloud service), the same command
is one worker of a ``MultiWorkerMirroredStrategy`` job; ``--workers N`` starts
N such workers on this machine for trying it out
(:func:`hypermorph_nb.training.launcher.launch_local_workers`).

The output folder gets ``checkpoints/`` (resume with ``--resume``), and from
the chief ``model/`` (:func:`hypermorph_nb.load_model`) and ``history.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import os
import sys

from ..io.report import save_metrics
from .launcher import launch_local_workers
from .options import CheckpointConfig
from .workers import cluster_from_env, multiworker_strategy, several_workers

if TYPE_CHECKING:
    import argparse


#: Exit status of a run stopped by Ctrl-C (after writing its checkpoint).
INTERRUPTED_STATUS = 130
HISTORY_NAME = "history.json"

# (flag, argparse options); the same table rebuilds a worker's command line.
_OPTIONS = (
    ("--out", dict(required=True, help="output folder: checkpoints/, and model/ + history.json from the chief")),
    ("--data", dict(default="synthetic", help="data source of hypermorph_nb.data.load_source, e.g. "
                                              "synthetic, oasis2d, ixi3d, npz (with --path)")),
    ("--path", dict(default=None, help="file or folder of the data source")),
    ("--size", dict(type=int, nargs="+", default=None, metavar="N",
                    help="resize (or generate) the images at this shape, e.g. 64 64 or 32 32 32")),
    ("--subset", dict(type=int, default=None, help="keep only the first N images")),
    ("--images", dict(type=int, default=64, help="number of synthetic subjects")),
    ("--model", dict(choices=("hypermorph", "vxm"), default="hypermorph")),
    ("--features", dict(default=None, help='U-Net features as JSON, e.g. "[[8,8,8,8],[8,8,8,8,8,8,8]]"')),
    ("--epochs", dict(type=int, default=10)),
    ("--steps-per-epoch", dict(type=int, default=100)),
    ("--batch-size", dict(type=int, default=1, help="global batch: pairs per step over all workers")),
    ("--recipe", dict(choices=("auto", "volumes", "none"), default="auto",
                      help="HyperMorph settings that belong together: 'volumes' (the 3D recipe: FiLM U-Net at half "
                           "resolution, NCC, label supervision when the data have labels, lr 2e-4 with warm-up "
                           "and cosine decay; hypermorph_nb.training.recipes), 'auto' (default: 'volumes' for 3D "
                           "HyperMorph data; a baseline or 2D data: 'none'), 'none' (train's defaults; also to "
                           "--resume a run started before the recipe existed); the three options below override it")),
    ("--learning-rate", dict(type=float, default=None)),
    ("--lam-sampling", dict(default=None, help="HyperMorph: how λ is drawn (uniform, oversample, ...)")),
    ("--label-weight", dict(type=float, default=None, help="weight of a Dice term on warped label maps beside "
                                                           "the image term (needs data with labels; 0: none)")),
    ("--hyperparameters", dict(nargs="+", default=None, metavar="NAME",
                               help="HyperMorph: what the model is conditioned on (default: lam), e.g. lam "
                                    "label_weight: one model over λ and the label term's weight γ (needs data with "
                                    "labels; leave out --label-weight)")),
    ("--hyper-sampling", dict(nargs="+", default=None, metavar="NAME=MODE",
                              help="how each of --hyperparameters besides λ is drawn per pair, e.g. "
                                   "label_weight=uniform (the default)")),
    ("--seed", dict(type=int, default=0)),
    ("--checkpoint-every", dict(type=int, default=1, help="epochs between checkpoints")),
    ("--resume", dict(action="store_true", help="continue from the newest intact checkpoint in OUT/checkpoints")),
    ("--workers", dict(type=int, default=1, help="start this many local workers (127.0.0.1, free ports)")),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hypermorph-nb train`` to an argparse parser."""
    for flag, options in _OPTIONS:
        parser.add_argument(flag, **options)


def run(args: argparse.Namespace) -> int:
    """Run ``hypermorph-nb train`` with parsed ``args``; returns the exit status."""
    if args.workers != 1:
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        if os.environ.get("TF_CONFIG"):
            raise ValueError("--workers starts local workers with their own TF_CONFIG; unset TF_CONFIG, "
                             "or leave out --workers to run as the worker that TF_CONFIG names")
        print(f"hypermorph-nb: starting {args.workers} local workers on 127.0.0.1; Ctrl-C stops all of "
              "them at the same step, with a checkpoint", file=sys.stderr, flush=True)
        return launch_local_workers([sys.executable, "-m", "hypermorph_nb.cli", *worker_argv(args)],
                                    args.workers)
    if several_workers():
        multiworker_strategy()  # before any other TensorFlow operation
    return _train(args)


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The command line of one worker of ``args`` (everything but ``--workers``).

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> argv = worker_argv(parser.parse_args(["--out", "o", "--size", "32", "32", "--resume", "--workers", "2"]))
    >>> argv[:3], argv[argv.index("--size"):][:3], "--resume" in argv, "--workers" in argv
    (['train', '--out', 'o'], ['--size', '32', '32'], True, False)
    """
    argv = ["train"]
    for flag, options in _OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if flag == "--workers" or value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def hyper_options(args: argparse.Namespace) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """``build_hypermorph`` keywords and ``train``'s ``hyper_sampling`` from ``--hyperparameters`` and
    ``--hyper-sampling``, their syntax checked.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> hyper_options(parser.parse_args(["--out", "o", "--hyperparameters", "lam", "label_weight",
    ...                                  "--hyper-sampling", "label_weight=uniform"]))
    ({'hyperparameters': ('lam', 'label_weight')}, {'label_weight': 'uniform'})
    """
    if args.hyperparameters is None:
        if args.hyper_sampling:
            raise ValueError("--hyper-sampling says how --hyperparameters besides λ are drawn; add "
                             "--hyperparameters (e.g. --hyperparameters lam label_weight)")
        return {}, {}
    if args.model != "hypermorph":
        raise ValueError("--hyperparameters conditions a HyperMorph model; leave out --model vxm")
    sampling = {}
    for assignment in args.hyper_sampling or ():
        name, equals, mode = assignment.partition("=")
        if not equals or not name or not mode:
            raise ValueError(f"--hyper-sampling {assignment}: give NAME=MODE pairs, e.g. label_weight=uniform")
        sampling[name] = mode
    return {"hyperparameters": tuple(args.hyperparameters)}, sampling


def _train(args):
    from ..data import load_source
    from ..networks.models import build_hypermorph, build_vxm
    from ..io.persistence import save_model
    from .loop import train

    hyper_build, hyper_sampling = hyper_options(args)
    cluster = cluster_from_env()
    chief = cluster is None or cluster.num_workers == 1 or cluster.is_chief
    data = load_source(args.data, path=args.path, shape=None if args.size is None else tuple(args.size),
                       subset=args.subset, seed=args.seed, n_synthetic=args.images, verbose=chief)
    options = {"seed": args.seed, **hyper_build}
    if args.features:
        try:
            options["nb_features"] = json.loads(args.features)
        except ValueError as err:
            raise ValueError(f"--features must be JSON, e.g. [[8,8,8,8],[8,8,8,8,8,8,8]] ({err})") from err
    recipe = _recipe(args, data)
    if recipe is not None:
        model = recipe.build(data.shape, **options)
        settings = recipe.train_options(data)
    else:
        model = (build_hypermorph if args.model == "hypermorph" else build_vxm)(data.shape, **options)
        settings = {}
    given = {"learning_rate": args.learning_rate, "label_weight": args.label_weight}
    if args.model == "hypermorph":
        given["lam_sampling"] = args.lam_sampling
    if "label_weight" in hyper_build.get("hyperparameters", ()):   # γ is learned: each pair draws its own
        settings.pop("label_weight", None)
    if hyper_build:
        settings["hyper_sampling"] = hyper_sampling
    settings.update({name: value for name, value in given.items() if value is not None})
    history = train(model, data, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                    batch_size=args.batch_size, seed=args.seed, strategy="auto",
                    checkpoints=CheckpointConfig(os.path.join(args.out, "checkpoints"), every=args.checkpoint_every),
                    resume=args.resume, **settings)
    if chief:
        save_model(model, os.path.join(args.out, "model"))
        record = {**history.to_json(), "steps": history.steps, "interrupted": history.interrupted,
                  "stop_reason": history.stop_reason, "checkpoint": history.checkpoint,
                  "config": history.config}
        save_metrics(args.out, record, name=HISTORY_NAME)
    return INTERRUPTED_STATUS if history.interrupted else 0


def _recipe(args, data):
    """The recipe ``--recipe`` names for this model and data, or None."""
    if args.recipe == "none" or (args.recipe == "auto" and (data.ndim != 3 or args.model != "hypermorph")):
        return None
    if args.model != "hypermorph":
        raise ValueError("--recipe volumes trains a HyperMorph model; leave out --model vxm, or use --recipe none")
    from .recipes import VOLUMES

    return VOLUMES
