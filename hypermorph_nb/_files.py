"""File helpers shared by saving, checkpointing and the data cache."""

import hashlib
import os
import shutil
import tempfile


def sha256_of(path):
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


def replace_folder(staging, path):
    """Move ``staging`` to ``path``, replacing an existing folder atomically enough.

    The old folder is renamed aside first and removed only after the new one
    is in place, so at every moment one complete copy exists on disk.
    """
    backup = None
    if os.path.isdir(path):
        backup = tempfile.mkdtemp(prefix=".replaced-", dir=os.path.dirname(os.path.abspath(path)))
        os.rmdir(backup)
        os.rename(path, backup)
    os.rename(staging, path)
    if backup:
        shutil.rmtree(backup, ignore_errors=True)
