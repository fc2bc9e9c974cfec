"""Load images (and label maps) from an ``.npz`` stack or from a folder of files.

Two folder layouts are understood by :func:`load_folder`:

OASIS (neurite-oasis 2D)
    One sub-folder per subject, ``OASIS_OAS1_xxxx_MR1/slice_norm.nii.gz``
    with ``slice_seg24.nii.gz`` (or ``slice_seg4.nii.gz``) beside it.
Your own files
    Image files directly in the folder, one 2D image each, as NIfTI
    (``.nii``, ``.nii.gz``, ``.mgz``), NumPy (``.npy``, ``.npz``) or PNG.
    A label map is paired with the image ``NAME.ext`` when it is named
    ``NAME_seg.<any of these extensions>`` beside it, or ``NAME.<ext>`` in a
    ``labels/`` sub-folder. Either every image has a label map or none does.

Label names are read from a FreeSurfer-style colour table (``ID Name R G B A``
lines, like ``seg24_labels.txt``) found beside the data: the smallest
``*labels*.txt`` whose ids cover every label value present.
"""

import pathlib

import nibabel
import numpy as np
from PIL import Image

from .dataset import Dataset
from .validation import as_images, as_labels, check_normalize

#: File name endings :func:`load_folder` reads, longest first.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mgz", ".npy", ".npz", ".png")
#: Arrays tried, in order, as the images of an ``.npz`` file.
IMAGE_KEYS = ("images", "vols", "vol", "image", "imgs")
#: Arrays tried, in order, as the label maps of an ``.npz`` file.
LABEL_KEYS = ("segs", "labels", "seg", "label", "segmentations")
#: Arrays tried, in order, as the image names of an ``.npz`` file.
NAME_KEYS = ("subjects", "names")
#: Label-map name suffix of the default pairing convention.
LABEL_SUFFIX = "_seg"
#: Image file of one neurite-oasis 2D subject folder.
OASIS_IMAGE = "slice_norm.nii.gz"
#: PNG modes read as they are (others are converted to grey for images).
GREY_MODES = ("L", "I", "I;16", "F", "1")


def load_npz(path, *, images_key=None, labels_key="auto", normalize="auto", label_names=None):
    """Load a stack of 2D images, and their label maps, from one ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        E.g. ``../shared/data/oasis2d/oasis2d_300.npz`` (300 OASIS slices with
        24-label ``segs``) or the tutorial file ``2D-OASIS-TUTORIAL.npz``.
    images_key : str, optional
        Array holding the images ``(N, H, W)`` or ``(N, H, W, 1)``; default
        the first of ``images, vols, vol, image, imgs`` present, or the only array.
    labels_key : str or None
        Array holding the label maps; ``"auto"`` takes the first of
        ``segs, labels, seg, label, segmentations`` present (none: no labels),
        None loads no labels. E.g. ``"segs4"`` for the 4-class OASIS maps.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy (see :mod:`hypermorph_nb.data.validation`).
    label_names : dict or path-like, optional
        ``{value: name}`` or a colour table file; default a ``*labels*.txt``
        beside the file that covers the labels.

    Returns
    -------
    Dataset
        Names from a ``subjects`` or ``names`` array when present.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.npz"
    >>> np.savez(path, images=np.zeros((3, 16, 16), "float32"), segs=np.ones((3, 16, 16), "uint8"))
    >>> data = load_npz(path)
    >>> data.images.shape, data.labels.shape, data.labels.dtype
    ((3, 16, 16, 1), (3, 16, 16), dtype('int32'))
    """
    check_normalize(normalize)
    path = _existing(path, "load_npz")
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
        images_key = _pick_key(path, keys, images_key, IMAGE_KEYS, "images_key", single_ok=True)
        images = as_images(archive[images_key], name=f"{path}['{images_key}']", normalize=normalize)
        if labels_key == "auto":
            labels_key = next((key for key in LABEL_KEYS if key in keys), None)
        labels = None
        if labels_key is not None:
            labels_key = _pick_key(path, keys, labels_key, (), "labels_key", single_ok=False)
            labels = as_labels(archive[labels_key], name=f"{path}['{labels_key}']",
                               image_shape=images.shape[:-1])
        names = None
        for key in NAME_KEYS:
            if key in keys and archive[key].shape == (len(images),):
                names = [str(name) for name in archive[key]]
                break
    return Dataset(
        images=images, labels=labels, names=names,
        label_names=_label_names(label_names, labels, [path.parent]),
        source=str(path) if labels_key is None else f"{path} (labels: {labels_key})",
    )


def load_folder(path, *, labels="auto", normalize="auto", label_names=None):
    """Load 2D images (and label maps) from a folder: the OASIS layout or your own files.

    Parameters
    ----------
    path : str or path-like
        The folder (see the module documentation for both layouts).
    labels : str or None
        ``"auto"``: OASIS ``slice_seg24``, or for your own files the pairing
        convention ``NAME_seg.*`` / ``labels/NAME.*``. OASIS: ``"seg4"``
        (or any ``X`` of ``slice_X.nii.gz``) picks other maps. Own files: a
        string is the label-name suffix instead of ``_seg`` (e.g. ``"_mask"``).
        None loads no labels.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, applied per file (see
        :mod:`hypermorph_nb.data.validation`).
    label_names : dict or path-like, optional
        ``{value: name}`` or a colour table file; default a ``*labels*.txt``
        in the folder (or its parent) that covers the labels.

    Returns
    -------
    Dataset
        Images sorted by file (or subject folder) name; ``names`` are the
        file stems (or subject ids).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     np.save(folder / f"{name}.npy", np.zeros((16, 16), "float32"))
    ...     np.save(folder / f"{name}_seg.npy", np.ones((16, 16), "uint8"))
    >>> data = load_folder(folder)
    >>> data.names, data.labels.shape
    (['a', 'b'], (2, 16, 16))
    """
    check_normalize(normalize)
    folder = _existing(path, "load_folder")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, not a folder; load an .npz stack with "
                                 "load_npz, or give the folder that holds the image files")
    subjects = sorted(p for p in folder.iterdir() if (p / OASIS_IMAGE).is_file())
    if subjects:
        entries = _oasis_entries(subjects, labels)
        layout = "OASIS"
    else:
        entries = _own_entries(folder, labels)
        layout = "files"
    if not entries:
        found = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, and for "
            f"OASIS subject folders holding {OASIS_IMAGE}); it holds {len(found)} other entries"
            f"{': ' + ', '.join(found[:5]) if found else ''}. Point load_folder at the folder "
            "with the images, or start from synthetic(64, (64, 64), seed=0)")
    images, label_maps = [], []
    for name, image_file, label_file in entries:
        images.append(as_images(_read_2d(image_file, role="image")[None], name=str(image_file),
                                normalize=normalize)[0])
        if label_file is not None:
            label_maps.append(as_labels(_read_2d(label_file, role="label map")[None],
                                        name=str(label_file), image_shape=(1, *images[-1].shape[:-1]))[0])
    _check_same_shape(folder, [entry[1] for entry in entries], [image.shape[:-1] for image in images])
    labels_array = np.stack(label_maps) if label_maps else None
    return Dataset(
        images=np.stack(images), labels=labels_array, names=[entry[0] for entry in entries],
        label_names=_label_names(label_names, labels_array, [folder, folder.parent]),
        source=f"{folder} ({layout}{'' if labels_array is None else ', with labels'})",
    )


def read_label_names(path):
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


def _existing(path, caller):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{caller}: {path} does not exist; check the path (relative paths start at "
            f"{pathlib.Path.cwd()})")
    return path


def _pick_key(path, keys, wanted, defaults, argument, *, single_ok):
    """The array name to read: ``wanted`` if given, else the first default present."""
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


def _oasis_entries(subjects, labels):
    seg = "seg24" if labels == "auto" else labels
    entries = []
    for subject in subjects:
        label_file = None
        if seg is not None:
            label_file = subject / f"slice_{seg}.nii.gz"
            if not label_file.is_file():
                raise FileNotFoundError(
                    f"{label_file}: missing; every OASIS subject folder needs slice_{seg}.nii.gz "
                    "beside slice_norm.nii.gz; pass labels=None to load the images only, or "
                    "labels='seg4' for the 4-class maps")
        entries.append((subject.name, subject / OASIS_IMAGE, label_file))
    return entries


def _own_entries(folder, labels):
    suffix = LABEL_SUFFIX if labels in ("auto", None) else labels
    files = _files_by_stem(folder)
    label_folder = folder / "labels"
    label_files = _files_by_stem(label_folder) if label_folder.is_dir() else {}
    entries = []
    for stem, path in files.items():
        if stem.endswith(suffix) and stem[: -len(suffix)] in files:
            continue
        label_file = None if labels is None else files.get(stem + suffix, label_files.get(stem))
        entries.append((stem, path, label_file))
    with_labels = [entry for entry in entries if entry[2] is not None]
    if with_labels and len(with_labels) != len(entries):
        missing = [entry[1].name for entry in entries if entry[2] is None]
        raise FileNotFoundError(
            f"{folder}: {len(with_labels)} images have label maps but {len(missing)} do not "
            f"({', '.join(missing[:5])}); give every image a label map NAME{suffix}.* or "
            "labels/NAME.*, or pass labels=None to load the images without labels")
    return entries


def _files_by_stem(folder):
    """``{stem: path}`` of the readable files in ``folder``; one file per stem."""
    files = {}
    for path in sorted(folder.iterdir()):
        stem, extension = _split_suffix(path)
        if not path.is_file() or extension is None:
            continue
        if stem in files:
            raise ValueError(f"{folder}: two files for {stem!r} ({files[stem].name} and "
                             f"{path.name}); keep one file per image name")
        files[stem] = path
    return files


def _split_suffix(path):
    name = path.name
    for extension in IMAGE_SUFFIXES:
        if name.lower().endswith(extension):
            return name[: -len(extension)], extension
    return name, None


def _read_2d(path, *, role):
    """The 2D array stored in one file (a trailing axis of length 1 is dropped)."""
    _, extension = _split_suffix(path)
    try:
        if extension in (".nii.gz", ".nii", ".mgz"):
            array = np.asanyarray(nibabel.load(str(path)).dataobj)
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
    if extension == ".npz":
        defaults = IMAGE_KEYS if role == "image" else LABEL_KEYS
        array = arrays[_pick_key(path, list(arrays), None, defaults, "a single array",
                                 single_ok=True)]
    elif extension == ".png":
        if role == "image" and mode not in GREY_MODES:
            picture = picture.convert("L")
        elif role == "label map" and mode not in GREY_MODES + ("P",):
            raise ValueError(f"{path}: a label map must be a single-channel PNG (grey or "
                             f"palette), got mode {mode}; save one integer per pixel")
        array = np.array(picture)
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(
            f"{path}: holds an array of shape {array.shape}, but each file must hold one 2D "
            f"{role}; save a single slice (e.g. volume[:, :, k]) per file, or stack slices "
            "into an .npz and use load_npz")
    return array


def _check_same_shape(folder, files, shapes):
    distinct = sorted(set(shapes))
    if len(distinct) > 1:
        examples = [f"{shape} in {files[shapes.index(shape)].name}" for shape in distinct[:4]]
        raise ValueError(f"{folder}: images have different shapes: {', '.join(examples)}; "
                         "resample or crop them to one shape (H, W) before loading")


def _label_names(given, labels, folders):
    """``given`` names, or those of the smallest colour table in ``folders`` covering ``labels``."""
    if isinstance(given, dict):
        return {int(key): str(value) for key, value in given.items()}
    if given is not None:
        return read_label_names(given)
    if labels is None:
        return None
    values = set(np.unique(labels).tolist())
    best = None
    for folder in folders:
        for table in sorted(folder.glob("*labels*.txt")):
            try:
                names = read_label_names(table)
            except (ValueError, OSError, UnicodeDecodeError):
                continue
            if values <= set(names) and (best is None or len(names) < len(best)):
                best = names
    return best
