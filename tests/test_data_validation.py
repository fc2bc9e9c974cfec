"""Intensity policy and the checks that refuse bad arrays with a useful message."""
import numpy as np
import pytest

from hypermorph_nb.data import Dataset
from hypermorph_nb.checks.arrays import as_images, as_labels


def test_auto_keeps_images_already_in_unit_range_exactly():
    images = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32) * 0.9
    out = as_images(images, name="x")
    assert out.shape == (3, 8, 8, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], images)


def test_auto_divides_8bit_images_by_255():
    images = np.array([[[0, 51], [102, 255]]], np.uint8)
    np.testing.assert_allclose(as_images(images, name="x")[0, ..., 0], [[0, 0.2], [0.4, 1]])


def test_auto_rescales_out_of_range_images_each_on_its_own():
    images = np.stack([np.full((4, 4), 100.0), np.arange(16.0).reshape(4, 4) * 10 + 50])
    images[0, 0, 0] = 300.0
    out = as_images(images, name="x")[..., 0]
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out[1], (images[1] - 50) / 150)
    assert out[0, 0, 0] == 1.0 and out[0, 1, 1] == 0.0


def test_minmax_rescales_every_image_and_zeroes_constant_ones():
    images = np.stack([np.full((4, 4), 0.5), np.linspace(0.2, 0.6, 16).reshape(4, 4)])
    out = as_images(images, name="x", normalize="minmax")[..., 0]
    np.testing.assert_array_equal(out[0], 0.0)
    assert out[1].min() == 0.0 and out[1].max() == pytest.approx(1.0)


def test_none_refuses_out_of_range_naming_the_image_and_the_fix():
    images = np.zeros((3, 4, 4))
    images[2, 1, 1] = 1.5
    with pytest.raises(ValueError, match=r"stack\.npz\[2\].*\[0, 1\.5\].*normalize='auto' or 'minmax'"):
        as_images(images, name="stack.npz", normalize="none")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_intensities_are_refused_in_every_mode(bad):
    images = np.zeros((4, 4, 4))
    images[3, 0, 0] = bad
    for normalize in ("auto", "minmax", "none"):
        with pytest.raises(ValueError, match=r"scan\.npy: image\(s\) 3 contain NaN.*nan_to_num"):
            as_images(images, name="scan.npy", normalize=normalize)


@pytest.mark.parametrize("shape", [(4,), (4, 4), (2, 2, 2, 2, 2, 2)])
def test_wrong_number_of_dimensions_is_refused(shape):
    with pytest.raises(ValueError, match=r"arr: images must have shape \(N, H, W\) for 2D or \(N, D, H, W\) for 3D"):
        as_images(np.zeros(shape), name="arr")


def test_volumes_are_accepted_and_4d_items_refused():
    assert as_images(np.zeros((2, 4, 5, 6)), name="arr").shape == (2, 4, 5, 6, 1)
    assert as_images(np.zeros((2, 4, 5, 6, 1)), name="arr").shape == (2, 4, 5, 6, 1)
    with pytest.raises(ValueError, match=r"arr: each item holds 4D data \(4, 4, 4, 3\).*time series"):
        as_images(np.zeros((2, 4, 4, 4, 3)), name="arr")
    with pytest.raises(ValueError, match=r"arr: shape \(2, 32, 32, 3\) looks like 2D images with 3 colour channels.*mean\(axis=-1\)"):
        as_images(np.zeros((2, 32, 32, 3)), name="arr")   # RGB images are not 3-slice volumes
    assert as_images(np.zeros((2, 32, 32, 8)), name="arr").shape == (2, 32, 32, 8, 1)


def test_unknown_normalize_mode_is_refused():
    with pytest.raises(ValueError, match="normalize must be one of"):
        as_images(np.zeros((1, 4, 4)), name="x", normalize="zscore")


def test_labels_must_match_the_images():
    with pytest.raises(ValueError, match=r"segs: label maps have shape \(2, 4, 5\) but the images have \(2, 4, 4\)"):
        as_labels(np.zeros((2, 4, 5), int), name="segs", image_shape=(2, 4, 4))


def test_labels_with_fractions_negative_values_or_text_are_refused():
    with pytest.raises(ValueError, match="whole numbers"):
        as_labels(np.full((1, 2, 2), 0.5), name="s", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="negative"):
        as_labels(np.full((1, 2, 2), -1), name="s", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="must be integers"):
        as_labels(np.full((1, 2, 2), "a"), name="s", image_shape=(1, 2, 2))


def test_whole_number_float_labels_become_int32():
    labels = as_labels(np.array([[[0.0, 3.0], [24.0, 1.0]]]), name="s", image_shape=(1, 2, 2))
    assert labels.dtype == np.int32 and labels.tolist() == [[[0, 3], [24, 1]]]


def test_dataset_refuses_unnormalised_or_non_finite_images():
    with pytest.raises(ValueError, match=r"\[0, 1\].*from_arrays"):
        Dataset(images=np.full((2, 4, 4, 1), 2.0))
    with pytest.raises(ValueError, match="NaN"):
        Dataset(images=np.full((2, 4, 4, 1), np.nan))
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\) or \(N, D, H, W, 1\)"):
        Dataset(images=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"Dataset.affines: expected one \(4, 4\) affine or 2 of them"):
        Dataset(images=np.zeros((2, 4, 4, 1)), affines=np.eye(3))
    with pytest.raises(ValueError, match="to match the images"):
        Dataset(images=np.zeros((2, 4, 4, 1)), labels=np.zeros((2, 4, 3), int))


def test_dataset_stores_float32_and_slices_keep_labels_and_names():
    data = Dataset.from_arrays(np.arange(48.0).reshape(3, 4, 4), np.ones((3, 4, 4), np.uint8),
                               names=["a", "b", "c"])
    assert data.images.dtype == np.float32 and data.labels.dtype == np.int32
    part = data[np.array([2, 0])]
    assert part.names == ["c", "a"] and part.labels.shape == (2, 4, 4)
    assert data[1].names == ["b"] and len(data[1:]) == 2
    assert data.label_values().tolist() == [1]
