"""3D data: volumes with their affines from NIfTI/MGZ, the neurite-oasis 3D layout, the shared
IXI set, synthetic volumes, resizing, affines through slices/splits/batches, and bad input."""
import zipfile

import nibabel
import numpy as np
import pytest

from hypermorph_nb.data import (Dataset, PairBatches, even_split, find_shared_ixi3d, load_folder,
                                load_npz, load_source, random_split, resize, synthetic,
                                synthetic_pairs)
from hypermorph_nb.data.synthetic import warp

SHAPE = (12, 14, 10)
#: 1.5 mm isotropic, rotated about z and shifted: a header nothing could guess.
ANGLE = np.deg2rad(20)
AFFINE = np.array([[1.5 * np.cos(ANGLE), -1.5 * np.sin(ANGLE), 0, -40.0],
                   [1.5 * np.sin(ANGLE), 1.5 * np.cos(ANGLE), 0, 12.5],
                   [0, 0, 1.5, -7.25],
                   [0, 0, 0, 1]])
IXI3D = find_shared_ixi3d()
needs_ixi3d = pytest.mark.skipif(IXI3D is None, reason="../shared/data/ixi3d not present")


def _volume(seed, shape=SHAPE):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _labels(seed, shape=SHAPE):
    return np.random.default_rng(seed + 100).integers(0, 4, shape).astype(np.int16)


def _save(path, array, affine=AFFINE):
    image = (nibabel.MGHImage if path.name.endswith(".mgz") else nibabel.Nifti1Image)(array, affine)
    nibabel.save(image, path)
    return path


def test_nifti_and_mgz_round_trip_keeps_volumes_labels_and_affines(tmp_path):
    for index, name in enumerate(["a.nii.gz", "b.nii", "c.mgz"]):
        _save(tmp_path / name, _volume(index))
        stem = name.split(".")[0]
        _save(tmp_path / f"{stem}_seg{name[len(stem):]}", _labels(index))
    data = load_folder(tmp_path)
    assert data.names == ["a", "b", "c"] and data.ndim == 3 and data.shape == SHAPE
    assert data.images.shape == (3, *SHAPE, 1) and data.labels.shape == (3, *SHAPE)
    assert data.affines.shape == (3, 4, 4) and data.affines.dtype == np.float64
    for index in range(3):
        np.testing.assert_allclose(data.affines[index], AFFINE, atol=1e-5)   # MGZ stores float32
        np.testing.assert_allclose(data.images[index, ..., 0], _volume(index), atol=1e-6)
        np.testing.assert_array_equal(data.labels[index], _labels(index))
    np.testing.assert_allclose(data.affine, AFFINE, atol=1e-5)
    np.testing.assert_allclose(data.voxel_sizes, np.full((3, 3), 1.5), atol=1e-6)


def test_oasis_3d_layout_loads_aligned_norm_with_seg35_or_seg4(tmp_path):
    root = tmp_path / "neurite-oasis.v1.0"
    for index in range(2):
        subject = root / f"OASIS_OAS1_{index + 1:04d}_MR1"
        subject.mkdir(parents=True)
        _save(subject / "aligned_norm.nii.gz", _volume(index))
        _save(subject / "aligned_seg35.nii.gz", _labels(index).astype(np.float32))
        _save(subject / "aligned_seg4.nii.gz", (_labels(index) > 1).astype(np.uint8))
    (root / "seg35_labels.txt").write_text("0 Unknown 0 0 0 0\n1 A 0 0 0 0\n2 B 0 0 0 0\n3 C 0 0 0 0\n")
    data = load_folder(root)
    assert data.names == ["OASIS_OAS1_0001_MR1", "OASIS_OAS1_0002_MR1"]
    assert data.images.shape == (2, *SHAPE, 1) and "OASIS" in data.source
    np.testing.assert_array_equal(data.labels[1], _labels(1))
    np.testing.assert_allclose(data.affine, AFFINE)
    assert data.label_names[3] == "C"
    assert load_folder(root, labels="seg4").label_values().tolist() == [1]
    assert load_folder(root, labels=None).labels is None
    with pytest.raises(ValueError, match=r"OASIS subject folders hold 3D files \(aligned_norm.nii.gz\), but ndim=2.*ndim=3"):
        load_folder(root, ndim=2)
    # a release holding the 2D slices too must say which to load
    for index in range(2):
        subject = root / f"OASIS_OAS1_{index + 1:04d}_MR1"
        _save(subject / "slice_norm.nii.gz", _volume(index, (12, 14, 1)))
        _save(subject / "slice_seg24.nii.gz", _labels(index, (12, 14, 1)))
    with pytest.raises(ValueError, match=r"both 2D slices.*3D volumes.*ndim=2.*ndim=3"):
        load_folder(root)
    assert load_folder(root, ndim=2).images.shape == (2, 12, 14, 1)
    assert load_folder(root, ndim=3).images.shape == (2, *SHAPE, 1)


@needs_ixi3d
def test_shared_ixi3d_loads_with_labels_names_and_its_affine():
    raw = np.load(IXI3D)   # arrays are read only when indexed: subjects and affine here
    data = load_npz(IXI3D, subset=3)
    assert data.images.shape == (3, 80, 96, 80, 1) and data.images.dtype == np.float32
    assert data.labels.shape == (3, 80, 96, 80) and np.issubdtype(data.labels.dtype, np.integer)
    assert data.images.min() == 0 and data.images.max() == 1   # uint8 / 255: the full range
    np.testing.assert_allclose(data.images * 255, np.round(data.images * 255), atol=1e-4)
    assert data.names == [str(name) for name in raw["subjects"][:3]]
    np.testing.assert_array_equal(data.affine, raw["affine"])
    np.testing.assert_array_equal(data.voxel_sizes, np.full((3, 3), 2.0))
    assert len(data.label_values()) > 100
    brain = data.labels > 0   # the label maps cover the brain, and only the brain
    assert 0.1 < brain.mean() < 0.5
    assert data.images[..., 0][~brain].mean() < 0.05 * data.images[..., 0][brain].mean()
    via_source = load_source("ixi3d", subset=2, verbose=False)
    np.testing.assert_array_equal(via_source.images, data.images[:2])


@needs_ixi3d
@pytest.mark.slow
def test_shared_ixi3d_loads_whole():
    raw = np.load(IXI3D)
    data = load_npz(IXI3D)
    assert data.images.shape == (150, 80, 96, 80, 1) and data.labels.shape == (150, 80, 96, 80)
    assert data.affines.shape == (150, 4, 4) and len(set(data.names)) == 150
    np.testing.assert_array_equal(data.images[[0, 149], ..., 0], raw["images"][[0, 149]] / np.float32(255))
    np.testing.assert_array_equal(data.labels[[0, 149]], raw["segs"][[0, 149]])
    np.testing.assert_array_equal(load_npz(IXI3D, subset=3).labels, data.labels[:3])


def test_npz_subset_reads_only_the_first_volumes_but_the_same_values(tmp_path):
    path = tmp_path / "stack.npz"
    volumes = np.random.default_rng(0).integers(0, 256, (5, 8, 9, 10)).astype(np.uint8)
    affines = np.stack([np.diag([2.0, 2, 2, 1]) + np.eye(4, k=3) * index for index in range(5)])
    np.savez_compressed(path, vols=volumes, labels=volumes // 64, affines=affines,
                        subjects=np.array(list("abcde")))
    data = load_npz(path, subset=2)
    np.testing.assert_array_equal(data.images[..., 0], volumes[:2] / np.float32(255))
    np.testing.assert_array_equal(data.labels, volumes[:2] // 64)
    np.testing.assert_array_equal(data.affines, affines[:2])
    assert data.names == ["a", "b"] and data.affine is None   # the two affines differ
    assert len(load_npz(path, subset=99)) == 5
    np.savez(path, images=np.zeros((2, 4, 4, 4)), affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"stack.npz\['affine'\]: voxels of 1 x 1 x 2 mm are anisotropic"):
        load_npz(path)
    assert load_npz(path, allow_anisotropic=True).voxel_sizes[0].tolist() == [1.0, 1.0, 2.0]
    other = tmp_path / "other.npz"   # written by another tool: members named without ".npy"
    with zipfile.ZipFile(other, "w") as archive:
        with archive.open("images", "w") as member:
            np.lib.format.write_array(member, volumes)
    np.testing.assert_array_equal(load_npz(other, subset=2).images[..., 0], volumes[:2] / np.float32(255))


def test_slices_splits_and_pair_batches_keep_each_images_affine():
    n = 6
    images = (np.arange(n, dtype=np.float32) / n)[:, None, None, None, None] * np.ones((1, 16, 16, 16, 1), np.float32)
    affines = np.stack([np.diag([1.0, 1.0, 1.0, 1.0]) + np.eye(4, k=3) * index for index in range(n)])
    data = Dataset(images=images, labels=np.zeros((n, 16, 16, 16), int), affines=affines,
                   names=[f"s{i}" for i in range(n)])
    assert data.affine is None and data.ndim == 3
    part = data[np.array([4, 1])]
    assert part.affines[:, 0, 3].tolist() == [4.0, 1.0]
    assert data[2].affines.shape == (1, 4, 4) and data[2].affine[0, 3] == 2.0
    for split in (even_split(data), random_split(data, (0.5, 0.5), seed=3)):
        for subset in split:
            np.testing.assert_allclose(subset.affines[:, 0, 3], np.round(subset.images[:, 0, 0, 0, 0] * n))
    batches = PairBatches(data, batch_size=4, seed=1, include_affines=True)
    for step in range(3):
        batch = batches.batch(step)
        for key in ("moving", "fixed"):
            np.testing.assert_allclose(batch[f"{key}_affine"][:, 0, 3], np.round(batch[key][:, 0, 0, 0, 0] * n))
    plain = PairBatches(data, batch_size=4, seed=1)
    assert set(plain.batch(0)) == {"moving", "fixed"}   # training batches unchanged by default
    np.testing.assert_array_equal(plain.batch(2)["moving"], batches.batch(2)["moving"])
    element = next(iter(batches.dataset(0, 1)))
    assert element["fixed_affine"].shape == (4, 4, 4)
    with pytest.raises(ValueError, match="include_affines=True needs a Dataset with affines"):
        PairBatches(data.images, include_affines=True)


def test_synthetic_volumes_have_labels_affines_and_known_pairs():
    data = synthetic(3, (16, 20, 18), seed=0, n_labels=5)
    assert data.images.shape == (3, 16, 20, 18, 1) and data.labels.shape == (3, 16, 20, 18)
    assert data.ndim == 3 and 0 <= data.images.min() and data.images.max() <= 1
    assert data.label_values().tolist() == [1, 2, 3, 4]
    assert all(len(np.unique(labels)) == 5 for labels in data.labels)
    np.testing.assert_array_equal(data.affine, np.eye(4))
    np.testing.assert_array_equal(data.images, synthetic(3, (16, 20, 18), seed=0, n_labels=5).images)
    agreement = [(data.labels[0] == data.labels[i]).mean() for i in (1, 2)]
    assert all(0.5 < value < 0.99 for value in agreement)
    pairs = synthetic_pairs(2, (16, 16, 16), seed=1, noise=0.0)
    assert pairs.flow.shape == (2, 16, 16, 16, 3)
    np.testing.assert_array_equal(warp(pairs.moving_labels[0], pairs.flow[0], order=0), pairs.fixed_labels[0])


def test_resize_3d_keeps_labels_and_moves_the_affine_with_the_grid():
    data = Dataset(images=synthetic(2, (32, 32, 32), seed=2).images, labels=synthetic(2, (32, 32, 32), seed=2).labels,
                   affines=AFFINE)
    small = resize(data, (16, 24, 20))
    assert small.images.shape == (2, 16, 24, 20, 1) and small.labels.shape == (2, 16, 24, 20)
    assert set(np.unique(small.labels)) <= set(np.unique(data.labels))
    np.testing.assert_allclose(small.voxel_sizes[0], 1.5 * np.array([2, 32 / 24, 1.6]))

    def world(affine, shape, corner):   # world position of a grid's outer corner
        return (affine @ np.r_[np.where(corner, np.array(shape) - 0.5, -0.5), 1])[:3]

    for corner in ([0, 0, 0], [1, 1, 1], [1, 0, 1]):
        np.testing.assert_allclose(world(small.affine, small.shape, corner), world(AFFINE, data.shape, corner),
                                   atol=1e-9)
    with pytest.raises(ValueError, match=r"shape must be \(D, H, W\).*3D images"):
        resize(data, (16, 16))


def test_load_source_3d_sources_and_fallback(monkeypatch, tmp_path, capsys):
    data = load_source("synthetic3d", shape=(16, 16, 16), n_synthetic=3, verbose=False)
    assert data.images.shape == (3, 16, 16, 16, 1) and data.has_labels
    monkeypatch.setenv("HYPERMORPH_NB_IXI3D", str(tmp_path / "missing.npz"))
    data = load_source("auto", shape=(16, 16, 16), n_synthetic=2)
    assert "ixi3d_150.npz found" in capsys.readouterr().out and data.shape == (16, 16, 16)
    with pytest.raises(OSError, match="HYPERMORPH_NB_IXI3D"):
        load_source("ixi3d")
    with pytest.raises(ValueError, match="synthetic3d.*2D"):
        load_source("synthetic3d", shape=(16, 16))


# --- bad input: each names the file and the fix ------------------------------------------------

def test_4d_files_are_refused_and_a_singleton_fourth_axis_is_dropped(tmp_path):
    _save(tmp_path / "fmri.nii.gz", np.zeros((*SHAPE, 5), np.float32))
    with pytest.raises(ValueError, match=r"fmri.nii.gz: holds a 4D array of shape \(12, 14, 10, 5\).*time series.*four_to_three"):
        load_folder(tmp_path)
    single = tmp_path / "single"
    single.mkdir()
    _save(single / "one.nii.gz", _volume(0)[..., None])
    assert load_folder(single).images.shape == (1, *SHAPE, 1)
    path = tmp_path / "stack.npz"
    np.savez(path, images=np.zeros((2, 4, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"stack.npz\['images'\]: each item holds 4D data.*images\[\.\.\., 0\]"):
        load_npz(path)


def test_label_maps_of_another_shape_or_grid_are_refused(tmp_path):
    _save(tmp_path / "a.nii.gz", _volume(0))
    _save(tmp_path / "a_seg.nii.gz", _labels(0, (12, 14, 9)))
    with pytest.raises(ValueError, match=r"a_seg.nii.gz: label maps have shape \(1, 12, 14, 9\) but the images have \(1, 12, 14, 10\)"):
        load_folder(tmp_path)
    shifted = AFFINE.copy()
    shifted[:3, 3] += 3
    _save(tmp_path / "a_seg.nii.gz", _labels(0), shifted)
    with pytest.raises(ValueError, match=r"a_seg.nii.gz: its affine differs from that of a.nii.gz.*resample_from_to.*order=0"):
        load_folder(tmp_path)


def test_volumes_of_different_shapes_orientations_or_voxel_sizes_are_refused(tmp_path):
    _save(tmp_path / "a.nii.gz", _volume(0))
    _save(tmp_path / "b.nii.gz", _volume(1, (12, 14, 11)))
    with pytest.raises(ValueError, match=r"different shapes: \(12, 14, 10\) in a.nii.gz, \(12, 14, 11\) in b.nii.gz.*resample"):
        load_folder(tmp_path)
    _save(tmp_path / "b.nii.gz", _volume(1), AFFINE @ np.diag([-1.0, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"different orientations.*a.nii.gz.*b.nii.gz.*as_closest_canonical"):
        load_folder(tmp_path)
    _save(tmp_path / "b.nii.gz", _volume(1), AFFINE @ np.diag([2.0, 2, 2, 1]))
    with pytest.raises(ValueError, match=r"different voxel sizes \(1.5 x 1.5 x 1.5 mm in a.nii.gz, 3 x 3 x 3 mm in b.nii.gz\)"):
        load_folder(tmp_path)


def test_anisotropic_voxels_are_refused_unless_allowed(tmp_path):
    _save(tmp_path / "thick.nii.gz", _volume(0), np.diag([1.0, 1.0, 3.0, 1.0]))
    with pytest.raises(ValueError, match=r"thick.nii.gz: voxels of 1 x 1 x 3 mm are anisotropic.*conform.*mri_convert.*allow_anisotropic=True"):
        load_folder(tmp_path)
    data = load_folder(tmp_path, allow_anisotropic=True)
    assert data.voxel_sizes[0].tolist() == [1.0, 1.0, 3.0]
    slices = tmp_path / "slices"
    slices.mkdir()   # a 2D slice of a thick-slice scan: only the in-plane axes count
    _save(slices / "s.nii.gz", _volume(0, (12, 14, 1)), np.diag([1.0, 1.0, 3.0, 1.0]))
    assert load_folder(slices).ndim == 2


def test_a_folder_mixing_2d_and_3d_files_or_the_wrong_ndim_is_refused(tmp_path):
    _save(tmp_path / "a.nii.gz", _volume(0, (12, 14, 1)))
    _save(tmp_path / "b.nii.gz", _volume(1))
    with pytest.raises(ValueError, match=r"mixes 2D images and 3D volumes \(a.nii.gz is 2D \(12, 14\), b.nii.gz is 3D \(12, 14, 10\)\).*one kind per folder"):
        load_folder(tmp_path)
    (tmp_path / "a.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"b.nii.gz: holds a 3D image.*ndim=2 was asked; pass ndim=3"):
        load_folder(tmp_path, ndim=2)


def test_a_header_with_a_non_finite_affine_is_refused_naming_the_file(tmp_path):
    broken = AFFINE.copy()
    broken[0, 3] = np.nan
    _save(tmp_path / "broken.nii.gz", _volume(0), broken)
    with pytest.raises(ValueError, match=r"broken.nii.gz: affines contain NaN or infinite values; check the file headers"):
        load_folder(tmp_path)
