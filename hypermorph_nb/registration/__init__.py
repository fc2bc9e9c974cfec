"""Registration at a chosen λ: in memory, and written to files.

- :mod:`.pairs`: :func:`register` and the :class:`Registrar` that batches model calls;
- :mod:`.export`: :func:`export_registration`, NIfTI files on the fixed image's grid;
- :mod:`.native`: :func:`register_scans`, two raw scans brought into the model's space, the
  result written on the fixed scan's own grid with the whole transform as an ITK field;
- :mod:`.refine`: :func:`refine_field`, λ-aware instance optimisation of one pair's field
  (``register(..., refine=N)``);
- :mod:`.apply`: :func:`invert_transform`, a written displacement field inverted, and
  ``hnb.apply_transform`` (its home is the top level), written transforms applied to other
  images; no TensorFlow.

Each name loads its module on first use, so that :mod:`.apply` stays free of TensorFlow.

Examples
--------
>>> from hypermorph_nb.registration import register
>>> register.__name__
'register'
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .apply import invert_transform
    from .export import export_registration
    from .native import register_scans
    from .pairs import Registrar, register
    from .refine import refine_field

#: Each public name and the module that defines it.
_HOMES = {"register": ".pairs", "Registrar": ".pairs", "export_registration": ".export",
          "register_scans": ".native", "refine_field": ".refine",
          "invert_transform": ".apply"}

__all__ = ["register", "Registrar", "export_registration", "register_scans", "refine_field",
           "invert_transform"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = globals()[name] = getattr(importlib.import_module(_HOMES[name], __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
