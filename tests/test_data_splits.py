"""even_split (the tutorial's) and random_split (seeded, by subject)."""
import numpy as np
import pytest

from hypermorph_nb.data import Dataset, even_split, random_split


def _data(n, names=None):
    images = np.linspace(0, 1, n, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 1), np.float32)
    labels = np.arange(n)[:, None, None] * np.ones((1, 4, 4), int)
    return Dataset(images=images, labels=labels, names=names)


def test_even_split_matches_the_tutorials_three_sets_of_138():
    data = _data(414)
    parts = even_split(data)
    assert [len(part) for part in parts] == [138, 138, 138]
    reference = np.array_split(data.images, 3)
    for part, expected in zip(parts, reference):
        np.testing.assert_array_equal(part.images, expected)
        np.testing.assert_array_equal(part.labels[:, 0, 0], np.round(expected[:, 0, 0, 0] * 413))


def test_even_split_of_uneven_sizes_and_bad_parts():
    assert [len(part) for part in even_split(_data(10), 4)] == [3, 3, 2, 2]
    for parts in (0, 11, 2.5):
        with pytest.raises(ValueError, match="parts must be an integer from 1 to the number of images"):
            even_split(_data(10), parts)
    with pytest.raises(TypeError, match="expected a Dataset.*from_arrays"):
        even_split(np.zeros((4, 4, 4, 1)))


def test_random_split_is_seeded_disjoint_and_complete():
    data = _data(50, names=[f"s{i:02d}" for i in range(50)])
    train, validate, test = random_split(data, (0.6, 0.2, 0.2), seed=3)
    assert (len(train), len(validate), len(test)) == (30, 10, 10)
    names = [set(part.names) for part in (train, validate, test)]
    assert set.union(*names) == set(data.names) and sum(map(len, names)) == 50
    for part in (train, validate, test):   # labels still belong to their images
        np.testing.assert_array_equal(part.labels[:, 0, 0], np.round(part.images[:, 0, 0, 0] * 49))
        assert part.names == sorted(part.names)      # original order kept
    again = random_split(data, (0.6, 0.2, 0.2), seed=3)
    assert again[0].names == train.names
    assert random_split(data, (0.6, 0.2, 0.2), seed=4)[0].names != train.names


def test_random_split_keeps_each_subjects_images_together():
    names = [f"subj{i // 4}_slice{i % 4}" for i in range(40)]
    data = _data(40, names=names)
    for groups in (lambda name: name.split("_")[0], [name.split("_")[0] for name in names]):
        parts = random_split(data, (0.5, 0.5), seed=0, groups=groups)
        subjects = [{name.split("_")[0] for name in part.names} for part in parts]
        assert not subjects[0] & subjects[1]
        assert [len(part) for part in parts] == [20, 20]


def test_random_split_rounds_by_largest_remainder():
    sizes = [len(part) for part in random_split(_data(10), (0.34, 0.33, 0.33))]
    assert sizes == [4, 3, 3]      # 3.4, 3.3, 3.3: the spare subject goes to the largest remainder


@pytest.mark.parametrize("fractions, message", [
    ((0.5, 0.4), "sum to 1"),
    ((1.2, -0.2), "positive"),
    ((0.98, 0.01, 0.01), r"set 1 would be empty"),
])
def test_random_split_bad_fractions(fractions, message):
    with pytest.raises(ValueError, match=message):
        random_split(_data(10), fractions)


def test_random_split_bad_groups():
    with pytest.raises(ValueError, match="one subject per image"):
        random_split(_data(10), (0.5, 0.5), groups=["a"] * 3)
    with pytest.raises(ValueError, match="has no names"):
        random_split(_data(10), (0.5, 0.5), groups=lambda name: name)
