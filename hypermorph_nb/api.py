"""The names ``import hypermorph_nb as hnb`` offers, loaded on first use of one of them.

``hypermorph_nb/__init__.py`` imports nothing heavy, so ``hypermorph-nb --version``
and ``--help`` answer without TensorFlow. The first ``hnb.<name>`` of
:data:`hypermorph_nb.__all__` (except ``widgets``, loaded on its own) imports
this module, which loads TensorFlow, voxelmorph/neurite and every sub-package,
as importing the package did before. Add a new top-level name both here and to
``__all__`` in ``__init__.py`` (``tests/test_cli.py`` checks they agree).
"""
from . import checks, data, evaluation, io, networks, pretrained, registration, runtime, training, viz  # noqa: F401
from .evaluation import baseline_sweep, compare_sweeps, lambda_sweep, metrics, optimize_lambda  # noqa: F401
from .io import load_model, report, save_model  # noqa: F401
from .networks import build_hypermorph, build_vxm, losses, models  # noqa: F401
from .registration import export_registration, register, register_scans  # noqa: F401
from .registration.apply import apply_transform  # noqa: F401
from .runtime import environment  # noqa: F401
from .runtime.notebooks import scale_epochs  # noqa: F401
from .runtime.reproducibility import enable_determinism  # noqa: F401
from .training import train  # noqa: F401
from .viz import plotting  # noqa: F401
