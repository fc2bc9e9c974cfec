"""downsample=f: the U-Net on block-averaged images, its field upsampled to the image grid."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import map_coordinates

import hypermorph_nb as hnb
from hypermorph_nb.networks.resolution import block_mean, block_mode, coarse_shape, upsample_field
from tests.conftest import TINY_FEATURES

SMALL = [[8, 8, 8], [8, 8, 8, 8, 8]]


def reference_upsample(coarse, factor, shape):
    """Fine voxel p at coarse coordinate (p − (f − 1)/2)/f, clamped, linear (scipy), × f."""
    axes = [np.clip((np.arange(side) - (factor - 1) / 2) / factor, 0, n - 1)
            for side, n in zip(shape, coarse.shape[:-1])]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([map_coordinates(coarse[..., c], grid, order=1) for c in range(coarse.shape[-1])], -1) * factor


@pytest.mark.parametrize("shape, factor", [((12, 10), 2), ((6, 8, 4), 2), ((9, 12), 3)])
def test_upsampled_field_matches_scipy_linear_interpolation(shape, factor):
    coarse = np.random.default_rng(0).standard_normal((*shape, len(shape))).astype(np.float32)
    fine = upsample_field(tf.constant(coarse[None]), factor).numpy()[0]
    expected = reference_upsample(coarse, factor, [s * factor for s in shape])
    np.testing.assert_allclose(fine, expected, atol=1e-5)


def test_an_affine_displacement_survives_upsampling_inside_the_coarse_centres():
    # u(p) = A p + t in fine voxels is sampled at coarse centres p = 2c + 0.5, in coarse voxels u/2
    matrix, shift = np.array([[0.1, -0.05], [0.02, 0.07]]), np.array([0.3, -0.2])
    coarse_grid = np.stack(np.meshgrid(np.arange(8), np.arange(6), indexing="ij"), -1) * 2 + 0.5
    coarse = ((coarse_grid @ matrix.T + shift) / 2).astype(np.float32)
    fine = upsample_field(tf.constant(coarse[None]), 2).numpy()[0]
    fine_grid = np.stack(np.meshgrid(np.arange(16), np.arange(12), indexing="ij"), -1)
    expected = fine_grid @ matrix.T + shift
    inside = (slice(1, 15), slice(1, 11))  # between the first and last coarse centres
    np.testing.assert_allclose(fine[inside], expected[inside], atol=1e-5)


def test_block_mean_and_mode_pad_odd_sides_like_the_model():
    images = np.arange(5 * 3, dtype=np.float32).reshape(1, 5, 3, 1)
    assert block_mean(images, 2).shape == (1, 3, 2, 1)
    assert block_mean(images, 2)[0, 2, 1, 0] == pytest.approx(14 / 4)  # one voxel and three zeros
    labels = np.zeros((1, 4, 4, 4), np.uint8)
    labels[0, :2, :2, :2] = 7
    labels[0, 0, 0, 0] = 3
    assert block_mode(labels, 2)[0, 0, 0, 0] == 7 and block_mode(labels, 2).shape == (1, 2, 2, 2)


@pytest.mark.parametrize("builder, shape", [("vxm", (22, 28)), ("hypermorph", (22, 28)), ("film", (22, 28)),
                                            ("vxm", (21, 27))])   # odd sides: padded after, cropped back
def test_the_wrapper_runs_the_coarse_network_on_block_means(builder, shape):
    seed = 3
    build = {"vxm": lambda **k: hnb.build_vxm(shape, nb_features=SMALL, seed=seed, **k),
             "hypermorph": lambda **k: hnb.build_hypermorph(shape, nb_features=SMALL, seed=seed, **k),
             "film": lambda **k: hnb.build_hypermorph(shape, nb_features=SMALL, conditioning="film",
                                                      seed=seed, **k)}[builder]
    model = build(downsample=2)
    core = {"vxm": lambda: hnb.build_vxm(coarse_shape(shape, 2), nb_features=SMALL, seed=seed),
            "hypermorph": lambda: hnb.build_hypermorph(coarse_shape(shape, 2), nb_features=SMALL, seed=seed),
            "film": lambda: hnb.build_hypermorph(coarse_shape(shape, 2), nb_features=SMALL, conditioning="film",
                                                 seed=seed)}[builder]()
    core.set_weights(model.get_weights())  # the wrapper has no weights of its own
    rng = np.random.default_rng(1)
    moving, fixed = rng.random((2, 1, *shape, 1), dtype=np.float32)
    extra = [np.array([[0.3]], np.float32)] if builder != "vxm" else []
    moved, flow = model.predict([moving, fixed, *extra], verbose=0)
    _, coarse_flow = core.predict([block_mean(moving, 2), block_mean(fixed, 2), *extra], verbose=0)
    fine = reference_upsample(coarse_flow[0], 2, [2 * side for side in coarse_shape(shape, 2)])
    np.testing.assert_allclose(flow[0], fine[:shape[0], :shape[1]], atol=1e-4)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1) + flow[0]
    warped = map_coordinates(moving[0, ..., 0], np.moveaxis(grid, -1, 0), order=1, mode="nearest")
    np.testing.assert_allclose(moved[0, ..., 0], warped, atol=1e-4)  # full-resolution image, upsampled field


@pytest.mark.slow   # trains: the fast tier builds and runs downsampled models elsewhere
def test_a_downsampled_model_trains_saves_and_loads(tmp_path):
    data = hnb.data.synthetic(6, (24, 24, 24), seed=0)
    model = hnb.build_hypermorph((24, 24, 24), nb_features=TINY_FEATURES, conditioning="film", downsample=2,
                                 diffeomorphic=True, int_steps=3, seed=0)
    history = hnb.train(model, data, epochs=1, steps_per_epoch=3, verbose=False, progress="none", live_plot=False)
    assert np.isfinite(history.loss).all()
    hnb.save_model(model, tmp_path / "model")
    loaded = hnb.load_model(tmp_path / "model")
    assert hnb.networks.spec_of(loaded).options["downsample"] == 2
    pair = [data.images[:1], data.images[1:2], np.array([[0.5]], np.float32)]
    np.testing.assert_allclose(loaded.predict(pair, verbose=0)[1], model.predict(pair, verbose=0)[1], atol=1e-6)


def test_a_model_without_downsample_keeps_its_saved_options():
    assert "downsample" not in hnb.networks.spec_of(hnb.build_vxm((16, 16), nb_features=TINY_FEATURES)).options


@pytest.mark.parametrize("value, message", [(0, "whole number >= 1"), (1.5, "whole number >= 1"),
                                            (True, "whole number >= 1"), (4, "under 8 voxels")])
def test_bad_downsample_is_refused(value, message):
    with pytest.raises(ValueError, match=message):
        hnb.build_vxm((24, 24), nb_features=TINY_FEATURES, downsample=value)
