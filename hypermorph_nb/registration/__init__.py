"""Registration at a chosen λ: in memory, and written to files.

- :mod:`.pairs`: :func:`hypermorph_nb.register` and the :class:`Registrar` that batches model calls;
- :mod:`.export`: :func:`hypermorph_nb.export_registration`, NIfTI files on the fixed image's grid;
- :mod:`.native`: :func:`hypermorph_nb.register_scans`, two raw scans brought into the model's space, the
  result written on the fixed scan's own grid with the whole transform as an ITK field;
- :mod:`.files`: :class:`RegistrationFiles`, what both file writers return;
- :mod:`.refine`: :func:`refine_field`, λ-aware instance optimisation of one pair's field
  (``register(..., refine=N)``).

Examples
--------
>>> from hypermorph_nb.registration import Registrar
>>> Registrar.__name__
'Registrar'
"""
from .files import RegistrationFiles
from .pairs import Registrar
from .refine import refine_field

__all__ = ["Registrar", "RegistrationFiles", "refine_field"]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {name: f"hypermorph_nb.{name}" for name in ("register", "export_registration", "register_scans")}


def __getattr__(name: str) -> object:
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)
