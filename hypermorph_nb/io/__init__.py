"""Files: saved models, training checkpoints and metrics reports.

- :mod:`.persistence`: :func:`hypermorph_nb.save_model` / :func:`hypermorph_nb.load_model`
  (a folder of JSON + HDF5);
- :mod:`.checkpoints`: verified training checkpoints for exact resume;
- :mod:`.report`: ``metrics.json`` as the notebooks and the demo write it;
- :mod:`.files`: file hashes, atomic folder replacement, modes that follow the umask.

Each module loads on first use (only :mod:`.persistence` and :mod:`.checkpoints` need TensorFlow).

Examples
--------
>>> from hypermorph_nb.io import report
>>> report.METRICS_NAME
'metrics.json'
"""
__all__ = ["persistence", "checkpoints", "report", "files"]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {"save_model": "hypermorph_nb.save_model", "load_model": "hypermorph_nb.load_model"}


def __getattr__(name: str) -> object:
    import importlib

    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
