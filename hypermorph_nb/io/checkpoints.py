"""Training checkpoints: atomic folders with a checksum manifest; the previous one is kept.

One checkpoint is one folder under the checkpoint directory::

    ckpt-00000300/            (named by the global training step)
      model/                  a saved model: hypermorph_nb.load_model("ckpt-00000300/model")
      optimizer.npz           Adam's iteration count (the global step lr_schedule reads) and moments
      state.json              epoch, step, history and training config
      manifest.json           SHA-256 and size of every other file, written last

A checkpoint is written into a hidden staging folder and renamed into place
only once complete, so a crash never leaves a half-written ``ckpt-*`` folder.
The manifest also catches later damage (a truncated copy, a disk error, a
file replaced by hand): :func:`latest_checkpoint` verifies every file, skips a
damaged checkpoint with a warning, renames it aside (``*.damaged``) and
returns the newest good one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TYPE_CHECKING

import dataclasses
import json
import os
import re
import shutil
import tempfile
import warnings

from numpy.typing import ArrayLike
import numpy as np

from .files import replace_folder, sha256_of
from .persistence import CONFIG_NAME, WEIGHTS_NAME, save_model

if TYPE_CHECKING:
    import tensorflow as tf

PREFIX = "ckpt-"
MANIFEST_NAME = "manifest.json"
STATE_NAME = "state.json"
OPTIMIZER_NAME = "optimizer.npz"
MODEL_FOLDER = "model"
FORMAT = "hypermorph_nb-checkpoint"
FORMAT_VERSION = 1
REQUIRED_FILES = (STATE_NAME, OPTIMIZER_NAME,
                  f"{MODEL_FOLDER}/{CONFIG_NAME}", f"{MODEL_FOLDER}/{WEIGHTS_NAME}")
_NAME = re.compile(rf"^{PREFIX}(\d+)$")
_STAGING_PREFIX = ".staging-"


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or damaged (the message says which file and why)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder.

    Attributes
    ----------
    path : str
        The ``ckpt-*`` folder.
    state : dict
        Contents of ``state.json``: ``epoch``, ``step``, ``history``,
        ``config`` and ``partial`` (the unfinished epoch of an interrupted run).
    """

    path: str
    state: dict[str, Any]

    @property
    def step(self) -> int:
        """Global training step at which the checkpoint was written."""
        return int(self.state["step"])

    @property
    def model_path(self) -> str:
        """The saved-model folder inside the checkpoint (for :func:`hypermorph_nb.load_model`)."""
        return os.path.join(self.path, MODEL_FOLDER)

    def load_weights_into(self, model: tf.keras.Model) -> None:
        """Load the checkpoint's model weights into ``model`` (same architecture)."""
        model.load_weights(os.path.join(self.model_path, WEIGHTS_NAME))

    def optimizer_weights(self) -> list[np.ndarray]:
        """The optimizer variables as a list of arrays (``optimizer.set_weights`` order)."""
        with np.load(os.path.join(self.path, OPTIMIZER_NAME), allow_pickle=False) as arrays:
            return [arrays[f"w{index:05d}"] for index in range(len(arrays.files))]


def list_checkpoints(directory: str | os.PathLike[str]) -> list[str]:
    """Paths of the ``ckpt-*`` folders in ``directory``, oldest (lowest step) first.

    Examples
    --------
    >>> import tempfile
    >>> list_checkpoints(tempfile.mkdtemp())
    []
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match and os.path.isdir(os.path.join(directory, name)):
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return [path for _, path in sorted(found)]


def write_checkpoint(directory: str | os.PathLike[str], *, model: tf.keras.Model,
                     optimizer_weights: Sequence[ArrayLike], state: dict[str, Any], keep: int = 2) -> str:
    """Write a checkpoint atomically and keep only the newest ``keep`` of them.

    Parameters
    ----------
    directory : str or os.PathLike
        The checkpoint directory (created if needed).
    model : tf.keras.Model
        A model built by hypermorph_nb (saved with :func:`hypermorph_nb.save_model`).
    optimizer_weights : list of np.ndarray
        ``optimizer.get_weights()``.
    state : dict
        JSON-serialisable; must hold an integer ``step`` (the folder's name).
    keep : int
        How many checkpoints to keep (at least 1; 2 keeps the previous good one).

    Returns
    -------
    str
        The new checkpoint folder.

    Examples
    --------
    >>> import tempfile, hypermorph_nb as hnb
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> folder = tempfile.mkdtemp()
    >>> for step in (10, 20, 30):
    ...     _ = write_checkpoint(folder, model=model, optimizer_weights=[], state={"step": step})
    >>> [os.path.basename(p) for p in list_checkpoints(folder)]
    ['ckpt-00000020', 'ckpt-00000030']
    >>> latest_checkpoint(folder).step
    30
    """
    if int(keep) < 1:
        raise ValueError(f"keep must be at least 1, got {keep!r}")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, f"{PREFIX}{int(state['step']):08d}")
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=directory)
    try:
        save_model(model, os.path.join(staging, MODEL_FOLDER))
        arrays: dict[str, Any] = {f"w{index:05d}": np.asarray(value)
                                  for index, value in enumerate(optimizer_weights)}
        np.savez(os.path.join(staging, OPTIMIZER_NAME), **arrays)
        with open(os.path.join(staging, STATE_NAME), "w") as handle:
            json.dump(state, handle)
        files = {}
        for relative in _files_under(staging):
            path = os.path.join(staging, relative)
            _fsync(path)
            files[relative] = {"sha256": sha256_of(path), "bytes": os.path.getsize(path)}
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "files": files}
        with open(os.path.join(staging, MANIFEST_NAME), "w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        replace_folder(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_directory(directory)
    for old in list_checkpoints(directory)[:-int(keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Check a checkpoint folder against its manifest and return it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``ckpt-*`` folder.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        If the manifest is missing (a half-written or hand-made folder), a
        file is missing, or a file's size or SHA-256 differs from the manifest.
    """
    path = os.fspath(path)
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(manifest_path):
        raise CheckpointError(f"{path} has no {MANIFEST_NAME}: it was not completely written")
    try:
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{manifest_path} is unreadable ({err})") from err
    if manifest.get("format") != FORMAT or manifest.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{manifest_path} is not a hypermorph_nb checkpoint manifest "
                              f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})")
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise CheckpointError(f"{manifest_path} does not list {missing}")
    for relative, expected in files.items():
        file_path = os.path.join(path, relative)
        if not os.path.isfile(file_path):
            raise CheckpointError(f"{file_path} is missing")
        size = os.path.getsize(file_path)
        if size != expected.get("bytes"):
            raise CheckpointError(f"{file_path} has {size} bytes, the manifest says {expected.get('bytes')}")
        if sha256_of(file_path) != expected.get("sha256"):
            raise CheckpointError(f"{file_path} does not match its SHA-256 checksum in {MANIFEST_NAME}")
    with open(os.path.join(path, STATE_NAME)) as handle:
        state = json.load(handle)
    return Checkpoint(path=path, state=state)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` that verifies, or None if there is none.

    Damaged checkpoints newer than it are renamed to ``<name>.damaged`` (kept
    for inspection, no longer listed) with a warning that says why, and the
    previous good one is returned.

    Parameters
    ----------
    directory : str or os.PathLike

    Returns
    -------
    Checkpoint or None

    Raises
    ------
    CheckpointError
        If checkpoints exist but none of them verifies.
    """
    directory = os.fspath(directory)
    _remove_stale_staging(directory)
    candidates = list_checkpoints(directory)
    damaged = []
    for path in reversed(candidates):
        try:
            checkpoint = verify_checkpoint(path)
        except CheckpointError as err:
            damaged.append(path)
            aside = _rename_aside(path)
            warnings.warn(f"checkpoint {os.path.basename(path)} is damaged and was skipped ({err}); "
                          f"it was renamed to {os.path.basename(aside)}", RuntimeWarning, stacklevel=2)
            continue
        if damaged:
            warnings.warn(f"resuming from the previous good checkpoint {os.path.basename(path)} "
                          f"(step {checkpoint.step})", RuntimeWarning, stacklevel=2)
        return checkpoint
    if damaged:
        raise CheckpointError(
            f"none of the {len(damaged)} checkpoints in {directory} is intact (renamed to *.damaged); "
            "start over with resume=False in an empty checkpoint_dir")
    return None


def _files_under(folder: str) -> Iterator[str]:
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            yield os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: str) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform (e.g. Windows)
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _rename_aside(path: str, suffix: str = ".damaged") -> str:
    target, count = path + suffix, 1
    while os.path.exists(target):
        target, count = f"{path}{suffix}-{count}", count + 1
    os.rename(path, target)
    return target


def _remove_stale_staging(directory: str) -> None:
    """Delete staging folders left by a crash in the middle of a write."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith(_STAGING_PREFIX):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
