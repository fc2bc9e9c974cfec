"""Make the TensorFlow line of voxelmorph/neurite (0.2) import on today's stack.

Everything in this module exists because of a concrete incompatibility between
voxelmorph 0.2 / neurite 0.2 and the current TensorFlow, Keras and Python
releases. Each fix-up is scoped to what needs it (nothing stays changed in
``inspect`` or neurite), and each is covered by ``tests/test_compat.py``.

1. **Legacy Keras.** TensorFlow >= 2.16 routes ``tf.keras`` to Keras 3, which
   breaks neurite 0.2 at import (``cannot import name 'mean_absolute_error'``).
   The tf-keras package keeps the Keras 2 API; TensorFlow uses it when
   ``TF_USE_LEGACY_KERAS=1`` is set before ``tf.keras`` is first touched.
2. **inspect.getargspec.** neurite 0.2's ``modelio.store_config_args`` calls
   ``inspect.getargspec``, removed in Python 3.11 (voxelmorph issue #619). A
   shim with the old 4-field result is installed only while neurite and
   voxelmorph import (the decorator runs at class-definition time), then
   removed again.
3. **Per-sample hyper-convolution.** neurite's ``HyperConv`` loops over the
   batch; the layers the toolkit builds use subclasses without the loop
   (:mod:`hypermorph_nb.networks.hyperconv`). Nothing of neurite is replaced,
   so other code in the process sees neurite as it ships.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import collections
import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import pathlib
import sys

_LEGACY_VALUES = ("1", "true", "True")

KERAS3_ACTIVE_MESSAGE = (
    "hypermorph_nb needs the legacy Keras 2 API (the tf-keras package), but "
    "tf.keras already resolves to Keras 3 in this Python process ({where}). "
    "voxelmorph/neurite 0.2 do not work with Keras 3. Fix: restart the kernel "
    "(or interpreter) and either import hypermorph_nb before using tf.keras, or "
    "set the environment variable TF_USE_LEGACY_KERAS=1 before Python starts "
    "(e.g. `%env TF_USE_LEGACY_KERAS=1` in the first notebook cell)."
)


def ensure_legacy_keras() -> None:
    """Route ``tf.keras`` to tf-keras (Keras 2), or fail with instructions.

    Safe in any import order: before TensorFlow is imported it sets
    ``TF_USE_LEGACY_KERAS=1`` (and imports nothing, so ``import hypermorph_nb``
    stays light until a part that needs TensorFlow is used); after TensorFlow is imported but before
    ``tf.keras`` was used, it also puts tf-keras first on TensorFlow's
    submodule path (what TensorFlow itself does when the variable is set at
    its import). If Keras 3 is already active it raises ``ImportError``.

    Raises
    ------
    ImportError
        If tf-keras is missing, ``TF_USE_LEGACY_KERAS`` is set to a false
        value, or Keras 3 already backs ``tf.keras`` in this process.
    """
    value = os.environ.get("TF_USE_LEGACY_KERAS")
    if value is not None and value not in _LEGACY_VALUES:
        raise ImportError(
            f"TF_USE_LEGACY_KERAS={value!r} is set, but hypermorph_nb needs legacy "
            "Keras (voxelmorph/neurite 0.2 break under Keras 3). Unset the variable "
            "or set TF_USE_LEGACY_KERAS=1, then restart Python."
        )
    if importlib.util.find_spec("tf_keras") is None:   # found, not imported: tf-keras loads TensorFlow
        raise ImportError(
            "hypermorph_nb needs the tf-keras package (legacy Keras 2 API). "
            "Install the project's pinned dependencies: pip install -e ."
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"

    tf = sys.modules.get("tensorflow")
    if tf is None:
        return  # TensorFlow will read the variable when it is imported.
    importlib.import_module("tf_keras")   # as at TensorFlow's import with the variable set
    where = _keras3_evidence(tf)
    if where:
        raise ImportError(KERAS3_ACTIVE_MESSAGE.format(where=where))
    if not getattr(tf, "_tf_uses_legacy_keras", True):
        # TensorFlow was imported without the variable: its lazy ``tf.keras``
        # still reads it on first use, but ``import tensorflow.keras.x`` goes
        # through ``tf.__path__``, which lists Keras 3 first. Put tf-keras first,
        # as tensorflow/__init__.py does when the variable is set at import.
        from tensorflow.python.tools import module_util

        tf.__path__.insert(0, module_util.get_parent_dir_for_name("tf_keras.api._v2.keras"))
        setattr(tf, "_tf_uses_legacy_keras", True)  # tf's own flag, which its type stubs do not list


def _keras3_evidence(tf) -> str:
    """Return where Keras 3 already backs ``tf.keras``, or '' if it does not."""
    keras_attr = tf.__dict__.get("keras")
    if keras_attr is not None:
        if getattr(keras_attr, "_tfll_initialized", True) is False:
            pass  # still the lazy loader: nothing resolved yet
        elif not (getattr(keras_attr, "__name__", "").startswith("tf_keras")
                  or "tf_keras" in pathlib.PurePath(getattr(keras_attr, "__file__", "") or "").parts):
            # (``import tensorflow.keras.x`` after the routing names tf-keras "tensorflow.keras";
            # Keras 3's own copy lives in keras/_tf_keras/)
            return f"tf.keras is {getattr(keras_attr, '__name__', keras_attr)}"
    for name, module in list(sys.modules.items()):
        if name.startswith("tensorflow.keras") and module is not None:
            origin = getattr(module, "__name__", "")
            file = getattr(module, "__file__", "") or ""
            if "tf_keras" not in origin and "tf_keras" not in file:
                return f"module {name} was imported from Keras 3"
    return ""


ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")


def _getargspec(func):
    """Python < 3.11 ``inspect.getargspec``: the 4-field view of getfullargspec."""
    spec = inspect.getfullargspec(func)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


@contextlib.contextmanager
def getargspec_shim() -> Iterator[None]:
    """Provide ``inspect.getargspec`` for the duration of the block only."""
    had = hasattr(inspect, "getargspec")
    if not had:
        inspect.getargspec = _getargspec
    try:
        yield
    finally:
        if not had:
            del inspect.getargspec


@functools.lru_cache(maxsize=None)
def import_registration_libraries() -> tuple[Any, Any]:
    """Import neurite and voxelmorph (TensorFlow backend) with the fix-ups applied.

    Runs once per process; later calls return the same modules (once neurite has
    touched ``tf.keras``, the legacy-Keras check cannot be repeated).

    Returns
    -------
    tuple of modules
        ``(neurite, voxelmorph)``.
    """
    ensure_legacy_keras()
    # Both packages pick their backend from these variables; only the
    # TensorFlow backend has HyperMorph.
    os.environ["VXM_BACKEND"] = "tensorflow"
    os.environ["NEURITE_BACKEND"] = "tensorflow"
    with getargspec_shim():
        import neurite
        import voxelmorph
    return neurite, voxelmorph
