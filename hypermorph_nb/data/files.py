"""Load a stack of 2D images or 3D volumes (and label maps, affines) from one ``.npz`` file.

:func:`load_npz` reads, for example:

``../shared/data/oasis2d/oasis2d_300.npz``
    300 OASIS-1 slices (160×192) with 24-label ``segs`` and 4-class ``segs4``.
    Terms: the OASIS Data Use Agreement (oasis-brains.org); cite Marcus et al.,
    "Open Access Series of Imaging Studies (OASIS)", J Cogn Neurosci 19:1498-1507,
    2007, and Hoopes et al., "HyperMorph: Amortized Hyperparameter Learning for
    Image Registration", IPMI 2021 (arXiv:2101.01035).
``../shared/data/ixi3d/ixi3d_150.npz``
    150 IXI T1 volumes (80×96×80, 2 mm, uint8) with 148-structure DLMUSE
    ``segs``, ``subjects`` and one shared ``affine``. Terms: the IXI images are
    under CC BY-SA 3.0; the processed copies and label maps are under the SBIA
    licence, whose Part B (``LICENSE-DATA.md`` beside the file) must travel with
    any copy; research use only, not for clinical use.

Neither file is part of this package: it reads them from where they are.
Label names are read from a FreeSurfer-style colour table (``ID Name R G B A``
lines, like ``seg24_labels.txt``) found beside the data: the smallest
``*labels*.txt`` whose ids cover every label value present.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from typing import Any

import pathlib

import numpy as np

from ..checks.affines import as_affines, check_isotropic
from .dataset import Dataset, present_values
from .readers import IMAGE_KEYS, LABEL_KEYS, npz_shape, pick_key, read_npz_array
from ..checks.arrays import as_images, as_labels, check_count, check_normalize

#: Arrays tried, in order, as the image names of an ``.npz`` file.
NAME_KEYS = ("subjects", "names")
#: Arrays tried, in order, as the affines of an ``.npz`` file: one (4, 4) or (N, 4, 4).
AFFINE_KEYS = ("affines", "affine")


def load_npz(path: str | os.PathLike[str], *, images_key: str | None = None, labels_key: str | None = "auto",
             normalize: str = "auto", label_names: dict[Any, str] | str | os.PathLike[str] | None = None,
             subset: int | None = None, allow_anisotropic: bool = False) -> Dataset:
    """Load a stack of 2D images or 3D volumes, their label maps and affines, from one ``.npz``.

    Parameters
    ----------
    path : str or path-like
        E.g. ``../shared/data/oasis2d/oasis2d_300.npz`` (300 OASIS slices with
        24-label ``segs``), ``../shared/data/ixi3d/ixi3d_150.npz`` (150 IXI
        volumes, 80×96×80, 2 mm) or the tutorial file ``2D-OASIS-TUTORIAL.npz``.
    images_key : str, optional
        Array holding the images ``(N, H, W)`` or ``(N, D, H, W)`` (a trailing
        axis of 1 is allowed); default the first of ``images, vols, vol,
        image, imgs`` present, or the only array.
    labels_key : str or None
        Array holding the label maps; ``"auto"`` takes the first of
        ``segs, labels, seg, label, segmentations`` present (none: no labels),
        None loads no labels. E.g. ``"segs4"`` for the 4-class OASIS maps.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy (see :mod:`hypermorph_nb.checks.arrays`); ``uint8``
        images (as in ixi3d) are divided by 255.
    label_names : dict or path-like, optional
        ``{value: name}`` or a colour table file; default a ``*labels*.txt``
        beside the file that covers the labels.
    subset : int, optional
        Load only the first ``subset`` images (read without decompressing
        the rest: a few ixi3d volumes load in a fraction of a second).
    allow_anisotropic : bool
        Accept an affine whose voxel sizes differ by more than 1% (refused
        by default; see :mod:`hypermorph_nb.checks.affines`).

    Returns
    -------
    Dataset
        Names from a ``subjects`` or ``names`` array, affines from an
        ``affine`` ``(4, 4)`` (shared by all) or ``affines`` ``(N, 4, 4)`` array,
        when present.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.npz"
    >>> np.savez(path, images=np.zeros((3, 16, 16), "float32"), segs=np.ones((3, 16, 16), "uint8"))
    >>> data = load_npz(path)
    >>> data.images.shape, data.labels.shape, data.labels.dtype, data.affine
    ((3, 16, 16, 1), (3, 16, 16), dtype('int32'), None)
    >>> np.savez(path, images=np.full((3, 8, 8, 8), 255, "uint8"), affine=np.diag([2.0, 2, 2, 1]))
    >>> volumes = load_npz(path, subset=2)
    >>> volumes.images.shape, float(volumes.images.max()), volumes.voxel_sizes[0].tolist()
    ((2, 8, 8, 8, 1), 1.0, [2.0, 2.0, 2.0])
    """
    check_normalize(normalize)
    count = None if subset is None else check_count(subset, "subset")
    path = existing_file(path, "load_npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"{path}: cannot be read as a NumPy .npz file ({error}); "
                         "check the file is complete and was written by np.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: is a single .npy array, not an .npz archive; "
                         "load a folder of .npy files with load_folder, or use "
                         "Dataset.from_arrays(np.load(path))")
    with archive:
        keys = list(archive.files)
        images_key = pick_key(path, keys, images_key, IMAGE_KEYS, "images_key", single_ok=True)
        shape = npz_shape(archive, images_key)
        total = shape[0] if shape else 0
        images = as_images(read_npz_array(archive, images_key, count),
                           name=f"{path}['{images_key}']", normalize=normalize)
        if labels_key == "auto":
            labels_key = next((key for key in LABEL_KEYS if key in keys), None)
        labels = None
        if labels_key is not None:
            labels_key = pick_key(path, keys, labels_key, (), "labels_key", single_ok=False)
            labels = as_labels(read_npz_array(archive, labels_key, count),
                               name=f"{path}['{labels_key}']", image_shape=images.shape[:-1])
        names = None
        for key in NAME_KEYS:
            if key in keys and archive[key].shape == (total,):
                names = [str(name) for name in archive[key][: len(images)]]
                break
        affines = _npz_affines(path, archive, keys, total, len(images), images.ndim - 2,
                               allow_anisotropic)
    return Dataset(
        images=images, labels=labels, names=names, affines=affines,
        label_names=resolve_label_names(label_names, labels, [path.parent]),
        source=str(path) if labels_key is None else f"{path} (labels: {labels_key})",
    )


def read_label_names(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read ``{value: name}`` from a FreeSurfer-style colour table (``ID Name R G B A``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
    >>> _ = table.write_text("#ID Name R G B A\\n0 Unknown 0 0 0 0\\n1 Cortex 205 62 78 0\\n")
    >>> read_label_names(table)
    {0: 'Unknown', 1: 'Cortex'}
    """
    names = {}
    for number, line in enumerate(pathlib.Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2 or not fields[0].isdigit():
            raise ValueError(f"{path}, line {number}: expected 'ID Name [R G B A]', got {line!r}")
        names[int(fields[0])] = fields[1]
    return names


def existing_file(path: str | os.PathLike[str], caller: str) -> pathlib.Path:
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{caller}: {path} does not exist; check the path (relative paths start at "
            f"{pathlib.Path.cwd()})")
    return path


def _npz_affines(path, archive, keys, total, count, ndim, allow_anisotropic):
    """The affines stored in an archive, ``(count, 4, 4)``, or None without any."""
    key = next((key for key in AFFINE_KEYS if key in keys), None)
    if key is None:
        return None
    name = f"{path}['{key}']"
    array = np.asarray(archive[key])
    if array.shape == (total, 4, 4):
        array = array[:count]
    elif array.shape != (4, 4):
        raise ValueError(f"{name}: expected one (4, 4) affine shared by all images or one per "
                         f"image ({total}, 4, 4), got shape {array.shape}; fix the array or "
                         "rename it if it is not an affine")
    affines = as_affines(array, count, name=name)
    for affine in np.unique(affines, axis=0):
        check_isotropic(affine, ndim, name=name, allow_anisotropic=allow_anisotropic)
    return affines


def resolve_label_names(given: dict[Any, str] | str | os.PathLike[str] | None, labels: np.ndarray | None,
                        folders: Sequence[pathlib.Path]) -> dict[int, str] | None:
    """``given`` names, or those of the smallest colour table in ``folders`` covering ``labels``."""
    if isinstance(given, dict):
        return {int(key): str(value) for key, value in given.items()}
    if given is not None:
        return read_label_names(given)
    tables = [table for folder in folders for table in sorted(folder.glob("*labels*.txt"))]
    if labels is None or not tables:
        return None
    values = set(present_values(labels, include_zero=True).tolist())
    best = None
    for table in tables:
        try:
            names = read_label_names(table)
        except (ValueError, OSError, UnicodeDecodeError):
            continue
        if values <= set(names) and (best is None or len(names) < len(best)):
            best = names
    return best
