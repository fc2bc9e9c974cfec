"""Execute the numbered tutorial notebooks with papermill, in order.

The notebooks read their settings from a cell tagged ``parameters``; each one
writes ``metrics.json`` (and figures) into its ``output_dir``. Notebook 02
saves the HyperMorph model that later notebooks load through ``model_path``.
``hypermorph-nb notebooks`` runs them all at full scale (e.g. on a GPU machine);
the test suite runs them with small parameters.

Every notebook that trains has the same knob in its parameters cell,
``scale = 1.0``: each epoch count of the notebook is multiplied by it
(:func:`scale_epochs`), like the ``max_epochs`` of MONAI's tutorials, so
``scale=0.05`` makes a quick run of all of them. ``hypermorph-nb notebooks
--quick`` sets :data:`QUICK`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import contextlib
import json
import os
from pathlib import Path

from .checks.arrays import check_count
from .io.report import METRICS_NAME
from .runtime.environment import PAPERMILL_VARIABLE

#: Notebook whose saved model the later notebooks load.
MODEL_NOTEBOOK = "02_train_hypermorph"
#: ``hypermorph-nb notebooks --quick``: 5% of every epoch count, images at 80×96, volumes at 48×56×48
#: (a few minutes for all notebooks on a laptop CPU).
QUICK = {"scale": 0.05, "image_shape": [80, 96], "volume_shape": [48, 56, 48]}


def scale_epochs(epochs: int, scale: float) -> int:
    """``epochs × scale``, rounded to the nearest integer, at least 1: the notebooks' ``scale`` knob.

    Examples
    --------
    >>> scale_epochs(200, 0.05), scale_epochs(40, 0.05), scale_epochs(80, 0.01), scale_epochs(100, 1.0)
    (10, 2, 1, 100)
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a number > 0 (1.0 = full length, 0.05 = a quick run), got {scale!r}")
    return max(1, int(check_count(epochs, "epochs") * scale + 0.5))


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


def find_notebooks(folder: str | os.PathLike[str]) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) of ``folder``, in order."""
    notebooks = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}; "
                                "pass the repository's notebooks/ folder")
    return notebooks


def run_notebook(path: str | os.PathLike[str], executed_path: str | os.PathLike[str],
                 parameters: dict[str, Any] | None = None, *, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute one notebook with papermill and return its recorded metrics.

    Parameters
    ----------
    path : str or Path
        The notebook to run (not modified).
    executed_path : str or Path
        Where the executed copy, with outputs, is written.
    parameters : dict, optional
        Values injected after the ``parameters`` cell; must include
        ``output_dir`` for the metrics to be found.
    kernel_name : str
        Jupyter kernel; ``python3`` is this Python environment. It runs with
        ``HYPERMORPH_NB_PAPERMILL=1``, so :func:`hypermorph_nb.runtime.environment.detect`
        reports ``'papermill'`` there (log lines instead of progress bars).

    Returns
    -------
    dict
        The notebook's ``metrics.json`` (empty if it wrote none).

    Raises
    ------
    NotebookFailed
        If a cell raises.
    """
    import papermill

    path, executed_path = Path(path), Path(executed_path)
    parameters = dict(parameters or {})
    executed_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _kernel_environment({PAPERMILL_VARIABLE: "1"}):
            papermill.execute_notebook(
                str(path), str(executed_path), parameters=parameters, kernel_name=kernel_name,
                cwd=str(path.parent), progress_bar=False, log_output=False,
            )
    except papermill.PapermillExecutionError as err:
        raise NotebookFailed(
            f"{path.name}: the cell starting {_first_line(executed_path, err.cell_index)!r} "
            f"(execution count {err.exec_count}) "
            f"raised {err.ename}: {err.evalue}; see {executed_path}") from None
    metrics = Path(parameters.get("output_dir", path.parent)) / METRICS_NAME
    return json.loads(metrics.read_text()) if metrics.exists() else {}


@contextlib.contextmanager
def _kernel_environment(variables):
    """Set ``variables`` while a kernel starts (it inherits this process's environment)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _first_line(executed_path, cell_index):
    """First source line of the cell that raised (papermill adds marker cells, so search)."""
    import nbformat

    cells = nbformat.read(executed_path, as_version=4).cells
    failed = [c for c in cells if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    source = (failed[0] if failed else cells[cell_index]).source.strip()
    return source.splitlines()[0] if source else ""


def run_all(folder: str | os.PathLike[str], out: str | os.PathLike[str], *,
            parameters: dict[str, Any] | None = None,
            names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Execute every numbered notebook of ``folder`` in order.

    Parameters
    ----------
    folder : str or Path
        The ``notebooks/`` folder.
    out : str or Path
        Results root: ``out/<notebook>/`` gets each notebook's outputs and
        ``out/executed/`` the executed notebooks.
    parameters : dict, optional
        Values given to every notebook that declares them (e.g. ``epochs``).
    names : list of str, optional
        Run only these notebooks (stems such as ``"03_explore_lambda"``).

    Returns
    -------
    dict
        Notebook stem -> its metrics.
    """
    import papermill

    out = Path(out).resolve()
    results = {}
    for path in find_notebooks(folder):
        if names and path.stem not in names:
            continue
        declared = papermill.inspect_notebook(str(path))
        given = {k: v for k, v in (parameters or {}).items() if k in declared}
        given["output_dir"] = str(out / path.stem)
        if "model_path" in declared:
            given["model_path"] = str(out / MODEL_NOTEBOOK / "model")
        print(f"running {path.name} with {given}", flush=True)
        results[path.stem] = run_notebook(path, out / "executed" / path.name, given)
    return results


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are JSON when they parse, else strings.

    Examples
    --------
    >>> parse_assignments(["epochs=5", "image_shape=[80, 96]", "data_source=oasis2d"])
    {'epochs': 5, 'image_shape': [80, 96], 'data_source': 'oasis2d'}
    """
    parsed = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed


def default_notebook_folder() -> Path:
    """``notebooks/`` of the repository this package is installed from, else ``./notebooks``."""
    repo = Path(__file__).resolve().parents[1] / "notebooks"
    return repo if repo.is_dir() else Path(os.getcwd()) / "notebooks"
