"""Files: saved models, training checkpoints and metrics reports.

- :mod:`.persistence`: :func:`save_model` / :func:`load_model` (a folder of JSON + HDF5);
- :mod:`.checkpoints`: verified training checkpoints for exact resume;
- :mod:`.report`: ``metrics.json`` as the notebooks and the demo write it;
- :mod:`.files`: file hashes, atomic folder replacement, modes that follow the umask.

Examples
--------
>>> from hypermorph_nb.io import report
>>> report.METRICS_NAME
'metrics.json'
"""
from . import checkpoints, files, persistence, report
from .persistence import load_model, save_model

__all__ = ["persistence", "checkpoints", "report", "files", "save_model", "load_model"]
