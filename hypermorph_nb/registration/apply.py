"""Apply written transforms to any image, and invert a written displacement field.

:func:`apply_transform` warps an image or a label map (another contrast, a mask, an atlas)
onto the grid of a reference image with the transforms that
:func:`~hypermorph_nb.register_scans` and :func:`~hypermorph_nb.data.prepare_scans` write, as
``antsApplyTransforms`` does; :func:`invert_transform` writes the inverse of a displacement
field, on the other scan's grid. Neither loads TensorFlow: NumPy, SciPy, nibabel and SimpleITK.

Transform files, ITK's conventions (world points in **LPS** millimetres; a transform maps a
point ``p`` of the output (reference) space to the point of the input image that it shows,
``warped(p) = image(T(p))``):

- a **displacement field**: a NIfTI (or NRRD, MetaImage) vector image with 3 components per
  voxel, NIfTI shape ``(I, J, K, 1, 3)``, ``T(p) = p + d(p)`` (``transform.nii.gz``, ANTs'
  ``*Warp.nii.gz``); beyond the field's grid ``d = 0``, as ITK reads it;
- an **affine** (any linear ITK transform): ``.tfm``/``.txt`` (ITK text), ``.mat`` (ITK
  MATLAB, ANTs' ``*GenericAffine.mat``), ``.h5``/``.hdf5``.

A list of transforms is chained in ANTs' order (``antsApplyTransforms -t A -t B``): the
**last** listed is applied to the point **first**, ``T(p) = A(B(p))``, which is also
``SimpleITK.CompositeTransform([A, B])``.

Examples
--------
>>> import tempfile, numpy as np, nibabel, SimpleITK as sitk
>>> folder = tempfile.mkdtemp()
>>> image = nibabel.Nifti1Image(np.arange(64, dtype=np.float32).reshape(4, 4, 4), np.eye(4))
>>> nibabel.save(image, f"{folder}/image.nii.gz")
>>> sitk.WriteTransform(sitk.TranslationTransform(3, (-1.0, 0, 0)), f"{folder}/shift.tfm")  # LPS
>>> moved = apply_transform(f"{folder}/shift.tfm", f"{folder}/image.nii.gz", f"{folder}/image.nii.gz")
>>> float(moved.get_fdata()[1, 0, 0])           # voxel 1 shows the image's voxel 2 (1 mm right)
32.0
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
import nibabel
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..data.alignment import RAS_TO_LPS

#: A path, or a list of paths chained in ANTs' order.
Transforms = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
#: How :func:`apply_transform` interpolates, by name: spline order of the sampling.
INTERPOLATIONS = {"linear": 1, "nearest": 0}
#: File endings read as a displacement field (an image) and as an ITK transform file.
FIELD_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".mat", ".h5", ".hdf5")
#: Fixed-point steps that refine an inverse on its own grid (:func:`invert_transform`).
POLISH_STEPS = 10
#: Voxels mapped at a time (bounds the memory of the world points).
CHUNK = 2 ** 20
PointMap = Callable[[np.ndarray], np.ndarray]


def apply_transform(transform: Transforms, image: str | os.PathLike[str] | nibabel.spatialimages.SpatialImage,
                    reference: str | os.PathLike[str] | nibabel.spatialimages.SpatialImage, *,
                    interpolation: str = "linear",
                    out: str | os.PathLike[str] | None = None) -> nibabel.Nifti1Image | pathlib.Path:
    """Warp an image or a label map onto the grid of ``reference`` through written transforms.

    Parameters
    ----------
    transform : path or list of paths
        A displacement field (``transform.nii.gz`` of :func:`~hypermorph_nb.register_scans`) or
        an ITK affine file (``.tfm``, ``.mat``), or a list of them chained in ANTs' order: the
        last listed is applied to the point first (see the module documentation).
    image : path or nibabel image
        The 3D image to warp (NIfTI/MGZ), e.g. another contrast of the moving scan, its mask, an
        atlas' label map.
    reference : path or nibabel image
        A 3D image whose grid (shape and affine) the output takes, e.g. the fixed scan.
    interpolation : {"linear", "nearest"}
        ``"linear"`` for intensities (float32 output); ``"nearest"`` for label maps and masks
        (the output keeps the image's values and data type).
    out : path, optional
        Write the result there (``.nii`` or ``.nii.gz``; folders are created).

    Returns
    -------
    nibabel.Nifti1Image or pathlib.Path
        The warped image on the reference grid (0 where the transform leads outside the image,
        beyond half a voxel, as ITK does), or the written path when ``out`` is given.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For an unknown interpolation, an image or reference that is not 3D, a transform file that
        is neither a displacement field nor a linear transform, or an ``out`` of another format;
        all checked before any resampling.

    Examples
    --------
    >>> apply_transform("transform.nii.gz", "t2.nii.gz", "fixed.nii.gz", interpolation="cubic")
    Traceback (most recent call last):
    ...
    ValueError: interpolation must be one of 'linear', 'nearest' (for label maps and masks), not 'cubic'
    """
    order = _check_interpolation(interpolation)
    target = _check_out(out)
    paths = _as_paths(transform)
    source = _read_image(image, "image")          # headers only: the voxels are read below
    grid = _read_image(reference, "reference")
    steps = [_read_transform(path) for path in paths]
    values = np.asanyarray(source.dataobj).reshape(source.shape[:3])
    values = values.astype(np.float32) if order else values
    to_voxels = np.linalg.inv(source.affine) @ RAS_TO_LPS   # LPS point -> image voxel
    warped = np.zeros(grid.shape[:3], values.dtype)
    for start in range(0, warped.size, CHUNK):
        points = _voxel_points(warped.shape, RAS_TO_LPS @ grid.affine, start)
        for step in reversed(steps):
            points = step(points)
        warped.flat[start:start + points.shape[1]] = _sample(values, to_voxels, points, order=order)
    return _deliver(nibabel.Nifti1Image(warped, grid.affine), target)


def invert_transform(transform: str | os.PathLike[str],
                     reference: str | os.PathLike[str] | nibabel.spatialimages.SpatialImage, *,
                     out: str | os.PathLike[str] | None = None, iterations: int = 50,
                     tolerance: float = 0.01) -> nibabel.Nifti1Image | pathlib.Path:
    """The inverse of a written displacement field, as a displacement field on ``reference``'s grid.

    For ``transform.nii.gz`` of :func:`~hypermorph_nb.register_scans` (fixed → moving, on the
    fixed scan's grid) and the moving scan as ``reference``, the result is the field fixed ←
    moving on the moving scan's grid, same convention: ``apply_transform(inverse, fixed,
    moving)`` brings the fixed scan onto the moving one (ANTs' ``1InverseWarp.nii.gz``).

    The field's affine part (a least-squares fit of its map) is inverted exactly; what remains,
    close to the identity on the field's own grid, is inverted by ITK's
    ``InvertDisplacementFieldImageFilter`` (fixed-point iterations); their composition, sampled
    on the reference grid, is refined there by :data:`POLISH_STEPS` fixed-point steps of the
    field itself (kept where they lower the error). Where the inverse leads beyond the field's
    grid, it is the affine part's.

    Parameters
    ----------
    transform : path
        A displacement field file (see the module documentation).
    reference : path or nibabel image
        An image whose grid the inverse field takes (the moving scan).
    out : path, optional
        Write the field there (``.nii`` or ``.nii.gz``; folders are created).
    iterations : int
        Most fixed-point iterations of the inversion.
    tolerance : float
        The inversion stops when the largest error of the inverse is below this (in voxels of
        the field's grid).

    Returns
    -------
    nibabel.Nifti1Image or pathlib.Path
        The inverse field (``(I, J, K, 1, 3)``, LPS mm, intent ``vector``), or the written path.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For a transform that is not a displacement field, a reference that is not 3D, bad
        ``iterations``/``tolerance``, or an ``out`` of another format.

    Examples
    --------
    >>> import tempfile, numpy as np, nibabel, SimpleITK as sitk
    >>> folder = tempfile.mkdtemp()
    >>> shift = sitk.GetImageFromArray(np.full((6, 6, 6, 3), [2.0, 0, 0]), isVector=True)  # 2 mm along L
    >>> sitk.WriteImage(shift, f"{folder}/transform.nii.gz")
    >>> nibabel.save(nibabel.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.eye(4)), f"{folder}/moving.nii.gz")
    >>> inverse = invert_transform(f"{folder}/transform.nii.gz", f"{folder}/moving.nii.gz")
    >>> inverse.shape, (np.round(inverse.get_fdata()[..., 0, :].mean(axis=(0, 1, 2)), 3) + 0.0).tolist()
    ((5, 5, 5, 1, 3), [-2.0, 0.0, 0.0])
    >>> invert_transform("moving.nii.gz", "moving.nii.gz", iterations=0)
    Traceback (most recent call last):
    ...
    ValueError: iterations must be a positive whole number (e.g. 50), not 0
    """
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be a positive whole number (e.g. 50), not {iterations!r}")
    if not np.isfinite(tolerance) or tolerance <= 0:
        raise ValueError(f"tolerance must be a positive number of voxels (e.g. 0.01), not {tolerance!r}")
    target = _check_out(out)
    path = _existing(transform, "transform")
    if not _has_suffix(path, FIELD_SUFFIXES):
        raise ValueError(f"{path}: only a displacement field ({', '.join(FIELD_SUFFIXES)}) is inverted here; an "
                         "affine's inverse is an affine: SimpleITK.WriteTransform(SimpleITK.ReadTransform(path)"
                         ".GetInverse(), 'inverse.tfm')")
    grid = _read_image(reference, "reference")
    to_lps = RAS_TO_LPS @ grid.affine
    spacing = np.linalg.norm(to_lps[:3, :3], axis=0)
    direction = to_lps[:3, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise ValueError("the reference's affine has shear, which an ITK displacement field cannot hold; "
                         "resample the reference onto a grid without shear first")
    field = _read_field_image(path)
    affine, residual = _split_affine(field)
    inverter = sitk.InvertDisplacementFieldImageFilter()
    inverter.SetMaximumNumberOfIterations(int(iterations))
    inverter.SetMaxErrorToleranceThreshold(float(tolerance))
    inverter.SetMeanErrorToleranceThreshold(float(tolerance) / 10)
    inverter.SetEnforceBoundaryCondition(False)
    inverse_residual = sitk.DisplacementFieldTransform(inverter.Execute(residual))
    undo_affine = sitk.AffineTransform(3)
    undo_affine.SetMatrix([float(v) for v in np.linalg.inv(affine)[:3, :3].ravel()])
    undo_affine.SetTranslation([float(v) for v in np.linalg.inv(affine)[:3, 3]])
    inverse = sitk.TransformToDisplacementField(
        sitk.CompositeTransform([inverse_residual, undo_affine]), sitk.sitkVectorFloat64,
        [int(n) for n in grid.shape[:3]], [float(v) for v in to_lps[:3, 3]], [float(v) for v in spacing],
        [float(v) for v in direction.ravel()])
    components = np.ascontiguousarray(sitk.GetArrayFromImage(inverse).transpose(2, 1, 0, 3)).reshape(-1, 3)
    forward = _field_map(field, outside=np.nan)
    for start in range(0, components.shape[0], CHUNK):
        points = _voxel_points(grid.shape[:3], to_lps, start)
        stop = start + points.shape[1]
        components[start:stop] = (polish_inverse(forward, points, points + components[start:stop].T) - points).T
    result = nibabel.Nifti1Image(components.reshape(*grid.shape[:3], 1, 3).astype(np.float32), grid.affine)
    result.header.set_intent("vector")
    return _deliver(result, target)


def _deliver(result: nibabel.Nifti1Image, target: pathlib.Path | None) -> nibabel.Nifti1Image | pathlib.Path:
    """The image in mm, returned as it is (no ``target``) or written there and its path returned."""
    result.header.set_xyzt_units("mm")
    if target is None:
        return result
    target.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(result, target)
    return target


def _check_interpolation(interpolation: str) -> int:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of 'linear', 'nearest' (for label maps and masks), "
                         f"not {interpolation!r}")
    return INTERPOLATIONS[interpolation]


def _check_out(out: str | os.PathLike[str] | None) -> pathlib.Path | None:
    if out is None:
        return None
    path = pathlib.Path(out)
    if not _has_suffix(path, (".nii", ".nii.gz")):
        raise ValueError(f"out must name a NIfTI file (.nii or .nii.gz), not {str(out)!r}")
    if path.is_dir():
        raise ValueError(f"out {str(out)!r} is a folder; name a file in it, e.g. {str(path / 'warped.nii.gz')!r}")
    return path


def _as_paths(transform: Transforms) -> list[pathlib.Path]:
    paths = [transform] if isinstance(transform, (str, os.PathLike)) else list(transform)
    if not paths:
        raise ValueError("transform is an empty list; give a displacement field or affine file, or a list of them")
    return [_existing(path, "transform") for path in paths]


def _existing(path: str | os.PathLike[str], role: str) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{role} must be a file path, not {type(path).__name__}")
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{role} file {str(path)!r} does not exist; check the path")
    return path


def _has_suffix(path: pathlib.Path, suffixes: Sequence[str]) -> bool:
    return path.name.lower().endswith(tuple(suffixes))


def _read_image(image: str | os.PathLike[str] | nibabel.spatialimages.SpatialImage,
                role: str) -> nibabel.spatialimages.SpatialImage:
    """A nibabel image, checked to be 3D (trailing axes of length 1 allowed)."""
    if isinstance(image, nibabel.spatialimages.SpatialImage):
        loaded, name = image, f"the {role}"
    else:
        path = _existing(image, role)
        name = str(path)
        try:
            read = nibabel.load(path)
        except nibabel.filebasedimages.ImageFileError as err:
            raise ValueError(f"{path}: the {role} cannot be read as an image (NIfTI/MGZ): {err}") from None
        if not isinstance(read, nibabel.spatialimages.SpatialImage):
            raise ValueError(f"{path}: the {role} is a {type(read).__name__}, not an image on a grid (NIfTI/MGZ)")
        loaded = read
    if len(loaded.shape) < 3 or any(n != 1 for n in loaded.shape[3:]):
        raise ValueError(f"{name}: the {role} must be a 3D image, but its shape is {tuple(loaded.shape)}; "
                         "give one 3D volume (e.g. image.slicer[..., 0] of a 4D series)")
    return loaded


def _read_transform(path: pathlib.Path) -> PointMap:
    """The map of LPS points ``(3, n)`` that one transform file holds."""
    if _has_suffix(path, FIELD_SUFFIXES):
        return _field_map(_read_field_image(path))
    if not _has_suffix(path, TRANSFORM_SUFFIXES):
        raise ValueError(f"{path}: not a transform file; give a displacement field "
                         f"({', '.join(FIELD_SUFFIXES)}) or an ITK affine ({', '.join(TRANSFORM_SUFFIXES)})")
    try:
        transform = sitk.ReadTransform(str(path))
    except RuntimeError as err:
        raise ValueError(f"{path}: cannot be read as an ITK transform file: {str(err).strip().splitlines()[-1]}") \
            from None
    if transform.GetDimension() != 3 or not transform.IsLinear():
        raise ValueError(f"{path}: holds a {transform.GetDimension()}D {transform.GetName()}, but a transform file "
                         "must hold a 3D affine (linear) transform; give displacement fields as images "
                         "(e.g. transform.nii.gz)")
    matrix = np.eye(4)
    matrix[:3, 3] = transform.TransformPoint((0.0, 0.0, 0.0))
    for axis in range(3):
        matrix[:3, axis] = np.asarray(transform.TransformPoint(tuple(np.eye(3)[axis]))) - matrix[:3, 3]
    return lambda points: _moved(matrix, points)


def _read_field_image(path: pathlib.Path) -> sitk.Image:
    """A displacement field file as a SimpleITK image (float64 vectors), checked."""
    try:
        field = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ValueError(f"{path}: cannot be read as an image: {str(err).strip().splitlines()[-1]}") from None
    if field.GetDimension() != 3 or field.GetNumberOfComponentsPerPixel() != 3:
        raise ValueError(
            f"{path}: not a displacement field: a {field.GetDimension()}D image with "
            f"{field.GetNumberOfComponentsPerPixel()} value(s) per voxel, size {field.GetSize()}; a displacement "
            "field holds 3 per voxel (a NIfTI vector image of shape (I, J, K, 1, 3), as transform.nii.gz). "
            "Is it the image to warp, given as the transform?")
    cast: sitk.Image = sitk.Cast(field, sitk.sitkVectorFloat64)
    return cast


def _index_to_lps(image: sitk.Image) -> np.ndarray:
    """4×4 matrix of a SimpleITK image's voxel index ``(i, j, k)`` to LPS world points."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def _field_map(field: sitk.Image, *, outside: float = 0.0) -> PointMap:
    """``p ↦ p + d(p)`` of a displacement field, as ITK evaluates it (linear; ``d = outside`` beyond the grid)."""
    array = sitk.GetArrayFromImage(field)
    components = [np.ascontiguousarray(array[..., axis].T) for axis in range(3)]   # (i, j, k) each
    to_voxels = np.linalg.inv(_index_to_lps(field))

    def apply(points: np.ndarray) -> np.ndarray:
        voxels = _moved(to_voxels, points)
        inside = _inside(voxels, components[0].shape)
        displacement = np.stack([ndimage.map_coordinates(component, voxels, order=1, mode="nearest",
                                                         prefilter=False) for component in components])
        return points + np.where(inside, displacement, outside)

    return apply


def _moved(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(3, n)`` mapped by a 4×4 matrix (this layout keeps the product in BLAS)."""
    return np.asarray(matrix[:3, :3] @ points + matrix[:3, 3:])


def _inside(voxels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Continuous indices ``(3, n)`` within half a voxel of the grid (ITK's buffer)."""
    return np.asarray(((voxels >= -0.5) & (voxels <= np.asarray(shape)[:, None] - 0.5)).all(axis=0))


def _voxel_points(shape: Sequence[int], to_world: np.ndarray, start: int) -> np.ndarray:
    """World points ``(3, n)`` of a grid's voxels ``start`` to ``start + CHUNK`` (C order)."""
    flat = np.arange(start, min(start + CHUNK, int(np.prod(shape))))
    return _moved(to_world, np.asarray(np.unravel_index(flat, tuple(shape)), dtype=np.float64))


def _sample(values: np.ndarray, to_voxels: np.ndarray, points: np.ndarray, *, order: int) -> np.ndarray:
    """``values`` at world points (linear or nearest); 0 beyond half a voxel outside, as ITK."""
    voxels = _moved(to_voxels, points)
    if order == 0:
        index = np.clip(np.floor(voxels + 0.5).astype(np.int64), 0, np.asarray(values.shape)[:, None] - 1)
        sampled = values[index[0], index[1], index[2]]
    else:
        sampled = ndimage.map_coordinates(values, voxels, order=1, mode="nearest", prefilter=False)
    return np.where(_inside(voxels, values.shape), sampled, 0).astype(values.dtype)


def polish_inverse(forward: PointMap, points: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Points ``ψ(q)`` ``(3, n)`` refined towards ``forward(ψ(q)) = q`` by steps ``ψ ← ψ - (forward(ψ) - q)``.

    A step is kept where it lowers the error; points that ``forward`` leaves undefined (NaN:
    beyond the field's grid) keep their place.
    """
    residual = forward(inverse) - points
    error = np.linalg.norm(residual, axis=0)
    for _ in range(POLISH_STEPS):
        candidate = inverse - residual
        candidate_residual = forward(candidate) - points
        candidate_error = np.linalg.norm(candidate_residual, axis=0)
        better = candidate_error < error                 # False where either is NaN
        inverse = np.where(better, candidate, inverse)
        residual = np.where(better, candidate_residual, residual)
        error = np.where(better, candidate_error, error)
    return inverse


def _split_affine(field: sitk.Image) -> tuple[np.ndarray, sitk.Image]:
    """The affine ``A`` (LPS, 4×4) fitting a field's map ``φ``, and the field of ``A⁻¹ ∘ φ`` on its grid."""
    components = np.ascontiguousarray(sitk.GetArrayFromImage(field).transpose(2, 1, 0, 3))
    shape, to_world = components.shape[:3], _index_to_lps(field)
    displacements = components.reshape(-1, 3)
    step = max(1, displacements.shape[0] // CHUNK)   # the fit reads at most about CHUNK voxels
    points = _moved(to_world, np.asarray(np.unravel_index(np.arange(0, displacements.shape[0], step), shape),
                                         dtype=np.float64))
    affine = np.eye(4)
    affine[:3] = np.linalg.lstsq(np.c_[points.T, np.ones(points.shape[1])], points.T + displacements[::step],
                                 rcond=None)[0].T
    undo = np.linalg.inv(affine)
    for start in range(0, displacements.shape[0], CHUNK):
        points = _voxel_points(shape, to_world, start)
        stop = start + points.shape[1]
        displacements[start:stop] = (_moved(undo, points + displacements[start:stop].T) - points).T
    residual = sitk.GetImageFromArray(np.ascontiguousarray(components.transpose(2, 1, 0, 3)), isVector=True)
    residual.CopyInformation(field)
    return affine, residual
