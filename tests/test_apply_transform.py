"""apply_transform and invert_transform against SimpleITK applying the same files (no TensorFlow).

Small synthetic volumes on oblique, anisotropic grids, written with nibabel; displacement fields
and affines written as ITK writes them. The references are SimpleITK's own resampling and
transforms (``sitk.Resample``, ``DisplacementFieldTransform``, ``CompositeTransform``,
``ReadTransform``), never our warp.
"""
import subprocess
import sys

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.registration import apply as apply_module, invert_transform


def oblique(spacing, angles, centre, shape):
    """A RAS voxel-to-world matrix: rotated (degrees), anisotropic, its grid centred on ``centre``."""
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix() * np.asarray(spacing)
    affine[:3, 3] = np.asarray(centre) - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine


FIXED = ((24, 22, 20), oblique((1.5, 1.6, 1.7), (12, -8, 20), (1.0, -2.0, 3.0), (24, 22, 20)))
MOVING = ((22, 24, 23), oblique((1.4, 1.3, 1.5), (-15, 10, 5), (-1.0, 1.0, 0.0), (22, 24, 23)))


def brain(shape, radius=0.7):
    """An ellipsoid filling ``radius`` of the grid's half extent."""
    axes = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return sum(axis ** 2 for axis in axes) < radius ** 2


def write(path, array, affine):
    nibabel.save(nibabel.Nifti1Image(array, affine), path)
    return str(path)


def smooth_random(shape, amplitude, seed, sigma=3.0):
    """A smooth random vector field ``shape + (3,)`` whose largest component is ``amplitude``."""
    noise = np.random.default_rng(seed).normal(size=(*shape, 3))
    field = np.stack([ndimage.gaussian_filter(noise[..., axis], sigma) for axis in range(3)], axis=-1)
    return field * amplitude / np.abs(field).max()


def write_field(path, displacement, grid):
    """An ITK displacement field file (LPS mm) of ``(I, J, K, 3)`` on the grid of the image file ``grid``."""
    field = sitk.GetImageFromArray(np.ascontiguousarray(displacement.transpose(2, 1, 0, 3)), isVector=True)
    field.CopyInformation(sitk.ReadImage(grid))
    sitk.WriteImage(field, str(path))
    return str(path)


def write_affine(path):
    """An oblique ITK affine (rotation, anisotropic scaling, shift) about the world's origin."""
    affine = sitk.AffineTransform(3)
    matrix = Rotation.from_euler("xyz", (6, -4, 9), degrees=True).as_matrix() @ np.diag([1.05, 0.95, 1.02])
    affine.SetMatrix([float(v) for v in matrix.ravel()])
    affine.SetTranslation((2.0, -1.5, 1.0))
    sitk.WriteTransform(affine, str(path))
    return str(path)


def sitk_transform(path):
    """The transform SimpleITK reads from a file: a displacement field or an ITK transform file."""
    if str(path).endswith(".nii.gz"):
        return sitk.DisplacementFieldTransform(sitk.ReadImage(str(path), sitk.sitkVectorFloat64))
    return sitk.ReadTransform(str(path))


def sitk_resample(transforms, image, reference, interpolator, pixel=sitk.sitkFloat64):
    """SimpleITK's resampling of ``image`` onto ``reference`` through the chained files, as (i, j, k)."""
    chain = sitk.CompositeTransform([sitk_transform(path) for path in transforms]) if transforms else \
        sitk.Transform(3, sitk.sitkIdentity)
    warped = sitk.Resample(sitk.ReadImage(image), sitk.ReadImage(reference), chain, interpolator, 0.0, pixel)
    return sitk.GetArrayFromImage(warped).transpose(2, 1, 0)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A moving image and label map, a fixed grid, a smooth field (fixed → moving) and an affine."""
    folder = tmp_path_factory.mktemp("apply")
    rng = np.random.default_rng(0)
    shape, affine = MOVING
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    intensity = 0.5 * texture / texture.std() + brain(shape)
    labels = np.select([brain(shape, 0.4), brain(shape, 0.6) & (np.arange(shape[0]) < 11)[:, None, None],
                        brain(shape, 0.6), brain(shape, 0.9)], [41, 2, 1000, 5], 0).astype(np.int16)
    fixed_shape, fixed_affine = FIXED
    return {"image": write(folder / "moving.nii.gz", intensity.astype(np.float32), affine),
            "labels": write(folder / "labels.nii.gz", labels, affine),
            "fixed": write(folder / "fixed.nii.gz", np.zeros(fixed_shape, np.float32), fixed_affine),
            "field": write_field(folder / "transform.nii.gz", smooth_random(fixed_shape, 4.0, seed=1),
                                 folder / "fixed.nii.gz"),
            "tfm": write_affine(folder / "affine.tfm"), "mat": write_affine(folder / "affine.mat"),
            "folder": folder}


def test_a_field_warps_as_simpleitk_resamples_with_it(scans, monkeypatch):
    monkeypatch.setattr(apply_module, "CHUNK", 1000)         # the grid in many chunks, one partial
    warped = hnb.apply_transform(scans["field"], scans["image"], scans["fixed"])
    expected = sitk_resample([scans["field"]], scans["image"], scans["fixed"], sitk.sitkLinear)
    unwarped = sitk_resample([], scans["image"], scans["fixed"], sitk.sitkLinear)
    assert isinstance(warped, nibabel.Nifti1Image) and warped.get_data_dtype() == np.float32
    assert np.allclose(warped.affine, FIXED[1]) and warped.shape == FIXED[0]
    assert np.mean(expected != 0) > 0.5                      # the moving image covers most of the grid
    assert np.mean(np.abs(expected - unwarped) > 0.05) > 0.2  # the field moves it visibly
    assert np.abs(warped.get_fdata() - expected).max() < 1e-4


@pytest.mark.parametrize("suffix", ["tfm", "mat"])
def test_an_affine_and_a_field_chain_in_ants_order_as_a_composite_transform(scans, suffix):
    results = {}
    for chain in ([scans["field"], scans[suffix]], [scans[suffix], scans["field"]]):
        warped = hnb.apply_transform(chain, scans["image"], scans["fixed"]).get_fdata()
        expected = sitk_resample(chain, scans["image"], scans["fixed"], sitk.sitkLinear)
        assert np.mean(expected != 0) > 0.5
        assert np.abs(warped - expected).max() < 1e-4, chain
        results[len(results)] = warped
    assert np.mean(np.abs(results[0] - results[1]) > 0.05) > 0.2  # the order matters, and is ANTs'


def test_nearest_keeps_the_label_values_and_their_type(scans):
    chain = [scans["tfm"], scans["field"]]
    warped = hnb.apply_transform(chain, scans["labels"], scans["fixed"], interpolation="nearest")
    expected = sitk_resample(chain, scans["labels"], scans["fixed"], sitk.sitkNearestNeighbor, sitk.sitkInt16)
    values = np.asarray(warped.dataobj)
    assert values.dtype == np.int16
    assert set(np.unique(values)) == {0, 2, 5, 41, 1000}
    assert np.mean(values == expected) > 0.999
    blurred = hnb.apply_transform(chain, scans["labels"], scans["fixed"]).get_fdata()
    assert not set(np.unique(blurred)) <= {0, 2, 5, 41, 1000}  # linear would mix them


def test_forward_after_inverse_is_the_identity_within_half_a_voxel_over_the_brain(scans, tmp_path, monkeypatch):
    monkeypatch.setattr(apply_module, "CHUNK", 1000)
    fixed_shape, _ = FIXED
    # fixed → moving: an affine (8° rotation, 5 % scaling, a 4 mm shift) and a smooth random part
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in fixed_shape], indexing="ij"), -1)
    reference = sitk.ReadImage(scans["fixed"])
    index_to_lps = np.reshape(reference.GetDirection(), (3, 3)) * np.asarray(reference.GetSpacing())
    points = grid @ index_to_lps.T + np.asarray(reference.GetOrigin())
    matrix = Rotation.from_euler("z", 8, degrees=True).as_matrix() * 1.05
    mapped = points @ matrix.T + (4.0, -2.0, 1.0) + smooth_random(fixed_shape, 3.0, seed=2)
    forward = write_field(tmp_path / "forward.nii.gz", mapped - points, scans["fixed"])
    inverse = invert_transform(forward, scans["image"])
    assert inverse.shape == (*MOVING[0], 1, 3) and np.allclose(inverse.affine, MOVING[1])
    nibabel.save(inverse, tmp_path / "inverse.nii.gz")
    assert invert_transform(forward, scans["image"], out=tmp_path / "written.nii.gz") == tmp_path / "written.nii.gz"
    assert np.array_equal(nibabel.load(tmp_path / "written.nii.gz").get_fdata(), inverse.get_fdata())

    def round_trip_error(first, then, grid_file, shape, spacing):
        """Largest |then(first(q)) - q| over a brain on ``grid_file``'s grid, in its voxels (SimpleITK)."""
        chain = sitk.CompositeTransform([sitk_transform(then), sitk_transform(first)] if first else
                                        [sitk_transform(then)])
        grid = sitk.ReadImage(grid_file)
        moved = sitk.TransformToDisplacementField(chain, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(),
                                                  grid.GetSpacing(), grid.GetDirection())
        error = np.linalg.norm(sitk.GetArrayFromImage(moved).transpose(2, 1, 0, 3), axis=-1)
        return error[brain(shape, 0.6)].max() / min(spacing)

    moving_spacing, fixed_spacing = (1.4, 1.3, 1.5), (1.5, 1.6, 1.7)
    inverse_file = str(tmp_path / "inverse.nii.gz")
    assert round_trip_error(inverse_file, forward, scans["image"], MOVING[0], moving_spacing) < 0.01  # refined
    assert round_trip_error(forward, inverse_file, scans["fixed"], FIXED[0], fixed_spacing) < 0.5
    assert round_trip_error(None, forward, scans["image"], MOVING[0], moving_spacing) > 2  # not trivially


def test_the_command_writes_what_the_function_returns(scans, tmp_path, capsys):
    out = tmp_path / "sub" / "warped.nii.gz"
    code = main(["apply", "--transform", scans["field"], "--transform", scans["tfm"], "--image", scans["labels"],
                 "--reference", scans["fixed"], "--out", str(out), "--interpolation", "nearest"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    written = nibabel.load(out)
    returned = hnb.apply_transform([scans["field"], scans["tfm"]], scans["labels"], scans["fixed"],
                                   interpolation="nearest")
    assert written.get_data_dtype() == np.int16 and np.allclose(written.affine, returned.affine)
    assert np.array_equal(np.asarray(written.dataobj), np.asarray(returned.dataobj))
    assert hnb.apply_transform(scans["field"], scans["image"], scans["fixed"], out=tmp_path / "a.nii") \
        == tmp_path / "a.nii"


def test_applying_and_inverting_load_no_tensorflow(scans, tmp_path):
    code = (f"import sys, hypermorph_nb as hnb\n"
            f"from hypermorph_nb.registration import invert_transform\n"
            f"hnb.apply_transform({scans['field']!r}, {scans['image']!r}, {scans['fixed']!r})\n"
            f"invert_transform({scans['field']!r}, {scans['image']!r})\n"
            f"print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def bad_inputs(scans):
    folder = scans["folder"]
    series = write(folder / "series.nii.gz", np.zeros((6, 6, 6, 2), np.float32), np.eye(4))
    bspline = folder / "bspline.tfm"
    sitk.WriteTransform(sitk.BSplineTransform(3), str(bspline))
    picture = folder / "field.png"
    picture.write_bytes(b"PNG")
    fine = (scans["field"], scans["image"], scans["fixed"])
    return [((str(folder / "missing.nii.gz"), *fine[1:]), {}, FileNotFoundError, "missing.nii.gz.*does not exist"),
            (fine, {"interpolation": "cubic"}, ValueError, "one of 'linear', 'nearest'"),
            ((fine[0], series, fine[2]), {}, ValueError, "must be a 3D image.*(6, 6, 6, 2)"),
            ((fine[0], fine[1], series), {}, ValueError, "reference must be a 3D image"),
            ((scans["image"], *fine[1:]), {}, ValueError, "not a displacement field.* 1 value"),
            ((str(bspline), *fine[1:]), {}, ValueError, "BSplineTransform.*affine"),
            ((str(picture), *fine[1:]), {}, ValueError, "not a transform file"),
            (([], *fine[1:]), {}, ValueError, "empty list"),
            (fine, {"out": folder / "out.mgz"}, ValueError, r"NIfTI file \(.nii or .nii.gz\)")]


def test_bad_inputs_are_refused_with_the_problem_named(scans):
    for arguments, keywords, error, message in bad_inputs(scans):
        with pytest.raises(error, match=message):
            hnb.apply_transform(*arguments, **keywords)
    not_a_field = scans["folder"] / "notes.txt"
    not_a_field.write_text("not a transform")
    with pytest.raises(ValueError, match="cannot be read as an ITK transform"):
        hnb.apply_transform(str(not_a_field), scans["image"], scans["fixed"])
    with pytest.raises(ValueError, match="only a displacement field"):
        invert_transform(scans["tfm"], scans["image"])
    with pytest.raises(ValueError, match="not a displacement field"):
        invert_transform(scans["image"], scans["image"])
    with pytest.raises(ValueError, match="iterations must be a positive whole number"):
        invert_transform(scans["field"], scans["image"], iterations=0)


def test_the_command_refuses_bad_arguments_in_one_line(scans, tmp_path, capsys):
    code = main(["apply", "--transform", str(tmp_path / "nope.nii.gz"), "--image", scans["image"],
                 "--reference", scans["fixed"], "--out", str(tmp_path / "out.nii.gz")])
    assert code == 2 and "nope.nii.gz' does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["apply", "--transform", scans["field"], "--image", scans["image"], "--reference", scans["fixed"],
              "--out", str(tmp_path / "out.nii.gz"), "--interpolation", "cubic"])
    assert exit_.value.code == 2 and "invalid choice: 'cubic'" in capsys.readouterr().err
    assert not (tmp_path / "out.nii.gz").exists()
