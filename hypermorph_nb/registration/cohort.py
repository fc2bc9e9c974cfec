"""A cohort in one call: many raw scans against one, one folder per pair and a table of results.

:func:`hypermorph_nb.register_scans` comes here when ``moving`` or ``fixed`` is a list of scans
or a folder (:func:`is_cohort`): each subject to a template (many moving, one fixed), an atlas to
each subject (one moving, many fixed), or pairs given side by side (two lists of one length).
:func:`register_cohort` checks every scan first and names all the bad ones at once, then
registers each pair into ``out_dir/NAME`` (``NAME``: the scan that varies, without its suffix)
with a progress bar, and writes ``results.csv`` (:data:`TABLE_COLUMNS`). A pair that fails is a
row with status ``failed`` and the error, and the run goes on; the files an earlier run wrote for
it are removed (so that no folder holds a result the table does not).

The pairs run here (``workers=1``), on local processes (``workers=N``, started with "spawn") or
on any :class:`concurrent.futures.Executor`, e.g. a Dask cluster's
``distributed.Client(...).get_executor()``; the written files agree whatever runs them, as far
as SimpleITK's multi-threaded affine alignment repeats itself: not to the last bit (two runs with
several threads in one process differ in the last digits, which the optimizer may carry into a
few voxels of a label map); with one ITK thread per process
(``SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)``) runs repeat exactly.
Workers load the model once each from a picklable reference: a saved model folder or
``"pretrained:NAME"`` (an in-memory model is saved once to a temporary folder for them, which a
cluster on other machines cannot read: give those a folder on shared storage).

Examples
--------
>>> is_cohort("a.nii.gz", "template.nii.gz"), is_cohort(["a.nii.gz", "b.nii.gz"], "template.nii.gz")
(False, True)
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import pathlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, cast

from ..checks.values import check_model_hyperparameters, check_refine
from ..data.readers import split_suffix
from ..data.scan_lists import Entry, ScanErrors, check_scans, find_scans
from ..io.persistence import load_model, save_model
from ..networks.models import spec_of
from ..pretrained.registry import is_pretrained_name
from ..runtime.parallel import check_workers, progress_bar, run_each
from .files import SIDECAR, RegistrationFiles

#: Columns of ``results.csv``, one row per pair (empty cells: no label maps to score, no figure); a model
#: conditioned on several hyperparameters adds one column per other hyperparameter after ``lam``.
TABLE_COLUMNS = ("pair", "moving", "fixed", "lam", "dice", "folding_percent", "left_right_flag", "seconds", "status",
                 "error")
#: The table's file name in ``out_dir``.
TABLE = "results.csv"
#: Per-scan keywords of each side: a list (or folder) of them when that side is a list.
SIDE_KEYWORDS = {"moving": ("moving_labels", "moving_mask"), "fixed": ("fixed_labels", "fixed_mask")}

#: One file.
File = str | os.PathLike[str]
#: One scan, a list of them, or a folder.
Scans = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
#: The model each worker process loaded, by its reference (one at a time).
_LOADED: dict[str, Any] = {}


@dataclasses.dataclass(frozen=True)
class PairResult:
    """One row of ``results.csv``: a pair, its scores and how it went.

    Attributes
    ----------
    pair, moving, fixed : str
        The pair's name (its folder in ``out_dir``) and its scans.
    lam : float or None
    dice : float or None
        Mean label Dice on the fixed scan's grid (``dice.native`` of the sidecar), when both
        scans have label maps.
    folding_percent : float or None
        As the sidecar reports it, when it does.
    left_right_flag : str
        The scans of the pair whose data are probably flipped left–right (the sidecar's
        ``left_right``): ``"moving"``, ``"fixed"``, ``"moving fixed"``, or ``""`` for none.
    seconds : float
        Time of the pair's registration, preparation and writing included.
    status : {'ok', 'failed'}
    error : str
        Why it failed ('' when it did not).
    files : RegistrationFiles or None
        What it wrote (None when it failed).
    hyperparameters : dict of str to float
        The model's hyperparameters besides λ and their values (empty for a λ-only model).
    """

    pair: str
    moving: str
    fixed: str
    lam: float | None
    dice: float | None
    folding_percent: float | None
    seconds: float
    status: str
    error: str = ""
    files: RegistrationFiles | None = None
    hyperparameters: dict[str, float] = dataclasses.field(default_factory=dict)
    left_right_flag: str = ""

    def row(self) -> dict[str, str]:
        """The table's cells (:func:`table_columns`) as text."""
        def cell(value: Any) -> str:
            return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)

        values = {**{column: getattr(self, column) for column in TABLE_COLUMNS}, **self.hyperparameters}
        return {column: cell(value) for column, value in values.items()}


def table_columns(hyperparameters: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of ``results.csv``: :data:`TABLE_COLUMNS`, the other ``hyperparameters`` after ``lam``.

    Examples
    --------
    >>> table_columns(["label_weight"])[2:6]
    ('fixed', 'lam', 'label_weight', 'dice')
    """
    at = TABLE_COLUMNS.index("lam") + 1
    return TABLE_COLUMNS[:at] + tuple(hyperparameters) + TABLE_COLUMNS[at:]


@dataclasses.dataclass(frozen=True)
class CohortRegistration:
    """What :func:`hypermorph_nb.register_scans` returns for a cohort.

    Attributes
    ----------
    out_dir : pathlib.Path
        One folder per pair in it, and the table.
    table : pathlib.Path
        ``results.csv`` (:data:`TABLE_COLUMNS`).
    pairs : list of PairResult
        One per pair, in the order of the scans.

    Examples
    --------
    >>> row = PairResult("a", "a.nii.gz", "t.nii.gz", 0.5, None, None, 1.5, "failed", "bad")
    >>> result = CohortRegistration(pathlib.Path("out"), pathlib.Path("out/results.csv"), [row])
    >>> result.failed, result.files
    (['a'], {})
    """

    out_dir: pathlib.Path
    table: pathlib.Path
    pairs: list[PairResult]

    @property
    def failed(self) -> list[str]:
        """Names of the pairs that failed."""
        return [pair.pair for pair in self.pairs if pair.status != "ok"]

    @property
    def files(self) -> dict[str, RegistrationFiles]:
        """Pair name -> the files it wrote, for the pairs that succeeded."""
        return {pair.pair: pair.files for pair in self.pairs if pair.files is not None}


@dataclasses.dataclass(frozen=True)
class _Task:
    pair: str
    moving: str
    fixed: str
    out_dir: str
    options: dict[str, Any]


def is_cohort(moving: Any, fixed: Any) -> bool:
    """Whether ``moving`` or ``fixed`` is several scans (a list, or a folder)."""
    return any(not isinstance(side, (str, os.PathLike)) or pathlib.Path(side).is_dir() for side in (moving, fixed))


def register_cohort(model: Any, moving: Scans, fixed: Scans, out_dir: str | os.PathLike[str], *,
                    workers: int = 1, executor: Executor | None = None, progress: bool | str = "auto",
                    hyperparameters: dict[str, float] | None = None, **options: Any) -> CohortRegistration:
    """Register each pair of a cohort (see the module documentation); the table and one folder per pair.

    ``model`` is a model, a saved model folder or ``"pretrained:NAME"``; ``options`` are
    :func:`hypermorph_nb.register_scans`'s keywords, those of :data:`SIDE_KEYWORDS` one per scan
    of a side that is a list (a list, or a folder holding a file named as each scan);
    ``hyperparameters`` the model's besides λ (``{'label_weight': 0.5}``), a column each in the table.

    Raises
    ------
    ScanErrors
        Naming every bad scan, label map or mask at once, before any work.
    ValueError
        For sides of different lengths, two pairs of one name, or an argument every pair would
        fail on (λ or another hyperparameter, ``refine``, a model without a space, an output path
        that is a file).
    """
    check_workers(workers, executor)
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; give register_scans a folder for the pairs' "
                         "folders and results.csv")
    hyperparameters = dict(hyperparameters or {})
    tasks = _tasks(moving, fixed, _absolute(out), {**options, **hyperparameters})
    loaded = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    values = _check_model(loaded, options.get("lam"), options.get("refine", 0), hyperparameters)
    others = {name: value for name, value in values.items() if name != "lam"}
    here = workers == 1 and executor is None
    saved = None if here or isinstance(model, (str, os.PathLike)) else tempfile.mkdtemp(prefix="hypermorph-cohort-")
    try:
        if saved is not None:
            save_model(loaded, os.path.join(saved, "model"))
        reference = loaded if here else os.path.join(saved, "model") if saved is not None else \
            os.fspath(model) if is_pretrained_name(model) else os.path.abspath(model)
        out.mkdir(parents=True, exist_ok=True)
        with progress_bar(len(tasks), "pairs", progress, unit="pair") as bar:
            results = run_each(functools.partial(_run_pair, reference, others), tasks, workers=workers,
                               executor=executor, done=lambda _: bar.update())
    finally:
        if saved is not None:
            shutil.rmtree(saved, ignore_errors=True)
    table = out / TABLE
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=table_columns(list(others)))
        writer.writeheader()
        writer.writerows(result.row() for result in results)
    failed = [result for result in results if result.status != "ok"]
    if failed:
        warnings.warn(f"{len(failed)} of {len(results)} pairs failed ({', '.join(r.pair for r in failed[:5])}"
                      f"{', ...' if len(failed) > 5 else ''}); their errors are in {table}", UserWarning,
                      stacklevel=3)
    flipped = [result for result in results if result.left_right_flag]
    if flipped:
        warnings.warn(f"{len(flipped)} of {len(results)} pairs have a scan whose data are probably flipped "
                      f"left-right ({', '.join(f'{r.pair}: {r.left_right_flag}' for r in flipped[:5])}"
                      f"{', ...' if len(flipped) > 5 else ''}; column left_right_flag of {table}); check how "
                      "those scans were converted, then flip their data or fix their headers", UserWarning,
                      stacklevel=3)
    return CohortRegistration(out_dir=out, table=table, pairs=results)


def _tasks(moving: Scans, fixed: Scans, out: pathlib.Path, options: dict[str, Any]) -> list[_Task]:
    """One task per pair, every scan (and label map, mask) checked first."""
    sides = {"moving": _side(moving), "fixed": _side(fixed)}
    counts = {len(paths) for paths in sides.values() if len(paths) > 1}
    if len(counts) > 1:
        raise ValueError(f"{len(sides['moving'])} moving and {len(sides['fixed'])} fixed scans: give one scan "
                         "on one side, or lists of the same length (pairs side by side)")
    count = max(len(paths) for paths in sides.values())
    named = "moving" if len(sides["moving"]) == count else "fixed"
    names = [split_suffix(path)[0] for path in sides[named]]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"two {named} scans are named {', '.join(twice)}: each pair's folder takes its "
                         "scan's name; rename one, or register them in separate calls")
    per_pair: list[dict[str, Any]] = [dict(options) for _ in range(count)]
    entries: dict[pathlib.Path, Entry] = {}
    problems = []
    for side, paths in sides.items():
        companions = {}
        for keyword in SIDE_KEYWORDS[side]:
            companions[keyword], missing = _companions(options.get(keyword), paths, keyword)
            problems += missing
        for index, path in enumerate(paths):
            labels, mask = (companions[keyword][index] for keyword in SIDE_KEYWORDS[side])
            entries.setdefault(path, (split_suffix(path)[0], path, labels, mask))
        for index, pair in enumerate(per_pair):
            pair.update({keyword: companions[keyword][_scan_of(index, paths)] for keyword in SIDE_KEYWORDS[side]})
    try:
        check_scans(list(entries.values()))
    except ScanErrors as error:
        raise ScanErrors(problems + error.problems, len(entries)) from None
    if problems:
        raise ScanErrors(problems, len(entries))
    return [_Task(pair=names[index], moving=str(sides["moving"][_scan_of(index, sides["moving"])]),
                  fixed=str(sides["fixed"][_scan_of(index, sides["fixed"])]), out_dir=str(out / names[index]),
                  options=per_pair[index]) for index in range(count)]


def one_pair(moving: Scans, fixed: Scans, moving_labels: Scans | None, fixed_labels: Scans | None,
             moving_mask: Scans | None, fixed_mask: Scans | None) -> tuple[File, File, File | None, File | None,
                                                                          File | None, File | None]:
    """The files of one pair, as given; a list for a companion of a single scan is refused.

    Examples
    --------
    >>> one_pair("a.nii.gz", "b.nii.gz", ["a_seg.nii.gz"], None, None, None)
    Traceback (most recent call last):
    ...
    ValueError: moving_labels: a list of 1 for one moving scan; give one file (a list goes with a list of scans)
    """
    scans = [_one(moving, "moving"), _one(fixed, "fixed")]
    given = {"moving_labels": moving_labels, "fixed_labels": fixed_labels, "moving_mask": moving_mask,
             "fixed_mask": fixed_mask}
    companions = [None if value is None else _one(value, keyword) for keyword, value in given.items()]
    return scans[0], scans[1], companions[0], companions[1], companions[2], companions[3]


def _one(value: Scans, keyword: str) -> File:
    if isinstance(value, (str, os.PathLike)):
        return value
    raise ValueError(f"{keyword}: a list of {len(value)} for one {keyword.split('_')[0]} scan; give one file "
                     "(a list goes with a list of scans)")


def _scan_of(pair: int, paths: Sequence[pathlib.Path]) -> int:
    """The scan of a side that pair number ``pair`` takes: its own, or the side's one scan."""
    return 0 if len(paths) == 1 else pair


def _side(scans: Scans) -> list[pathlib.Path]:
    """The scans of one side: one file, a list, or a folder's scans (label maps and masks left out)."""
    if isinstance(scans, (str, os.PathLike)) and not pathlib.Path(scans).is_dir():
        return [_absolute(scans)]
    return [_absolute(path) for _, path, _, _ in find_scans(scans)]


def _absolute(path: str | os.PathLike[str]) -> pathlib.Path:
    """The path from the root: workers of a cluster may run in another folder."""
    return pathlib.Path(os.path.abspath(path))


def _companions(given: Any, paths: Sequence[pathlib.Path],
                keyword: str) -> tuple[list[pathlib.Path | None], list[str]]:
    """One label map (or mask) per scan of a side, from None, one file, a list or a folder; the problems."""
    if given is None:
        return [None] * len(paths), []
    if isinstance(given, (str, os.PathLike)) and pathlib.Path(given).is_dir():
        files = {split_suffix(path)[0]: _absolute(path) for path in sorted(pathlib.Path(given).iterdir())
                 if path.is_file()}
        found = [files.get(split_suffix(path)[0]) for path in paths]
        return found, [f"{given}: has no {keyword} file named as {path.name}; add it, or give "
                       f"{keyword} as a list" for path, file in zip(paths, found) if file is None]
    if isinstance(given, (str, os.PathLike)):
        if len(paths) > 1:
            raise ValueError(f"{keyword}={given!s}: one file for {len(paths)} scans; give a list of the same "
                             "length as the scans, or a folder holding one named as each scan")
        return [_absolute(given)], []
    listed = [None if value is None else _absolute(value) for value in given]
    if len(listed) != len(paths):
        raise ValueError(f"{keyword}: {len(listed)} files for {len(paths)} scans; give one per scan, in "
                         "the scans' order (None for a scan without one)")
    return listed, []


def _check_model(model: Any, lam: float | None, refine: Any, hyperparameters: dict[str, float]) -> dict[str, float]:
    """Refuse what every pair would fail on, before any work; the model's hyperparameters and their values."""
    check_refine(refine)
    spec = spec_of(model)
    values = check_model_hyperparameters({"lam": lam, **hyperparameters}, spec.options.get("hyperparameters"),
                                         hypermorph=spec.is_hypermorph)
    if spec.space is None or spec.space.reference is None or len(spec.space.shape) != 3:
        raise ValueError("this model does not know a 3D space (the grid it was trained on and a template), "
                         "so raw scans cannot be brought to it; see hnb.register_scans for how to give it one")
    return values


def _run_pair(model: Any, hyperparameters: dict[str, float], task: _Task) -> PairResult:
    """Register one pair (loading the model once per process when given by reference); never raises.

    ``hyperparameters``: the model's besides λ, recorded in the row (they are in ``task.options`` too).
    """
    from .native import register_scans

    lam = task.options.get("lam")
    row = PairResult(pair=task.pair, moving=task.moving, fixed=task.fixed, lam=None if lam is None else float(lam),
                     dice=None, folding_percent=None, seconds=0.0, status="failed", hyperparameters=hyperparameters)
    start = time.perf_counter()
    try:
        if isinstance(model, str):
            if model not in _LOADED:
                _LOADED.clear()
                _LOADED[model] = load_model(model)
            model = _LOADED[model]
            start = time.perf_counter()
        files = cast(RegistrationFiles, register_scans(model, task.moving, task.fixed, task.out_dir, **task.options))
        sidecar = json.loads(pathlib.Path(files.sidecar).read_text())
    except Exception as error:   # the pair fails, the cohort goes on: the error is its table row
        seconds = time.perf_counter() - start
        _remove_earlier(pathlib.Path(task.out_dir))
        return dataclasses.replace(row, seconds=seconds, error=f"{type(error).__name__}: {error}")
    flagged = [role for role, check in sidecar.get("left_right", {}).items() if check["left_right_flipped"]]
    return dataclasses.replace(row, dice=sidecar.get("dice", {}).get("native"),
                               folding_percent=sidecar.get("folding_percent"), seconds=time.perf_counter() - start,
                               status="ok", files=files, left_right_flag=" ".join(flagged))


def _remove_earlier(folder: pathlib.Path) -> None:
    """Remove what an earlier run wrote for a pair that failed now (its sidecar lists the files)."""
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        return
    for name in json.loads(sidecar.read_text()).get("files", {}).values():
        (folder / name).unlink(missing_ok=True)
    sidecar.unlink()
