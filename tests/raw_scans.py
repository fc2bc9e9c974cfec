"""Synthetic raw head scans with a known pose, for the preparation and native-registration tests.

A head is a function of subject coordinates (mm, RAS): skull shell, dark CSF, a brain with
five labelled structures placed asymmetrically, a neck below and a nose in front, so that every
rotation, flip and shift is visible. A scan samples it on any grid (any affine: flips, axis
permutations, anisotropic voxels) after placing the head with a pose matrix ``M`` (subject →
scanner world): voxel ``x`` shows the subject point ``M⁻¹ A x``. Aligning a scan to the
canonical one (``M = I``) should therefore find ``T = M``. :func:`trained_model` gives the
registration tests a tiny model of prepared scans' space with a known field.
"""
import nibabel
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

import hypermorph_nb as hnb

#: Ellipsoid structures of the brain: label → (centre mm, radii mm, intensity).
STRUCTURES = {
    1: ((-30.0, 5.0, 20.0), (28.0, 50.0, 30.0), 0.75),
    2: ((30.0, 5.0, 20.0), (28.0, 50.0, 30.0), 0.65),
    3: ((6.0, 10.0, 12.0), (7.0, 16.0, 9.0), 0.15),
    4: ((-22.0, -32.0, -8.0), (12.0, 12.0, 10.0), 0.95),
    5: ((4.0, -48.0, -30.0), (26.0, 14.0, 12.0), 0.55),
}


def _inside(points, centre, radii):
    return (((points - np.asarray(centre)) / np.asarray(radii)) ** 2).sum(axis=-1) <= 1


def head(points):
    """Intensity (0..1) and labels of the head at subject points ``(..., 3)`` in mm."""
    image = np.zeros(points.shape[:-1], np.float32)
    labels = np.zeros(points.shape[:-1], np.int16)
    image[_inside(points, (0, 0, 0), (72, 90, 78))] = 0.55                      # skull, scalp
    image[_inside(points, (0, 0, 0), (66, 84, 72))] = 0.08                      # CSF
    neck = (np.hypot(points[..., 0] / 38, (points[..., 1] + 10) / 42) <= 1) & (points[..., 2] < -40) \
        & (points[..., 2] > -120)
    image[neck] = 0.45
    image[_inside(points, (0, 88, -20), (10, 14, 16))] = 0.5                   # nose
    brain = _inside(points, (0, 0, 5), (62, 80, 62))
    image[brain] = 0.45
    for value, (centre, radii, level) in STRUCTURES.items():
        inside = brain & _inside(points, centre, radii)
        image[inside], labels[inside] = level, value
    labels[brain & (labels == 0)] = 6
    return image, labels


def random_pose(rng, *, degrees=15.0, shift=10.0, scale=0.05):
    """A pose matrix: rotation up to ``degrees`` about a random axis, shift, scale per axis."""
    axis = rng.normal(size=3)
    rotation = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(rng.uniform(5, degrees)))
    pose = np.eye(4)
    pose[:3, :3] = rotation.as_matrix() @ np.diag(rng.uniform(1 - scale, 1 + scale, size=3))
    pose[:3, 3] = rng.uniform(-shift, shift, size=3)
    return pose


def storage_affine(rng, voxel_sizes, shape):
    """A non-RAS affine: axes permuted and flipped, centred on the scanner origin."""
    order = rng.permutation(3)
    matrix = np.zeros((3, 3))
    for column, axis in enumerate(order):
        matrix[axis, column] = rng.choice([-1.0, 1.0]) * voxel_sizes[column]
    affine = np.eye(4)
    affine[:3, :3] = matrix
    affine[:3, 3] = -matrix @ (np.asarray(shape) - 1) / 2 + rng.uniform(-5, 5, size=3)
    return affine


def raw_scan(pose, affine, shape, *, rng, outlier=True, units=3000.0):
    """A scan of the posed head on ``(shape, affine)``: scanner units, noise, one bright voxel."""
    voxels = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), axis=-1)
    to_subject = np.linalg.inv(pose) @ affine
    points = voxels @ to_subject[:3, :3].T + to_subject[:3, 3]
    image, labels = head(points)
    image = ndimage.gaussian_filter(image, 0.7) * units + rng.normal(0, 0.01 * units, size=shape)
    image = np.maximum(image, 0).astype(np.float32)
    if outlier:
        image[tuple(np.asarray(shape) // 3)] = 10 * units                       # one bright voxel
    return image, labels


def write_cohort(folder, rng, *, count, shape=(96, 96, 96), labels=True, canonical_first=True):
    """Write ``count`` raw scans (and ``labels/``) into ``folder``; return their pose matrices.

    The first is canonical (``M = I``, RAS 2.5 mm voxels) unless ``canonical_first`` is False;
    the others have random poses, axis orders, flips and anisotropic voxels (2–3 mm).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if labels:
        (folder / "labels").mkdir(exist_ok=True)
    poses = []
    for index in range(count):
        if index == 0 and canonical_first:
            pose, sizes = np.eye(4), (2.5, 2.5, 2.5)
            affine = np.diag([*sizes, 1.0])
            affine[:3, 3] = -np.asarray(sizes) * (np.asarray(shape) - 1) / 2
        else:
            pose, sizes = random_pose(rng), rng.uniform(2.0, 3.0, size=3)
            affine = storage_affine(rng, sizes, shape)
        image, label_map = raw_scan(pose, affine, shape, rng=rng)
        name = f"scan{index}.nii.gz"
        nibabel.save(nibabel.Nifti1Image(image, affine), folder / name)
        if labels:
            nibabel.save(nibabel.Nifti1Image(label_map, affine), folder / "labels" / name)
        poses.append(pose)
    return poses


def pose_error(found, expected, points):
    """Largest distance (mm) between two world maps over ``points``, and their rotation angle (°)."""
    moved = points @ found[:3, :3].T + found[:3, 3]
    truth = points @ expected[:3, :3].T + expected[:3, 3]
    distance = float(np.linalg.norm(moved - truth, axis=1).max())

    def rotation(matrix):
        u, _, vt = np.linalg.svd(matrix[:3, :3])
        return u @ vt

    angle = Rotation.from_matrix(rotation(found) @ rotation(expected).T).magnitude()
    return distance, float(np.degrees(angle))


#: A tiny U-Net for the registration tests' models.
TINY = dict(nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], hyper_units=(4, 4))


def trained_model(dataset, *, shift=(2.0, -1.0, 1.0)):
    """A tiny model trained for a few steps (so it knows its space), then given a known field.

    A network trained for a few steps outputs sub-voxel noise, where the nearest-neighbour warp
    in the model's space rounds the field away and stops being a reference for the native Dice.
    The flow layer is set to output a constant displacement of ``shift`` voxels instead: a field
    of a few voxels that every step of the chain must carry with its sign and axis order. Whole
    voxels, so that the nearest-neighbour warp in the model's space is exact (a fractional field
    is rounded there, which alone moves a 148-structure Dice by a few hundredths).
    """
    model = hnb.build_hypermorph(dataset.shape, seed=0, **TINY)
    hnb.train(model, dataset, epochs=1, steps_per_epoch=4, learning_rate=1e-3, verbose=False, seed=0)
    flow = next(layer for layer in model.submodules if getattr(layer, "name", "") == "hypermorph_flow")
    kernel, _ = flow.get_weights()
    flow.set_weights([np.zeros_like(kernel), np.asarray(shift, np.float32)])
    return model
