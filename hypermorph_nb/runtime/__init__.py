"""Where and how the toolkit runs: the front-end, determinism, the stack, deprecations.

- :mod:`.environment`: which front-end a kernel runs in (JupyterLab, VS Code, Colab, papermill);
- :mod:`.reproducibility`: :func:`hypermorph_nb.enable_determinism`;
- :mod:`.compat`: voxelmorph/neurite 0.2 on today's TensorFlow (legacy Keras, neurite fixes);
- :mod:`.startup_logs`: TensorFlow's start-up log lines, filtered;
- :mod:`.deprecation`: second paths of earlier releases, kept one release with a warning;
- :mod:`.parallel`: what ``workers=`` and ``executor=`` mean (local processes, a Dask cluster), the progress bar.

Importing this package loads nothing heavy (no TensorFlow); each module loads on first use.
"""
__all__ = ["environment", "reproducibility", "compat", "startup_logs", "deprecation", "parallel"]


def __getattr__(name: str) -> object:
    import importlib

    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
