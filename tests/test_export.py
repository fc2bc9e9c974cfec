"""export_registration: NIfTI files with the fixed affine, the field convention re-checked with scipy."""
import json
import os
import stat
import warnings

import nibabel
import numpy as np
import pytest
from scipy import ndimage

import hypermorph_nb as hnb
from hypermorph_nb.registration import export

from tests.conftest import TINY_FEATURES
from tests.test_registration import deforming

VOLUME = (16, 16, 16)


@pytest.fixture(scope="module")
def vxm_3d():
    return deforming(hnb.build_vxm(VOLUME, nb_features=TINY_FEATURES, seed=0), scale=0.05)


def smooth(shape, seed):
    volume = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.5)
    return ((volume - volume.min()) / (volume.max() - volume.min())).astype(np.float32)


def labels_of(image):
    return np.digitize(image, [0.3, 0.5, 0.7]).astype(np.int16)


def save(array, affine, path):
    nibabel.save(nibabel.Nifti1Image(array, affine), str(path))
    return str(path)


def read_flow(path):
    """flow.nii.gz as ``(*spatial, C)``, after checking it is stored as a NIfTI vector image."""
    image = nibabel.load(path)
    assert image.header.get_intent()[0] == "vector" and image.ndim == 5 and image.shape[3] == 1
    flow = image.get_fdata()[:, :, :, 0]
    return flow[:, :, 0] if image.shape[2] == 1 and image.shape[4] == 2 else flow


def rewarp(moving, flow, order=1):
    """moving sampled at x + u(x) with scipy: the documented convention."""
    grid = np.meshgrid(*[np.arange(n, dtype=float) for n in flow.shape[:-1]], indexing="ij")
    coords = [axis + flow[..., i] for i, axis in enumerate(grid)]
    return ndimage.map_coordinates(moving, coords, order=order, mode="nearest")


def interior(flow, margin=1):
    """Voxels whose sampling point x + u(x) lies inside the image, away from its border."""
    grid = np.meshgrid(*[np.arange(n, dtype=float) for n in flow.shape[:-1]], indexing="ij")
    inside = [(axis + flow[..., i] >= margin) & (axis + flow[..., i] <= n - 1 - margin)
              for i, (axis, n) in enumerate(zip(grid, flow.shape[:-1]))]
    return np.logical_and.reduce(inside)


def test_3d_files_carry_the_fixed_affine_and_the_flow_rewarps_the_moving_image(vxm_3d, tmp_path):
    affine = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
    moving, fixed = smooth(VOLUME, 0), smooth(VOLUME, 1)
    paths = hnb.export_registration(
        vxm_3d, save(moving, affine, tmp_path / "a.nii.gz"), save(fixed, affine, tmp_path / "b.nii.gz"),
        tmp_path / "out", moving_labels=save(labels_of(moving), affine, tmp_path / "a_seg.nii.gz"))
    assert sorted(paths.written()) == ["jacobian", "moved", "moved_labels", "sidecar", "transform"]
    assert paths.transform.name == "flow.nii.gz"
    files = {name: nibabel.load(path) for name, path in paths.written().items() if name != "sidecar"}
    for image in files.values():
        np.testing.assert_allclose(image.affine, affine)
    moved = files["moved"].get_fdata()
    flow = read_flow(paths.transform)
    assert moved.shape == VOLUME and flow.shape == (*VOLUME, 3)
    assert np.abs(flow).max() > 0.5, "the test needs a field of at least half a voxel"
    mask = interior(flow)
    assert mask.mean() > 0.5
    np.testing.assert_allclose(moved[mask], rewarp(moving, flow)[mask], atol=1e-4)
    # labels: nearest neighbour, the same field
    warped = np.asarray(files["moved_labels"].dataobj)
    assert np.issubdtype(warped.dtype, np.integer)
    assert set(np.unique(warped)) <= set(np.unique(labels_of(moving)))
    assert (warped[mask] == rewarp(labels_of(moving), flow, order=0)[mask]).mean() > 0.98
    np.testing.assert_allclose(files["jacobian"].get_fdata(), hnb.metrics.jacobian_determinant(flow),
                               atol=1e-4)
    sidecar = json.loads(open(paths.sidecar).read())
    assert sidecar["lam"] is None and sidecar["flow_units"] == "voxel"
    assert sidecar["model"]["kind"] == "vxm" and "moving(x + u[x])" in sidecar["flow_convention"]
    assert not [name for name in os.listdir(tmp_path / "out") if name.startswith(".")]


def test_mm_units_are_the_voxel_field_in_world_axes(vxm_3d, tmp_path):
    affine = np.array([[0, -1.5, 0, 10], [2.0, 0, 0, -5], [0, 0, 1.0, 3], [0, 0, 0, 1]])
    moving, fixed = smooth(VOLUME, 2), smooth(VOLUME, 3)
    voxel = hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "v", fixed_affine=affine)
    mm = hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "mm", fixed_affine=affine, units="mm")
    u = read_flow(voxel.transform)
    d = read_flow(mm.transform)
    np.testing.assert_allclose(d, u @ affine[:3, :3].T, atol=1e-4)
    # the world point of fixed voxel x plus d is the world point of voxel x + u
    x = np.array([3, 4, 5])
    np.testing.assert_allclose(affine[:3, :3] @ x + affine[:3, 3] + d[3, 4, 5],
                               affine[:3, :3] @ (x + u[3, 4, 5]) + affine[:3, 3], atol=1e-4)


def test_2d_export_with_arrays_and_a_hypermorph_lambda(tmp_path):
    model = deforming(hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, seed=0), scale=0.5)
    moving, fixed = smooth((32, 32), 4), smooth((32, 32), 5)
    affine = np.diag([0.8, 0.8, 1.0, 1.0])
    paths = hnb.export_registration(model, moving, fixed, tmp_path, lam=0.3, fixed_affine=affine,
                                    moving_labels=labels_of(moving))
    moved = nibabel.load(paths.moved).get_fdata()
    flow = read_flow(paths.transform)
    assert moved.shape == (32, 32) and flow.shape == (32, 32, 2)
    assert np.abs(flow).max() > 1, "the test needs a field of some voxels"
    np.testing.assert_allclose(nibabel.load(paths.moved).affine, affine)
    mask = interior(flow)
    np.testing.assert_allclose(moved[mask], rewarp(moving, flow)[mask], atol=1e-4)
    expected, _ = hnb.register(model, moving, fixed, lam=0.3)
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    assert json.loads(open(paths.sidecar).read())["lam"] == 0.3


def test_an_interrupted_export_leaves_no_half_files(vxm_3d, tmp_path, monkeypatch):
    moving, fixed = smooth(VOLUME, 0), smooth(VOLUME, 1)
    first = hnb.export_registration(vxm_3d, moving, fixed, tmp_path, fixed_affine=np.eye(4))
    before = {name: open(path, "rb").read() for name, path in first.written().items()}
    real_save, calls = nibabel.save, []

    def failing_save(image, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_save(image, path)

    monkeypatch.setattr(export.nibabel, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        hnb.export_registration(vxm_3d, fixed, moving, tmp_path, fixed_affine=np.eye(4))
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in first.written().values())
    assert {name: open(path, "rb").read() for name, path in first.written().items()} == before


def test_bad_files_are_refused_naming_the_file_and_the_fix(vxm_3d, tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    moving = save(smooth(VOLUME, 0), affine, tmp_path / "a.nii.gz")
    fixed = save(smooth(VOLUME, 1), affine, tmp_path / "b.nii.gz")
    series = save(np.zeros((*VOLUME, 3), np.float32), affine, tmp_path / "bold.nii.gz")
    with pytest.raises(ValueError, match=r"bold\.nii\.gz: holds a 4D array .*time series.*slicer"):
        hnb.export_registration(vxm_3d, series, fixed, tmp_path / "out")
    other = affine.copy()
    other[:3, 3] = 5.0
    shifted = save(smooth(VOLUME, 0), other, tmp_path / "shifted.nii.gz")
    with pytest.raises(ValueError, match=r"shifted\.nii\.gz and .*b\.nii\.gz lie on different voxel grids"):
        hnb.export_registration(vxm_3d, shifted, fixed, tmp_path / "out")
    with pytest.warns(UserWarning, match="resampled onto the grid"):
        paths = hnb.export_registration(vxm_3d, shifted, fixed, tmp_path / "out", resample=True)
    assert json.loads(open(paths.sidecar).read())["resampled_moving"] is True
    small_seg = save(np.zeros((8, 8, 8), np.int16), affine, tmp_path / "seg.nii.gz")
    with pytest.raises(ValueError, match=r"seg\.nii\.gz has shape \(8, 8, 8\) .*label map of the moving"):
        hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "out", moving_labels=small_seg)
    with pytest.raises(ValueError, match=r"missing\.nii\.gz: no such file"):
        hnb.export_registration(vxm_3d, str(tmp_path / "missing.nii.gz"), fixed, tmp_path / "out")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match=r"broken\.nii\.gz: cannot be read"):
        hnb.export_registration(vxm_3d, moving, str(tmp_path / "broken.nii.gz"), tmp_path / "out")
    with pytest.raises(ValueError, match="carries its own affine"):
        hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "out", fixed_affine=affine)
    with pytest.raises(ValueError, match="units must be"):
        hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "out", units="cm")


def test_2d_slices_stored_as_nifti_of_a_shape_the_unet_cannot_pool(tmp_path):
    # (20, 28) is padded inside the model; the slice files are (20, 28, 1) as 2D NIfTI often are
    model = deforming(hnb.build_vxm((20, 28), nb_features=TINY_FEATURES, seed=0), scale=0.2)
    affine = np.diag([1.2, 1.2, 3.0, 1.0])
    moving, fixed = smooth((20, 28), 6), smooth((20, 28), 7)
    paths = hnb.export_registration(model, save(moving[..., None], affine, tmp_path / "m.nii.gz"),
                                    save(fixed[..., None], affine, tmp_path / "f.nii.gz"), tmp_path / "out")
    moved = nibabel.load(paths.moved).get_fdata()
    flow = read_flow(paths.transform)
    assert moved.shape == (20, 28) and flow.shape == (20, 28, 2) and np.abs(flow).max() > 0.5
    mask = interior(flow)
    np.testing.assert_allclose(moved[mask], rewarp(moving, flow)[mask], atol=1e-4)


def test_files_are_read_as_the_data_loaders_read_them(vxm_3d, tmp_path):
    # MGZ keeps its affine, a .npy label map has none (it takes the moving image's grid)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    moving = smooth(VOLUME, 0)
    mgz = tmp_path / "a.mgz"
    nibabel.save(nibabel.MGHImage(moving, affine), str(mgz))
    np.save(tmp_path / "a_seg.npy", labels_of(moving))
    paths = hnb.export_registration(vxm_3d, mgz, save(smooth(VOLUME, 1), affine, tmp_path / "b.nii.gz"),
                                    tmp_path / "out", moving_labels=tmp_path / "a_seg.npy")
    np.testing.assert_allclose(nibabel.load(paths.moved_labels).affine, affine)
    assert json.loads(open(paths.sidecar).read())["moving"] == str(mgz)
    with pytest.raises(ValueError, match=r"fixed image: the affine is singular"):
        hnb.export_registration(vxm_3d, moving, moving, tmp_path / "out",
                                fixed_affine=np.diag([2.0, 0.0, 2.0, 1.0]), moving_affine=affine)
    with pytest.raises(ValueError, match=r"fixed image: the last row of an affine"):
        hnb.export_registration(vxm_3d, moving, moving, tmp_path / "out",
                                fixed_affine=np.ones((4, 4)), moving_affine=affine)


def test_flow_is_a_vector_image_that_simpleitk_reads_as_displacements(vxm_3d, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    paths = hnb.export_registration(vxm_3d, smooth(VOLUME, 0), smooth(VOLUME, 1), tmp_path, fixed_affine=affine)
    image = sitk.ReadImage(paths.transform)
    assert image.GetDimension() == 3 and image.GetNumberOfComponentsPerPixel() == 3
    assert image.GetSize() == VOLUME and image.GetSpacing() == (2.0, 2.0, 2.0)
    # SimpleITK's arrays are (k, j, i, component): the same vectors as nibabel's (i, j, k, component)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image).transpose(2, 1, 0, 3), read_flow(paths.transform))


def test_an_unknown_affine_is_written_as_identity_only_with_a_warning(vxm_3d, tmp_path):
    moving, fixed = smooth(VOLUME, 0), smooth(VOLUME, 1)
    with pytest.warns(UserWarning, match=r"the fixed image \(an array\) has no affine.*identity: 1 mm "
                                         r"voxels with the origin at 0.*pass fixed_affine="):
        paths = hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "unknown")
    np.testing.assert_allclose(nibabel.load(paths.moved).affine, np.eye(4))
    assert json.loads(open(paths.sidecar).read())["affine_known"] is False
    np.save(tmp_path / "fixed.npy", fixed)   # a file without an affine is named in the warning
    with pytest.warns(UserWarning, match=r"fixed\.npy has no affine"):
        hnb.export_registration(vxm_3d, moving, tmp_path / "fixed.npy", tmp_path / "npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a known affine: no warning
        hnb.export_registration(vxm_3d, moving, fixed, tmp_path / "known", fixed_affine=np.diag([2.0, 2, 2, 1]))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_exported_files_follow_the_umask(vxm_3d, tmp_path, umask):
    previous = os.umask(umask)
    try:
        paths = hnb.export_registration(vxm_3d, smooth(VOLUME, 0), smooth(VOLUME, 1), tmp_path / "out",
                                        fixed_affine=np.eye(4))
    finally:
        os.umask(previous)
    modes = {name: stat.S_IMODE(os.stat(path).st_mode) for name, path in paths.written().items()}
    assert modes == {name: 0o666 & ~umask for name in paths.written()}, {k: oct(v) for k, v in modes.items()}
