"""Registration at a chosen λ: in memory, and written to files.

- :mod:`.pairs`: :func:`register` and the :class:`Registrar` that batches model calls;
- :mod:`.export`: :func:`export_registration`, NIfTI files on the fixed image's grid;
- :mod:`.native`: :func:`register_scans`, two raw scans brought into the model's space, the
  result written on the fixed scan's own grid with the whole transform as an ITK field;
- :mod:`.refine`: :func:`refine_field`, λ-aware instance optimisation of one pair's field
  (``register(..., refine=N)``).

Examples
--------
>>> from hypermorph_nb.registration import register
>>> register.__name__
'register'
"""
from .export import export_registration
from .native import register_scans
from .pairs import Registrar, register
from .refine import refine_field

__all__ = ["register", "Registrar", "export_registration", "register_scans", "refine_field"]
