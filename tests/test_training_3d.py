"""train() on volumes: HyperMorph learns λ in 3D, and checkpoints/resume continue a 3D run exactly."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.io.checkpoints import latest_checkpoint
from hypermorph_nb.data import synthetic
from hypermorph_nb.training import engine

from tests.conftest import TINY_FEATURES

SHAPE_3D = (16, 16, 16)
SETTINGS = {"steps_per_epoch": 4, "learning_rate": 1e-3, "lr_schedule": "step", "verbose": False,
            "steps_per_call": 2}


@pytest.fixture(scope="module")
def volumes():
    return synthetic(6, SHAPE_3D, seed=0)


def mean_squared_gradient(flow):
    return float(np.mean([np.mean(np.square(np.gradient(flow[..., axis], axis=axis)))
                          for axis in range(flow.shape[-1])]))


@pytest.mark.slow
def test_lambda_changes_the_field_of_a_3d_hypermorph(trained_hypermorph_3d):
    """λ = 1 weighs only the smoothness term: its fields must be far smoother than λ = 0's
    (the session's trained 3D model, tests/conftest.py)."""
    model, volumes, history = trained_hypermorph_3d
    assert history.stop_reason == "" and history.loss[-1] < history.loss[0]
    roughness = {}
    for lam in (0.0, 1.0):
        fields = [hnb.register(model, volumes.images[i], volumes.images[j], lam=lam)[1] for i, j in ((0, 1), (2, 3), (3, 0))]
        assert fields[0].shape == (*volumes.shape, 3)
        roughness[lam] = np.mean([mean_squared_gradient(flow) for flow in fields])
    assert roughness[1.0] < 0.3 * roughness[0.0], roughness


@pytest.mark.slow
def test_a_3d_run_resumes_from_its_checkpoint_exactly(volumes, tmp_path, monkeypatch):
    reference = hnb.train(hnb.build_vxm(SHAPE_3D, nb_features=TINY_FEATURES, seed=0), volumes, epochs=3,
                          **SETTINGS)
    run = engine.Engine.run

    def run_then_interrupt(self, iterator, count):
        if int(self.optimizer.iterations) >= 6:   # the stop button, 2 steps into epoch 2
            raise KeyboardInterrupt
        return run(self, iterator, count)

    with monkeypatch.context() as patch:
        patch.setattr(engine.Engine, "run", run_then_interrupt)
        stopped = hnb.train(hnb.build_vxm(SHAPE_3D, nb_features=TINY_FEATURES, seed=0), volumes, epochs=3,
                            checkpoints=tmp_path, **SETTINGS)
    assert stopped.interrupted and latest_checkpoint(tmp_path).step == 6
    model = hnb.build_vxm(SHAPE_3D, nb_features=TINY_FEATURES, seed=3)   # e.g. after a kernel restart
    resumed = hnb.train(model, volumes, epochs=3, checkpoints=tmp_path, resume=True, **SETTINGS)
    assert resumed.resumed_from_step == 6 and resumed.epochs == 3
    np.testing.assert_allclose(resumed.loss, reference.loss, rtol=1e-4)
    np.testing.assert_allclose(resumed.learning_rate, reference.learning_rate)
    assert hnb.load_model(latest_checkpoint(tmp_path).model_path).inputs[0].shape[1:4] == SHAPE_3D
