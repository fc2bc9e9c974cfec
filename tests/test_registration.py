"""register() and the compiled Registrar: shapes, λ handling, label warping, clear errors."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.registration import Registrar


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
