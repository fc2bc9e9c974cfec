"""Second paths to a public name, kept for one release with a ``DeprecationWarning``.

Every public name has one canonical path (the one ``__all__`` lists). A path that an
earlier release offered as well stays importable for one release: the package's
``__getattr__`` calls :func:`deprecated_attribute`, which warns with the canonical path
and returns the object found there.

Examples
--------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     value = deprecated_attribute("old.place", "pi", {"pi": "math.pi"})
>>> value
3.141592653589793
>>> str(caught[0].message)
'old.place.pi is deprecated and will be removed in the next release; use math.pi'
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any


def deprecation_message(old: str, new: str) -> str:
    """The warning for the old path ``old`` of the name whose canonical path is ``new``.

    Examples
    --------
    >>> deprecation_message("hypermorph_nb.models", "hypermorph_nb.networks.models")
    'hypermorph_nb.models is deprecated and will be removed in the next release; use hypermorph_nb.networks.models'
    """
    return f"{old} is deprecated and will be removed in the next release; use {new}"


def resolve(path: str) -> Any:
    """The module or object at the dotted ``path`` (``"package.module"`` or ``"package.module.name"``).

    Examples
    --------
    >>> resolve("math.pi") == resolve("math").pi
    True
    """
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as error:
        if error.name != path:
            raise
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def deprecated_attribute(module: str, name: str, aliases: Mapping[str, str]) -> Any:
    """``module.name`` through its deprecated alias: warn with the canonical path, return the object.

    Parameters
    ----------
    module : str
        The module whose ``__getattr__`` asks (its ``__name__``).
    name : str
        The attribute asked for.
    aliases : mapping of str to str
        Deprecated name -> canonical dotted path.

    Raises
    ------
    AttributeError
        When ``name`` is not one of ``aliases`` (the usual error of a missing attribute).

    Examples
    --------
    >>> deprecated_attribute("old.place", "tau", {"pi": "math.pi"})
    Traceback (most recent call last):
    ...
    AttributeError: module 'old.place' has no attribute 'tau'
    """
    if name not in aliases:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(deprecation_message(f"{module}.{name}", aliases[name]), DeprecationWarning, stacklevel=3)
    return resolve(aliases[name])
