"""hypermorph-nb: HyperMorph image registration, explored with λ widgets in Jupyter.

Importing this package routes ``tf.keras`` to legacy Keras (tf-keras), which
voxelmorph/neurite 0.2 need; see :mod:`hypermorph_nb.runtime.compat`. TensorFlow
itself loads on the first use of a name that needs it (``hnb.train``,
``hnb.register``, ...), not at the import: each name of ``__all__`` imports only the
module that defines it, so ``hnb.prepare_scans`` and ``hnb.data`` load no TensorFlow.
:mod:`hypermorph_nb.api` imports them all at once.

The packages, in layers from the ground up (a module imports only from its own layer's
package and the layers below; ``tests/test_layers.py`` runs the contract in ``pyproject.toml``):

- :mod:`~hypermorph_nb.checks`: one place for each input rule (images, label maps, λ, pairs, grids);
- :mod:`~hypermorph_nb.runtime`: front-end detection, determinism, the stack's fixes, deprecations;
- :mod:`~hypermorph_nb.metrics`: Dice, the Jacobian determinant and folding, image MSE and NCC;
- :mod:`~hypermorph_nb.networks`: the models, λ conditioning, the loss, what a model records of itself;
- :mod:`~hypermorph_nb.pretrained`: the models shipped with the package (``load_model("pretrained:NAME")``);
- :mod:`~hypermorph_nb.io`: saved models, checkpoints, reports;
- :mod:`~hypermorph_nb.data`: datasets and loaders, raw-scan preparation and its QC picture, λ sampling;
- :mod:`~hypermorph_nb.registration`: ``register``, ``export_registration``, ``register_scans``, refinement;
- :mod:`~hypermorph_nb.evaluation`: λ sweeps, the optimal λ; sweeps and tuning over several hyperparameters;
- :mod:`~hypermorph_nb.viz`: static figures, training progress;
- :mod:`~hypermorph_nb.training`: ``train`` and its options;
- :mod:`~hypermorph_nb.widgets`: the λ explorer and sweep panel;
- :mod:`~hypermorph_nb.notebooks`: the tutorial notebooks' runner (``hypermorph-nb notebooks``);
- :mod:`~hypermorph_nb.api`, :mod:`~hypermorph_nb.demo`, :mod:`~hypermorph_nb.cli`: every name at
  once, the demo, the command line.

Examples
--------
>>> import hypermorph_nb as hnb
>>> from hypermorph_nb.data import synthetic
>>> data = synthetic(8, (64, 64), seed=0)
>>> model = hnb.build_hypermorph(data.shape, seed=0)
>>> moved, flow = hnb.register(model, data.images[0], data.images[1], lam=0.5)
"""
import os as _os
import sys as _sys

if "tensorflow" not in _sys.modules:
    # Hide TensorFlow's C++ log lines (on a CPU machine: a "failed call to cuInit" error
    # and grappler "remapper failed" errors that change nothing); real failures still
    # raise Python exceptions. Set the variable yourself to see them. The lines TensorFlow
    # logs while it loads ignore the variable; runtime.startup_logs filters those by it.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .runtime.compat import ensure_legacy_keras as _ensure_legacy_keras  # noqa: E402
from .runtime.startup_logs import quiet_first_import as _quiet_first_import  # noqa: E402

# Neither loads TensorFlow: the first sets TF_USE_LEGACY_KERAS (or routes an already loaded
# TensorFlow to tf-keras), the second filters TensorFlow's start-up lines whenever it loads.
_ensure_legacy_keras()
_quiet_first_import("tensorflow")

__version__ = "0.1.0"


#: Each top-level function -> the module that defines it; ``hnb.<name>`` imports only that module
#: (``hnb.prepare_scans`` loads no TensorFlow, ``hnb.train`` does).
_HOMES = {
    "enable_determinism": "runtime.reproducibility", "scale_epochs": "notebooks",
    "build_vxm": "networks.models", "build_hypermorph": "networks.models",
    "save_model": "io.persistence", "load_model": "io.persistence",
    "prepare_scans": "data.preparation", "train": "training.loop",
    "register": "registration.pairs", "export_registration": "registration.export",
    "register_scans": "registration.native", "apply_transform": "registration.apply",
    "lambda_sweep": "evaluation.sweeps", "baseline_sweep": "evaluation.sweeps",
    "optimize_lambda": "evaluation.lambda_tuning", "compare_sweeps": "evaluation.results",
    "hyper_sweep": "evaluation.hyper_sweeps", "optimize_hyperparameters": "evaluation.hyper_tuning",
}
#: The packages (and the ground module ``metrics``), each imported on first use.
_PACKAGES = ("checks", "runtime", "metrics", "data", "networks", "io", "pretrained", "viz", "training",
             "registration", "evaluation", "widgets")
#: Module aliases of earlier releases -> their canonical paths (kept one release, with a warning).
_DEPRECATED = {
    "models": "hypermorph_nb.networks.models", "losses": "hypermorph_nb.networks.losses",
    "plotting": "hypermorph_nb.viz.plotting", "report": "hypermorph_nb.io.report",
    "environment": "hypermorph_nb.runtime.environment",
}


def __getattr__(name: str) -> object:
    # Each name loads on first use, and only its own module: `hypermorph-nb --version` and
    # `--help` stay light, and so do the names that need no TensorFlow (prepare_scans, data, ...).
    import importlib

    if name in _HOMES:
        value = globals()[name] = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        return value
    if name in _PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    from .runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "enable_determinism", "scale_epochs",
    "build_vxm", "build_hypermorph", "save_model", "load_model",
    "prepare_scans", "train", "register", "export_registration", "register_scans", "apply_transform",
    "lambda_sweep", "baseline_sweep", "optimize_lambda", "compare_sweeps",
    "hyper_sweep", "optimize_hyperparameters",
    "checks", "runtime", "metrics", "data", "networks", "io", "pretrained", "viz", "training",
    "registration", "evaluation", "widgets",
]
