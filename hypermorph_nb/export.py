"""Write one registration to disk as NIfTI files that viewers and nibabel read.

:func:`export_registration` registers a moving image to a fixed one at a chosen
λ and writes, into one folder, every file carrying the fixed image's affine:

``moved.nii.gz``
    The moving image warped onto the fixed grid (linear interpolation), float32,
    in the moving image's own intensity units.
``moved_labels.nii.gz``
    The moving label map warped the same way by nearest neighbour (only when
    ``moving_labels`` is given), int32.
``flow.nii.gz``
    The displacement field, float32, shape ``(*spatial, components)``.
``jacobian.nii.gz``
    The Jacobian determinant of ``x -> x + u(x)`` (≤ 0 where the field folds).
``registration.json``
    λ, the model, the field convention, what was done to the input, the files.

**Field convention.** With ``units='voxel'`` (default) ``u`` is in voxels of
the fixed grid, component ``i`` along array axis ``i`` (the NIfTI ``(i, j, k)``
order), and it points from the fixed grid into the moving image:
``moved[x] = moving(x + u[x])`` for every fixed voxel ``x`` (the moving image
sampled there, after resampling onto the fixed grid if it was asked). With
``units='mm'`` the same displacement is given in mm along the world axes of
the affine (RAS, as NIfTI): ``d[x] = affine[:3, :ndim] @ u[x]``, three
components also for 2D images; ITK/ANTs expect LPS: negate ``d``'s first two
components there. The Jacobian determinant is the same in both units.

Each file is written to a temporary name in the output folder and renamed into
place only when all of them are complete (``registration.json`` last), so an
interrupted export leaves no half-written file.
"""

import json
import os
import pathlib
import tempfile
import warnings

import nibabel
import numpy as np

from .data.affines import same_grid
from .data.readers import read_file
from .data.validation import as_labels
from .grids import check_affine, match_grid
from .inputs import check_model_shape, prepare_pair, spatial_image
from .metrics import jacobian_determinant
from .models import spec_of
from .registration import Registrar

UNITS = ("voxel", "mm")
SIDECAR = "registration.json"


def export_registration(model, moving, fixed, out_dir, *, lam=None, moving_labels=None, affine=None,
                        moving_affine=None, resample=False, normalize="auto", units="voxel"):
    """Register ``moving`` to ``fixed`` and write the result as NIfTI files.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model (then ``lam`` is required) or a baseline.
    moving, fixed : np.ndarray or path
        Arrays of the model's shape, or image files read as the data loaders
        read them (:func:`hypermorph_nb.data.readers.read_file`): NIfTI/MGZ
        files bring their affines; ``.npy`` and ``.png`` files have none.
    out_dir : path
        Output folder (created if needed); files of the same names are replaced.
    lam : float, optional
        λ in [0, 1] for a HyperMorph model.
    moving_labels : np.ndarray or path, optional
        The moving image's label map (on the moving image's grid), warped by
        nearest neighbour.
    affine : array_like, optional
        The fixed grid's 4×4 voxel → world affine when ``fixed`` is an array
        (default: the identity, 1 mm voxels).
    moving_affine : array_like, optional
        The moving image's affine when ``moving`` is an array.
    resample : bool
        When both affines are known and the grids differ, resample the moving
        image (and label map) onto the fixed grid instead of refusing.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, as in :func:`hypermorph_nb.register`.
    units : {'voxel', 'mm'}
        Units and axes of ``flow.nii.gz`` (see the module documentation).

    Returns
    -------
    dict of str to str
        ``{'moved', 'flow', 'jacobian', 'sidecar'}`` (and ``'moved_labels'``)
        -> the path written.

    Examples
    --------
    >>> import tempfile, numpy as np, nibabel, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> image = np.random.default_rng(0).random((32, 32), dtype="float32")
    >>> paths = hnb.export_registration(model, image, image, tempfile.mkdtemp(), lam=0.5)
    >>> sorted(paths), nibabel.load(paths["flow"]).shape
    (['flow', 'jacobian', 'moved', 'sidecar'], (32, 32, 2))
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    spec = spec_of(model)
    moving, moving_file_affine, moving_name = read_input(moving, "moving image")
    fixed, fixed_file_affine, fixed_name = read_input(fixed, "fixed image")
    if fixed_file_affine is not None and affine is not None:
        raise ValueError(f"{fixed_name} carries its own affine; pass affine= only with an array "
                         "as the fixed image")
    if moving_file_affine is not None and moving_affine is not None:
        raise ValueError(f"{moving_name} carries its own affine; pass moving_affine= only with an "
                         "array as the moving image")
    if affine is not None:
        fixed_file_affine = check_affine(affine, fixed_name)
    if moving_affine is not None:
        moving_file_affine = check_affine(moving_affine, moving_name)
    fixed_affine, moving_affine = fixed_file_affine, moving_file_affine
    pair = prepare_pair(spec.inshape, moving, fixed, normalize=normalize,
                        moving_affine=moving_affine, fixed_affine=fixed_affine, resample=resample,
                        names=(moving_name, fixed_name))
    for note in pair.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    labels = None
    if moving_labels is not None:
        labels = _moving_labels(moving_labels, moving, moving_affine, moving_name, pair, spec.inshape,
                                fixed_affine)

    registrar = Registrar.for_model(model)
    moved, flow = registrar.predict(pair.moving[None, ..., None], pair.fixed[None, ..., None], lam)
    moved, flow = pair.in_moving_units(moved[0, ..., 0]), flow[0]
    ndims = len(spec.inshape)
    out_affine = np.eye(4) if fixed_affine is None else fixed_affine
    field = flow if units == "voxel" else flow @ out_affine[:3, :ndims].T
    volumes = {"moved": moved.astype(np.float32), "flow": field.astype(np.float32),
               "jacobian": jacobian_determinant(flow).astype(np.float32)}
    if labels is not None:
        warped = registrar.warp(labels[None], flow[None], interp="nearest")[0]
        volumes["moved_labels"] = warped.astype(np.int32)
    sidecar = {
        "lam": None if lam is None else float(lam),
        "model": spec.to_json(),
        "moving": moving_name, "fixed": fixed_name,
        "flow_units": units,
        "flow_convention": _CONVENTION[units],
        "affine": out_affine.tolist(),
        "affine_known": fixed_affine is not None,
        "resampled_moving": pair.resampled,
        "notes": pair.notes,
        "files": {name: f"{name}.nii.gz" for name in volumes},
    }
    return _write_all(out_dir, volumes, out_affine, sidecar, units)


_CONVENTION = {
    "voxel": "u in voxels of the fixed grid, component i along array axis i (NIfTI i, j, k); "
             "moved[x] = moving(x + u[x]) for each fixed voxel x",
    "mm": "d = affine[:3, :ndim] @ u in mm along the world axes (RAS), where u is the voxel "
          "displacement with moved[x] = moving(x + u[x]); for ITK/ANTs (LPS) negate d's first "
          "two components",
}


def read_input(source, role):
    """An array (as given) or the array and affine of an image file.

    Files are read by :func:`hypermorph_nb.data.readers.read_file`, as the data
    loaders read them: NIfTI and MGZ keep their affine, trailing axes of length
    1 are dropped, 4D files and broken headers are refused naming the file.

    Parameters
    ----------
    source : np.ndarray or path
    role : str
        What it is, e.g. ``'moving image'`` or ``'moving label map'``: quoted
        in errors, and a role ending in ``'label map'`` is read as one.

    Returns
    -------
    array : np.ndarray
    affine : np.ndarray or None
        The file's voxel → world matrix; None for an array or a file without one.
    name : str
        The file path, or ``role`` for an array (quoted in errors).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "slice.nii.gz"
    >>> nibabel.save(nibabel.Nifti1Image(np.zeros((6, 4, 1), "float32"), np.eye(4)), path)
    >>> array, affine, name = read_input(path, "fixed image")
    >>> array.shape, affine.shape, name == str(path)
    ((6, 4), (4, 4), True)
    """
    if not isinstance(source, (str, os.PathLike)):
        return np.asarray(source), None, role
    path = pathlib.Path(source)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the {role}); check the path")
    kind = "label map" if role.endswith("label map") else "image"
    array, affine = read_file(path, role=kind)
    return array, affine, str(path)


def _moving_labels(source, moving, moving_affine, moving_name, pair, inshape, fixed_affine):
    """The moving label map, checked against the moving image and put on the fixed grid."""
    labels, labels_affine, name = read_input(source, "moving label map")
    labels = spatial_image(labels, name, inshape)
    image_shape = spatial_image(moving, moving_name, inshape).shape
    if labels.shape != image_shape:
        raise ValueError(f"{name} has shape {labels.shape} but the moving image {moving_name} has "
                         f"{image_shape}; give the label map of the moving image")
    if labels_affine is not None and moving_affine is not None \
            and not same_grid(labels_affine, moving_affine):
        raise ValueError(f"{name} and the moving image {moving_name} have different affines; "
                         "give the label map that belongs to the moving image (same grid)")
    labels = as_labels(labels[None], name=name, image_shape=(1, *labels.shape))[0]
    if pair.resampled:
        labels, _ = match_grid(labels, moving_affine, pair.fixed.shape, fixed_affine, resample=True,
                               order=0, names=(name, "the fixed image"))
    check_model_shape(labels, name, inshape)
    return labels


def _write_all(out_dir, volumes, affine, sidecar, units):
    """Write every file under a temporary name, then rename them all into place."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    staged, paths = [], {}
    try:
        for name, array in volumes.items():
            image = nibabel.Nifti1Image(array, affine)
            image.header.set_xyzt_units("mm")
            if name == "flow":
                image.header["descrip"] = (f"displacement, {units}; "
                                           "moved[x]=moving(x+u[x])").encode()[:79]
            staged.append((_temporary(out_dir, ".nii.gz"), f"{name}.nii.gz", name))
            nibabel.save(image, staged[-1][0])
        staged.append((_temporary(out_dir, ".json"), SIDECAR, "sidecar"))
        with open(staged[-1][0], "w") as handle:
            json.dump(sidecar, handle, indent=2)
        for temporary, final, name in staged:
            paths[name] = os.path.join(out_dir, final)
            os.replace(temporary, paths[name])
    finally:
        for temporary, _, _ in staged:
            if os.path.exists(temporary):
                os.remove(temporary)
    return paths


def _temporary(folder, suffix):
    handle, path = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(handle)
    return path
