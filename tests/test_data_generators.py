"""Pair generators: shapes, dtypes, determinism, the tf.data path and model.fit."""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.data import PairBatches, hypermorph_generator, synthetic, voxelmorph_generator

from tests.conftest import SHAPE, TINY_FEATURES


def test_batches_have_the_documented_shapes_and_dtypes(small_data):
    batch = PairBatches(small_data, batch_size=3, seed=0, lam_sampling="uniform",
                        include_labels=True).batch(7)
    assert batch["moving"].shape == batch["fixed"].shape == (3, *SHAPE, 1)
    assert batch["moving"].dtype == batch["fixed"].dtype == np.float32
    assert batch["lam"].shape == (3, 1) and batch["lam"].dtype == np.float32
    assert batch["moving_labels"].shape == (3, *SHAPE) and batch["moving_labels"].dtype == np.int32
    assert "lam" not in PairBatches(small_data, batch_size=3).batch(0)


def test_labels_travel_with_their_images(small_data):
    batch = PairBatches(small_data, batch_size=16, seed=1, include_labels=True).batch(0)
    for image, labels in zip(batch["fixed"], batch["fixed_labels"]):
        index = next(i for i in range(len(small_data)) if np.array_equal(small_data.images[i], image))
        np.testing.assert_array_equal(small_data.labels[index], labels)


def test_pairs_are_drawn_uniformly_from_the_training_images():
    data = synthetic(5, (16, 16), seed=0)
    batches = PairBatches(data, batch_size=50, seed=0)
    means = {float(image.mean()): index for index, image in enumerate(data.images)}
    drawn = np.array([[means[float(image.mean())] for image in batches.batch(step)["moving"]]
                      for step in range(40)]).ravel()
    counts = np.bincount(drawn, minlength=5)
    expected, n = 1 / 5, drawn.size       # binomial standard error per image
    assert np.all(np.abs(counts / n - expected) <= 4 * np.sqrt(expected * (1 - expected) / n))


def test_a_batch_is_a_pure_function_of_seed_and_step(small_data):
    first = PairBatches(small_data, batch_size=2, seed=4, lam_sampling="oversample")
    second = PairBatches(small_data, batch_size=2, seed=4, lam_sampling="oversample")
    for key in ("moving", "fixed", "lam"):
        np.testing.assert_array_equal(first.batch(9)[key], second.batch(9)[key])
    assert not np.array_equal(first.batch(9)["lam"], first.batch(10)["lam"])


def test_tf_data_path_matches_batch_and_resumes(small_data):
    batches = PairBatches(small_data, batch_size=2, seed=3, lam_sampling="beta", include_labels=True)
    streamed = list(batches.dataset(5, 8))
    assert len(streamed) == 3
    for step, element in zip(range(5, 8), streamed):
        expected = batches.batch(step)
        for key, value in expected.items():
            np.testing.assert_array_equal(element[key].numpy(), value)
    assert streamed[0]["moving_labels"].dtype == tf.int32


def test_voxelmorph_generator_follows_the_tutorial(small_data):
    generator = voxelmorph_generator(small_data, batch_size=4, seed=2)
    (moving, fixed), (target, zeros) = next(generator)
    assert moving.shape == fixed.shape == (4, *SHAPE, 1)
    assert target is fixed and zeros.shape == (4, *SHAPE, 2) and not zeros.any()
    reference = PairBatches(small_data, batch_size=4, seed=2).batch(1)
    (moving, fixed), _ = next(generator)
    np.testing.assert_array_equal(moving, reference["moving"])


def test_hypermorph_generator_appends_lambda_and_resumes(small_data):
    generator = hypermorph_generator(small_data, batch_size=2, seed=0, lam_sampling=0.75, start_step=3)
    (moving, fixed, lam), (target, zeros) = next(generator)
    assert lam.shape == (2, 1) and (lam == 0.75).all() and zeros.shape == (2, *SHAPE, 2)
    np.testing.assert_array_equal(moving, PairBatches(small_data, batch_size=2, seed=0).batch(3)["moving"])


@pytest.mark.slow
def test_generators_drive_model_fit_like_the_tutorial(small_data):
    for build, generator in ((hnb.build_vxm, voxelmorph_generator(small_data, batch_size=2)),
                             (hnb.build_hypermorph, hypermorph_generator(small_data, batch_size=2))):
        model = build(SHAPE, nb_features=TINY_FEATURES, seed=0)
        model.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-4), loss=["mse", "mse"])
        history = model.fit(generator, epochs=1, steps_per_epoch=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ({"batch_size": 1.5}, ValueError, "batch_size must be an integer >= 1"),
    ({"lam_sampling": 1.5}, ValueError, r"must lie in \[0, 1\]"),
    ({"include_labels": True}, ValueError, "include_labels=True needs a Dataset with label maps"),
])
def test_bad_generator_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        PairBatches(np.zeros((3, 8, 8, 1), np.float32), **kwargs)


def test_training_arrays_are_checked():
    with pytest.raises(ValueError, match="need at least 2 training images"):
        PairBatches(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"training images\[0\]: intensities span \[255, 255\].*from_arrays"):
        PairBatches(np.full((2, 8, 8, 1), 255.0))
    with pytest.raises(ValueError, match=r"training images: images must have shape \(N, H, W\) for 2D"):
        PairBatches(np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match=r"training images: each item holds 4D data \(8, 8, 8, 3\)"):
        PairBatches(np.zeros((2, 8, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        voxelmorph_generator(np.full((2, 8, 8), np.nan))
