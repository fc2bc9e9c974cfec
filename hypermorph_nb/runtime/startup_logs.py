"""Keep TensorFlow's C++ start-up log lines out of notebooks and terminals.

While its shared libraries load, TensorFlow 2.21 logs a few lines through absl
before it has read ``TF_CPP_MIN_LOG_LEVEL``, so that variable cannot hide them::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795712579.857730    7050 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1795712579.858047    7050 cudart_stub.cc:31] Could not find cuda drivers ...

(twice: two libraries carry their own copy of absl). No other variable reaches
them (``TF_CPP_MAX_VLOG_LEVEL``, ``GLOG_minloglevel``, ``ABSL_MIN_LOG_LEVEL`` and
``GRPC_VERBOSITY`` were tried), and ``TF_ENABLE_ONEDNN_OPTS=0`` would change the
numerics. In a Jupyter kernel, papermill run or HTML export they show up as red
stderr blocks under the first import cell. :func:`quiet_tensorflow_startup`
applies ``TF_CPP_MIN_LOG_LEVEL`` to exactly those lines: while TensorFlow loads,
file descriptor 2 goes to a temporary file; afterwards every line is written
back except absl's notice and log records below the level (fatal records are
always kept). Anything else, and everything when the import raises, is written
back unchanged, so real errors still show; Python exceptions are not affected.
``import hypermorph_nb`` does not load TensorFlow itself: it calls
:func:`quiet_first_import`, so the filter applies whenever TensorFlow first
loads in that process (the toolkit's first use, or your own ``import tensorflow``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

#: absl's notice, printed once per library before its first log record.
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: An absl log record: severity letter, MMDD, time, thread, file:line].
_RECORD = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s:]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def min_log_level(environ: Mapping[str, str] | None = None) -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it: 0 (everything) to 3 (fatal only).

    Examples
    --------
    >>> min_log_level({"TF_CPP_MIN_LOG_LEVEL": "2"}), min_log_level({})
    (2, 0)
    """
    value = (os.environ if environ is None else environ).get("TF_CPP_MIN_LOG_LEVEL", "0")
    try:
        return min(max(int(value), 0), 3)
    except ValueError:
        return 0


def filter_startup_lines(text: str, min_level: int) -> str:
    """``text`` without absl's notice and the log records below ``min_level``.

    Examples
    --------
    >>> text = (ABSL_NOTICE + "\\n"
    ...         "I0000 00:00:1795712579.858047    7050 cudart_stub.cc:31] Could not find cuda drivers\\n"
    ...         "E0000 00:00:1795712579.900000    7050 cuda_blas.cc:1418] Unable to register cuBLAS\\n"
    ...         "Segmentation fault in something else\\n")
    >>> print(filter_startup_lines(text, 2), end="")
    E0000 00:00:1795712579.900000    7050 cuda_blas.cc:1418] Unable to register cuBLAS
    Segmentation fault in something else
    >>> filter_startup_lines(text, 0) == text
    True
    """
    if min_level <= 0:
        return text
    kept = []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == ABSL_NOTICE:
            continue
        record = _RECORD.match(line)
        if record is None or _SEVERITY[record.group(1)] >= min_level:   # fatal (3) always kept
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def quiet_tensorflow_startup(*, environ: Mapping[str, str] | None = None,
                             module: str | None = "tensorflow") -> Iterator[None]:
    """Filter file descriptor 2 with :func:`filter_startup_lines` while TensorFlow loads.

    Does nothing when ``module`` is already loaded (None: filter anyway), when
    ``TF_CPP_MIN_LOG_LEVEL`` is 0, or when the process has no usable descriptor 2. If the body raises,
    everything captured is written back unfiltered.

    Examples
    --------
    >>> with quiet_tensorflow_startup():
    ...     import tensorflow
    """
    level = min_log_level(environ)
    if (module is not None and module in sys.modules) or level == 0:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()   # Python-level writes buffered during the import
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = text if failed else filter_startup_lines(text, level)
            if kept:
                os.write(2, kept.encode())


def quiet_first_import(module: str = "tensorflow") -> None:
    """Filter descriptor 2 with :func:`quiet_tensorflow_startup` when ``module`` is first imported.

    Installs a one-shot import hook (a finder at the front of
    :data:`sys.meta_path` that removes itself when ``module`` is imported): the
    module's loader then runs inside :func:`quiet_tensorflow_startup`, whoever
    imports it. Does nothing when ``module`` is already loaded or the hook is
    already in place.

    Parameters
    ----------
    module : str
        A top-level module name.

    Examples
    --------
    >>> quiet_first_import("tensorflow")   # a no-op once TensorFlow is loaded
    """
    if module in sys.modules or any(isinstance(finder, _QuietFirstImport) and finder.module == module
                                    for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFirstImport(module))


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``module`` as the other finders do, with its loader wrapped in the filter."""

    def __init__(self, module) -> None:
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)   # one shot; the search below goes to the real finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` inside :func:`quiet_tensorflow_startup`."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader   # the module sees its own loader
        with quiet_tensorflow_startup(module=None):
            self.loader.exec_module(module)
