"""Shared fixtures: small shapes and narrow U-Nets keep the suite fast on 2 CPU cores.

Tests that need "a model" take an untrained tiny one; tests that need a trained one share the
session's :func:`trained_hypermorph` (trained once per run) and must not change its weights.
"""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic

#: A narrow U-Net for tests that need a model but not a good one.
TINY_FEATURES = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
SHAPE = (32, 32)
#: The shape of the shared trained 2D model.
TRAINED_SHAPE = (64, 64)


@pytest.fixture(scope="session")
def small_data():
    """Twelve labelled synthetic subjects at 32x32."""
    return synthetic(12, SHAPE, seed=0)


@pytest.fixture(scope="session")
def trained_hypermorph():
    """A narrow HyperMorph trained briefly at 64x64 on subjects 0-5 of eight: λ visibly matters.

    Returns the model and the eight labelled subjects (6 and 7 are held out). Shared by the
    whole session: a test must not train it further or change its weights.
    """
    data = synthetic(8, TRAINED_SHAPE, seed=0)
    model = hnb.build_hypermorph(TRAINED_SHAPE, nb_features=TINY_FEATURES, seed=0)
    hnb.train(model, data[:6], epochs=2, steps_per_epoch=100, learning_rate=1e-3,
              lam_sampling={"mode": "oversample", "oversample_rate": 0.5},
              loss=hnb.networks.LossConfig(image_sigma=0.2), verbose=False)
    return model, data


@pytest.fixture(scope="session")
def trained_hypermorph_3d():
    """A narrow 3D HyperMorph trained on four synthetic volumes of an odd size (24x28x20,
    padded inside the model). Returns the model, the volumes and the training history; shared
    by the session like :func:`trained_hypermorph`.
    """
    volumes = synthetic(4, (24, 28, 20), seed=0)
    model = hnb.build_hypermorph(volumes.shape, nb_features=TINY_FEATURES, seed=0)
    # 480 steps: every model seed tried registers clearly at λ = 0 (240 were enough for seed 0 only)
    history = hnb.train(model, volumes, epochs=8, steps_per_epoch=60, learning_rate=1e-3,
                        lam_sampling={"mode": "oversample", "oversample_rate": 0.5},
                        loss=hnb.networks.LossConfig(image_sigma=0.2), verbose=False)
    return model, volumes, history


@pytest.fixture
def tiny_hypermorph():
    return hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)


@pytest.fixture
def tiny_vxm():
    return hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def record_model_lams(monkeypatch):
    """Spy on the explorer's compiled model call; returns the list of λ it receives."""
    from hypermorph_nb.widgets.step import RegistrationStep   # ipywidgets: only for widget tests

    seen = []
    original = RegistrationStep.__call__

    def spy(self, moving, fixed, lam, moving_labels=None):
        seen.append(float(lam))
        return original(self, moving, fixed, lam, moving_labels)

    monkeypatch.setattr(RegistrationStep, "__call__", spy)
    return seen


@pytest.fixture(scope="session")
def trained_on_prepared_scans(tmp_path_factory):
    """``(folder, model)``: five posed raw scans with labels, and a tiny model trained on the first
    three prepared at 3 mm, its flow layer set to a known shift (``raw_scans.trained_model``)."""
    from raw_scans import trained_model, write_cohort

    folder = tmp_path_factory.mktemp("raw")
    write_cohort(folder, np.random.default_rng(2), count=5)
    prepared = hnb.prepare_scans([folder / f"scan{index}.nii.gz" for index in range(3)],
                                 tmp_path_factory.mktemp("prepared"), reference=0, spacing=3.0)
    return folder, trained_model(prepared.dataset)
