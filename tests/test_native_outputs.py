"""register_scans' other native outputs: the inverse field, the .tfm affines, the Jacobian, the mask
sources, and every argument refused before any work (the command line before TensorFlow loads).

The written files are read back by SimpleITK, not by our own warp."""
import json
import os
import pathlib
import subprocess
import sys
import time

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.metrics import mean_dice
from hypermorph_nb.networks.models import describe, spec_of
from hypermorph_nb.registration import invert_transform
from raw_scans import TINY

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLIP = np.diag([-1.0, -1.0, 1.0])   # RAS <-> LPS


def _varying(space, *, diffeomorphic, downsample=1):
    """A tiny model in ``space`` whose field (or velocity) varies in space: its inverse is not a mere negation."""
    model = hnb.build_hypermorph(space.shape, seed=0, diffeomorphic=diffeomorphic, downsample=downsample, **TINY)
    describe(model, space=space)
    flow = next(layer for layer in model.submodules if getattr(layer, "name", "") == "hypermorph_flow")
    kernel, _ = flow.get_weights()
    rng = np.random.default_rng(0)
    flow.set_weights([rng.normal(0, 0.1, kernel.shape).astype(np.float32), np.asarray([1.0, -0.5, 0.5], np.float32)])
    return model


@pytest.fixture(scope="module")
def setup(trained_on_prepared_scans):
    """Posed synthetic scans; a tiny trained model with a known shift (conftest); varying models of its space."""
    folder, model = trained_on_prepared_scans
    space = spec_of(model).space
    return folder, model, _Models(space)


class _Models(dict):
    """The varying models by inverse method, each built on first use (the slow tier uses them)."""

    def __init__(self, space):
        super().__init__()
        self.space = space

    def __missing__(self, method):
        options = {"velocity": dict(diffeomorphic=True),
                   "velocity, downsampled": dict(diffeomorphic=True, downsample=2),
                   "InvertDisplacementField": dict(diffeomorphic=False)}[method]
        model = self[method] = _varying(self.space, **options)
        return model


def _lps_points(image, mask):
    """LPS world points of the voxels of a nibabel ``image`` where ``mask`` holds, as an (n, 3) array."""
    voxels = np.argwhere(mask).astype(float)
    ras = voxels @ image.affine[:3, :3].T + image.affine[:3, 3]
    return ras @ FLIP


def _field(path):
    return sitk.DisplacementFieldTransform(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkVectorFloat64))


def _round_trip_voxels(files, moving, brain):
    """|forward(inverse(q)) - q| in moving voxels, over the moving scan's brain, by SimpleITK."""
    image = nibabel.load(moving)
    points = _lps_points(image, brain)[::7]
    forward, inverse = _field(files.transform), _field(files.inverse_transform)
    back = np.array([forward.TransformPoint(inverse.TransformPoint(tuple(p))) for p in points])
    return np.linalg.norm(back - points, axis=1) / np.linalg.norm(image.affine[:3, :3], axis=0).min()


def _warp_by_itk(transform, image, reference, interpolator):
    warped = sitk.Resample(sitk.ReadImage(str(image)), sitk.ReadImage(str(reference)), transform, interpolator, 0)
    return sitk.GetArrayFromImage(warped).transpose(2, 1, 0)


def test_inverse_affines_and_jacobian_written_and_read_by_simpleitk(setup, tmp_path):
    folder, model, _ = setup
    moving, fixed = folder / "scan3.nii.gz", folder / "scan4.nii.gz"
    labels = folder / "labels" / "scan3.nii.gz", folder / "labels" / "scan4.nii.gz"
    files = hnb.register_scans(model, moving, fixed, tmp_path / "out", lam=0.3, moving_labels=labels[0],
                               fixed_labels=labels[1], inverse=True)
    assert set(files.written()) == {"moved", "moved_labels", "transform", "inverse_transform", "jacobian",
                                    "moving_affine", "fixed_affine", "sidecar"}
    assert sorted(p.name for p in files.out_dir.iterdir()) == sorted(p.name for p in files.written().values())
    sidecar = json.loads(files.sidecar.read_text())
    assert "InvertDisplacementField" in sidecar["inverse_method"]
    assert sidecar["mask_sources"] == {"moving": "labels", "fixed": "labels"}
    moving_labels, fixed_labels = (np.asarray(nibabel.load(path).dataobj) for path in labels)
    # the inverse field lies on the moving grid and undoes the forward one within half a voxel over the brain
    inverse = nibabel.load(files.inverse_transform)
    assert inverse.shape[:3] == moving_labels.shape and np.allclose(inverse.affine, nibabel.load(moving).affine)
    errors = _round_trip_voxels(files, moving, moving_labels > 0)
    assert errors.max() < 0.5, np.percentile(errors, [50, 99, 100])
    # SimpleITK brings the fixed labels onto the moving scan through it: as good as the forward direction
    back = _warp_by_itk(_field(files.inverse_transform), labels[1], moving, sitk.sitkNearestNeighbor)
    forward_dice = mean_dice(np.asarray(nibabel.load(files.moved_labels).dataobj), fixed_labels)
    assert abs(mean_dice(back, moving_labels) - forward_dice) < 0.05
    # the .tfm files hold the sidecar's RAS matrices, in LPS
    points = np.random.default_rng(0).uniform(-80, 80, size=(20, 3))
    for name in ("moving", "fixed"):
        matrix = np.asarray(sidecar[f"{name}_affine_transform"])
        read = sitk.ReadTransform(str(getattr(files, f"{name}_affine")))
        by_itk = np.array([read.TransformPoint(tuple(p @ FLIP)) for p in points]) @ FLIP
        assert np.abs(by_itk - (points @ matrix[:3, :3].T + matrix[:3, 3])).max() < 1e-6
    # the model's field is a constant shift: the whole map's determinant is the affines' volume ratio
    jacobian = nibabel.load(files.jacobian)
    assert jacobian.shape == fixed_labels.shape and np.allclose(jacobian.affine, nibabel.load(fixed).affine)
    ratio = np.linalg.det(np.asarray(sidecar["moving_affine_transform"])[:3, :3]) / np.linalg.det(
        np.asarray(sidecar["fixed_affine_transform"])[:3, :3])
    determinant = jacobian.get_fdata()[fixed_labels > 0]
    assert abs(ratio - 1) > 0.01 and np.abs(determinant - ratio).max() < 1e-3 * ratio
    assert sidecar["folding_percent"] == pytest.approx(100 * np.mean(determinant <= 0)) == 0.0


@pytest.mark.parametrize("method", [pytest.param("velocity", marks=pytest.mark.slow),
                                    pytest.param("velocity, downsampled", marks=pytest.mark.slow),
                                    pytest.param("InvertDisplacementField", marks=pytest.mark.slow)])
def test_the_inverse_undoes_a_varying_field_within_half_a_voxel(setup, tmp_path, method):
    """A diffeomorphic model's inverse comes from its velocity (also a downsample=2 model's, integrated on its
    coarse grid), another's from ITK's inversion."""
    folder, _, models = setup
    model = models[method]
    moving, fixed = folder / "scan3.nii.gz", folder / "scan1.nii.gz"
    raw_labels = nibabel.load(folder / "labels" / "scan3.nii.gz")
    nibabel.save(nibabel.Nifti1Image((np.asarray(raw_labels.dataobj) > 0).astype(np.uint8), raw_labels.affine),
                 tmp_path / "mask.nii.gz")
    with pytest.warns(UserWarning, match=r"scan1\.nii\.gz: the fixed scan has neither a brain mask nor a label "
                                         r"map.*template brain mask.*fixed_mask="):
        files = hnb.register_scans(model, moving, fixed, tmp_path / "out", lam=0.3, moving_mask=tmp_path / "mask.nii.gz",
                                   inverse=True)
    sidecar = json.loads(files.sidecar.read_text())
    assert method.split(",")[0] in sidecar["inverse_method"]
    assert sidecar["mask_sources"] == {"moving": "mask file", "fixed": "template mask after alignment"}
    assert sidecar["folding_region"] == "the fixed scan's brain (template mask after alignment)"
    brain = np.asarray(raw_labels.dataobj) > 0
    errors = _round_trip_voxels(files, moving, brain)
    assert errors.max() < 0.5, np.percentile(errors, [50, 99, 100])
    # a field that is not a mere shift (else the inverse would be one, and this test weak)
    field = np.asarray(nibabel.load(files.inverse_transform).dataobj)[..., 0, :][brain]
    assert (field - np.median(field, axis=0)).std(axis=0).max() > 2.0   # mm
    # the same inverse as ITK's inversion of the written field, within half a voxel
    by_itk = np.asarray(invert_transform(files.transform, moving).dataobj)[..., 0, :][brain]
    spacing = np.linalg.norm(raw_labels.affine[:3, :3], axis=0).min()
    assert np.percentile(np.linalg.norm(by_itk - field, axis=1), 99) < 0.5 * spacing


@pytest.mark.slow   # the command with an inverse; the function writes and reads it back in the fast tier
def test_register_command_writes_the_inverse_and_takes_masks(setup, tmp_path, capsys):
    folder, model, _ = setup
    hnb.save_model(model, tmp_path / "model")
    raw = nibabel.load(folder / "labels" / "scan1.nii.gz")
    nibabel.save(nibabel.Nifti1Image((np.asarray(raw.dataobj) > 0).astype(np.uint8), raw.affine),
                 tmp_path / "fixed_mask.nii.gz")
    argv = ["register", "--raw", "--model", str(tmp_path / "model"), "--moving", str(folder / "scan3.nii.gz"),
            "--fixed", str(folder / "scan1.nii.gz"), "--lam", "0.5", "--out", str(tmp_path / "out"),
            "--moving-labels", str(folder / "labels" / "scan3.nii.gz"),
            "--fixed-mask", str(tmp_path / "fixed_mask.nii.gz"), "--inverse"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    for name in ("inverse_transform.nii.gz", "jacobian.nii.gz", "moving_affine.tfm", "fixed_affine.tfm"):
        assert str(tmp_path / "out" / name) in printed
    sidecar = json.loads((tmp_path / "out" / "registration.json").read_text())
    assert sidecar["mask_sources"] == {"moving": "labels", "fixed": "mask file"}
    assert main(["register", "--model", str(tmp_path / "model"), "--moving", "a.nii.gz", "--fixed", "b.nii.gz",
                 "--lam", "0.5", "--out", "o", "--inverse"]) == 2
    assert "--inverse: read with --raw only" in capsys.readouterr().err


def test_the_function_refuses_bad_arguments_before_the_work(setup, tmp_path):
    folder, model, _ = setup
    moving, fixed = folder / "scan3.nii.gz", folder / "scan4.nii.gz"
    (tmp_path / "file").write_text("")
    cases = [(dict(lam=1.5), r"lam must lie in \[0, 1\]"), (dict(refine=-3), "refine must be a whole number"),
             (dict(lam=None), "a HyperMorph model, which registers at a λ you choose: pass lam="),
             (dict(out_dir=tmp_path / "file"), "is a file; give a folder"),
             (dict(moving_labels=folder / "labels" / "scan4.nii.gz"), "lies on another grid")]
    for change, message in cases:
        arguments = {**dict(model=model, moving=moving, fixed=fixed, out_dir=tmp_path / "out", lam=0.5), **change}
        start = time.perf_counter()
        with pytest.raises(ValueError, match=message):
            hnb.register_scans(**arguments)
        assert time.perf_counter() - start < 1.0
    with pytest.raises(FileNotFoundError, match="the fixed mask .* does not exist"):
        hnb.register_scans(model, moving, fixed, tmp_path / "out", lam=0.5, fixed_mask=tmp_path / "none.nii.gz")
    assert not (tmp_path / "out").exists()


def _bad_inputs(folder):
    """(extra command-line arguments, or None to leave out --lam; message) for each kind of mistake, the files
    they need written."""
    folder.mkdir(exist_ok=True)
    good = folder / "good.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.ones((8, 9, 10), np.float32), np.eye(4)), good)
    nibabel.save(nibabel.Nifti1Image(np.ones((8, 9, 10, 2), np.float32), np.eye(4)), folder / "series.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), folder / "small_mask.nii.gz")
    (folder / "file").write_text("")
    (folder / "broken.nii.gz").write_bytes(b"not a nifti")
    (folder / "scan.txt").write_text("")
    return good, [
        (["--lam", "1.5"], "lam must lie in [0, 1]"),
        (None, "is a HyperMorph model, which registers at a λ you choose: give it with --lam"),
        (["--refine", "-3"], "refine must be a whole number of iterations >= 0"),
        (["--out", str(folder / "file")], "is a file; give a folder"),
        (["--out", str(folder / "file" / "sub")], "cannot be made"),
        (["--moving", str(folder / "missing.nii.gz")], "does not exist; check the path"),
        (["--fixed", str(folder / "series.nii.gz")], "a 3D volume is needed"),
        (["--fixed", str(folder / "broken.nii.gz")], "cannot be read as NIfTI/MGZ"),
        (["--moving", str(folder / "scan.txt")], "is not a NIfTI/MGZ file"),
        (["--moving-mask", str(folder / "small_mask.nii.gz")], "lies on another grid"),
        (["--units", "mm"], "--units: not used with --raw"),
        (["--model", str(folder)], "no model.json there"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_the_command_refuses_each_bad_argument_fast_without_tensorflow(tmp_path, case):
    good, cases = _bad_inputs(tmp_path / "files")
    change, message = cases[case]
    lam = [] if change is None else ["--lam", "0.5"]   # None: --lam left out
    argv = ["register", "--raw", "--model", "pretrained:ixi-t1-2mm", "--moving", str(good), "--fixed", str(good),
            *lam, "--out", str(tmp_path / "out"), *(change or [])]
    script = ("import sys; from hypermorph_nb.cli import main; code = main(sys.argv[1:]); "
              "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'light'); sys.exit(code)")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.startswith("hypermorph-nb: error: ")
    assert result.stdout.strip() == "light"
    assert seconds < 2.0, seconds
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    from hypermorph_nb.checks import check_out_folder

    monkeypatch.setattr(os, "access", lambda path, mode: False)   # as a folder of someone else's (tests run as root)
    with pytest.raises(ValueError, match=r"cannot be written .*choose a folder you can write to"):
        check_out_folder(tmp_path / "new" / "out")
