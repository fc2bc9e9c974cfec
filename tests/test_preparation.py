"""prepare_scans: raw scans (any pose, orientation, voxel size, intensities) onto one aligned grid."""
import itertools
import json
import pathlib
import shutil
import warnings

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

import hypermorph_nb as hnb
from hypermorph_nb import prepare_scans
from hypermorph_nb.data import Dataset, PreparedScans, load_folder
from hypermorph_nb.data import scans
from hypermorph_nb.data.alignment import (RAS_TO_LPS, from_sitk, isotropic_grid, itk_affine, resample,
                                          to_sitk, world_matrix)
from hypermorph_nb.metrics import mean_dice
from hypermorph_nb.networks.description import ModelSpace
from hypermorph_nb.networks.models import describe
from raw_scans import pose_error, write_cohort

IXI_RAW = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_raw"
IXI3D = IXI_RAW.parent / "ixi3d" / "ixi3d_150.npz"


def _oblique_affine(rng):
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(rng.uniform(0.8, 3.0, size=3))
    affine[:3, 3] = rng.uniform(-50, 50, size=3)
    return affine


def test_nibabel_ras_and_itk_lps_describe_the_same_voxels(tmp_path, rng):
    affine = _oblique_affine(rng)
    array = rng.random((5, 6, 7)).astype(np.float32)
    image = to_sitk(array, affine)
    for index in [(0, 0, 0), (4, 1, 6), (2, 5, 3)]:
        ras = affine @ [*index, 1.0]
        assert np.allclose(image.TransformIndexToPhysicalPoint(index), (RAS_TO_LPS @ ras)[:3])
        assert image.GetPixel(*index) == array[index]
    back, back_affine = from_sitk(image)
    assert np.array_equal(back, array) and np.allclose(back_affine, affine)
    nibabel.save(nibabel.Nifti1Image(array, affine), tmp_path / "scan.nii.gz")   # ITK's own reader agrees
    read = sitk.ReadImage(str(tmp_path / "scan.nii.gz"))
    assert np.allclose(from_sitk(read)[1], affine, atol=1e-4)
    assert np.allclose(read.GetOrigin(), image.GetOrigin(), atol=1e-4)
    with pytest.raises(ValueError, match="shear"):
        to_sitk(array, np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))


def test_world_matrices_and_itk_transforms_move_points_alike(rng):
    matrix = _oblique_affine(rng)
    transform = itk_affine(matrix)
    point = rng.uniform(-80, 80, size=3)
    lps = transform.TransformPoint([float(v) for v in (RAS_TO_LPS[:3, :3] @ point)])
    assert np.allclose(RAS_TO_LPS[:3, :3] @ lps, matrix[:3, :3] @ point + matrix[:3, 3])
    assert np.allclose(world_matrix(transform), matrix)


def test_resample_agrees_with_sitk_resample(rng):
    """Our resampling through a world matrix is ITK's, LPS conversions included."""
    array = np.zeros((30, 28, 26), np.float32)
    array[8:20, 6:15, 10:22] = 1.0
    array[12:16, 9:25, 4:9] = 2.0
    affine = _oblique_affine(rng)
    shape, grid = isotropic_grid(array.shape, affine, 2.0)
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_rotvec(rng.uniform(-0.2, 0.2, size=3)).as_matrix()
    matrix[:3, 3] = rng.uniform(-3, 3, size=3)
    ours = resample(array, affine, shape, grid, transform=matrix, order=0)
    theirs = sitk.Resample(to_sitk(array, affine), to_sitk(np.zeros(shape, np.float32), grid),
                           itk_affine(matrix), sitk.sitkNearestNeighbor, 0.0)
    theirs = from_sitk(theirs)[0]
    assert (ours != theirs).mean() < 0.002           # ties of nearest neighbour may round apart
    assert ours.sum() > 100


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Four raw scans: one canonical, three posed (rotation, shift, scale, flips, anisotropic voxels)."""
    folder = tmp_path_factory.mktemp("raw")
    poses = write_cohort(folder, np.random.default_rng(1), count=4)
    return folder, poses


@pytest.fixture(scope="module")
def prepared(cohort, tmp_path_factory):
    folder, _ = cohort
    return prepare_scans(folder, tmp_path_factory.mktemp("prepared"), reference=0, spacing=2.0)


def test_recovers_each_scans_pose_within_a_voxel_and_a_degree(cohort, prepared):
    _, poses = cohort
    assert isinstance(prepared, PreparedScans) and prepared.failed == []
    brain = np.argwhere(prepared.reference.mask) @ prepared.reference.affine[:3, :3].T \
        + prepared.reference.affine[:3, 3]
    for found, pose in zip(prepared.transforms, poses):
        distance, degrees = pose_error(found, pose, brain)
        assert distance < 2.0 and degrees < 1.0, (distance, degrees)


def test_prepared_scans_are_on_one_ras_grid_robustly_scaled_and_masked(prepared):
    data = prepared.dataset
    assert isinstance(data, Dataset) and len(data) == 4 and data.has_labels
    assert np.allclose(data.affine, np.diag([2.0, 2.0, 2.0, 1.0]) + np.pad(data.affine[:3, 3:], ((0, 1), (3, 0))))
    assert all(size % 8 == 0 for size in data.shape)
    assert data.images.min() >= 0 and data.images.max() <= 1
    brain = data.labels > 0
    # one voxel at ten times the scanner range: min-max scaling would put the brain below 0.1
    assert np.median(data.images[..., 0][brain]) > 0.3
    assert not data.images[..., 0][~brain].any()                  # masked outside the brain
    for index in range(1, 4):
        assert mean_dice(data.labels[index], data.labels[0]) > 0.85


def test_writes_a_folder_load_folder_reads_with_transforms_itk_reads(cohort, prepared):
    folder, _ = cohort
    out = pathlib.Path(prepared.paths["manifest"]).parent
    again = load_folder(out)
    assert again.names == prepared.dataset.names and again.has_labels
    assert np.allclose(again.images, prepared.dataset.images, atol=1e-6)
    assert np.allclose(again.affine, prepared.dataset.affine)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [scan["status"] for scan in manifest["scans"]] == ["ok"] * 4
    assert manifest["scans"][2]["source"].endswith("scan2.nii.gz")
    assert np.allclose(manifest["scans"][2]["transform"], prepared.transforms[2], atol=1e-5)
    assert manifest["scans"][2]["affine_label_dice"] > 0.85
    assert (out / "qc" / "qc.png").stat().st_size > 10_000
    # the .tfm, applied by ITK to the raw label map, gives the prepared label map
    transform = sitk.ReadTransform(str(out / "transforms" / "scan2.tfm"))
    raw_labels = sitk.ReadImage(str(folder / "labels" / "scan2.nii.gz"))
    grid = to_sitk(np.zeros(prepared.dataset.shape, np.float32), prepared.dataset.affine)
    by_itk = from_sitk(sitk.Resample(raw_labels, grid, transform, sitk.sitkNearestNeighbor, 0))[0]
    assert (by_itk != prepared.dataset.labels[2]).mean() < 0.002
    assert np.allclose(np.load(out / "transforms" / "scan2.npy"), prepared.transforms[2])


def test_the_dataset_carries_its_template_into_the_model_space(prepared):
    space = ModelSpace.from_dataset(prepared.dataset)
    assert np.array_equal(space.reference, prepared.reference.image)
    assert np.array_equal(space.reference_mask, prepared.reference.mask)
    half = prepared.dataset[:2]
    assert half.reference is prepared.dataset.reference
    with pytest.raises(ValueError, match=r"Dataset.reference must have the images' spatial shape"):
        Dataset(images=half.images, reference=np.zeros((4, 4, 4)))


@pytest.mark.slow   # template rounds over posed scans; the other preparation tests stay fast
def test_cohort_template_aligns_posed_scans_to_each_other(cohort, tmp_path):
    folder, poses = cohort
    result = prepare_scans(folder, tmp_path / "out", reference=None, template_rounds=1)
    assert result.failed == []
    data = result.dataset
    pairs = list(itertools.combinations(range(len(data)), 2))
    assert np.mean([mean_dice(data.labels[a], data.labels[b]) for a, b in pairs]) > 0.85
    relative = [np.linalg.inv(result.transforms[0]) @ t for t in result.transforms]   # pose of i vs 0
    brain = np.argwhere(result.reference.mask) @ data.affine[:3, :3].T + data.affine[:3, 3]
    for found, pose in zip(relative, poses):       # two alignments to a template: errors of each add up
        distance, degrees = pose_error(found, pose, brain)
        assert distance < 4.0 and degrees < 2.0, (distance, degrees)
    assert result.reference.mask is not None and result.reference.labels is not None


def test_scan_without_a_mask_gets_the_templates_and_a_warning(cohort, prepared, tmp_path):
    folder, _ = cohort
    raw = tmp_path / "raw"
    (raw / "labels").mkdir(parents=True)
    for index in range(3):
        shutil.copy(folder / f"scan{index}.nii.gz", raw)
        if index != 2:
            shutil.copy(folder / "labels" / f"scan{index}.nii.gz", raw / "labels")
    with pytest.warns(UserWarning, match=r"scan2\.nii\.gz: has no brain mask.*template's brain mask"):
        result = prepare_scans(raw, tmp_path / "out", reference=0)
    record = result.manifest["scans"][2]
    assert record["status"] == "ok" and record["mask"] == "template"
    assert result.dataset.labels is None and not (tmp_path / "out" / "labels").exists()
    truth = prepared.dataset.labels[2] > 0                          # the same scan, prepared with its labels
    image = result.dataset.images[2, ..., 0]
    assert mean_dice((image > 0).astype(int), truth.astype(int)) > 0.9


def _two_scans_of(cohort, tmp_path):
    """The cohort's folder, and a new folder holding copies of its first two scans with their labels."""
    folder, _ = cohort
    raw = tmp_path / "raw"
    (raw / "labels").mkdir(parents=True)
    for name in ("scan0.nii.gz", "scan1.nii.gz"):
        shutil.copy(folder / name, raw)
        shutil.copy(folder / "labels" / name, raw / "labels")
    return folder, raw


def test_a_scan_that_does_not_align_is_reported_and_left_out(cohort, tmp_path):
    folder, raw = _two_scans_of(cohort, tmp_path)
    affine = nibabel.load(folder / "scan1.nii.gz").affine
    noise = np.random.default_rng(0).random((96, 96, 96)).astype(np.float32) * 3000
    nibabel.save(nibabel.Nifti1Image(noise, affine), raw / "noise.nii.gz")
    with pytest.warns(UserWarning, match=r"noise\.nii\.gz: left out, its alignment failed"):
        result = prepare_scans(raw, tmp_path / "out", reference=raw / "scan0.nii.gz")
    assert result.failed == ["noise"] and "noise" not in result.dataset.names
    assert len(result.transforms) == len(result.dataset) == 2
    record = next(scan for scan in result.manifest["scans"] if scan["name"] == "noise")
    assert record["status"] == "failed" and "correlation" in record["reason"]
    assert not (tmp_path / "out" / "noise.nii.gz").exists()
    assert load_folder(tmp_path / "out").names == result.dataset.names


def test_an_optimizer_that_raises_fails_that_scan_only(cohort, tmp_path, monkeypatch):
    folder, _ = cohort
    original, calls = scans.align_affine, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("Exception thrown in SimpleITK ImageRegistrationMethod_Execute:\n"
                               "All samples map outside moving image buffer")
        return original(*args, **kwargs)

    monkeypatch.setattr(scans, "align_affine", flaky)
    with pytest.warns(UserWarning, match=r"scan2\.nii\.gz: left out.*outside moving image buffer"):
        result = prepare_scans(folder, tmp_path / "out", reference=0)
    assert result.failed == ["scan2"]
    assert result.manifest["scans"][2]["transform"] is None


def _save(path, array, affine=None):
    nibabel.save(nibabel.Nifti1Image(np.asarray(array), np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine),
                 path)
    return path


@pytest.mark.parametrize("case, match", [
    ("4d", r"bad\.nii\.gz: holds a 4D array.*split it"),
    ("2d", r"bad\.nii\.gz: is a 2D image.*3D"),
    ("constant", r"bad\.nii\.gz: the scan is constant.*leave it out"),
    ("empty", r"bad\.nii\.gz: the scan is empty"),
    ("labels_grid", r"labels/bad\.nii\.gz: its affine differs.*resample it onto the image with nearest"),
])
def test_bad_scans_are_refused_naming_the_file_and_the_fix(cohort, tmp_path, case, match):
    folder, raw = _two_scans_of(cohort, tmp_path)
    volume = np.random.default_rng(0).random((20, 20, 20)).astype(np.float32)
    arrays = {"4d": np.stack([volume, volume], axis=-1), "2d": volume[..., 0], "constant": np.full_like(volume, 7),
              "empty": np.zeros_like(volume), "labels_grid": volume}
    _save(raw / "bad.nii.gz", arrays[case])
    shifted = np.diag([2.0, 2.0, 2.0, 1.0])
    shifted[:3, 3] = 10 if case == "labels_grid" else 0
    _save(raw / "labels" / "bad.nii.gz", (volume > 0.5).astype(np.int16), shifted)
    with pytest.raises(ValueError, match=match):
        prepare_scans(raw, tmp_path / "out", reference=0)


def test_a_template_of_another_dimension_is_refused(cohort, tmp_path):
    folder, _ = cohort
    template = _save(tmp_path / "template2d.nii.gz", np.random.default_rng(0).random((40, 40)).astype(np.float32))
    with pytest.raises(ValueError, match=r"template2d\.nii\.gz: the template is 2D.*give a 3D template"):
        prepare_scans([folder / "scan0.nii.gz", folder / "scan1.nii.gz"], tmp_path / "out", reference=template)


def test_scans_without_any_mask_and_no_template_mask_are_refused(cohort, tmp_path):
    folder, _ = cohort
    paths = [folder / "scan0.nii.gz", folder / "scan1.nii.gz"]
    with pytest.raises(ValueError, match=r"scan0\.nii\.gz: has no brain mask.*SynthStrip"):
        prepare_scans(paths, tmp_path / "out", reference=0, labels=None)


def test_a_template_file_with_its_mask(prepared, cohort, tmp_path):
    folder, poses = cohort
    result = prepare_scans([folder / "scan1.nii.gz", folder / "scan3.nii.gz"], tmp_path / "out",
                           reference=prepared.paths["template"], reference_mask=prepared.paths["template_mask"])
    assert result.failed == [] and result.dataset.shape == prepared.dataset.shape
    brain = np.argwhere(result.reference.mask) @ result.dataset.affine[:3, :3].T + result.dataset.affine[:3, 3]
    template_pose = prepared.transforms[0]          # the template file lies in scan0's world
    for found, pose in zip(result.transforms, (poses[1], poses[3])):
        distance, degrees = pose_error(found, pose @ template_pose, brain)
        assert distance < 2.0 and degrees < 1.0


@pytest.mark.slow
@pytest.mark.skipif(not IXI_RAW.is_dir() or not IXI3D.is_file(),
                    reason="needs ../shared/data/ixi_raw and ../shared/data/ixi3d (not part of the repository)")
def test_ixi_raw_scans_align_as_well_as_the_prepared_ixi3d_copy(tmp_path):
    scans = sorted(IXI_RAW.glob("*.nii.gz"))[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = prepare_scans(scans, tmp_path / "out", template_rounds=1)
    data = result.dataset
    assert result.failed == [] and data.has_labels
    assert min(scan["mask_dice"] for scan in result.manifest["scans"]) > 0.9
    with np.load(IXI3D) as archive:
        subjects = list(archive["subjects"])
        segs = archive["segs"]
    index = [subjects.index(name.replace("_T1", "")) for name in data.names]
    pairs = list(itertools.combinations(range(len(data)), 2))
    ours = np.mean([mean_dice(data.labels[a], data.labels[b]) for a, b in pairs])
    theirs = np.mean([mean_dice(segs[index[a]], segs[index[b]]) for a, b in pairs])
    assert ours >= theirs - 0.03, (ours, theirs)


def _model_in_space_of(prepared):
    model = hnb.build_hypermorph(prepared.dataset.shape, nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]],
                                 conditioning="film", seed=0)
    describe(model, space=ModelSpace.from_dataset(prepared.dataset))
    return model


def test_scans_go_onto_exactly_a_models_grid_aligned_to_its_reference(prepared, cohort, tmp_path):
    folder, poses = cohort
    model = _model_in_space_of(prepared)
    result = prepare_scans([folder / "scan1.nii.gz", folder / "scan3.nii.gz"], tmp_path / "out", reference=model)
    space = hnb.networks.spec_of(model).space
    assert result.failed == [] and result.dataset.shape == space.shape
    np.testing.assert_array_equal(result.dataset.affine, space.affine)
    np.testing.assert_array_equal(result.reference.image, space.reference)
    brain = np.argwhere(space.reference_mask) @ space.affine[:3, :3].T + space.affine[:3, 3]
    for found, pose in zip(result.transforms, (poses[1], poses[3])):
        distance, degrees = pose_error(found, pose @ prepared.transforms[0], brain)
        assert distance < 2.0 and degrees < 1.0
    again = prepare_scans([folder / "scan1.nii.gz"], tmp_path / "space", reference=space)  # the space itself
    np.testing.assert_allclose(again.dataset.images[0], result.dataset.images[0], atol=1e-6)


@pytest.mark.parametrize("keywords, match", [({"shape": (8, 8, 8)}, "differs from the model's grid"),
                                             ({"spacing": 3.0}, "differs from the model's voxel size")])
def test_a_models_space_refuses_another_grid(prepared, cohort, tmp_path, keywords, match):
    folder, _ = cohort
    with pytest.raises(ValueError, match=match):
        prepare_scans([folder / "scan1.nii.gz"], tmp_path / "out", reference=_model_in_space_of(prepared), **keywords)


def test_a_model_without_a_space_is_refused_as_reference(cohort, tmp_path):
    folder, _ = cohort
    model = hnb.build_vxm((16, 16, 16), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]])
    with pytest.raises(ValueError, match="does not know its space"):
        prepare_scans([folder / "scan1.nii.gz"], tmp_path / "out", reference=model)
