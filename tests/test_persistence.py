"""save_model / load_model: JSON config + HDF5 weights, identical predictions, safe on failure."""
import json
import os

import numpy as np
import pytest

import hypermorph_nb as hnb


@pytest.mark.parametrize("kind", ["vxm", "hypermorph"])
def test_reloaded_model_predicts_identically(tmp_path, small_data, kind, tiny_vxm, tiny_hypermorph):
    model = tiny_vxm if kind == "vxm" else tiny_hypermorph
    lam = None if kind == "vxm" else 0.3
    before = hnb.register(model, small_data.images[0], small_data.images[1], lam=lam)
    hnb.save_model(model, tmp_path / "m")
    loaded = hnb.load_model(tmp_path / "m")
    after = hnb.register(loaded, small_data.images[0], small_data.images[1], lam=lam)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert config["kind"] == kind and config["inshape"] == [32, 32]


def test_saved_folder_holds_no_pickle(tmp_path, tiny_hypermorph):
    hnb.save_model(tiny_hypermorph, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["model.json", "weights.h5"]


def test_overwrite_replaces_and_leaves_no_temporaries(tmp_path, tiny_vxm, tiny_hypermorph):
    hnb.save_model(tiny_vxm, tmp_path / "m")
    hnb.save_model(tiny_hypermorph, tmp_path / "m")
    assert hnb.load_model(tmp_path / "m").hypermorph_spec.kind == "hypermorph"
    assert os.listdir(tmp_path) == ["m"]


def test_failed_save_keeps_the_previous_model(tmp_path, tiny_vxm, monkeypatch):
    hnb.save_model(tiny_vxm, tmp_path / "m")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tiny_vxm, "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        hnb.save_model(tiny_vxm, tmp_path / "m")
    assert hnb.load_model(tmp_path / "m").hypermorph_spec.kind == "vxm"
    assert os.listdir(tmp_path) == ["m"]


def test_load_errors_are_clear(tmp_path, tiny_vxm, tiny_hypermorph):
    with pytest.raises(FileNotFoundError, match="model.json"):
        hnb.load_model(tmp_path / "missing")
    hnb.save_model(tiny_vxm, tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        hnb.load_model(tmp_path / "m")
    hnb.save_model(tiny_vxm, tmp_path / "m")
    (tmp_path / "m" / "weights.h5").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="damaged"):
        hnb.load_model(tmp_path / "m")
    # weights of another architecture
    hnb.save_model(tiny_hypermorph, tmp_path / "h")
    os.replace(tmp_path / "h" / "weights.h5", tmp_path / "m" / "weights.h5")
    (tmp_path / "m" / "model.json").write_text(json.dumps(
        {"format": "hypermorph_nb", "version": 1, "kind": "vxm", "inshape": [32, 32],
         "options": {"nb_features": [[8] * 4, [8] * 7]}}))
    with pytest.raises(ValueError, match="does not match"):
        hnb.load_model(tmp_path / "m")


def test_save_rejects_foreign_models(tmp_path):
    import tensorflow as tf

    inputs = tf.keras.Input((4,))
    with pytest.raises(TypeError, match="build_vxm"):
        hnb.save_model(tf.keras.Model(inputs, inputs), tmp_path / "x")
