"""Read one image or label file (NIfTI, MGZ, NumPy, PNG) with its affine, and arrays of an ``.npz``.

NIfTI (``.nii``, ``.nii.gz``) and FreeSurfer MGZ files are read with nibabel and
keep their voxel-to-world affine; NumPy and PNG files have none. Trailing axes of
length 1 are dropped (a 2D NIfTI slice is stored as ``(H, W, 1)``), so a file
holds a 2D image or a 3D volume; 4D files (time series, several volumes or
channels) are refused with the way to split them.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
from typing import Any, cast

from nibabel.spatialimages import SpatialImage
import nibabel
import numpy as np
from PIL import Image

from ..checks.affines import as_affines

#: File name endings :func:`read_file` reads, longest first.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mgz", ".npy", ".npz", ".png")
#: Endings read with nibabel, which carry an affine.
NIBABEL_SUFFIXES = (".nii.gz", ".nii", ".mgz")
#: Arrays tried, in order, as the images of an ``.npz`` file.
IMAGE_KEYS = ("images", "vols", "vol", "image", "imgs")
#: Arrays tried, in order, as the label maps of an ``.npz`` file.
LABEL_KEYS = ("segs", "labels", "seg", "label", "segmentations")
#: PNG modes read as they are (others are converted to grey for images).
GREY_MODES = ("L", "I", "I;16", "F", "1")


def read_file(path: Path, *, role: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The 2D or 3D array stored in one file, and its affine (None without one).

    Parameters
    ----------
    path : Path
    role : {'image', 'label map'}
        What the file should hold, quoted in errors.

    Returns
    -------
    array : np.ndarray
        ``(H, W)`` or ``(D, H, W)``.
    affine : np.ndarray or None
        ``(4, 4)`` float64 for NIfTI and MGZ files.

    Examples
    --------
    >>> import nibabel, numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.nii.gz"
    >>> nibabel.save(nibabel.Nifti1Image(np.zeros((8, 6, 4, 1), "float32"), np.diag([2.0, 2, 2, 1])), path)
    >>> array, affine = read_file(path, role="image")
    >>> array.shape, affine[0, 0]
    ((8, 6, 4), np.float64(2.0))
    """
    _, extension = split_suffix(path)
    affine = None
    try:
        if extension in NIBABEL_SUFFIXES:
            image = cast(SpatialImage, nibabel.load(str(path)))
            array = np.asanyarray(image.dataobj)
            affine = image.affine
        elif extension == ".npy":
            array = np.load(path, allow_pickle=False)
        elif extension == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        else:
            with Image.open(path) as picture:
                picture.load()
            mode = picture.mode
    except Exception as error:
        article = "an" if role == "image" else "a"
        raise ValueError(f"{path}: cannot be read as {article} {role} "
                         f"({type(error).__name__}: {error}); check the file is complete") from None
    if affine is not None:   # outside the try: a broken header is reported as such
        affine = as_affines(affine, 1, name=str(path))[0]
    if extension == ".npz":
        defaults = IMAGE_KEYS if role == "image" else LABEL_KEYS
        array = arrays[pick_key(path, list(arrays), None, defaults, "a single array", single_ok=True)]
    elif extension == ".png":
        if role == "image" and mode not in GREY_MODES:
            picture = picture.convert("L")
        elif role == "label map" and mode not in GREY_MODES + ("P",):
            raise ValueError(f"{path}: a label map must be a single-channel PNG (grey or "
                             f"palette), got mode {mode}; save one integer per pixel")
        array = np.array(picture)
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim > 3:
        raise ValueError(
            f"{path}: holds a {array.ndim}D array of shape {array.shape} (a time series, or "
            f"several volumes or channels), but each file must hold one 2D or 3D {role}; split "
            "it into one file per volume (nibabel.funcs.four_to_three, FSL's fslsplit) or keep "
            "one, e.g. nibabel.load(path).slicer[..., 0]")
    if array.ndim < 2:
        raise ValueError(f"{path}: holds an array of shape {array.shape}, but each file must "
                         f"hold one 2D or 3D {role}; save the image with its spatial axes")
    return array, affine


def split_suffix(path: Path) -> tuple[str, str | None]:
    """``(stem, extension)`` of a file name, extension None when not readable.

    Examples
    --------
    >>> import pathlib
    >>> split_suffix(pathlib.Path("OAS1_0001.nii.gz"))
    ('OAS1_0001', '.nii.gz')
    """
    name = path.name
    for extension in IMAGE_SUFFIXES:
        if name.lower().endswith(extension):
            return name[: -len(extension)], extension
    return name, None


def pick_key(path: str | os.PathLike[str], keys: Sequence[str], wanted: str | None, defaults: Sequence[str],
             argument: str, *, single_ok: bool) -> str:
    """The array name to read: ``wanted`` if given, else the first default present.

    Examples
    --------
    >>> pick_key("stack.npz", ["subjects", "vols"], None, IMAGE_KEYS, "images_key", single_ok=True)
    'vols'
    """
    if wanted is not None:
        if wanted not in keys:
            raise KeyError(f"{path}: has no array {wanted!r}; it holds {keys}; "
                           f"pass {argument}= one of those")
        return wanted
    found = next((key for key in defaults if key in keys), None)
    if found is None and single_ok and len(keys) == 1:
        found = keys[0]
    if found is None:
        raise KeyError(f"{path}: found none of the arrays {list(defaults)}; it holds {keys}; "
                       f"pass {argument}= the one to use")
    return found


def npz_shape(archive: Any, key: str) -> tuple[int, ...]:
    """Shape of one array of an open ``np.load`` archive, read from its header only.

    Examples
    --------
    >>> import io
    >>> buffer = io.BytesIO()
    >>> np.savez(buffer, vols=np.zeros((5, 4, 3, 2)))
    >>> npz_shape(np.load(io.BytesIO(buffer.getvalue())), "vols")
    (5, 4, 3, 2)
    """
    with archive.zip.open(_member(archive, key)) as stream:
        header = _header(stream)
    return archive[key].shape if header is None else header[0]


def read_npz_array(archive: Any, key: str, count: int | None = None) -> np.ndarray:
    """Array ``key`` of an open ``np.load`` archive, or only its first ``count`` items.

    Reading the first items stops decompressing there, so a few volumes of a
    large stack load in a fraction of the time of the whole array.

    Examples
    --------
    >>> import io
    >>> buffer = io.BytesIO()
    >>> np.savez_compressed(buffer, vols=np.arange(24).reshape(4, 3, 2))
    >>> read_npz_array(np.load(io.BytesIO(buffer.getvalue())), "vols", 2).tolist()
    [[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9], [10, 11]]]
    """
    if count is None:
        return archive[key]
    with archive.zip.open(_member(archive, key)) as stream:
        header = _header(stream)
        if header is None or header[1] or header[2].hasobject or not header[0]:
            return archive[key][:count]
        shape, _, dtype = header
        count = min(int(count), shape[0])
        size = count * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        return np.frombuffer(stream.read(size), dtype=dtype).reshape((count, *shape[1:])).copy()


def _member(archive, key):
    """Name of array ``key`` in the zip file: ``key.npy`` as np.savez writes, or ``key`` itself."""
    return f"{key}.npy" if f"{key}.npy" in archive.zip.namelist() else key


def _header(stream):
    """``(shape, fortran_order, dtype)`` of an ``.npy`` stream, None for an unknown version."""
    version = np.lib.format.read_magic(stream)
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    return None if reader is None else reader(stream)
