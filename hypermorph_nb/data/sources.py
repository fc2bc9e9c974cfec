"""Pick a data source by name, as the tutorial notebooks' ``parameters`` cell does.

``load_source("auto")`` prefers the real tutorial data and falls back, saying
why, to the OASIS slices in ``../shared/data/oasis2d/`` and then to the
embedded synthetic default, so a notebook runs everywhere and tells its reader
what it ran on. With a 3-element ``shape`` it looks for the 3D IXI volumes in
``../shared/data/ixi3d/`` instead, then falls back to synthetic volumes.

Terms of the real data (neither set is part of this package):

OASIS (``tutorial``, ``oasis2d``, the neurite-oasis folders)
    The OASIS Data Use Agreement (oasis-brains.org). Cite Marcus et al., "Open
    Access Series of Imaging Studies (OASIS)", J Cogn Neurosci 19:1498-1507,
    2007, and Hoopes et al., "HyperMorph: Amortized Hyperparameter Learning for
    Image Registration", IPMI 2021 (arXiv:2101.01035).
IXI (``ixi3d``)
    The IXI images are under CC BY-SA 3.0 (brain-development.org). The processed
    2 mm copies and their DLMUSE label maps are under the SBIA licence
    (University of Pennsylvania), whose Part B must travel with any copy:
    ``LICENSE-DATA.md`` beside ``ixi3d_150.npz``. Modified versions, research use
    only, not for clinical use.
"""

from __future__ import annotations

from collections.abc import Sequence

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..checks.affines import resampled_affine
from .dataset import Dataset
from .files import load_npz
from .folders import load_folder
from .synthetic import synthetic
from .tutorial import DataUnavailableError, load_tutorial

SOURCES = ("auto", "tutorial", "oasis2d", "ixi3d", "synthetic", "synthetic3d", "npz", "folder")

#: The shared OASIS file, relative to a folder that holds ``shared/``.
SHARED_OASIS2D = Path("shared", "data", "oasis2d", "oasis2d_300.npz")
#: The shared IXI volumes, relative to a folder that holds ``shared/``.
SHARED_IXI3D = Path("shared", "data", "ixi3d", "ixi3d_150.npz")
#: Shape of ``load_source("synthetic3d")`` when no ``shape`` is given.
SYNTHETIC_3D_SHAPE = (48, 48, 48)


def find_shared_oasis2d(start: str | os.PathLike[str] | None = None) -> Path | None:
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
    return _find_shared(SHARED_OASIS2D, "HYPERMORPH_NB_OASIS2D", start)


def find_shared_ixi3d(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Locate ``ixi3d_150.npz``: ``$HYPERMORPH_NB_IXI3D``, else a ``shared/`` folder above ``start``.

    Parameters
    ----------
    start : str or Path, optional
        Where to start looking (default: the current folder); each parent is
        tried, as :func:`find_shared_oasis2d` does.

    Returns
    -------
    Path or None
    """
    return _find_shared(SHARED_IXI3D, "HYPERMORPH_NB_IXI3D", start)


def _find_shared(relative, variable, start):
    override = os.environ.get(variable)
    if override:
        return Path(override) if Path(override).is_file() else None
    folder = Path(start or Path.cwd()).resolve()
    for candidate in [folder, *folder.parents]:
        path = candidate / relative
        if path.is_file():
            return path
    return None


def load_source(source: str = "auto", *, path: str | os.PathLike[str] | None = None,
                shape: tuple[int, ...] | None = None, subset: int | None = None, require_labels: bool = False,
                seed: int = 0, n_synthetic: int = 64, verbose: bool = True) -> Dataset:
    """Load a dataset by source name and optionally shrink it for a quick run.

    Parameters
    ----------
    source : {'auto', 'tutorial', 'oasis2d', 'ixi3d', 'synthetic', 'synthetic3d', 'npz', 'folder'}
        ``auto`` tries the tutorial file (cached or downloaded; skipped when
        ``require_labels``, as it has no label maps), then the shared OASIS
        slices, then synthetic data; with a 3-element ``shape`` it tries the
        shared IXI volumes (``ixi3d``), then synthetic volumes. ``synthetic``
        makes 3D volumes when ``shape`` has 3 elements; ``synthetic3d`` always
        does (default shape 48³). ``npz`` and ``folder`` need ``path``.
    path : str or Path, optional
        File or folder for ``npz``/``folder``/``tutorial``/``oasis2d``/``ixi3d``.
    shape : tuple of int, optional
        Resize every image to this ``(H, W)`` or ``(D, H, W)`` (linear for
        images, nearest for labels; affines follow), e.g. ``(80, 96)`` for
        CPU-sized 2D runs. Synthetic data is generated at this shape.
    subset : int, optional
        Keep only the first ``subset`` images (ixi3d reads only those).
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
    >>> load_source("synthetic", shape=(16, 16, 16), n_synthetic=2, verbose=False).ndim
    3
    """
    if source not in SOURCES:
        raise ValueError(f"data source must be one of {SOURCES}, got {source!r}")
    if shape is not None:
        shape = tuple(int(side) for side in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) or (D, H, W) with positive sides, got {shape}")
    notes: list[str] = []
    if source == "auto" and shape is not None and len(shape) == 3:
        data = _auto_3d(path, subset, shape, seed, n_synthetic, notes)
    elif source == "auto":
        data = _auto(path, require_labels, seed, n_synthetic, notes)
    elif source == "tutorial":
        data = load_tutorial(path)
    elif source == "oasis2d":
        data = load_npz(path or _require_shared(find_shared_oasis2d, "oasis2d_300.npz",
                                                "HYPERMORPH_NB_OASIS2D", "oasis2d"))
    elif source == "ixi3d":
        data = load_npz(path or _require_shared(find_shared_ixi3d, "ixi3d_150.npz",
                                                "HYPERMORPH_NB_IXI3D", "ixi3d"), subset=subset)
    elif source == "synthetic":
        data = synthetic(n_synthetic, shape or (64, 64), seed=seed)
    elif source == "synthetic3d":
        if shape is not None and len(shape) != 3:
            raise ValueError(f"source 'synthetic3d' makes 3D volumes, but shape={shape} is 2D; "
                             "give a (D, H, W) shape, or use source='synthetic' for 2D images")
        data = synthetic(n_synthetic, shape or SYNTHETIC_3D_SHAPE, seed=seed)
    else:
        if path is None:
            raise ValueError(f"data source {source!r} needs path=<your {source} location>")
        data = load_npz(path) if source == "npz" else load_folder(path)
    if require_labels and not data.has_labels:
        raise ValueError(f"{data.source} has no label maps, but Dice needs them; use a labelled "
                         "source such as 'oasis2d', 'synthetic', or load_folder with label maps")
    if subset is not None:
        data = data[: int(subset)]
    if shape is not None and shape != data.shape:
        data = resize(data, shape)
    if verbose:
        for note in notes:
            print(note)
        labels = f"{len(data.label_values())} labels" if data.has_labels else "no labels"
        print(f"Using {data.source}: {len(data)} images of {data.shape}, {labels}.")
    return data


def resize(data: Dataset, shape: Sequence[int]) -> Dataset:
    """Resize a dataset's images (linear) and label maps (nearest) to ``shape``, 2D or 3D.

    The field of view stays the same, so voxels change size: the affines are
    rescaled to match (the outer edges of the grid keep their world position).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> resize(synthetic(2, (64, 64)), (32, 48)).images.shape
    (2, 32, 48, 1)
    >>> small = resize(synthetic(1, (32, 32, 32)), (16, 16, 16))
    >>> small.images.shape, small.voxel_sizes[0].tolist()
    ((1, 16, 16, 16, 1), [2.0, 2.0, 2.0])
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != data.ndim or min(shape) < 1:
        kind = "(H, W)" if data.ndim == 2 else "(D, H, W)"
        raise ValueError(f"shape must be {kind} with positive sides for {data.ndim}D images of "
                         f"{data.shape}, got {shape}")
    factors = np.array(shape) / np.array(data.shape)
    images = np.empty((len(data), *shape, 1), np.float32)   # filled in place: no stacked copies
    labels = None if data.labels is None else np.empty((len(data), *shape), data.labels.dtype)
    for index in range(len(data)):
        ndimage.zoom(data.images[index, ..., 0], factors, output=images[index, ..., 0], order=1,
                     grid_mode=True, mode="nearest")
        if labels is not None and data.labels is not None:
            ndimage.zoom(data.labels[index], factors, output=labels[index], order=0,
                         grid_mode=True, mode="nearest")
    affines = None if data.affines is None else resampled_affine(data.affines, data.shape, shape)
    return Dataset(images=np.clip(images, 0, 1, out=images), labels=labels,
                   label_names=data.label_names, names=data.names, affines=affines,
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


def _auto_3d(path, subset, shape, seed, n_synthetic, notes):
    shared = path or find_shared_ixi3d()
    if shared is not None:
        return load_npz(shared, subset=subset)
    notes.append("No ../shared/data/ixi3d/ixi3d_150.npz found (set HYPERMORPH_NB_IXI3D to its "
                 "path); falling back to synthetic 3D volumes.")
    return synthetic(n_synthetic, shape, seed=seed)


def _require_shared(find, filename, variable, name):
    path = find()
    if path is None:
        raise DataUnavailableError(
            f"{filename} not found in a shared/data/{name}/ folder above the current one; "
            f"pass path=..., set {variable}, or use source='synthetic'")
    return path
