"""load_source: the notebooks' data parameter, its fallbacks and resizing."""
import numpy as np
import pytest

from hypermorph_nb.data import DataUnavailableError, find_shared_oasis2d, load_source, resize, synthetic

SHARED = find_shared_oasis2d()
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data/oasis2d not present")


@pytest.fixture
def offline(monkeypatch):
    """The tutorial file can be neither found nor downloaded."""

    def refuse(*args, **kwargs):
        raise DataUnavailableError("offline (test)")

    monkeypatch.setattr("hypermorph_nb.data.sources.load_tutorial", refuse)


@needs_shared
def test_auto_falls_back_to_shared_oasis_and_says_why(offline, capsys):
    data = load_source("auto", subset=5)
    out = capsys.readouterr().out
    assert "Tutorial data unavailable" in out and "oasis2d_300.npz" in out
    assert data.images.shape == (5, 160, 192, 1) and data.has_labels


@needs_shared
def test_auto_with_labels_skips_the_unlabelled_tutorial_file(capsys):
    data = load_source("auto", require_labels=True, subset=3, shape=(80, 96))
    assert "no label maps" in capsys.readouterr().out
    assert data.images.shape == (3, 80, 96, 1)
    assert data.labels.shape == (3, 80, 96) and set(np.unique(data.labels)) <= set(range(25))


def test_auto_without_any_real_data_uses_synthetic(offline, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HYPERMORPH_NB_OASIS2D", str(tmp_path / "missing.npz"))
    data = load_source("auto", n_synthetic=4)
    assert "synthetic" in capsys.readouterr().out and len(data) == 4


def test_resize_keeps_label_values_and_image_range():
    data = synthetic(3, (64, 64), seed=1)
    small = resize(data, (32, 32))
    assert small.images.shape == (3, 32, 32, 1) and small.labels.shape == (3, 32, 32)
    assert set(np.unique(small.labels)) <= set(np.unique(data.labels))
    assert 0 <= small.images.min() and small.images.max() <= 1
    assert small.names == data.names


def test_unknown_source_and_missing_path_are_explained():
    with pytest.raises(ValueError, match="one of"):
        load_source("kaggle")
    with pytest.raises(ValueError, match="needs path"):
        load_source("npz")
