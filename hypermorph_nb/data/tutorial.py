"""The seed tutorial's 2D OASIS file: download once, verify, cache, load.

Where the file is looked for, in order:

1. ``path``, when you give one;
2. the cache folder :func:`cache_dir`: ``$HYPERMORPH_NB_DATA`` when set, else
   ``$XDG_CACHE_HOME/hypermorph-nb``, else ``~/.cache/hypermorph-nb``;
3. neurite's own cache ``~/.neurite`` (read only), where
   ``ne.py.data.load_dataset('2D-OASIS-TUTORIAL')`` leaves it;
4. otherwise it is downloaded from neurite's address into the cache folder.

Verification. No checksum of the tutorial file is published, so none can be
built in. A file is accepted when its sha256 equals the one you pass
(``sha256=``, or a :class:`TutorialSource` that carries one) and, always, when
it is a readable ``.npz`` holding the expected number of images of the expected
shape with intensities in [0, 1]. The sha256 of the first accepted download
is recorded beside it (``2D-OASIS-TUTORIAL.npz.sha256``, ``sha256sum``
format) and checked on every later load, so a cached file that changes is
noticed. A download is written to a temporary file in the cache folder and
renamed into place only after it passed, so an interrupted or corrupt
download never takes the cache's place.

Terms. The tutorial slices come from OASIS-1 (the neurite-oasis release): use
them under the OASIS Data Use Agreement (oasis-brains.org) and cite Marcus et
al., "Open Access Series of Imaging Studies (OASIS)", J Cogn Neurosci
19:1498-1507, 2007, and Hoopes et al., "HyperMorph: Amortized Hyperparameter
Learning for Image Registration", IPMI 2021 (arXiv:2101.01035).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dataclasses
import hashlib
import http.client
import os
import pathlib
import tempfile
import urllib.error
import urllib.request

from ..io.files import follow_umask, sha256_of
from .files import load_npz

if TYPE_CHECKING:
    from .dataset import Dataset


#: Environment variable naming the folder that caches downloaded data.
DATA_ENV = "HYPERMORPH_NB_DATA"
#: Where the seed tutorial's ``.npz`` lives in the shared checkout of this project.
SHARED_OASIS = "../shared/data/oasis2d/oasis2d_300.npz"


class DataUnavailableError(OSError):
    """The tutorial data could not be found, downloaded or verified; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class TutorialSource:
    """Where a tutorial file comes from and what it must hold.

    Attributes
    ----------
    url : str
        Download address.
    filename : str
        Name in the cache folder.
    n_images : int
        Number of images the file must hold.
    shape : tuple of int
        Spatial shape ``(H, W)`` of each image.
    sha256 : str, optional
        Expected checksum, when one is known.
    """

    url: str
    filename: str
    n_images: int
    shape: tuple
    sha256: str | None = None


#: The 2D OASIS tutorial file (414 slices, 160×192, in [0, 1]) at the address neurite 0.2 uses.
OASIS_TUTORIAL = TutorialSource(
    url="https://surfer.nmr.mgh.harvard.edu/pub/data/voxelmorph/2D-OASIS-TUTORIAL.npz",
    filename="2D-OASIS-TUTORIAL.npz",
    n_images=414,
    shape=(160, 192),
)


def cache_dir() -> pathlib.Path:
    """The folder that caches downloaded data.

    ``$HYPERMORPH_NB_DATA`` when set, else ``$XDG_CACHE_HOME/hypermorph-nb``,
    else ``~/.cache/hypermorph-nb``. It is created on first download.

    Examples
    --------
    >>> isinstance(cache_dir(), pathlib.Path)
    True
    """
    if os.environ.get(DATA_ENV):
        return pathlib.Path(os.environ[DATA_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base).expanduser() / "hypermorph-nb"


def load_tutorial(path: str | os.PathLike[str] | None = None, *, source: TutorialSource = OASIS_TUTORIAL,
                  sha256: str | None = None, download: bool = True, timeout: int = 60, progress: bool = True,
                  normalize: str = "auto") -> Dataset:
    """Load the seed tutorial's 2D OASIS slices, downloading and caching them once.

    Parameters
    ----------
    path : str or path-like, optional
        A local copy of the tutorial file; skips the cache and the download.
    source : TutorialSource
        Address, cache name and expected contents (e.g. a mirror:
        ``dataclasses.replace(OASIS_TUTORIAL, url=...)``).
    sha256 : str, optional
        Expected checksum; overrides ``source.sha256`` and the recorded one.
    download : bool
        Download when no verified copy is found; False raises instead.
    timeout : float
        Seconds to wait for the server.
    progress : bool
        Show a download progress bar.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy (the tutorial file is already in [0, 1]).

    Returns
    -------
    Dataset
        ``(414, 160, 192, 1)`` float32 images (labels when the file has them).

    Raises
    ------
    DataUnavailableError
        Offline, failed or incomplete download, or a file that fails
        verification; the message lists the alternatives.

    Examples
    --------
    >>> import hypermorph_nb.data as hd
    >>> try:                                   # offline here: nothing cached, no download
    ...     data = hd.load_tutorial(download=False)
    ... except hd.DataUnavailableError:
    ...     data = hd.synthetic(8, (64, 64), seed=0)
    >>> data.images.shape[-1]
    1
    """
    expected = sha256 or source.sha256
    if path is not None:
        path = pathlib.Path(path).expanduser()
        if not path.is_file():
            raise DataUnavailableError(f"{path} does not exist." + _alternatives(source))
        return _verified(path, source, expected, normalize)
    cached = cache_dir() / source.filename
    if cached.is_file():
        return _verified(cached, source, expected or _recorded(cached), normalize, record=True)
    neurite_copy = pathlib.Path.home() / ".neurite" / source.filename
    if neurite_copy.is_file():
        return _verified(neurite_copy, source, expected, normalize)
    if not download:
        raise DataUnavailableError(
            f"the tutorial file is not cached at {cached} and download=False." + _alternatives(source))
    return _download(source, cached, expected, timeout=timeout, progress=progress,
                     normalize=normalize)


def _download(source, destination, expected, *, timeout, progress, normalize):
    """Fetch ``source.url`` to a temporary file, verify it, then move it to ``destination``."""
    from tqdm.auto import tqdm

    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, partial_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                                suffix=".part")
    except OSError as error:
        raise DataUnavailableError(
            f"cannot write to the cache folder {destination.parent} ({error}); set {DATA_ENV} "
            "to a writable folder." + _alternatives(source)) from None
    partial = pathlib.Path(partial_name)
    try:
        follow_umask(partial)   # the cached file gets the mode of any new file, not mkstemp's 0600
        digest = hashlib.sha256()
        received = 0
        with os.fdopen(handle, "wb") as out:
            with urllib.request.urlopen(source.url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                declared = int(declared) if declared and declared.isdigit() else None
                with tqdm(total=declared, unit="B", unit_scale=True, disable=not progress,
                          desc=source.filename) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        if declared is not None and received != declared:
            raise DataUnavailableError(
                f"the download of {source.url} stopped after {received} of {declared} bytes; "
                "nothing was cached, try again." + _alternatives(source))
        checksum = digest.hexdigest()
        if expected and checksum != expected.lower():
            raise DataUnavailableError(
                f"the file downloaded from {source.url} has sha256 {checksum}, expected "
                f"{expected}; nothing was cached." + _alternatives(source))
        data = _checked_contents(partial, source, normalize, shown=source.url)
        os.replace(partial, destination)
        _record(destination, checksum)
        if progress:
            print(f"Cached {source.filename} in {destination.parent} (sha256 {checksum}).")
        return data
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataUnavailableError(
            f"could not download {source.url} ({type(error).__name__}: {reason})."
            + _alternatives(source)) from None
    finally:
        partial.unlink(missing_ok=True)


def _verified(path, source, expected, normalize, *, record: bool = False):
    """Load ``path`` after checking its checksum (when known) and its contents."""
    checksum = sha256_of(path)
    if expected and checksum != expected.lower():
        raise DataUnavailableError(
            f"{path} has sha256 {checksum}, expected {expected}: the file is damaged or not the "
            f"tutorial file; delete it to download it again." + _alternatives(source))
    data = _checked_contents(path, source, normalize, shown=str(path))
    if record and not expected:
        _record(path, checksum)
    return data


def _checked_contents(path, source, normalize, *, shown):
    """The Dataset in ``path`` if it holds what ``source`` promises."""
    try:
        data = load_npz(path, normalize=normalize)
    except (ValueError, KeyError) as error:
        raise DataUnavailableError(
            f"{shown} is not a valid tutorial file ({error})." + _alternatives(source)) from None
    if len(data) != source.n_images or data.shape != tuple(source.shape):
        raise DataUnavailableError(
            f"{shown} holds {len(data)} images of {data.shape}, expected {source.n_images} of "
            f"{tuple(source.shape)}: not the tutorial file." + _alternatives(source))
    data.source = f"{source.filename} ({path})"
    return data


def _record_path(path):
    return path.with_name(path.name + ".sha256")


def _recorded(path):
    """The checksum recorded beside ``path`` at its first verified load, if any."""
    record = _record_path(path)
    if record.is_file():
        fields = record.read_text().split()
        return fields[0] if fields else None
    return None


def _record(path, checksum) -> None:
    try:
        _record_path(path).write_text(f"{checksum}  {path.name}\n")
    except OSError:
        pass  # a read-only cache still loads; it is simply not re-checked later


def _alternatives(source) -> str:
    return (
        "\nAlternatives:\n"
        f"  - a local copy: load_tutorial(path='.../{source.filename}')\n"
        f"  - put {source.filename} in {cache_dir()} (or set {DATA_ENV} to the folder holding it)\n"
        f"  - the 300 OASIS slices with 24 labels: load_npz('{SHARED_OASIS}')\n"
        "  - your own images: load_folder('path/to/folder')\n"
        "  - the offline default: synthetic(64, (64, 64), seed=0)"
    )
