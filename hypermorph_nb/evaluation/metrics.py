"""Deprecated: the metrics moved to :mod:`hypermorph_nb.metrics` (kept one release, with a warning)."""
import warnings

from ..metrics import *  # noqa: F401,F403
from ..metrics import __all__  # noqa: F401
from ..runtime.deprecation import deprecation_message

warnings.warn(deprecation_message(__name__, "hypermorph_nb.metrics"), DeprecationWarning, stacklevel=2)
