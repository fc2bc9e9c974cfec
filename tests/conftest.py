"""Shared fixtures: small shapes and narrow U-Nets keep the suite fast on 2 CPU cores."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic

#: A narrow U-Net for tests that need a model but not a good one.
TINY_FEATURES = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
SHAPE = (32, 32)


@pytest.fixture(scope="session")
def small_data():
    """Twelve labelled synthetic subjects at 32x32."""
    return synthetic(12, SHAPE, seed=0)


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
