"""hypermorph-nb: HyperMorph image registration, explored with λ widgets in Jupyter.

Importing this package routes ``tf.keras`` to legacy Keras (tf-keras), which
voxelmorph/neurite 0.2 need; see :mod:`hypermorph_nb.runtime.compat`. TensorFlow
itself loads on the first use of one of the names below (``hnb.train``,
``hnb.data``, ...; :mod:`hypermorph_nb.api`), not at the import.

The packages, by concern (the README's "Project layout" lists every module):

- :mod:`~hypermorph_nb.checks`: one place for each input rule (images, label maps, λ, pairs, grids);
- :mod:`~hypermorph_nb.runtime`: front-end detection, determinism, the notebooks runner, the stack's fixes;
- :mod:`~hypermorph_nb.data`: datasets and loaders, raw-scan preparation (``prepare_scans``), λ sampling;
- :mod:`~hypermorph_nb.networks`: the models, λ conditioning, the loss, what a model records of itself;
- :mod:`~hypermorph_nb.io`: saved models, checkpoints, reports;
- :mod:`~hypermorph_nb.pretrained`: the models shipped with the package (``load_model("pretrained:NAME")``);
- :mod:`~hypermorph_nb.viz`: static figures, QC pictures, training progress;
- :mod:`~hypermorph_nb.training`: ``train`` and its options;
- :mod:`~hypermorph_nb.registration`: ``register``, ``export_registration``, ``register_scans``, refinement;
- :mod:`~hypermorph_nb.evaluation`: metrics, λ sweeps, the optimal λ;
- :mod:`~hypermorph_nb.widgets`: the λ explorer and sweep panel.

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


def __getattr__(name):
    # The toolkit loads on first use (hypermorph_nb.api: TensorFlow, voxelmorph), so that
    # `hypermorph-nb --version` and `--help` stay light; ``widgets`` (ipywidgets, matplotlib)
    # loads on its own.
    import importlib

    if name in ("widgets", "pretrained"):  # neither needs TensorFlow
        return importlib.import_module(f".{name}", __name__)
    if name == "apply_transform":  # nor does applying written transforms (SimpleITK, nibabel)
        value = globals()[name] = importlib.import_module(".registration.apply", __name__).apply_transform
        return value
    if name in __all__:
        value = globals()[name] = getattr(importlib.import_module(".api", __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "enable_determinism", "environment",
    "build_vxm", "build_hypermorph", "register", "register_scans", "export_registration", "apply_transform",
    "train", "lambda_sweep", "baseline_sweep",
    "optimize_lambda",
    "compare_sweeps",
    "save_model", "load_model", "scale_epochs",
    "checks", "data", "networks", "training", "registration", "evaluation", "io", "pretrained", "viz", "widgets",
    "runtime",
    "losses", "metrics", "models", "plotting", "report",
]
