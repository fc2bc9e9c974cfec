"""Load 2D images or 3D volumes (with label maps and affines) from a folder of files.

Two folder layouts are understood by :func:`load_folder`:

OASIS (neurite-oasis)
    One sub-folder per subject, ``OASIS_OAS1_xxxx_MR1/``, holding the 2D slice
    ``slice_norm.nii.gz`` with ``slice_seg24.nii.gz`` (or ``slice_seg4.nii.gz``),
    and/or the 3D volume ``aligned_norm.nii.gz`` with ``aligned_seg35.nii.gz``
    (or ``aligned_seg4.nii.gz``). Terms: the OASIS Data Use Agreement
    (oasis-brains.org); cite Marcus et al., J Cogn Neurosci 19:1498-1507, 2007
    (OASIS) and Hoopes et al., IPMI 2021 (HyperMorph; the neurite-oasis release).
Your own files
    Image files directly in the folder, one 2D image or 3D volume each, as
    NIfTI (``.nii``, ``.nii.gz``), FreeSurfer ``.mgz``, NumPy (``.npy``,
    ``.npz``) or PNG. A label map is paired with the image ``NAME.ext`` when it
    is named ``NAME_seg.<any of these extensions>`` beside it, or
    ``NAME.<ext>`` in a ``labels/`` sub-folder. Either every image has a label
    map or none does.

NIfTI and MGZ files keep their affines: the Dataset has ``affines`` when every
image file carries one (NumPy and PNG files carry none, then ``affines`` is
None). Refused, each with the file and the fix: 4D files, a folder mixing 2D and
3D files, images of different shapes, orientations or voxel sizes, images of
one shape whose affines put the head in different places (centres more than
:data:`~hypermorph_nb.checks.affines.POSITION_TOLERANCE` voxel apart, or axes
rotated by more than :data:`~hypermorph_nb.checks.affines.ROTATION_TOLERANCE`
degrees), anisotropic voxels (unless ``allow_anisotropic=True``), and label maps
whose shape or affine differs from their image's. Scans as a scanner writes them
fail these checks; :func:`hypermorph_nb.prepare_scans` (``hypermorph-nb
prepare``) puts them on one grid and aligns them, and every such error says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..checks.affines import (POSITION_TOLERANCE, ROTATION_TOLERANCE, check_isotropic, grid_offset,
                               orientation, same_grid, voxel_sizes)
from .dataset import Dataset
from .files import existing_file, resolve_label_names
from .readers import IMAGE_SUFFIXES, read_file, split_suffix
from ..checks.arrays import as_images, as_labels, check_normalize

#: Label-map name suffix of the default pairing convention.
LABEL_SUFFIX = "_seg"
#: neurite-oasis subject files per dimension: (image, label-map pattern, default labels).
OASIS_LAYOUTS = {2: ("slice_norm.nii.gz", "slice_{}.nii.gz", "seg24"),
                 3: ("aligned_norm.nii.gz", "aligned_{}.nii.gz", "seg35")}
#: The fix that every refusal of scans not on one grid names.
PREPARE_HINT = ("hypermorph_nb.prepare_scans('{folder}', out_dir) (on the command line "
                "'hypermorph-nb prepare') reorients, resamples and affinely aligns scans of any "
                "shape, voxel size, orientation and position onto one grid; then load_folder(out_dir)")


def load_folder(path: str | os.PathLike[str], *, labels: str | None = "auto", normalize: str = "auto",
                label_names: dict[Any, str] | str | os.PathLike[str] | None = None, ndim: int | None = None,
                allow_anisotropic: bool = False) -> Dataset:
    """Load 2D images or 3D volumes (and label maps) from a folder: the OASIS layout or your own files.

    Parameters
    ----------
    path : str or path-like
        The folder (see the module documentation for both layouts).
    labels : str or None
        ``"auto"``: OASIS ``slice_seg24`` (2D) or ``aligned_seg35`` (3D), or for
        your own files the pairing convention ``NAME_seg.*`` / ``labels/NAME.*``.
        OASIS: ``"seg4"`` (or any ``X`` of ``slice_X.nii.gz`` /
        ``aligned_X.nii.gz``) picks other maps. Own files: a string is the
        label-name suffix instead of ``_seg`` (e.g. ``"_mask"``). None loads no labels.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, applied per file (see
        :mod:`hypermorph_nb.checks.arrays`).
    label_names : dict or path-like, optional
        ``{value: name}`` or a colour table file; default a ``*labels*.txt``
        in the folder (or its parent) that covers the labels.
    ndim : {None, 2, 3}
        Expect 2D images or 3D volumes; needed for an OASIS folder holding
        both ``slice_norm`` and ``aligned_norm`` files. Default: what the files hold.
    allow_anisotropic : bool
        Load voxels whose sizes differ by more than 1% as they are (refused by
        default: resample them to isotropic voxels first).

    Returns
    -------
    Dataset
        Images sorted by file (or subject folder) name; ``names`` are the
        file stems (or subject ids); ``affines`` from the NIfTI/MGZ headers.

    Examples
    --------
    >>> import nibabel, numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     np.save(folder / f"{name}.npy", np.zeros((16, 16), "float32"))
    ...     np.save(folder / f"{name}_seg.npy", np.ones((16, 16), "uint8"))
    >>> data = load_folder(folder)
    >>> data.names, data.labels.shape, data.affines
    (['a', 'b'], (2, 16, 16), None)
    >>> volumes = pathlib.Path(tempfile.mkdtemp())
    >>> nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), "float32"), np.diag([2.0, 2, 2, 1])),
    ...              volumes / "scan.nii.gz")
    >>> data = load_folder(volumes)
    >>> data.images.shape, data.ndim, data.affine[0, 0]
    ((1, 8, 8, 8, 1), 3, np.float64(2.0))
    """
    check_normalize(normalize)
    if ndim not in (None, 2, 3):
        raise ValueError(f"ndim must be None, 2 or 3, got {ndim!r}")
    folder = existing_file(path, "load_folder")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, not a folder; load an .npz stack with "
                                 "load_npz, or give the folder that holds the image files")
    entries, layout = _oasis_entries(folder, labels, ndim), "OASIS"
    if not entries:
        entries, layout = own_entries(folder, labels), "files"
    if not entries:
        found = sorted(p.name for p in folder.iterdir())
        oasis = " or ".join(layout[0] for layout in OASIS_LAYOUTS.values())
        raise FileNotFoundError(
            f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, and for "
            f"OASIS subject folders holding {oasis}); it holds {len(found)} other entries"
            f"{': ' + ', '.join(found[:5]) if found else ''}. Point load_folder at the folder "
            "with the images, or start from synthetic(64, (64, 64), seed=0)")
    images: np.ndarray | None = None
    label_maps: np.ndarray | None = None
    first: tuple[Path, tuple[int, ...]] | None = None
    file_affines: list[np.ndarray | None] = []
    for index, (_, image_file, label_file) in enumerate(entries):
        array, affine = read_file(image_file, role="image")
        if first is None:
            first = (image_file, array.shape)
            _check_ndim(image_file, array.shape, ndim)
            images = np.empty((len(entries), *array.shape, 1), np.float32)
            label_maps = None if label_file is None else np.empty((len(entries), *array.shape), np.int32)
        assert images is not None  # made for the first entry
        _check_like_first(folder, first, image_file, array.shape)
        try:
            check_isotropic(affine, array.ndim, name=str(image_file), allow_anisotropic=allow_anisotropic)
        except ValueError as error:
            raise ValueError(f"{error}; or prepare the folder: {PREPARE_HINT.format(folder=folder)}") from None
        images[index] = as_images(array[None], name=str(image_file), normalize=normalize)[0]
        if label_file is not None:
            assert label_maps is not None  # made for the first entry, which has a label file too
            label_maps[index] = read_labels(label_file, image_file, array.shape, affine)
        file_affines.append(affine)
    affines = None if any(affine is None for affine in file_affines) else np.stack(
        cast("list[np.ndarray]", file_affines))
    assert images is not None  # entries is not empty
    if affines is not None:
        _check_same_geometry(folder, [entry[1] for entry in entries], affines, images.shape[1:-1])
    return Dataset(
        images=images, labels=label_maps, names=[entry[0] for entry in entries], affines=affines,
        label_names=resolve_label_names(label_names, label_maps, [folder, folder.parent]),
        source=f"{folder} ({layout}{'' if label_maps is None else ', with labels'})",
    )


def _oasis_entries(folder, labels, ndim):
    """``(name, image, label map)`` of each neurite-oasis subject folder; [] for another layout."""
    found, skipped = {}, None
    for dims, (image, _, _) in OASIS_LAYOUTS.items():
        subjects = sorted(p for p in folder.iterdir() if (p / image).is_file())
        if subjects and ndim in (None, dims):
            found[dims] = subjects
        elif subjects:
            skipped = dims
    if len(found) > 1:
        raise ValueError(
            f"{folder}: the OASIS subject folders hold both 2D slices ({OASIS_LAYOUTS[2][0]}) and "
            f"3D volumes ({OASIS_LAYOUTS[3][0]}); pass ndim=2 for the slices or ndim=3 for the "
            "volumes")
    if not found and skipped is not None:
        raise ValueError(
            f"{folder}: the OASIS subject folders hold {skipped}D files "
            f"({OASIS_LAYOUTS[skipped][0]}), but ndim={ndim} was asked; pass ndim={skipped} "
            "(or None)")
    if not found:
        return []
    dims, subjects = next(iter(found.items()))
    image, pattern, default = OASIS_LAYOUTS[dims]
    seg = default if labels == "auto" else labels
    entries = []
    for subject in subjects:
        label_file = None
        if seg is not None:
            label_file = subject / pattern.format(seg)
            if not label_file.is_file():
                raise FileNotFoundError(
                    f"{label_file}: missing; every OASIS subject folder needs {label_file.name} "
                    f"beside {image}; pass labels=None to load the images only, or "
                    "labels='seg4' for the 4-class maps")
        entries.append((subject.name, subject / image, label_file))
    return entries


def own_entries(folder: Path, labels: str | None = "auto", *, subfolder: str = "labels",
                require_all: bool = True) -> list[tuple[str, Path, Path | None]]:
    """``(name, image file, label file or None)`` of the image files in ``folder``, sorted by name.

    The label map of ``NAME.ext`` is ``NAME<suffix>.*`` beside it or ``<subfolder>/NAME.*``
    (``labels`` is ``"auto"`` for the suffix ``_seg``, another suffix, or None for none).
    With ``require_all`` every image needs one or none may have one.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a.npy", "a_seg.npy", "b.npy"):
    ...     np.save(folder / name, np.zeros((4, 4)))
    >>> [(name, label is not None) for name, _, label in own_entries(folder, require_all=False)]
    [('a', True), ('b', False)]
    """
    suffix = LABEL_SUFFIX if labels in ("auto", None) else labels
    files = _files_by_stem(folder)
    label_folder = folder / subfolder
    label_files = _files_by_stem(label_folder) if label_folder.is_dir() else {}
    entries = []
    for stem, path in files.items():
        if stem.endswith(suffix) and stem[: -len(suffix)] in files:
            continue
        label_file = None if labels is None else files.get(stem + suffix, label_files.get(stem))
        entries.append((stem, path, label_file))
    with_labels = [entry for entry in entries if entry[2] is not None]
    if require_all and with_labels and len(with_labels) != len(entries):
        missing = [entry[1].name for entry in entries if entry[2] is None]
        raise FileNotFoundError(
            f"{folder}: {len(with_labels)} images have label maps but {len(missing)} do not "
            f"({', '.join(missing[:5])}); give every image a label map NAME{suffix}.* or "
            "labels/NAME.*, or pass labels=None to load the images without labels")
    return entries


def _files_by_stem(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the readable files in ``folder``; one file per stem."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        stem, extension = split_suffix(path)
        if not path.is_file() or extension is None:
            continue
        if stem in files:
            raise ValueError(f"{folder}: two files for {stem!r} ({files[stem].name} and "
                             f"{path.name}); keep one file per image name")
        files[stem] = path
    return files


def _check_ndim(path, shape, ndim):
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{path}: holds a {len(shape)}D image of shape {shape}, but ndim={ndim} "
                         f"was asked; pass ndim={len(shape)} (or None), or point load_folder at "
                         f"a folder of {ndim}D files")


def _check_like_first(folder, first, path, shape):
    """Refuse a file whose dimensions or shape differ from the folder's first image."""
    first_file, first_shape = first
    if len(shape) != len(first_shape):
        two, three = ((first_file, first_shape), (path, shape))[:: 1 if len(first_shape) == 2 else -1]
        raise ValueError(
            f"{folder}: mixes 2D images and 3D volumes ({two[0].name} is 2D {two[1]}, "
            f"{three[0].name} is 3D {three[1]}); keep one kind per folder: move the 2D slices "
            "or the 3D volumes into a folder of their own")
    if shape != first_shape:
        raise ValueError(
            f"{folder}: images have different shapes: {first_shape} in {first_file.name}, "
            f"{shape} in {path.name}; prepare them: {PREPARE_HINT.format(folder=folder)}; or "
            "resample or crop them to one shape yourself (e.g. nibabel.processing.conform, or "
            "FreeSurfer's mri_convert --conform)")


def read_labels(label_file: Path, image_file: Path, shape: tuple[int, ...],
                image_affine: np.ndarray | None) -> np.ndarray:
    """The label map of one image, checked against the image's shape and affine."""
    array, affine = read_file(label_file, role="label map")
    labels = as_labels(array[None], name=str(label_file), image_shape=(1, *shape))[0]
    if image_affine is not None and affine is not None and not same_grid(image_affine, affine):
        raise ValueError(
            f"{label_file}: its affine differs from that of {image_file.name}, so the label map "
            f"is not on the image's grid (voxel sizes {_sizes(affine, len(shape))} vs "
            f"{_sizes(image_affine, len(shape))} mm, origin {np.round(affine[:3, 3], 2).tolist()} "
            f"vs {np.round(image_affine[:3, 3], 2).tolist()}); resample it onto the image with "
            "nearest neighbour, e.g. nibabel.processing.resample_from_to(seg, image, order=0) or "
            "FreeSurfer's mri_convert -rl IMAGE -rt nearest SEG OUT")
    return labels


def _check_same_geometry(folder, files, affines, shape):
    """Refuse a folder whose images differ in orientation, voxel size, position or rotation."""
    ndim = len(shape)
    prepare = PREPARE_HINT.format(folder=folder)
    codes = [orientation(affine, ndim) for affine in affines]
    if len(set(codes)) > 1:
        other = next(i for i, code in enumerate(codes) if code != codes[0])
        raise ValueError(
            f"{folder}: images are stored in different orientations ({codes[0]} in "
            f"{files[0].name}, {codes[other]} in {files[other].name}); prepare them: {prepare}; "
            "or reorient them to one yourself, e.g. nibabel.as_closest_canonical(img) (RAS), "
            "FreeSurfer's mri_convert --out_orientation RAS, or FSL's fslreorient2std")
    sizes = voxel_sizes(affines, ndim)
    far = np.abs(sizes / sizes[0] - 1).max(axis=1) > 0.01
    if far.any():
        other = int(np.flatnonzero(far)[0])
        raise ValueError(
            f"{folder}: images have different voxel sizes ({_sizes(affines[0], ndim)} mm in "
            f"{files[0].name}, {_sizes(affines[other], ndim)} mm in {files[other].name}); "
            f"prepare them: {prepare}; or resample them to one voxel size yourself (e.g. "
            "nibabel.processing.conform or FreeSurfer's mri_convert -vs)")
    voxel = float(voxel_sizes(affines[0], ndim).min())
    for index in range(1, len(affines)):
        shift, rotation = grid_offset(affines[0], affines[index], shape)
        if shift > POSITION_TOLERANCE * voxel or rotation > ROTATION_TOLERANCE:
            raise ValueError(
                f"{folder}: {files[index].name} and {files[0].name} have the same grid shape but "
                f"their affines put the head {shift:.1f} mm and {rotation:.1f} degrees apart (the "
                f"centres of the grids, the rotation of their axes; up to {POSITION_TOLERANCE:g} "
                f"voxel and {ROTATION_TOLERANCE:g} degrees pass), so the same voxel is not the "
                "same place in both scans and a registration model would be asked to undo the "
                f"head's movement; align them first: {prepare}")


def _sizes(affine, ndim):
    return " x ".join(f"{size:.3g}" for size in voxel_sizes(affine, ndim))
