"""Pick a data source by name, as the tutorial notebooks' ``parameters`` cell does.

``load_source("auto")`` prefers the real tutorial data and falls back, saying
why, to the OASIS slices in ``../shared/data/oasis2d/`` and then to the
embedded synthetic default, so a notebook runs everywhere and tells its reader
what it ran on.
"""

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from .dataset import Dataset
from .files import load_folder, load_npz
from .synthetic import synthetic
from .tutorial import DataUnavailableError, load_tutorial

SOURCES = ("auto", "tutorial", "oasis2d", "synthetic", "npz", "folder")

#: The shared OASIS file, relative to a folder that holds ``shared/``.
SHARED_OASIS2D = Path("shared", "data", "oasis2d", "oasis2d_300.npz")


def find_shared_oasis2d(start=None):
    """Locate ``oasis2d_300.npz``: ``$HYPERMORPH_NB_OASIS2D``, else a ``shared/`` folder above ``start``.

    Parameters
    ----------
    start : str or Path, optional
        Where to start looking (default: the current folder); each parent is
        tried, so a notebook in ``repo/notebooks/`` finds ``../shared`` beside ``repo``.

    Returns
    -------
    Path or None
    """
    override = os.environ.get("HYPERMORPH_NB_OASIS2D")
    if override:
        return Path(override) if Path(override).is_file() else None
    folder = Path(start or Path.cwd()).resolve()
    for candidate in [folder, *folder.parents]:
        path = candidate / SHARED_OASIS2D
        if path.is_file():
            return path
    return None


def load_source(source="auto", *, path=None, shape=None, subset=None, require_labels=False,
                seed=0, n_synthetic=64, verbose=True):
    """Load a dataset by source name and optionally shrink it for a quick run.

    Parameters
    ----------
    source : {'auto', 'tutorial', 'oasis2d', 'synthetic', 'npz', 'folder'}
        ``auto`` tries the tutorial file (cached or downloaded; skipped when
        ``require_labels``, as it has no label maps), then the shared OASIS
        slices, then synthetic data. ``npz`` and ``folder`` need ``path``.
    path : str or Path, optional
        File or folder for ``npz``/``folder``/``tutorial``/``oasis2d``.
    shape : tuple of int, optional
        Resize every image to this ``(H, W)`` (linear for images, nearest
        for labels), e.g. ``(80, 96)`` for CPU-sized runs.
    subset : int, optional
        Keep only the first ``subset`` images.
    require_labels : bool
        Fail (or, for ``auto``, skip sources) without label maps.
    seed : int
        Seed of the synthetic data.
    n_synthetic : int
        Number of synthetic subjects.
    verbose : bool
        Print which source was used and why.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> data = load_source("synthetic", shape=(32, 32), n_synthetic=6, verbose=False)
    >>> data.images.shape, data.has_labels
    ((6, 32, 32, 1), True)
    """
    if source not in SOURCES:
        raise ValueError(f"data source must be one of {SOURCES}, got {source!r}")
    notes = []
    if source == "auto":
        data = _auto(path, require_labels, seed, n_synthetic, notes)
    elif source == "tutorial":
        data = load_tutorial(path)
    elif source == "oasis2d":
        data = load_npz(path or _require_shared())
    elif source == "synthetic":
        data = synthetic(n_synthetic, shape or (64, 64), seed=seed)
    else:
        if path is None:
            raise ValueError(f"data source {source!r} needs path=<your {source} location>")
        data = load_npz(path) if source == "npz" else load_folder(path)
    if require_labels and not data.has_labels:
        raise ValueError(f"{data.source} has no label maps, but Dice needs them; use a labelled "
                         "source such as 'oasis2d', 'synthetic', or load_folder with label maps")
    if subset is not None:
        data = data[: int(subset)]
    if shape is not None and tuple(shape) != data.shape:
        data = resize(data, shape)
    if verbose:
        for note in notes:
            print(note)
        labels = f"{len(data.label_values())} labels" if data.has_labels else "no labels"
        print(f"Using {data.source}: {len(data)} images of {data.shape}, {labels}.")
    return data


def resize(data, shape):
    """Resize a dataset's images (linear) and label maps (nearest) to ``shape``.

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> resize(synthetic(2, (64, 64)), (32, 48)).images.shape
    (2, 32, 48, 1)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (H, W), got {shape}")
    factors = np.array(shape) / np.array(data.shape)
    images = np.stack([ndimage.zoom(image[..., 0], factors, order=1, grid_mode=True, mode="nearest")
                       for image in data.images])[..., None]
    labels = None
    if data.has_labels:
        labels = np.stack([ndimage.zoom(label, factors, order=0, grid_mode=True, mode="nearest")
                           for label in data.labels])
    return Dataset(images=np.clip(images, 0, 1).astype(np.float32), labels=labels,
                   label_names=data.label_names, names=data.names,
                   source=f"{data.source} resized to {shape}")


def _auto(path, require_labels, seed, n_synthetic, notes):
    if require_labels:
        notes.append("The tutorial file has no label maps; looking for labelled OASIS slices.")
    else:
        try:
            return load_tutorial(path)
        except DataUnavailableError as err:
            notes.append(f"Tutorial data unavailable ({str(err).splitlines()[0]}).")
    shared = find_shared_oasis2d()
    if shared is not None:
        return load_npz(shared)
    notes.append("No ../shared/data/oasis2d/oasis2d_300.npz found (set HYPERMORPH_NB_OASIS2D to "
                 "its path); falling back to the embedded synthetic data.")
    return synthetic(n_synthetic, (64, 64), seed=seed)


def _require_shared():
    path = find_shared_oasis2d()
    if path is None:
        raise DataUnavailableError(
            "oasis2d_300.npz not found in a shared/data/oasis2d/ folder above the current one; "
            "pass path=..., set HYPERMORPH_NB_OASIS2D, or use source='synthetic'")
    return path
