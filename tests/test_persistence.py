"""save_model / load_model: JSON config + HDF5 weights, identical predictions, safe on failure."""
import json
import os
import shutil
import stat

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


def modes_under(folder):
    """``{relative path: permission bits}`` of ``folder`` and everything in it."""
    found = {".": stat.S_IMODE(os.stat(folder).st_mode)}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def expected_modes(folder, umask):
    """What ``mkdir`` and ``open`` would give every entry under ``umask``."""
    return {relative: (0o777 if os.path.isdir(os.path.join(folder, relative)) else 0o666) & ~umask
            for relative in modes_under(folder)}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_model_folders_and_files_follow_the_umask(tmp_path, tiny_vxm, umask):
    previous = os.umask(umask)
    try:
        hnb.save_model(tiny_vxm, tmp_path / "m")
        hnb.save_model(tiny_vxm, tmp_path / "m")   # replacing one too
    finally:
        os.umask(previous)
    assert modes_under(tmp_path / "m") == expected_modes(tmp_path / "m", umask)
    previous = os.umask(umask)
    try:
        metrics = hnb.io.report.save_metrics(tmp_path / "report", {"dice": 0.5})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(metrics).st_mode) == 0o666 & ~umask


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_a_model_saved_by_version_0_1_0_loads_and_predicts_the_same_flow(tmp_path):
    """Weights written layer by layer before the toolkit's own hyper-convolution classes still map.

    The copy is rebuilt with another initialisation seed, so only weights loaded from the
    file (not a rebuild that happens to match) reproduce the stored flow.
    """
    folder = tmp_path / "model"
    shutil.copytree(os.path.join(FIXTURES, "model_0.1.0_hypermorph_2d"), folder)
    config = json.loads((folder / "model.json").read_text())
    config["options"]["seed"] = 1
    (folder / "model.json").write_text(json.dumps(config))
    x = np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 16, 16, 1)
    inputs = [x, x[:, ::-1], np.array([[0.5]], np.float32)]
    expected = np.load(os.path.join(FIXTURES, "model_0.1.0_hypermorph_2d_flow.npy"))
    unloaded = hnb.build_hypermorph((16, 16), nb_features=config["options"]["nb_features"],
                                    hyper_units=config["options"]["hyper_units"], seed=1)
    assert not np.allclose(unloaded.predict(inputs, verbose=0)[1], expected, rtol=1e-3, atol=0)
    model = hnb.load_model(folder)
    np.testing.assert_allclose(model.predict(inputs, verbose=0)[1], expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
