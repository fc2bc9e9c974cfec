"""load_npz and load_folder: the shared OASIS file, the neurite-oasis layout, your own files."""
import pathlib

import nibabel
import numpy as np
import pytest
from PIL import Image

from hypermorph_nb.data import load_folder, load_npz, load_source, read_label_names

SHARED_OASIS = pathlib.Path(__file__).resolve().parents[1].parent / "shared/data/oasis2d/oasis2d_300.npz"
LABEL_TABLE = "#ID Name R G B A\n\n0 Unknown 0 0 0 0\n1 Cortex 1 2 3 0\n2 Ventricle 4 5 6 0\n"


def _image(seed, shape=(16, 20)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _labels(seed, shape=(16, 20)):
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.uint8)


@pytest.mark.skipif(not SHARED_OASIS.exists(), reason="shared OASIS data not present")
def test_shared_oasis_file_loads_with_its_24_labels_names_and_subjects():
    data = load_npz(SHARED_OASIS)
    assert data.images.shape == (300, 160, 192, 1) and data.images.dtype == np.float32
    assert data.labels.shape == (300, 160, 192) and np.issubdtype(data.labels.dtype, np.integer)
    assert data.label_values().tolist() == list(range(1, 25))
    assert data.ndim == 2 and data.affines is None and data.affine is None
    assert data.label_names[11] == "Left-Hippocampus" and data.label_names[0] == "Unknown"
    assert data.names[0] == "OASIS_OAS1_0001_MR1" and len(set(data.names)) == 300
    raw = np.load(SHARED_OASIS)
    np.testing.assert_array_equal(data.images[..., 0], raw["images"])   # already in [0, 1]: unchanged
    four = load_npz(SHARED_OASIS, labels_key="segs4")
    assert four.label_values().tolist() == [1, 2, 3, 4] and four.label_names[4] == "CSF"


def test_npz_keys_are_found_or_named(tmp_path):
    path = tmp_path / "stack.npz"
    np.savez(path, vol=np.stack([_image(0), _image(1)]), names=np.array(["x", "y"]))
    data = load_npz(path)
    assert data.labels is None and data.names == ["x", "y"] and data.label_names is None
    with pytest.raises(KeyError, match=r"stack\.npz: has no array 'segs'.*\['vol', 'names'\].*labels_key="):
        load_npz(path, labels_key="segs")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros((2, 4, 4)), b=np.zeros((2, 4, 4)))
    with pytest.raises(KeyError, match=r"other\.npz: found none of the arrays.*images_key="):
        load_npz(other)
    assert load_npz(other, images_key="b", labels_key=None).images.shape == (2, 4, 4, 1)


def test_npz_labels_not_matching_images_are_refused_naming_the_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((3, 8, 8)), segs=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"bad\.npz\['segs'\]: label maps have shape \(2, 8, 8\)"):
        load_npz(path)


def test_npz_missing_damaged_or_npy_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz does not exist"):
        load_npz(tmp_path / "nothere.npz")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="damaged.npz: cannot be read"):
        load_npz(damaged)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="single .npy array"):
        load_npz(single)


def test_label_names_come_from_the_smallest_covering_table_or_the_argument(tmp_path):
    (tmp_path / "seg2_labels.txt").write_text(LABEL_TABLE)
    (tmp_path / "seg9_labels.txt").write_text(
        "".join(f"{value} name{value} 0 0 0 0\n" for value in range(10)))
    path = tmp_path / "stack.npz"
    np.savez(path, images=np.zeros((2, 16, 20)), segs=np.stack([_labels(0), _labels(1)]))
    assert load_npz(path).label_names == {0: "Unknown", 1: "Cortex", 2: "Ventricle"}
    np.savez(path, images=np.zeros((1, 4, 4)), segs=np.full((1, 4, 4), 7))
    assert load_npz(path).label_names[7] == "name7"
    assert load_npz(path, label_names={7: "seven"}).label_names == {7: "seven"}


def test_read_label_names_rejects_malformed_lines(tmp_path):
    table = tmp_path / "labels.txt"
    table.write_text("0 Unknown\nCortex 1\n")
    with pytest.raises(ValueError, match=r"labels.txt, line 2: expected 'ID Name"):
        read_label_names(table)


def _oasis_folder(root, subjects=3, seg="seg24"):
    for index in range(subjects):
        folder = root / f"OASIS_OAS1_{index + 1:04d}_MR1"
        folder.mkdir(parents=True)
        affine = np.eye(4)
        nibabel.save(nibabel.Nifti1Image(_image(index)[..., None], affine), folder / "slice_norm.nii.gz")
        if seg:
            labels = _labels(index)[..., None].astype(np.float32)   # stored as float, like FreeSurfer
            nibabel.save(nibabel.Nifti1Image(labels, affine), folder / f"slice_{seg}.nii.gz")
    (root / "seg24_labels.txt").write_text(LABEL_TABLE)
    return root


def test_oasis_folder_layout_loads_images_labels_and_subject_names(tmp_path):
    data = load_folder(_oasis_folder(tmp_path / "neurite-oasis.2d.v1.0"))
    assert data.images.shape == (3, 16, 20, 1) and data.labels.dtype == np.int32
    assert data.names == ["OASIS_OAS1_0001_MR1", "OASIS_OAS1_0002_MR1", "OASIS_OAS1_0003_MR1"]
    np.testing.assert_array_equal(data.images[1, ..., 0], _image(1))
    np.testing.assert_array_equal(data.labels[2], _labels(2))
    assert data.label_names[1] == "Cortex"
    np.testing.assert_array_equal(data.affine, np.eye(4))   # the slices' NIfTI affine
    assert load_folder(tmp_path / "neurite-oasis.2d.v1.0", labels=None).labels is None


def test_oasis_folder_without_the_requested_segmentation_says_which_file(tmp_path):
    root = _oasis_folder(tmp_path / "oasis", seg="seg4")
    with pytest.raises(FileNotFoundError, match=r"slice_seg24.nii.gz: missing.*labels='seg4'"):
        load_folder(root)
    assert load_folder(root, labels="seg4").label_values().tolist() == [1, 2]


def test_own_folder_of_mixed_formats_pairs_labels_by_name_seg(tmp_path):
    np.save(tmp_path / "a.npy", _image(0))
    np.save(tmp_path / "a_seg.npy", _labels(0))
    np.savez(tmp_path / "b.npz", image=_image(1))
    np.savez(tmp_path / "b_seg.npz", seg=_labels(1))
    Image.fromarray((_image(2) * 255).astype(np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(_labels(2)).save(tmp_path / "c_seg.png")
    nibabel.save(nibabel.Nifti1Image(_image(3) * 1000, np.eye(4)), tmp_path / "d.nii.gz")
    nibabel.save(nibabel.Nifti1Image(_labels(3).astype(np.int16), np.eye(4)), tmp_path / "d_seg.nii.gz")
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_folder(tmp_path)
    assert data.names == ["a", "b", "c", "d"]
    assert data.images.shape == (4, 16, 20, 1) and data.images.dtype == np.float32
    np.testing.assert_array_equal(data.labels, np.stack([_labels(i) for i in range(4)]))
    np.testing.assert_array_equal(data.images[0, ..., 0], _image(0))
    np.testing.assert_allclose(data.images[2, ..., 0], (_image(2) * 255).astype(np.uint8) / 255, atol=1e-6)
    raw = _image(3) * 1000
    np.testing.assert_allclose(data.images[3, ..., 0], (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    assert load_folder(tmp_path, labels=None).labels is None


def test_own_folder_with_a_labels_subfolder_and_a_custom_suffix(tmp_path):
    (tmp_path / "labels").mkdir()
    for index, name in enumerate(["x", "y"]):
        Image.fromarray((_image(index) * 255).astype(np.uint8)).convert("RGB").save(tmp_path / f"{name}.png")
        np.save(tmp_path / "labels" / f"{name}.npy", _labels(index))
    data = load_folder(tmp_path)
    assert data.names == ["x", "y"] and data.labels.shape == (2, 16, 20)
    other = tmp_path / "masks"
    other.mkdir()
    np.save(other / "p.npy", _image(0))
    np.save(other / "p_mask.npy", _labels(0))
    assert load_folder(other, labels="_mask").names == ["p"]


def test_own_folder_where_only_some_images_have_labels_is_refused(tmp_path):
    for index, name in enumerate(["a", "b", "c"]):
        np.save(tmp_path / f"{name}.npy", _image(index))
    np.save(tmp_path / "a_seg.npy", _labels(0))
    with pytest.raises(FileNotFoundError, match=r"1 images have label maps but 2 do not \(b.npy, c.npy\).*labels=None"):
        load_folder(tmp_path)
    assert load_folder(tmp_path, labels=None).names == ["a", "b", "c"]


def test_empty_folder_names_what_was_looked_for_and_the_alternatives(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no images found.*\.nii\.gz.*slice_norm.*readme.txt.*synthetic"):
        load_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder(tmp_path / "missing")
    with pytest.raises(NotADirectoryError, match="load_npz"):
        load_folder(tmp_path / "readme.txt")


def test_folder_images_of_different_shapes_are_refused_with_examples(tmp_path):
    np.save(tmp_path / "a.npy", _image(0, (16, 16)))
    np.save(tmp_path / "b.npy", _image(1, (16, 20)))
    with pytest.raises(ValueError, match=r"different shapes: \(16, 16\) in a.npy, \(16, 20\) in b.npy.*resample"):
        load_folder(tmp_path)


def test_folder_3d_volume_loads_and_label_mismatch_and_rgb_labels_are_refused(tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 5), np.float32), np.eye(4)), volume / "v.nii.gz")
    assert load_folder(volume).images.shape == (1, 8, 8, 5, 1)   # 3D volumes are first-class now
    colour = tmp_path / "colour"
    colour.mkdir()
    np.save(colour / "photo.npy", np.zeros((16, 20, 3), np.uint8))   # RGB, not a 3-slice volume
    with pytest.raises(ValueError, match=r"photo.npy: shape \(1, 16, 20, 3\) looks like 2D images with 3 colour"):
        load_folder(colour)
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    np.save(mismatch / "a.npy", _image(0))
    np.save(mismatch / "a_seg.npy", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"a_seg.npy: label maps have shape \(1, 8, 8\) but the images have \(1, 16, 20\)"):
        load_folder(mismatch)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.fromarray((_image(0) * 255).astype(np.uint8)).save(rgb / "a.png")
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(rgb / "a_seg.png")
    with pytest.raises(ValueError, match=r"a_seg.png: a label map must be a single-channel PNG"):
        load_folder(rgb)


def test_folder_non_finite_or_unreadable_files_are_named(tmp_path):
    image = _image(0)
    image[3, 3] = np.nan
    np.save(tmp_path / "a.npy", image)
    with pytest.raises(ValueError, match=r"a.npy: image\(s\) 0 contain NaN"):
        load_folder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.png").write_bytes(b"\x89PNG not an image")
    with pytest.raises(ValueError, match=r"b.png: cannot be read as an image"):
        load_folder(broken)


def test_folder_with_two_files_for_one_name_is_refused(tmp_path):
    np.save(tmp_path / "a.npy", _image(0))
    np.savez(tmp_path / "a.npz", image=_image(0))
    with pytest.raises(ValueError, match=r"two files for 'a' \(a.npy and a.npz\)"):
        load_folder(tmp_path)


def test_folder_normalize_none_refuses_raw_intensities(tmp_path):
    np.save(tmp_path / "a.npy", _image(0) * 1000)
    with pytest.raises(ValueError, match=r"a.npy\[0\]: intensities span .* must lie in \[0, 1\]"):
        load_folder(tmp_path, normalize="none")


def _moved_affine(base, shape, degrees=0.0, shift=(0.0, 0.0, 0.0)):
    """``base`` turned about z by ``degrees`` around the grid's centre, then shifted by ``shift`` mm."""
    centre = base @ np.append((np.asarray(shape) - 1) / 2, [0.0] * (3 - len(shape)) + [1.0])
    turn = np.radians(degrees)
    rigid = np.eye(4)
    rigid[:2, :2] = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
    rigid[:3, 3] = centre[:3] - rigid[:3, :3] @ centre[:3] + np.asarray(shift)
    return rigid @ base


@pytest.mark.parametrize("shape", [(12, 14, 10), (16, 20)])
@pytest.mark.parametrize("degrees, shift, apart", [
    (10.0, (0, 0, 0), "0.0 mm and 10.0 degrees"),
    (0.0, (10, 0, 0), "10.0 mm and 0.0 degrees"),
    (2.0, (0, 0, 3), "3.0 mm and 2.0 degrees"),
    (0.3, (0.4, 0, 0), None),        # sub-voxel (2 mm voxels), under half a degree: one grid
])
def test_scans_of_one_shape_whose_affines_put_the_head_elsewhere_are_refused(tmp_path, shape, degrees, shift,
                                                                             apart):
    base = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
    stored = shape if len(shape) == 3 else (*shape, 1)
    nibabel.save(nibabel.Nifti1Image(_image(0, stored), base), tmp_path / "a.nii.gz")
    moved = _moved_affine(base, shape, degrees, shift)
    nibabel.save(nibabel.Nifti1Image(_image(1, stored), moved), tmp_path / "b.nii.gz")
    if apart is None:
        assert len(load_folder(tmp_path)) == 2
        return
    with pytest.raises(ValueError, match=rf"b.nii.gz and a.nii.gz have the same grid shape but their affines put "
                                         rf"the head {apart} apart.*prepare_scans\('{tmp_path}', out_dir\).*"
                                         "hypermorph-nb prepare"):
        load_folder(tmp_path)


@pytest.mark.parametrize("problem", ["shape", "voxel size", "orientation", "anisotropic"])
def test_every_refusal_of_scans_not_on_one_grid_points_to_prepare_scans(tmp_path, problem):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(_image(0, (8, 8, 8)), affine), tmp_path / "a.nii.gz")
    other = {"shape": ((8, 8, 9), affine), "voxel size": ((8, 8, 8), np.diag([1.0, 1, 1, 1])),
             "orientation": ((8, 8, 8), np.diag([-2.0, 2, 2, 1])),
             "anisotropic": ((8, 8, 8), np.diag([2.0, 2, 4, 1]))}[problem]
    nibabel.save(nibabel.Nifti1Image(_image(1, other[0]), other[1]), tmp_path / "b.nii.gz")
    with pytest.raises(ValueError, match=rf"prepare_scans\('{tmp_path}', out_dir\).*hypermorph-nb prepare"):
        load_folder(tmp_path)
    with pytest.raises(ValueError, match=r"prepare_scans"):   # resizing cannot help either
        load_source("folder", path=tmp_path, shape=(8, 8, 8), verbose=False)
