"""The λ-weighted loss: per-sample terms, λ per sample, MSE(σ), NCC and the gradient penalty."""
import numpy as np
import pytest
import tensorflow as tf

from hypermorph_nb.networks.losses import LossConfig, image_term, smoothness_term, weighted_terms
from hypermorph_nb.networks.models import vxm


def test_mse_term_is_scaled_by_sigma_squared():
    fixed = np.zeros((1, 8, 8, 1), np.float32)
    moved = fixed + 0.1
    assert float(image_term(fixed, moved, LossConfig(image_sigma=0.1))[0]) == pytest.approx(1.0)
    assert float(image_term(fixed, moved, LossConfig(image_sigma=0.05))[0]) == pytest.approx(4.0)


def test_smoothness_matches_voxelmorph_grad_l2_per_sample(rng):
    flow = rng.standard_normal((3, 16, 12, 2)).astype(np.float32)
    ours = smoothness_term(flow).numpy()
    theirs = vxm.losses.Grad("l2").loss(None, tf.constant(flow)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_constant_field_is_perfectly_smooth():
    flow = np.full((2, 8, 8, 2), 3.0, np.float32)
    np.testing.assert_allclose(smoothness_term(flow).numpy(), 0.0)


def test_lambda_weights_each_sample_separately(rng):
    fixed = rng.random((3, 16, 16, 1), dtype=np.float32)
    moved = rng.random((3, 16, 16, 1), dtype=np.float32)
    flow = rng.standard_normal((3, 16, 16, 2)).astype(np.float32)
    lam = np.array([0.0, 0.5, 1.0], np.float32)
    terms = {k: v.numpy() for k, v in weighted_terms(fixed, moved, flow, lam).items()}
    np.testing.assert_allclose(terms["total"], (1 - lam) * terms["image"] + lam * terms["smooth"], rtol=1e-6)
    assert terms["total"][0] == pytest.approx(terms["image"][0])
    assert terms["total"][2] == pytest.approx(terms["smooth"][2])


def test_ncc_is_minus_one_for_identical_images(rng):
    image = rng.random((2, 16, 16, 1), dtype=np.float32)
    ncc = image_term(image, image, LossConfig(image_loss="ncc", ncc_window=5)).numpy()
    np.testing.assert_allclose(ncc, -1.0, atol=1e-3)
    shuffled = image_term(image, image[::-1], LossConfig(image_loss="ncc", ncc_window=5)).numpy()
    assert np.all(shuffled > -0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_loss": "l1"}, "image_loss"),
    ({"image_sigma": 0}, "image_sigma"),
    ({"ncc_window": 4}, "odd"),
])
def test_bad_loss_config_is_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossConfig(**kwargs)
