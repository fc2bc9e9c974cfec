"""The embedded synthetic default: valid, labelled, deterministic, with known deformations."""
import numpy as np
import pytest

from hypermorph_nb.data import synthetic, synthetic_pairs
from hypermorph_nb.data.synthetic import smooth_field, warp


def test_synthetic_images_and_labels_are_valid():
    data = synthetic(6, (32, 48), seed=0, n_labels=6)
    assert data.images.shape == (6, 32, 48, 1) and data.images.dtype == np.float32
    assert data.labels.shape == (6, 32, 48) and data.labels.dtype == np.int32
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.label_values().tolist() == [1, 2, 3, 4, 5]
    assert all(len(np.unique(labels)) == 6 for labels in data.labels)   # every structure in every subject
    assert set(data.label_names) == set(range(6)) and len(set(data.names)) == 6


def test_synthetic_is_deterministic_given_the_seed():
    first, second = synthetic(3, (32, 32), seed=7), synthetic(3, (32, 32), seed=7)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert not np.array_equal(first.images, synthetic(3, (32, 32), seed=8).images)


def test_subjects_differ_but_overlap_so_registration_has_work_to_do():
    data = synthetic(4, (64, 64), seed=0)
    agreement = [(data.labels[0] == data.labels[i]).mean() for i in range(1, 4)]
    assert all(0.6 < value < 0.99 for value in agreement)


def test_intensities_follow_the_labels():
    data = synthetic(2, (64, 64), seed=0, noise=0.0)
    image, labels = data.images[0, ..., 0], data.labels[0]
    means = [image[labels == value].mean() for value in range(8)]
    assert means[0] < 0.05 and len(set(np.round(means[1:], 2))) == 7


def test_known_pairs_are_related_by_their_flow():
    pairs = synthetic_pairs(3, (32, 32), seed=2, noise=0.0)
    assert len(pairs) == 3 and pairs.flow.shape == (3, 32, 32, 2) and pairs.flow.dtype == np.float32
    for index in range(3):
        np.testing.assert_array_equal(warp(pairs.moving_labels[index], pairs.flow[index], order=0),
                                      pairs.fixed_labels[index])
        moved = warp(pairs.moving[index, ..., 0], pairs.flow[index], order=1)
        np.testing.assert_allclose(moved, pairs.fixed[index, ..., 0], atol=1e-5)
    assert np.abs(pairs.moving - pairs.fixed).mean() > 0.01


def test_smooth_field_has_the_requested_largest_displacement():
    field = smooth_field((32, 32), 3.0, np.random.default_rng(0))
    assert field.shape == (32, 32, 2)
    assert np.sqrt((field ** 2).sum(-1)).max() == pytest.approx(3.0, rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be an integer >= 1"),
    ({"n": 2.5}, "n must be an integer >= 1"),
    ({"shape": (8, 8)}, "sides >= 16"),
    ({"shape": (32, 32, 32, 32)}, "shape must be 2D or 3D"),
    ({"shape": (32, 32, 8)}, "sides >= 16"),
    ({"n_labels": 2}, "n_labels must be >= 3"),
    ({"noise": -1}, "noise must be >= 0"),
    ({"max_displacement": -1}, "max_displacement must be >= 0"),
])
def test_bad_synthetic_arguments_are_refused(kwargs, message):
    arguments = {"n": 2, "shape": (32, 32), **kwargs}
    with pytest.raises(ValueError, match=message):
        synthetic(arguments.pop("n"), arguments.pop("shape"), **arguments)
