"""Every name of ``import hypermorph_nb as hnb`` at once (TensorFlow, voxelmorph/neurite, ipywidgets).

``hypermorph_nb/__init__.py`` imports nothing heavy: each ``hnb.<name>`` imports only the
module that defines it, on first use. ``from hypermorph_nb.api import *`` loads them all,
from the same modules. Add a new top-level name here, to ``__all__`` in ``__init__.py`` and
to its map of homes (``tests/test_cli.py`` checks they agree).
"""
from . import checks, data, evaluation, io, metrics, networks, pretrained, registration, runtime  # noqa: F401
from . import training, viz, widgets  # noqa: F401
from .data.preparation import prepare_scans  # noqa: F401
from .evaluation.hyper_sweeps import hyper_sweep  # noqa: F401
from .evaluation.hyper_tuning import optimize_hyperparameters  # noqa: F401
from .evaluation.lambda_tuning import optimize_lambda  # noqa: F401
from .evaluation.results import compare_sweeps  # noqa: F401
from .evaluation.sweeps import baseline_sweep, lambda_sweep  # noqa: F401
from .io.persistence import load_model, save_model  # noqa: F401
from .networks.models import build_hypermorph, build_vxm  # noqa: F401
from .notebooks import scale_epochs  # noqa: F401
from .registration.export import export_registration  # noqa: F401
from .registration.native import register_scans  # noqa: F401
from .registration.pairs import register  # noqa: F401
from .registration.apply import apply_transform  # noqa: F401
from .runtime.reproducibility import enable_determinism  # noqa: F401
from .training.loop import train  # noqa: F401
