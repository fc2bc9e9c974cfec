"""Registration at a chosen λ: in memory, and written to files.

- :mod:`.pairs`: :func:`hypermorph_nb.register` and the :class:`Registrar` that batches model calls;
- :mod:`.export`: :func:`hypermorph_nb.export_registration`, NIfTI files on the fixed image's grid;
- :mod:`.native`: :func:`hypermorph_nb.register_scans`, two raw scans brought into the model's space, the
  result written on the fixed scan's own grid with the whole transform as an ITK field;
- :mod:`.cohort`: ``register_scans`` on many scans against one (:class:`CohortRegistration`: one
  folder per pair, ``results.csv``), here, on local processes or a Dask cluster;
- :mod:`.files`: :class:`RegistrationFiles`, what both file writers return;
- :mod:`.refine`: :func:`refine_field`, λ-aware instance optimisation of one pair's field
  (``register(..., refine=N)``);
- :mod:`.apply`: :func:`invert_transform`, a written displacement field inverted, and
  ``hnb.apply_transform`` (its home is the top level), written transforms applied to other
  images; no TensorFlow.

Each name loads its module on first use, so that :mod:`.apply` stays free of TensorFlow.

Examples
--------
>>> from hypermorph_nb.registration import Registrar
>>> Registrar.__name__
'Registrar'
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .apply import invert_transform
    from .cohort import CohortRegistration
    from .files import RegistrationFiles
    from .pairs import Registrar
    from .refine import refine_field

#: Each public name and the module that defines it.
_HOMES = {"Registrar": ".pairs", "RegistrationFiles": ".files", "refine_field": ".refine",
          "invert_transform": ".apply", "CohortRegistration": ".cohort"}

__all__ = ["Registrar", "RegistrationFiles", "refine_field", "invert_transform", "CohortRegistration"]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {name: f"hypermorph_nb.{name}" for name in ("register", "export_registration", "register_scans")}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = globals()[name] = getattr(importlib.import_module(_HOMES[name], __name__), name)
        return value
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
