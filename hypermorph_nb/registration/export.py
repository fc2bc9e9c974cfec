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
    The displacement field, float32, stored as NIfTI stores a vector image:
    intent code ``VECTOR``, the components along the fifth axis, shape
    ``(X, Y, Z, 1, components)`` (a 2D field ``(X, Y, 1, 1, 2)``), so nibabel,
    SimpleITK and ITK-based viewers read it as one vector per voxel
    (:func:`vector_field_image`).
``jacobian.nii.gz``
    The Jacobian determinant of ``x -> x + u(x)`` (≤ 0 where the field folds).
``registration.json``
    λ (and, for a model conditioned on several, every hyperparameter: ``hyperparameters``), the
    model, the field convention, what was done to the input, the files.

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
interrupted export leaves no half-written file. The files get the modes that
the user's umask gives new files (:func:`hypermorph_nb.io.files.follow_umask`).

**Unknown affine.** Arrays (and ``.npy``/``.png`` files) carry no affine. With
such a fixed image and no ``fixed_affine=``, the files get the identity affine (1 mm
voxels, origin at 0) and a ``UserWarning`` says so; the sidecar records
``"affine_known": false``.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings
from typing import Any, Union

import nibabel
import numpy as np

from ..data.readers import read_file
from ..checks.grids import input_affine
from ..checks.inputs import prepare_labels, prepare_pair
from ..metrics import jacobian_determinant
from ..io.files import follow_umask
from ..networks.models import spec_of
from ..runtime.deprecation import deprecation_message
from .files import SIDECAR, RegistrationFiles
from .pairs import Registrar
from ..checks.values import check_refine
from .refine import refine_registration

#: An image given as an array or as a file path (NIfTI, MGZ, NumPy).
ImageInput = Union[np.ndarray, str, "os.PathLike[str]"]

UNITS = ("voxel", "mm")


def export_registration(model: Any, moving: ImageInput, fixed: ImageInput, out_dir: str | os.PathLike[str], *,
                        lam: float | None = None, refine: int = 0, moving_labels: ImageInput | None = None,
                        moving_affine: np.ndarray | None = None, fixed_affine: np.ndarray | None = None,
                        resample: bool = False, normalize: str = "auto", units: str = "voxel",
                        affine: np.ndarray | None = None, **hyperparameters: float) -> RegistrationFiles:
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
        λ in [0, 1], required for a HyperMorph model; None for a VoxelMorph baseline.
    refine : int
        Iterations of instance optimisation of the network's field at λ, as
        in :func:`hypermorph_nb.register` (0: the network's field as it is);
        recorded in the sidecar.
    moving_labels : np.ndarray or path, optional
        The moving image's label map (on the moving image's grid), warped by
        nearest neighbour.
    moving_affine : array_like, optional
        The moving image's 4×4 voxel → world affine when ``moving`` is an array.
    fixed_affine : array_like, optional
        The fixed grid's affine when ``fixed`` is an array. Without it (and
        without a fixed file that has one) the files get the identity affine,
        1 mm voxels at origin 0, with a warning.
    resample : bool
        When both affines are known and the grids differ, resample the moving
        image (and label map) onto the fixed grid instead of refusing.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy, as in :func:`hypermorph_nb.register`.
    units : {'voxel', 'mm'}
        Units and axes of ``flow.nii.gz`` (see the module documentation).
    affine : array_like, optional
        Deprecated name of ``fixed_affine`` (one release, with a ``DeprecationWarning``).
    **hyperparameters : float
        The other hyperparameters of a model conditioned on several
        (``build_hypermorph(..., hyperparameters=("lam", "label_weight"))``), by name, e.g.
        ``label_weight=0.5``; each is required, and the sidecar records them all
        (``hyperparameters``).

    Returns
    -------
    RegistrationFiles
        ``moved``, ``transform`` (``flow.nii.gz``), ``jacobian``, ``sidecar`` and, with
        ``moving_labels``, ``moved_labels``: the paths written.

    Examples
    --------
    >>> import tempfile, numpy as np, nibabel, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> image = np.random.default_rng(0).random((32, 32), dtype="float32")
    >>> affine = np.diag([2.0, 2.0, 2.0, 1.0])   # arrays carry none: give the fixed grid's
    >>> files = hnb.export_registration(model, image, image, tempfile.mkdtemp(), lam=0.5, fixed_affine=affine)
    >>> files.transform.name, nibabel.load(files.transform).shape, files.moved_labels
    ('flow.nii.gz', (32, 32, 1, 1, 2), None)
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    if affine is not None:
        if fixed_affine is not None:
            raise ValueError("got both affine= and fixed_affine=; pass fixed_affine= only (affine= is its old name)")
        warnings.warn(deprecation_message("export_registration(affine=...)", "export_registration(fixed_affine=...)"),
                      DeprecationWarning, stacklevel=2)
        fixed_affine = affine
    refine = check_refine(refine)
    spec = spec_of(model)
    registrar = Registrar.for_model(model)
    registrar.hyper_inputs(lam, batch=1, **hyperparameters)   # refuse bad values before any work
    moving_image, moving_file_affine, moving_name = read_input(moving, "moving image")
    fixed_image, fixed_file_affine, fixed_name = read_input(fixed, "fixed image")
    fixed_affine = input_affine(fixed_file_affine, fixed_affine, name=fixed_name, keyword="fixed_affine")
    moving_affine = input_affine(moving_file_affine, moving_affine, name=moving_name,
                                 keyword="moving_affine")
    pair = prepare_pair(spec.inshape, moving_image, fixed_image, normalize=normalize,
                        moving_affine=moving_affine, fixed_affine=fixed_affine, resample=resample,
                        names=(moving_name, fixed_name))
    for note in pair.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    labels = None
    if moving_labels is not None:
        labels, labels_affine, labels_name = read_input(moving_labels, "moving label map")
        labels = prepare_labels(labels, moving_image, role="moving", name=labels_name,
                                image_name=moving_name, inshape=spec.inshape,
                                labels_affine=labels_affine, image_affine=moving_affine, pair=pair,
                                fixed_affine=fixed_affine)

    if refine:
        moved, flow = refine_registration(model, pair.moving, pair.fixed, lam=lam, iterations=refine,
                                          fixed_affine=fixed_affine, hyperparameters=hyperparameters)
    else:
        moved, flow = registrar.predict(pair.moving[None, ..., None], pair.fixed[None, ..., None], lam,
                                        **hyperparameters)
        moved, flow = moved[0, ..., 0], flow[0]
    moved = pair.in_moving_units(moved)
    ndims = len(spec.inshape)
    out_affine = np.eye(4) if fixed_affine is None else fixed_affine
    if fixed_affine is None:
        fixed_shown = "the fixed image (an array)" if fixed_name == "fixed image" else fixed_name
        warnings.warn(UNKNOWN_AFFINE_NOTE.format(fixed=fixed_shown, out_dir=os.fspath(out_dir)),
                      UserWarning, stacklevel=2)
    field = flow if units == "voxel" else flow @ out_affine[:3, :ndims].T
    volumes = {"moved": moved.astype(np.float32), "flow": field.astype(np.float32),
               "jacobian": jacobian_determinant(flow).astype(np.float32)}
    if labels is not None:
        warped = registrar.warp(labels[None], flow[None], interp="nearest")[0]
        volumes["moved_labels"] = warped.astype(np.int32)
    sidecar = {
        "lam": None if lam is None else float(lam),
        "refine_iterations": refine,
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
    if len(spec.hyperparameters) > 1:   # a model conditioned on several: every value (a λ-only sidecar is as before)
        given: dict[str, Any] = {"lam": lam, **hyperparameters}
        sidecar["hyperparameters"] = {hyper.name: float(given[hyper.name]) for hyper in spec.hyperparameters}
    _write_all(out_dir, volumes, out_affine, sidecar, units)
    return RegistrationFiles.in_folder(out_dir, transform="flow.nii.gz", moved_labels=labels is not None,
                                       jacobian=True)


#: The warning of an export whose fixed image has no affine.
UNKNOWN_AFFINE_NOTE = (
    "{fixed} has no affine, so the NIfTI files in {out_dir} get the identity: "
    "1 mm voxels with the origin at 0, not the scan's voxel size and position (viewers will not "
    "overlay them on the scan); pass fixed_affine= with the fixed scan's 4x4 affine (e.g. "
    "nibabel.load(path).affine, or dataset.affines[i]), or give the NIfTI/MGZ file paths instead "
    "of arrays")

_CONVENTION = {
    "voxel": "u in voxels of the fixed grid, component i along array axis i (NIfTI i, j, k); "
             "moved[x] = moving(x + u[x]) for each fixed voxel x",
    "mm": "d = affine[:3, :ndim] @ u in mm along the world axes (RAS), where u is the voxel "
          "displacement with moved[x] = moving(x + u[x]); for ITK/ANTs (LPS) negate d's first "
          "two components",
}


def vector_field_image(field: np.ndarray, affine: np.ndarray) -> nibabel.Nifti1Image:
    """A displacement field as a NIfTI vector image: intent ``VECTOR``, components on the fifth axis.

    NIfTI keeps axis 4 for time and puts a vector's components on axis 5, so a
    ``(X, Y, Z, C)`` field is stored as ``(X, Y, Z, 1, C)`` and a 2D ``(X, Y, C)``
    field as ``(X, Y, 1, 1, C)``. Readers that follow the standard (SimpleITK,
    ITK-SNAP, 3D Slicer) then see one ``C``-vector per voxel rather than ``C``
    scalar volumes; with nibabel, ``np.squeeze(image.get_fdata(), axis=3)`` gives
    back the ``(*spatial, C)`` array (and axis 2 as well for a 2D field).

    Parameters
    ----------
    field : np.ndarray
        ``(*spatial, C)``, 2D or 3D spatial axes.
    affine : np.ndarray
        The grid's 4×4 voxel → world affine.

    Returns
    -------
    nibabel.Nifti1Image

    Examples
    --------
    >>> image = vector_field_image(np.zeros((4, 5, 6, 3), "float32"), np.eye(4))
    >>> image.shape, image.header.get_intent()[0]
    ((4, 5, 6, 1, 3), 'vector')
    >>> vector_field_image(np.zeros((4, 5, 2), "float32"), np.eye(4)).shape
    (4, 5, 1, 1, 2)
    """
    field = np.asarray(field)
    spatial = field.shape[:-1]
    if len(spatial) not in (2, 3):
        raise ValueError(f"a displacement field has shape (*spatial, components) with 2 or 3 "
                         f"spatial axes, got {field.shape}")
    layout = (*spatial, *(1,) * (3 - len(spatial)), 1, field.shape[-1])
    image = nibabel.Nifti1Image(field.reshape(layout), affine)
    image.header.set_intent("vector", (), name="displacement")
    return image


def read_input(source: np.ndarray | str | os.PathLike[str],
               role: str) -> tuple[np.ndarray, np.ndarray | None, str]:
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


def _write_all(out_dir: str | os.PathLike[str], volumes: dict[str, np.ndarray], affine: np.ndarray,
               sidecar: dict[str, Any], units: str) -> None:
    """Write every file under a temporary name, then rename them all into place."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    staged = []
    try:
        for name, array in volumes.items():
            image = vector_field_image(array, affine) if name == "flow" else nibabel.Nifti1Image(array, affine)
            image.header.set_xyzt_units("mm")
            if name == "flow":
                image.header["descrip"] = (f"displacement, {units}; "
                                           "moved[x]=moving(x+u[x])").encode()[:79]
            staged.append((_temporary(out_dir, ".nii.gz"), f"{name}.nii.gz", name))
            nibabel.save(image, staged[-1][0])
        staged.append((_temporary(out_dir, ".json"), SIDECAR, "sidecar"))
        with open(staged[-1][0], "w") as handle:
            json.dump(sidecar, handle, indent=2)
        for temporary, final, _ in staged:
            os.replace(temporary, os.path.join(out_dir, final))
    finally:
        for temporary, _, _ in staged:
            if os.path.exists(temporary):
                os.remove(temporary)


def _temporary(folder: str, suffix: str) -> str:
    handle, path = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(handle)
    follow_umask(path)
    return path
