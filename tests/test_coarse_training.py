"""train() on a downsample=f model: the U-Net learns at its own grid, on block-averaged copies."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.networks.models import coarse_network
from hypermorph_nb.networks.resolution import coarse_shape
from hypermorph_nb.training.coarse import coarse_affine, coarse_copy
from hypermorph_nb.training.options import CheckpointConfig

SMALL = [[8, 8, 8], [8, 8, 8, 8, 8]]
SHAPE = (22, 26)
QUIET = {"verbose": False, "progress": "none", "live_plot": False}


def film(shape, **options):
    return hnb.build_hypermorph(shape, nb_features=SMALL, conditioning="film", seed=4, **options)


def test_training_a_downsampled_model_is_training_its_network_on_block_averages():
    data = hnb.data.synthetic(6, SHAPE, seed=0)
    settings = {"epochs": 2, "steps_per_epoch": 3, "seed": 1, "label_weight": 1.0, "learning_rate": 1e-3,
                "loss": hnb.networks.LossConfig(image_loss="ncc", ncc_window=5), **QUIET}
    model = film(SHAPE, downsample=2)
    history = hnb.train(model, data, **settings)
    # the independent path: a network built at the coarse grid, trained on block means / modes
    coarse = film(coarse_shape(SHAPE, 2))
    expected = hnb.train(coarse, coarse_copy(data, 2), **settings)
    np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-5)
    for trained, reference in zip(model.get_weights(), coarse.get_weights()):
        np.testing.assert_allclose(trained, reference, atol=1e-6)
    assert any(not np.allclose(w, v) for w, v in zip(model.get_weights(), film(SHAPE, downsample=2).get_weights()))


def test_a_downsampled_model_keeps_its_full_resolution_space_and_record():
    data = hnb.data.synthetic(4, (20, 24, 20), seed=0)
    model = hnb.build_vxm((20, 24, 20), nb_features=SMALL, downsample=2, seed=0)
    hnb.train(model, data, epochs=1, steps_per_epoch=2, lam=0.3, **QUIET)
    spec = hnb.networks.spec_of(model)
    assert spec.inshape == (20, 24, 20) and spec.space.shape == (20, 24, 20)
    np.testing.assert_allclose(spec.space.affine, data.affine)
    assert spec.training.lam == 0.3 and spec.training.steps == 2
    assert hnb.networks.spec_of(coarse_network(model)).inshape == (10, 12, 10)


@pytest.mark.slow   # trains twice to compare; coarse training itself stays in the fast tier
def test_a_downsampled_model_resumes_exactly(tmp_path):
    data = hnb.data.synthetic(6, SHAPE, seed=0)
    settings = {"steps_per_epoch": 3, "seed": 2, "label_weight": 0.5, **QUIET}
    straight = film(SHAPE, downsample=2)
    hnb.train(straight, data, epochs=2, **settings)
    first = film(SHAPE, downsample=2)
    hnb.train(first, data, epochs=1, checkpoints=CheckpointConfig(tmp_path), **settings)
    resumed = film(SHAPE, downsample=2)   # a fresh model: everything comes from the checkpoint
    history = hnb.train(resumed, data, epochs=2, checkpoints=CheckpointConfig(tmp_path), resume=True, **settings)
    assert history.resumed_from_step == 3
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_data_of_another_shape_is_refused_before_any_averaging():
    model = hnb.build_vxm(SHAPE, nb_features=SMALL, downsample=2, seed=0)
    with pytest.raises(ValueError, match=r"\(22, 26\)"):
        hnb.train(model, hnb.data.synthetic(4, (24, 24), seed=0), epochs=1, steps_per_epoch=1, **QUIET)


def test_coarse_copy_averages_blocks_and_places_them_in_the_world():
    rng = np.random.default_rng(1)
    affine = np.array([[0, 0, -1.5, 20], [1.2, 0, 0, -7], [0, 2.0, 0, 3], [0, 0, 0, 1]], float)
    data = hnb.data.Dataset(images=rng.random((3, 9, 8, 6, 1)), labels=rng.integers(0, 4, (3, 9, 8, 6)),
                            names=["a", "b", "c"], affines=affine)
    coarse = coarse_copy(data, 2)
    assert coarse.shape == (5, 4, 3) and coarse.names == ["a", "b", "c"]
    # coarse voxel (1, 2, 1) is the mean of fine voxels 2–3, 4–5, 2–3
    block = data.images[0, 2:4, 4:6, 2:4, 0]
    assert coarse.images[0, 1, 2, 1, 0] == pytest.approx(block.mean(), abs=1e-6)
    values, counts = np.unique(data.labels[0, 2:4, 4:6, 2:4], return_counts=True)
    assert coarse.labels[0, 1, 2, 1] in values[counts == counts.max()]
    # its centre in the world is the mean of its fine voxels' centres
    fine = np.array([[i, j, k, 1] for i in (2, 3) for j in (4, 5) for k in (2, 3)], float) @ affine.T
    np.testing.assert_allclose(coarse.affines[0] @ [1, 2, 1, 1], fine.mean(axis=0), atol=1e-9)
    assert coarse_copy(data, 1) is data


def test_coarse_affine_of_2d_images_leaves_the_third_axis_alone():
    assert np.diag(coarse_affine(np.eye(4), 2, ndim=2)).tolist() == [2.0, 2.0, 1.0, 1.0]
