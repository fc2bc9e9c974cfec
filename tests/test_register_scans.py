"""register_scans: two raw scans registered in the model's space, answered on the fixed scan's grid."""
import json
import pathlib

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb import prepare_scans
from hypermorph_nb.data.scans import Reference, Scan, prepare_scan
from hypermorph_nb.metrics import mean_dice
from hypermorph_nb.networks.models import spec_of
from hypermorph_nb.registration import RegistrationFiles
from hypermorph_nb.registration.pairs import Registrar
from raw_scans import TINY, trained_model, write_cohort

IXI_RAW = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_raw"


def _model_space_dice(model, moving, fixed, lam):
    """The Dice of the moving labels warped in the model's space, from the public pieces."""
    space = spec_of(model).space
    reference = Reference(image=space.reference, affine=space.affine, mask=space.reference_mask)
    pair = [prepare_scan(Scan.read(path, labels=labels), reference) for path, labels in (moving, fixed)]
    _, flow = hnb.register(model, pair[0].image, pair[1].image, lam=lam)
    warped = Registrar.for_model(model).warp(pair[0].labels[None], flow[None], interp="nearest")[0]
    return mean_dice(warped, pair[1].labels)


def _check_written(paths, moving, fixed, moving_labels, fixed_labels, model, lam, *, tolerance=0.01):
    moved = nibabel.load(paths.moved)
    fixed_image = nibabel.load(fixed)
    assert moved.shape == fixed_image.shape and np.allclose(moved.affine, fixed_image.affine)
    moved_labels = np.asarray(nibabel.load(paths.moved_labels).dataobj)
    assert moved_labels.shape == fixed_image.shape
    raw_labels = np.asarray(nibabel.load(moving_labels).dataobj)
    assert set(np.unique(moved_labels)) <= set(np.unique(raw_labels))
    # the moved image keeps the moving scan's intensity units
    raw = np.asarray(nibabel.load(moving).dataobj)
    assert np.percentile(moved.get_fdata(), 99.9) > 0.2 * np.percentile(raw, 99.9)
    # Dice in the fixed scan's own space equals the Dice in the model's space
    native = mean_dice(moved_labels, np.asarray(nibabel.load(fixed_labels).dataobj))
    in_model = _model_space_dice(model, (moving, moving_labels), (fixed, fixed_labels), lam)
    assert abs(native - in_model) < tolerance, (native, in_model)
    sidecar = json.loads(pathlib.Path(paths.sidecar).read_text())
    assert sidecar["dice"]["native"] == pytest.approx(native)
    assert sidecar["dice"]["model_space"] == pytest.approx(in_model, abs=1e-3)   # float sums of ITK's threads
    # the written transform, applied by SimpleITK, reproduces the written moved image
    field = nibabel.load(paths.transform)
    assert field.header.get_intent()[0] == "vector"
    transform = sitk.DisplacementFieldTransform(sitk.Cast(sitk.ReadImage(paths.transform), sitk.sitkVectorFloat64))
    by_itk = sitk.Resample(sitk.ReadImage(str(moving)), sitk.ReadImage(str(fixed)), transform, sitk.sitkLinear, 0.0)
    by_itk = sitk.GetArrayFromImage(by_itk).transpose(2, 1, 0)
    written = moved.get_fdata()
    assert np.corrcoef(by_itk.ravel(), written.ravel())[0, 1] > 0.999
    assert np.abs(by_itk - written).max() < 1e-3 * np.abs(written).max()
    labels_by_itk = sitk.Resample(sitk.ReadImage(str(moving_labels)), sitk.ReadImage(str(fixed)), transform,
                                  sitk.sitkNearestNeighbor, 0)
    assert (sitk.GetArrayFromImage(labels_by_itk).transpose(2, 1, 0) != moved_labels).mean() < 0.001
    # the field was carried: a shift of a few voxels costs overlap against the affine alignment alone
    assert native < sidecar["dice"]["affine_only_model_space"] - 0.05


@pytest.fixture
def synthetic_setup(trained_on_prepared_scans):
    """Five posed synthetic scans, a tiny model trained on the first three prepared at 3 mm (conftest)."""
    return trained_on_prepared_scans


def test_a_model_trained_on_prepared_scans_registers_raw_scans_in_their_own_space(synthetic_setup, tmp_path):
    folder, model = synthetic_setup
    assert spec_of(model).space is not None
    moving, fixed = folder / "scan3.nii.gz", folder / "scan4.nii.gz"
    labels = folder / "labels" / "scan3.nii.gz", folder / "labels" / "scan4.nii.gz"
    paths = hnb.register_scans(model, moving, fixed, tmp_path / "out", lam=0.3, moving_labels=labels[0],
                               fixed_labels=labels[1])
    assert set(paths.written()) == {"moved", "moved_labels", "transform", "jacobian", "moving_affine", "fixed_affine",
                                    "sidecar"}
    # the model's grid has 3 mm voxels, these scans 2-3 mm: scores at the two resolutions differ more
    _check_written(paths, moving, fixed, *labels, model, 0.3, tolerance=0.03)


def test_both_file_writers_return_the_same_fields(synthetic_setup, tmp_path):
    folder, model = synthetic_setup
    native = hnb.register_scans(model, folder / "scan3.nii.gz", folder / "scan4.nii.gz", tmp_path / "native",
                                lam=0.3, moving_labels=folder / "labels" / "scan3.nii.gz")
    space = spec_of(model).space
    labels = np.asarray(space.reference_mask, np.int32)
    exported = hnb.export_registration(model, space.reference, space.reference, tmp_path / "exported", lam=0.3,
                                       moving_labels=labels, fixed_affine=space.affine)
    for files in (native, exported):
        assert isinstance(files, RegistrationFiles)
        assert {"moved", "transform", "moved_labels", "sidecar"} <= set(files.written())
        assert all(path.parent == files.out_dir for path in files.written().values())
        assert sorted(path.name for path in files.out_dir.iterdir()) == sorted(
            path.name for path in files.written().values())
        assert files.sidecar.name == "registration.json" and files.moved.name == "moved.nii.gz"
    assert (native.transform.name, exported.transform.name) == ("transform.nii.gz", "flow.nii.gz")
    assert native.jacobian.is_file() and exported.jacobian.is_file()
    assert native.inverse_transform is None and exported.moving_affine is None
    with pytest.warns(DeprecationWarning, match=r"files\.transform"):
        assert exported["flow"] == str(exported.transform)   # the old dict key, one release
    with pytest.raises(KeyError, match="no such file"):
        native["inverse_transform"]


@pytest.mark.slow   # 3D refinement; refine is tested fast in test_refine
def test_refined_registration_is_written_through_the_same_transform(synthetic_setup, tmp_path):
    folder, model = synthetic_setup
    moving, fixed = folder / "scan3.nii.gz", folder / "scan4.nii.gz"
    plain = hnb.register_scans(model, moving, fixed, tmp_path / "plain", lam=0.3)
    refined = hnb.register_scans(model, moving, fixed, tmp_path / "refined", lam=0.3, refine=6)
    assert json.loads(pathlib.Path(refined.sidecar).read_text())["refine_iterations"] == 6
    field, plain_field = (np.asarray(nibabel.load(paths.transform).dataobj) for paths in (refined, plain))
    assert np.abs(field - plain_field).max() > 0.1   # mm: the refinement moved the field
    transform = sitk.DisplacementFieldTransform(sitk.Cast(sitk.ReadImage(refined.transform),
                                                          sitk.sitkVectorFloat64))
    by_itk = sitk.Resample(sitk.ReadImage(str(moving)), sitk.ReadImage(str(fixed)), transform, sitk.sitkLinear, 0.0)
    written = nibabel.load(refined.moved).get_fdata()
    assert np.abs(sitk.GetArrayFromImage(by_itk).transpose(2, 1, 0) - written).max() < 1e-3 * np.abs(written).max()
    with pytest.raises(ValueError, match="refine"):
        hnb.register_scans(model, moving, fixed, tmp_path / "bad", lam=0.3, refine=-1)


def test_a_scan_that_does_not_align_to_the_models_template_is_refused(synthetic_setup, tmp_path):
    folder, model = synthetic_setup
    affine = nibabel.load(folder / "scan1.nii.gz").affine
    noise = np.random.default_rng(0).random((96, 96, 96)).astype(np.float32) * 3000
    nibabel.save(nibabel.Nifti1Image(noise, affine), tmp_path / "noise.nii.gz")
    with pytest.raises(ValueError, match=r"noise\.nii\.gz: its affine alignment to the model's template failed"):
        hnb.register_scans(model, tmp_path / "noise.nii.gz", folder / "scan1.nii.gz", tmp_path / "out", lam=0.5)


def test_register_command_on_raw_scans(synthetic_setup, tmp_path, capsys):
    folder, model = synthetic_setup
    hnb.save_model(model, tmp_path / "model")
    argv = ["register", "--raw", "--model", str(tmp_path / "model"), "--moving", str(folder / "scan3.nii.gz"),
            "--fixed", str(folder / "scan1.nii.gz"), "--lam", "0.5", "--out", str(tmp_path / "out"),
            "--moving-labels", str(folder / "labels" / "scan3.nii.gz")]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "out" / "transform.nii.gz") in printed
    assert nibabel.load(tmp_path / "out" / "moved.nii.gz").shape == nibabel.load(folder / "scan1.nii.gz").shape
    assert main(argv[:-2] + ["--units", "mm"]) == 2
    assert "--units: not used with --raw" in capsys.readouterr().err


def test_prepare_command(tmp_path, capsys):
    write_cohort(tmp_path / "raw", np.random.default_rng(3), count=2)
    assert main(["prepare", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--reference", "0",
                 "--spacing", "4"]) == 0
    assert "2 of 2 scans prepared" in capsys.readouterr().out
    assert hnb.data.load_folder(tmp_path / "out").has_labels
    assert main(["prepare", str(tmp_path / "nothing"), "--out", str(tmp_path / "out2")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_model_without_a_space_is_refused_with_how_to_give_it_one(tmp_path):
    model = hnb.build_hypermorph((16, 16, 16), **TINY)
    with pytest.raises(ValueError, match="does not know its space.*prepare_scans"):
        hnb.register_scans(model, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", tmp_path / "out", lam=0.5)


@pytest.mark.slow
@pytest.mark.skipif(not IXI_RAW.is_dir(), reason="needs ../shared/data/ixi_raw (not part of the repository)")
def test_ixi_raw_pairs_score_the_same_dice_in_native_and_model_space(tmp_path):
    scans = sorted(IXI_RAW.glob("*.nii.gz"))
    prepared = prepare_scans(scans[:2], tmp_path / "prepared", reference=0)
    model = trained_model(prepared.dataset)
    for moving, fixed in ((scans[4], scans[5]), (scans[6], scans[3])):
        labels = IXI_RAW / "labels" / moving.name, IXI_RAW / "labels" / fixed.name
        paths = hnb.register_scans(model, moving, fixed, tmp_path / moving.name, lam=0.5,
                                   moving_labels=labels[0], fixed_labels=labels[1])
        _check_written(paths, moving, fixed, *labels, model, 0.5)
