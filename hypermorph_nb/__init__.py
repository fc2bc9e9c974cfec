"""hypermorph-nb: HyperMorph image registration, explored with λ widgets in Jupyter.

Importing this package routes ``tf.keras`` to legacy Keras (tf-keras), which
voxelmorph/neurite 0.2 need; see :mod:`hypermorph_nb._compat`.

Examples
--------
>>> import hypermorph_nb as hnb
>>> from hypermorph_nb.data import synthetic
>>> data = synthetic(8, (64, 64), seed=0)
>>> model = hnb.build_hypermorph(data.shape, seed=0)
>>> moved, flow = hnb.register(model, data.images[0], data.images[1], lam=0.5)
"""
import os as _os

if "tensorflow" not in __import__("sys").modules:
    # Hide TensorFlow's C++ log lines (on a CPU machine: a "failed call to cuInit" error
    # and grappler "remapper failed" errors that change nothing); real failures still
    # raise Python exceptions. Set the variable yourself to see them. The lines TensorFlow
    # logs while it loads ignore the variable; _startup_logs filters those by it.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ._compat import ensure_legacy_keras as _ensure_legacy_keras  # noqa: E402
from ._startup_logs import quiet_tensorflow_startup as _quiet_tensorflow_startup  # noqa: E402

with _quiet_tensorflow_startup():  # TensorFlow loads here (tf-keras imports it)
    _ensure_legacy_keras()

from . import data, evaluation, losses, metrics, models, plotting, report  # noqa: E402
from .evaluation import baseline_sweep, compare_sweeps, lambda_sweep  # noqa: E402
from .lambda_tuning import optimize_lambda  # noqa: E402
from .export import export_registration  # noqa: E402
from .models import build_hypermorph, build_vxm  # noqa: E402
from .persistence import load_model, save_model  # noqa: E402
from .registration import register  # noqa: E402
from . import environment  # noqa: E402
from .reproducibility import enable_determinism  # noqa: E402
from .training import train  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # ``hypermorph_nb.widgets`` imports ipywidgets and matplotlib: load it on first use.
    if name == "widgets":
        import importlib

        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "enable_determinism", "environment",
    "build_vxm", "build_hypermorph", "register", "export_registration", "train", "lambda_sweep", "baseline_sweep",
    "optimize_lambda",
    "compare_sweeps",
    "save_model", "load_model", "data", "evaluation", "losses", "metrics", "models", "plotting",
    "report", "widgets",
]
