"""HyperMorph learns (thanks to the initialisation fix) and λ reaches the loss."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic
from hypermorph_nb.networks.losses import smoothness_term
from hypermorph_nb.registration.pairs import Registrar

SHAPE = (64, 64)
PAIRS = np.array([(0, 1), (2, 3), (1, 2), (3, 0)])


@pytest.fixture(scope="module")
def four_images():
    return synthetic(4, SHAPE, seed=0)


def evaluate(model, data, lam):
    moved, flow = Registrar.for_model(model).predict(data.images[PAIRS[:, 0]], data.images[PAIRS[:, 1]], lam)
    mse = float(np.mean((moved - data.images[PAIRS[:, 1]]) ** 2))
    return mse, float(np.mean(smoothness_term(flow)))


@pytest.fixture(scope="module")
def identity_mse(four_images):
    return float(np.mean((four_images.images[PAIRS[:, 0]] - four_images.images[PAIRS[:, 1]]) ** 2))


@pytest.mark.slow
def test_baseline_at_lambda_zero_halves_the_image_error(four_images, identity_mse):
    model = hnb.build_vxm(SHAPE, seed=0)
    hnb.train(model, four_images, epochs=4, steps_per_epoch=100, learning_rate=1e-3, lam=0.0,
              loss=hnb.networks.LossConfig(image_sigma=0.2), verbose=False)
    mse, _ = evaluate(model, four_images, None)
    assert mse < 0.5 * identity_mse


@pytest.mark.slow
def test_hypermorph_learns_and_lambda_one_is_smoother_than_lambda_zero(four_images, identity_mse):
    model = hnb.build_hypermorph(SHAPE, seed=0)
    before = evaluate(model, four_images, 0.0)[0]
    hnb.train(model, four_images, epochs=4, steps_per_epoch=100, learning_rate=1e-3,
              lam_sampling={"mode": "oversample", "oversample_rate": 0.5}, loss=hnb.networks.LossConfig(image_sigma=0.2), verbose=False)
    mse0, smooth0 = evaluate(model, four_images, 0.0)
    mse1, smooth1 = evaluate(model, four_images, 1.0)
    assert before == pytest.approx(identity_mse, rel=0.1), "an untrained model barely deforms"
    assert mse0 < 0.5 * identity_mse, "HyperMorph at λ=0 must cut the image error by half"
    assert smooth1 < 0.3 * smooth0, "λ=1 must give a clearly smoother field than λ=0"
    assert mse1 > mse0, "λ=1 trades image similarity for smoothness"


@pytest.mark.slow
def test_3d_hypermorph_learns_and_lambda_one_is_smoother_than_lambda_zero(trained_hypermorph_3d):
    """A short 3D training on small synthetic volumes of an odd size (padded inside the model)."""
    model, volumes, history = trained_hypermorph_3d
    identity = float(np.mean((volumes.images[PAIRS[:, 0]] - volumes.images[PAIRS[:, 1]]) ** 2))
    mse0, smooth0 = evaluate(model, volumes, 0.0)
    mse1, smooth1 = evaluate(model, volumes, 1.0)
    assert np.all(np.isfinite(history.loss))
    assert mse0 < 0.8 * identity, "at λ=0 the 3D model must register the volumes"
    assert smooth1 < 0.3 * smooth0, "λ=1 must give a clearly smoother 3D field than λ=0"
    assert mse1 > mse0, "λ=1 trades image similarity for smoothness"
