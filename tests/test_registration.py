"""register() and the compiled Registrar: 2D and 3D, any shape, λ, labels, intensities, grids, errors."""
import warnings

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.checks.grids import match_grid
from hypermorph_nb.registration.pairs import Registrar

from tests.conftest import TINY_FEATURES


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 1)])
def test_register_accepts_2d_and_channel_images(tiny_hypermorph, small_data, shape):
    moving = small_data.images[0].reshape(shape)
    fixed = small_data.images[1].reshape(shape)
    moved, flow = hnb.register(tiny_hypermorph, moving, fixed, lam=0.5)
    assert moved.shape == shape and moved.dtype == np.float32
    assert flow.shape == (32, 32, 2)


def test_register_baseline_without_lambda(tiny_vxm, small_data):
    moved, flow = hnb.register(tiny_vxm, small_data.images[0], small_data.images[1])
    assert moved.shape == (32, 32, 1) and flow.shape == (32, 32, 2)


def test_lambda_changes_the_hypermorph_output(tiny_hypermorph, small_data):
    _, flow0 = hnb.register(tiny_hypermorph, small_data.images[0], small_data.images[1], lam=0.0)
    _, flow1 = hnb.register(tiny_hypermorph, small_data.images[0], small_data.images[1], lam=1.0)
    assert not np.allclose(flow0, flow1)


def test_batched_lambda_per_pair_matches_single_calls(tiny_hypermorph, small_data):
    run = Registrar.for_model(tiny_hypermorph)
    moving, fixed = small_data.images[:3], small_data.images[3:6]
    lams = [0.0, 0.4, 1.0]
    moved, flow = run.predict(moving, fixed, lams)
    for i, lam in enumerate(lams):
        _, single = hnb.register(tiny_hypermorph, moving[i], fixed[i], lam=lam)
        np.testing.assert_allclose(flow[i], single, atol=1e-4)


def test_registrar_is_cached_per_model(tiny_hypermorph):
    assert Registrar.for_model(tiny_hypermorph) is Registrar.for_model(tiny_hypermorph)


def test_nearest_warp_keeps_label_values(tiny_hypermorph, small_data):
    run = Registrar.for_model(tiny_hypermorph)
    flow = np.zeros((2, 32, 32, 2), np.float32)
    flow[..., 1] = 1.0  # sample one pixel to the right
    warped = run.warp(small_data.labels[:2], flow, interp="nearest")
    assert warped.dtype == small_data.labels.dtype
    np.testing.assert_array_equal(warped[:, :, :-1], small_data.labels[:2, :, 1:])
    assert set(np.unique(warped)) <= set(np.unique(small_data.labels[:2]))


def test_errors_name_the_problem(tiny_hypermorph, tiny_vxm, small_data):
    image = small_data.images[0]
    with pytest.raises(ValueError, match="pass lam"):
        hnb.register(tiny_hypermorph, image, image)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hnb.register(tiny_hypermorph, image, image, lam=1.5)
    with pytest.raises(ValueError, match="takes no lam"):
        hnb.register(tiny_vxm, image, image, lam=0.5)
    with pytest.raises(ValueError, match=r"moving has shape \(16, 16\)"):
        hnb.register(tiny_hypermorph, np.zeros((16, 16)), image, lam=0.5)
    with pytest.raises(ValueError, match="NaN"):
        hnb.register(tiny_hypermorph, np.full((32, 32), np.nan), image, lam=0.5)


# ---- 3D, any shape, bad input, intensities and grids -------------------------------------

VOLUME = (16, 16, 16)


@pytest.fixture(scope="module")
def hypermorph_3d():
    return hnb.build_hypermorph(VOLUME, nb_features=TINY_FEATURES, seed=0)


def deforming(model, scale=0.02):
    """Give an untrained model fields of a few voxels (its flow layer starts at ~1e-5)."""
    layers = [layer for layer in model.submodules if getattr(layer, "name", "").endswith("_flow")
              and layer.get_weights()]
    assert layers, "the model has voxelmorph's flow layer"
    rng = np.random.default_rng(0)
    for layer in layers:
        layer.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def deformed_vxm():
    return deforming(hnb.build_vxm((32, 32), nb_features=TINY_FEATURES, seed=0), scale=0.2)


def smooth_volume(shape, seed=0):
    """A blurred random volume in [0, 1] (numpy only)."""
    from scipy import ndimage

    noise = np.random.default_rng(seed).random(shape)
    volume = ndimage.gaussian_filter(noise, 2.0)
    return ((volume - volume.min()) / (volume.max() - volume.min())).astype(np.float32)


@pytest.mark.parametrize("channel", [False, True])
def test_register_volumes_returns_arrays_of_the_input_shape(hypermorph_3d, channel):
    moving, fixed = smooth_volume(VOLUME, 0), smooth_volume(VOLUME, 1)
    if channel:
        moving, fixed = moving[..., None], fixed[..., None]
    moved, flow = hnb.register(hypermorph_3d, moving, fixed, lam=0.5)
    assert moved.shape == moving.shape and moved.dtype == np.float32
    assert flow.shape == (*VOLUME, 3)
    assert np.isfinite(flow).all()


@pytest.mark.slow
def test_register_a_volume_of_a_shape_the_unet_cannot_pool():
    # (40, 44, 36) is padded to (48, 48, 48) inside the model and cropped back
    shape = (40, 44, 36)
    model = hnb.build_hypermorph(shape, nb_features=TINY_FEATURES, seed=0)
    moved, flow = hnb.register(model, smooth_volume(shape, 0), smooth_volume(shape, 1), lam=0.3)
    assert moved.shape == shape and flow.shape == (*shape, 3)


def test_dimension_errors_name_the_fix(tiny_hypermorph, hypermorph_3d):
    image, volume = np.zeros((32, 32), np.float32), np.zeros(VOLUME, np.float32)
    with pytest.raises(ValueError, match=r"moving is a 3D volume .* registers 2D images .*build a 3D model"):
        hnb.register(tiny_hypermorph, np.zeros((32, 32, 32)), image, lam=0.5)
    with pytest.raises(ValueError, match=r"fixed is a 2D image .* registers 3D volumes"):
        hnb.register(hypermorph_3d, volume, np.zeros((16, 16)), lam=0.5)
    with pytest.raises(ValueError, match=r"4 dimensions .* one 3D image .*\[\.\.\., 0\]"):
        hnb.register(hypermorph_3d, np.zeros((*VOLUME, 2)), volume, lam=0.5)
    with pytest.raises(ValueError, match=r"moving has shape \(16, 16, 8\), but the model was built for"):
        hnb.register(hypermorph_3d, np.zeros((16, 16, 8)), volume, lam=0.5)


def test_8bit_images_are_divided_by_255_with_a_warning(deformed_vxm, small_data):
    model = deformed_vxm
    image8 = np.round(small_data.images[0, ..., 0] * 255).astype(np.uint8)
    fixed = small_data.images[1, ..., 0]
    with pytest.warns(UserWarning, match=r"moving: intensities span \[0, \d+\] \(uint8\).*divided by 255"
                                         r".*normalize='none'"):
        moved, flow = hnb.register(model, image8, fixed)
    unit_moved, unit_flow = hnb.register(model, image8 / 255.0, fixed)
    assert np.abs(flow).max() > 0.5, "a field of some voxels, so that the comparisons mean something"
    np.testing.assert_allclose(flow, unit_flow, atol=1e-4)
    # the moved image comes back in the moving image's own units (0-255)
    np.testing.assert_allclose(moved, unit_moved * 255, atol=1e-3)


def test_other_ranges_are_min_max_rescaled_or_refused(deformed_vxm, small_data):
    model = deformed_vxm
    fixed = small_data.images[1, ..., 0]
    fixed = (fixed - fixed.min()) / (fixed.max() - fixed.min())   # what 'minmax' makes of it too
    raw = 100.0 + 900.0 * small_data.images[0, ..., 0]   # e.g. raw MRI intensities
    with pytest.warns(UserWarning, match="rescaled by its minimum and maximum"):
        moved, flow = hnb.register(model, raw, fixed)
    assert 99.99 <= moved.min() and moved.max() <= 1000.01, "moved comes back in the input's units"
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # explicit minmax and [0, 1] input: silent
        _, minmax_flow = hnb.register(model, raw, fixed, normalize="minmax")
        hnb.register(model, small_data.images[0], fixed)
    np.testing.assert_allclose(flow, minmax_flow, atol=1e-5)
    assert np.abs(flow).max() > 0.5, "a field of some voxels, so that the comparisons mean something"
    with pytest.raises(ValueError, match=r"moving: intensities span \[100, 1000\].*normalize='none'"):
        hnb.register(model, raw, fixed, normalize="none")
    with pytest.raises(ValueError, match="normalize must be one of"):
        hnb.register(model, raw, fixed, normalize="zscore")


def test_different_grids_are_refused_or_resampled_when_asked(hypermorph_3d):
    fixed = smooth_volume(VOLUME, 1)
    fixed_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    coarse = smooth_volume((8, 8, 8), 0)                 # 4 mm voxels over the same field of view
    coarse_affine = np.diag([4.0, 4.0, 4.0, 1.0])
    coarse_affine[:3, 3] = 1.0                           # voxel centres of the 4 mm grid
    with pytest.raises(ValueError, match=r"different voxel grids .*voxel sizes 4x4x4 mm and 2x2x2 mm"
                                         r".*resample=True"):
        hnb.register(hypermorph_3d, coarse, fixed, lam=0.5, moving_affine=coarse_affine,
                     fixed_affine=fixed_affine)
    shifted = fixed_affine.copy()
    shifted[0, 3] = 10.0
    with pytest.raises(ValueError, match="same voxel size, but the affines differ in position"):
        hnb.register(hypermorph_3d, fixed, fixed, lam=0.5, moving_affine=shifted,
                     fixed_affine=fixed_affine)
    with pytest.warns(UserWarning, match="moving was resampled onto the grid of fixed"):
        moved, flow = hnb.register(hypermorph_3d, coarse, fixed, lam=0.5,
                                   moving_affine=coarse_affine, fixed_affine=fixed_affine,
                                   resample=True)
    assert moved.shape == VOLUME and flow.shape == (*VOLUME, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the same grid: nothing to say
        hnb.register(hypermorph_3d, fixed, fixed, lam=0.5, moving_affine=fixed_affine,
                     fixed_affine=fixed_affine, resample=True)


def test_resampling_puts_each_world_point_where_it_belongs():
    moving = np.zeros((8, 8, 8), np.float32)
    moving[2, 3, 4] = 1.0
    moving_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    fixed_affine = np.eye(4)
    fixed_affine[:3, 3] = [1.0, 0.0, -2.0]
    array, resampled = match_grid(moving, moving_affine, (16, 16, 16), fixed_affine, resample=True)
    # moving voxel (2, 3, 4) is world (4, 6, 8) mm, i.e. fixed voxel (3, 6, 10)
    assert resampled and array.shape == (16, 16, 16)
    assert np.unravel_index(np.argmax(array), array.shape) == (3, 6, 10)
    assert array[3, 6, 10] == pytest.approx(1.0)


def test_2d_grids_compare_in_plane_only():
    image = np.arange(64.0).reshape(8, 8)
    thin, thick = np.diag([1.0, 1.0, 1.0, 1.0]), np.diag([1.0, 1.0, 3.0, 1.0])
    array, resampled = match_grid(image, thick, (8, 8), thin, resample=False)
    assert array is image and not resampled       # slice thickness moves no pixel
    shifted = thin.copy()
    shifted[1, 3] = 2.0
    with pytest.raises(ValueError, match="same voxel size, but the affines differ in position"):
        match_grid(image, shifted, (8, 8), thin, resample=False)
