"""File helpers shared by saving, checkpointing, exports and the data cache.

Files are written under a temporary name and renamed into place. Python's
``tempfile`` creates those with mode 0600 (folders 0700), which the rename would
keep: :func:`follow_umask` gives them the mode an ordinary ``open`` or
``mkdir`` would have (0644 files and 0755 folders under the usual umask 022).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in blocks.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> sha256_of(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is set and restored
    at once (:func:`os.umask` can only be read by setting it).

    Examples
    --------
    >>> previous = os.umask(0o027)
    >>> oct(current_umask())
    '0o27'
    >>> _ = os.umask(previous)
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give a file or folder made by :mod:`tempfile` the mode ``open``/``mkdir`` would give it.

    ``0o666 & ~umask`` for a file, ``0o777 & ~umask`` for a folder (the folder
    itself; what it holds was made with ordinary modes). Call it on the
    temporary path before renaming it into place, so the final name never has
    the temporary's 0600/0700 mode.

    Parameters
    ----------
    path : str or os.PathLike
        A file or folder.

    Examples
    --------
    >>> import stat
    >>> previous = os.umask(0o022)
    >>> handle, path = tempfile.mkstemp()
    >>> os.close(handle)
    >>> oct(stat.S_IMODE(os.stat(path).st_mode))
    '0o600'
    >>> follow_umask(path)
    >>> oct(stat.S_IMODE(os.stat(path).st_mode))
    '0o644'
    >>> _ = os.umask(previous)
    """
    full = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, full & ~current_umask())


def replace_folder(staging: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Move ``staging`` to ``path``, replacing an existing folder atomically enough.

    The old folder is renamed aside first and removed only after the new one
    is in place, so at every moment one complete copy exists on disk. The
    folder gets the mode a new folder would have (:func:`follow_umask`), also
    when ``staging`` was made by :func:`tempfile.mkdtemp`.
    """
    follow_umask(staging)
    backup = None
    if os.path.isdir(path):
        backup = tempfile.mkdtemp(prefix=".replaced-", dir=os.path.dirname(os.path.abspath(path)))
        os.rmdir(backup)
        os.rename(path, backup)
    os.rename(staging, path)
    if backup:
        shutil.rmtree(backup, ignore_errors=True)
