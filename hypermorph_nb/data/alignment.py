"""Affine alignment with SimpleITK, resampling by world matrices, and RAS ↔ LPS conversions.

nibabel (and so every :class:`~hypermorph_nb.data.Dataset`) describes a grid by a 4×4
voxel-to-world matrix in RAS millimetres (x to the subject's Right, y Anterior, z Superior);
ITK and SimpleITK use LPS (x Left, y Posterior) and describe an image by origin, spacing and
an orthonormal direction matrix, with the NumPy array of ``sitk.GetArrayFromImage`` in
``(k, j, i)`` order. The two frames differ by :data:`RAS_TO_LPS` (negate x and y), its own
inverse:

- :func:`to_sitk` / :func:`from_sitk`: a NumPy array (``(i, j, k)`` order, as nibabel reads
  it) with its RAS affine ↔ a SimpleITK image (scalar, or a vector image such as a
  displacement field);
- :func:`world_matrix` / :func:`itk_affine`: an ITK transform (LPS) ↔ the 4×4 RAS matrix that
  maps the same physical points;
- :func:`resample`: an array onto another grid through a world matrix, in one interpolation
  (SciPy), whatever the affines (shear, flips, anisotropic voxels);
- :func:`align_affine`: rigid then affine registration with SimpleITK (centre-of-mass
  initialisation, Mattes mutual information, multi-resolution).

Transform convention (ITK's): a transform maps points of the *fixed* (reference) space to
points of the *moving* image, so ``moved(p) = moving(T(p))``; :func:`resample` applies a
world matrix the same way.

Examples
--------
>>> import numpy as np
>>> affine = np.array([[0, 0, 2.0, -90], [-2.0, 0, 0, 120], [0, 2.0, 0, -130], [0, 0, 0, 1]])
>>> image = to_sitk(np.zeros((5, 6, 7), "float32"), affine)
>>> image.GetSize(), image.GetSpacing(), image.GetOrigin()
((5, 6, 7), (2.0, 2.0, 2.0), (90.0, -120.0, -130.0))
>>> np.allclose(from_sitk(image)[1], affine)
True
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

#: Multiply a RAS point (homogeneous) or pre- and post-multiply a RAS matrix to get LPS.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Shrink factors of the multi-resolution pyramid, coarse to fine, per stage.
RIGID_LEVELS = (4, 2)
AFFINE_LEVELS = (2, 1)
#: Threads of each ITK registration. ITK's multi-threaded metric sums in an order that varies from
#: run to run (transforms then differ by ~1e-4 mm between two runs of one process), so the
#: alignment runs on one thread: the same result in every process, on every executor and
#: machine; cohorts get their speed from running scans side by side (``workers=``).
ALIGNMENT_THREADS = 1


def to_sitk(array: np.ndarray, affine: np.ndarray, *, vector: bool = False) -> sitk.Image:
    """A SimpleITK image (LPS) of a 3D array in nibabel's ``(i, j, k)`` order with its RAS affine.

    Parameters
    ----------
    array : np.ndarray
        ``(I, J, K)``, or ``(I, J, K, C)`` with ``vector=True`` (C components per voxel).
    affine : np.ndarray
        ``(4, 4)`` voxel-to-world matrix in RAS mm; its columns must be orthogonal (ITK has no
        shear).
    vector : bool
        Make a vector image of the last axis (e.g. a displacement field).

    Returns
    -------
    SimpleITK.Image

    Raises
    ------
    ValueError
        For an affine with shear, which ITK cannot represent.

    Examples
    --------
    >>> image = to_sitk(np.arange(24.0).reshape(2, 3, 4), np.eye(4))
    >>> image.GetSize(), image.GetPixel(1, 2, 3), image.GetDirection()[:2]
    ((2, 3, 4), 23.0, (-1.0, 0.0))
    """
    array = np.asarray(array)
    lps = RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise ValueError(
            "the affine has shear (its columns are not orthogonal), which ITK images cannot "
            "hold; resample the image onto a grid without shear first, e.g. "
            "hypermorph_nb.data.alignment.resample onto isotropic_grid(...)")
    order = (2, 1, 0, 3) if vector else (2, 1, 0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(order)), isVector=vector)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in lps[:3, 3]])
    image.SetDirection([float(d) for d in direction.ravel()])
    return image


def from_sitk(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The array (``(i, j, k)`` order, components last) and RAS affine of a 3D SimpleITK image.

    Examples
    --------
    >>> array, affine = from_sitk(sitk.Image(4, 5, 6, sitk.sitkFloat32))
    >>> array.shape, np.diag(affine).tolist()
    ((4, 5, 6), [-1.0, -1.0, 1.0, 1.0])
    """
    array = sitk.GetArrayFromImage(image)
    array = array.transpose((2, 1, 0, 3) if image.GetNumberOfComponentsPerPixel() > 1 else (2, 1, 0))
    lps = np.eye(4)
    lps[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return array, RAS_TO_LPS @ lps


def world_matrix(transform: sitk.Transform) -> np.ndarray:
    """The 4×4 RAS matrix of an affine-type ITK transform (which works in LPS).

    Read from the transform's action on four points, so composite transforms work too.

    Examples
    --------
    >>> shift = sitk.TranslationTransform(3, (1.0, 2.0, 3.0))      # LPS: 1 mm to the left
    >>> world_matrix(shift)[:3, 3].tolist()                          # RAS: x = -1
    [-1.0, -2.0, 3.0]
    """
    def apply(point):
        lps = transform.TransformPoint([float(v) for v in RAS_TO_LPS[:3, :3] @ point])
        return RAS_TO_LPS[:3, :3] @ np.asarray(lps)

    matrix = np.eye(4)
    matrix[:3, 3] = apply(np.zeros(3))
    for axis in range(3):
        matrix[:3, axis] = apply(np.eye(3)[axis]) - matrix[:3, 3]
    return matrix


def itk_affine(matrix: np.ndarray) -> sitk.AffineTransform:
    """The ITK (LPS) affine transform that maps points as the 4×4 RAS ``matrix`` does.

    Examples
    --------
    >>> matrix = np.array([[0, -1.0, 0, 5], [1, 0, 0, 0], [0, 0, 1, -2], [0, 0, 0, 1]])
    >>> np.allclose(world_matrix(itk_affine(matrix)), matrix)
    True
    """
    lps = RAS_TO_LPS @ np.asarray(matrix, dtype=np.float64) @ RAS_TO_LPS
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in lps[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in lps[:3, 3]])
    return transform


def resample(array: np.ndarray, affine: np.ndarray, shape: tuple[int, ...], grid_affine: np.ndarray,
             *, transform: np.ndarray | None = None, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """``array`` (on ``affine``) sampled at the voxels of the grid ``(shape, grid_affine)``.

    Output voxel ``x`` takes the value of ``array`` at world point ``transform @ grid_affine @ x``
    (``transform`` maps the grid's world points into the array's world, default the identity).

    Parameters
    ----------
    array : np.ndarray
        3D array in ``(i, j, k)`` order.
    affine, grid_affine : np.ndarray
        4×4 RAS voxel-to-world matrices of the array and of the output grid.
    shape : tuple of int
        Output shape.
    transform : np.ndarray, optional
        4×4 world matrix (grid world → array world).
    order : int
        1 for images (linear), 0 for label maps and masks (nearest neighbour; the dtype is kept).
    fill : float
        Value outside the array.

    Examples
    --------
    >>> volume = np.arange(27.0).reshape(3, 3, 3)
    >>> resample(volume, np.eye(4), (3, 3, 3), np.eye(4), transform=np.diag([1.0, 1, 1, 1]))[1, 1, 1]
    np.float64(13.0)
    >>> shift = np.eye(4); shift[0, 3] = 1.0        # the grid's point x is read at x + 1 mm
    >>> resample(volume, np.eye(4), (3, 3, 3), np.eye(4), transform=shift)[0, 0, 0]
    np.float64(9.0)
    """
    matrix = np.linalg.inv(affine) @ (np.eye(4) if transform is None else transform) @ grid_affine
    array = np.asarray(array)
    if order == 0 and array.dtype == bool:
        array = array.astype(np.uint8)
        return ndimage.affine_transform(array, matrix[:3, :3], matrix[:3, 3], output_shape=tuple(shape),
                                        order=0, mode="constant", cval=fill).astype(bool)
    return ndimage.affine_transform(array, matrix[:3, :3], matrix[:3, 3], output_shape=tuple(shape),
                                    order=order, mode="constant", cval=fill, prefilter=False)


def isotropic_grid(shape: tuple[int, ...], affine: np.ndarray, spacing: float) -> tuple[tuple[int, ...], np.ndarray]:
    """A RAS grid of ``spacing`` mm voxels covering the field of view of ``(shape, affine)``.

    Returns
    -------
    shape : tuple of int
    affine : np.ndarray
        Diagonal ``spacing`` (RAS, no rotation), origin at the field of view's lowest corner.

    Examples
    --------
    >>> shape, affine = isotropic_grid((10, 10, 4), np.diag([1.0, 1.0, 3.0, 1.0]), 2.0)
    >>> shape, np.diag(affine).tolist()
    ((5, 5, 6), [2.0, 2.0, 2.0, 1.0])
    """
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape], indexing="ij")).reshape(3, -1)
    world = (np.asarray(affine)[:3, :3] @ corners).T + np.asarray(affine)[:3, 3]
    low, high = world.min(axis=0), world.max(axis=0)
    size = np.maximum(np.ceil((high - low) / spacing - 1e-6).astype(int), 1)
    grid = np.diag([spacing, spacing, spacing, 1.0])
    grid[:3, 3] = (low + high) / 2 - (size - 1) / 2 * spacing
    return tuple(int(s) for s in size), grid


@dataclasses.dataclass(frozen=True)
class Alignment:
    """The result of :func:`align_affine`.

    Attributes
    ----------
    matrix : np.ndarray
        4×4 RAS world matrix mapping points of the fixed (reference) space to the moving image:
        ``aligned(p) = moving(matrix @ p)``.
    metric : float
        Final Mattes mutual information (negative; lower is better).
    iterations : int
        Optimizer iterations of the last stage's finest level.
    """

    matrix: np.ndarray
    metric: float
    iterations: int


def align_affine(fixed: np.ndarray, fixed_affine: np.ndarray, moving: np.ndarray, moving_affine: np.ndarray,
                 *, fixed_mask: np.ndarray | None = None, moving_mask: np.ndarray | None = None,
                 affine: bool = True, iterations: int = 100, levels: tuple[int, ...] = RIGID_LEVELS,
                 affine_levels: tuple[int, ...] = AFFINE_LEVELS, sampling: float = 0.05,
                 seed: int = 0) -> Alignment:
    """Align ``moving`` to ``fixed``: rigid, then affine, with SimpleITK.

    Centre-of-mass initialisation (of the masked images where masks are given), then a rigid
    (Euler) stage over the multi-resolution ``levels`` and an affine (12 parameters) stage over
    ``affine_levels``, each by regular-step gradient descent on Mattes mutual information
    (32 bins, a seeded random sample of the fixed voxels) with parameter scales
    from physical shifts.

    Parameters
    ----------
    fixed, moving : np.ndarray
        3D images (any intensity units) in ``(i, j, k)`` order.
    fixed_affine, moving_affine : np.ndarray
        Their 4×4 RAS affines (orthogonal columns).
    fixed_mask : np.ndarray, optional
        Where on the fixed grid the metric is measured (e.g. a dilated brain mask).
    moving_mask : np.ndarray, optional
        The moving image's brain (or head) mask, used for the initial centre of mass.
    affine : bool
        Run the affine stage after the rigid one (False: rigid only).
    iterations : int
        Most optimizer iterations per resolution level.
    levels, affine_levels : tuple of int
        Shrink factors of the rigid and the affine stage, coarse to fine (smoothing σ = factor / 2
        voxels).
    sampling : float
        Fraction of the fixed voxels the metric samples at full resolution; a level shrunk by a
        factor f samples ``f`` times that fraction (of its fewer voxels).
    seed : int
        Seed of the metric's sampling: the same inputs give the same alignment.

    Returns
    -------
    Alignment

    Examples
    --------
    >>> grid = np.mgrid[:24, :24, :24].astype("float32")
    >>> blob = np.exp(-(((grid - [[[[11.0]]], [[[12.0]]], [[[13.0]]]]) / [[[[6.0]]], [[[4.0]]], [[[5.0]]]]) ** 2).sum(0))
    >>> shifted = np.roll(blob, 2, axis=0)                 # the blob moved +2 voxels along i
    >>> found = align_affine(blob, np.eye(4), shifted, np.eye(4), affine=False, levels=(2, 1))
    >>> (np.round(found.matrix[:3, 3]) + 0.0).tolist()      # fixed point x is at x + 2 mm in moving
    [2.0, 0.0, 0.0]
    """
    with itk_threads(ALIGNMENT_THREADS):
        return _align(fixed, fixed_affine, moving, moving_affine, fixed_mask, moving_mask, affine, iterations,
                      levels, affine_levels, sampling, seed)


@contextlib.contextmanager
def itk_threads(threads: int) -> Iterator[None]:
    """Run the block with SimpleITK's global default thread count at ``threads`` (restored after).

    Examples
    --------
    >>> with itk_threads(1):
    ...     sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    1
    """
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _align(fixed, fixed_affine, moving, moving_affine, fixed_mask, moving_mask, affine, iterations, levels,
           affine_levels, sampling, seed):
    fixed_image = to_sitk(np.asarray(fixed, np.float32), fixed_affine)
    moving_image = to_sitk(np.asarray(moving, np.float32), moving_affine)
    start = sitk.CenteredTransformInitializer(
        _masked(fixed, fixed_affine, fixed_mask), _masked(moving, moving_affine, moving_mask),
        sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS)
    mask = None if fixed_mask is None else to_sitk(np.asarray(fixed_mask, np.uint8), fixed_affine)
    rigid = sitk.Euler3DTransform(start)
    method = _method(mask, levels, iterations, sampling, seed)
    method.SetInitialTransform(rigid, inPlace=True)
    method.Execute(fixed_image, moving_image)
    result: sitk.Transform = rigid
    if affine:
        result = sitk.AffineTransform(3)
        result.SetCenter(rigid.GetCenter())
        result.SetMatrix(rigid.GetMatrix())
        result.SetTranslation(rigid.GetTranslation())
        method = _method(mask, affine_levels, iterations, sampling, seed)
        method.SetInitialTransform(result, inPlace=True)
        method.Execute(fixed_image, moving_image)
    return Alignment(matrix=world_matrix(result), metric=float(method.GetMetricValue()),
                     iterations=int(method.GetOptimizerIteration()))


def _masked(image, affine, mask):
    image = np.asarray(image, np.float32)
    if mask is not None:
        image = np.where(mask, image, 0).astype(np.float32)
    return to_sitk(np.maximum(image, 0), affine)


def _method(mask, levels, iterations, sampling, seed):
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    # ITK's seed 0 means "the clock"; coarser levels have fewer voxels, so sample more of them
    method.SetMetricSamplingPercentagePerLevel([min(1.0, sampling * factor) for factor in levels], seed + 1)
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=0.01, numberOfIterations=iterations, relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(levels))
    method.SetSmoothingSigmasPerLevel([factor / 2 for factor in levels])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method
