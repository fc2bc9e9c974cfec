"""Many scans at once: found in a folder or given as a list, and every bad file reported at once.

:func:`find_scans` lists a cohort's scans with their label maps and brain masks (as
:func:`hypermorph_nb.prepare_scans` finds them); :func:`read_scans` reads and checks them all
before any work starts and raises one :class:`ScanErrors` that names every bad file (missing,
unreadable, not 3D, empty, a label map on another grid, ...), so that a folder with two bad
files takes one run to find both. :func:`check_scans` does the same without keeping the arrays.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> check_scans([("a", folder / "a.nii.gz", None, None), ("b", folder / "b.nii.gz", None, None)])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hypermorph_nb.data.scan_lists.ScanErrors: 2 of 2 scans cannot be used; fix or remove them (nothing was done yet):
  .../a.nii.gz: no such scan; ...
  .../b.nii.gz: no such scan; ...
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator, Sequence

from .folders import own_entries
from .readers import split_suffix
from .scans import Scan

#: One scan of a cohort: its name, file, label map (or None) and brain mask (or None).
Entry = tuple[str, pathlib.Path, pathlib.Path | None, pathlib.Path | None]


class ScanErrors(ValueError):
    """Every bad file of a cohort, found before any work; ``problems`` holds one line per file."""

    def __init__(self, problems: Sequence[str], total: int) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} of {total} scans cannot be used; fix or remove them "
                         f"(nothing was done yet):\n{lines}")


def find_scans(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], labels: str | None = "auto",
               masks: str | None = "auto") -> list[Entry]:
    """``(name, scan, label map or None, mask or None)`` of each scan of a folder or a list.

    Label maps are ``NAME_seg.*`` beside the scan or ``labels/NAME.*`` (``labels``: ``"auto"``,
    another suffix, or None for none); brain masks ``NAME_mask.*`` or ``masks/NAME.*``. A label
    map or mask in the list is its scan's companion, not a scan.

    Examples
    --------
    >>> find_scans([])
    Traceback (most recent call last):
    ...
    FileNotFoundError: []: no scans found; give NIfTI (.nii, .nii.gz) or MGZ files
    """
    if isinstance(inputs, (str, os.PathLike)) and pathlib.Path(inputs).is_dir():
        folder = pathlib.Path(inputs)
        paths = [path for _, path, _ in own_entries(folder, None)]
    elif isinstance(inputs, (str, os.PathLike)):
        raise FileNotFoundError(f"{inputs}: not a folder; give a folder of scans or a list of scan files")
    else:
        paths = [pathlib.Path(path) for path in inputs]
    if not paths:
        raise FileNotFoundError(f"{inputs}: no scans found; give NIfTI (.nii, .nii.gz) or MGZ files")
    found = {}
    for parent in sorted({path.parent for path in paths}):
        label_files = {} if labels is None or not parent.is_dir() else {
            entry[1]: entry[2] for entry in own_entries(parent, labels, require_all=False)}
        mask_suffix = "_mask" if masks == "auto" else masks
        mask_files = {} if masks is None or not parent.is_dir() else {
            entry[1]: entry[2] for entry in own_entries(parent, mask_suffix, subfolder="masks", require_all=False)}
        found[parent] = (label_files, mask_files)
    companions = {file for label_files, mask_files in found.values()
                  for file in (*label_files.values(), *mask_files.values()) if file is not None}
    entries: list[Entry] = []
    for path in paths:
        if path in companions:
            continue
        label_files, mask_files = found[path.parent]
        entries.append((split_suffix(path)[0], path, label_files.get(path), mask_files.get(path)))
    return entries


def read_scans(entries: Sequence[Entry]) -> list[Scan]:
    """Every scan read and checked (:meth:`Scan.read`); one :class:`ScanErrors` naming each bad file.

    Examples
    --------
    >>> read_scans([("a", pathlib.Path("no/a.nii.gz"), None, None)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hypermorph_nb.data.scan_lists.ScanErrors: 1 of 1 scans cannot be used; ...
    """
    return list(_read_all(entries))


def check_scans(entries: Sequence[Entry]) -> None:
    """As :func:`read_scans`, one scan in memory at a time (for cohorts read again later)."""
    for _ in _read_all(entries):
        pass


def _read_all(entries: Sequence[Entry]) -> Iterator[Scan]:
    problems = []
    for name, path, labels, mask in entries:
        try:
            scan = Scan.read(path, labels=labels, mask=mask, name=name)
        except Exception as error:   # any reader's error: the file is named and the run goes on
            message = str(error)
            problems.append(message if str(path) in message else f"{path}: cannot be read ({message})")
            continue
        if not problems:
            yield scan
    if problems:
        raise ScanErrors(problems, len(entries))
