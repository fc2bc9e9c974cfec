"""Checkpoints are atomic and verified; a damaged or half-written one falls back to the previous."""
import json
import os

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.io import checkpoints
from hypermorph_nb.io.checkpoints import (CheckpointError, latest_checkpoint, list_checkpoints,
                                       verify_checkpoint, write_checkpoint)

from tests.conftest import SHAPE, TINY_FEATURES
from tests.test_persistence import expected_modes, modes_under


@pytest.fixture
def two_checkpoints(tiny_vxm, tmp_path):
    """Checkpoints at steps 10 and 20 with different weights and optimizer state."""
    paths = []
    for step in (10, 20):
        tiny_vxm.set_weights([w + step for w in tiny_vxm.get_weights()])
        paths.append(write_checkpoint(tmp_path, model=tiny_vxm, optimizer_weights=[np.arange(3.0) + step],
                                      state={"step": step, "epoch": step // 10}))
    return tmp_path, paths


def damage(path, how):
    target = os.path.join(path, "model", "weights.h5")
    if how == "flipped byte":
        with open(target, "r+b") as handle:
            handle.seek(os.path.getsize(target) // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0xFF]))
    elif how == "truncated":
        with open(target, "r+b") as handle:
            handle.truncate(os.path.getsize(target) // 3)
    elif how == "no manifest":   # e.g. copied by hand and the copy was cut short
        os.remove(os.path.join(path, checkpoints.MANIFEST_NAME))
    elif how == "missing file":
        os.remove(os.path.join(path, checkpoints.OPTIMIZER_NAME))


def test_a_checkpoint_holds_a_loadable_model_optimizer_state_and_state(two_checkpoints, tiny_vxm):
    folder, (_, newest) = two_checkpoints
    checkpoint = latest_checkpoint(folder)
    assert checkpoint.path == newest and checkpoint.step == 20 and checkpoint.state["epoch"] == 2
    np.testing.assert_array_equal(checkpoint.optimizer_weights()[0], np.arange(3.0) + 20)
    model = hnb.load_model(checkpoint.model_path)
    for loaded, saved in zip(model.get_weights(), tiny_vxm.get_weights()):
        np.testing.assert_array_equal(loaded, saved)
    manifest = json.load(open(os.path.join(newest, checkpoints.MANIFEST_NAME)))
    assert set(checkpoints.REQUIRED_FILES) <= set(manifest["files"])


def test_only_the_newest_checkpoints_are_kept(tiny_vxm, tmp_path):
    for step in (1, 2, 3, 4):
        write_checkpoint(tmp_path, model=tiny_vxm, optimizer_weights=[], state={"step": step}, keep=3)
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == [
        "ckpt-00000002", "ckpt-00000003", "ckpt-00000004"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "no manifest", "missing file"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(two_checkpoints, how):
    folder, (previous, newest) = two_checkpoints
    damage(newest, how)
    with pytest.raises(CheckpointError):
        verify_checkpoint(newest)
    with pytest.warns(RuntimeWarning) as caught:
        checkpoint = latest_checkpoint(folder)
    assert checkpoint.path == previous and checkpoint.step == 10
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "checkpoint ckpt-00000020 is damaged and was skipped",
        "resuming from the previous good checkpoint ckpt-00000010"]
    # The damaged folder is kept for inspection but no longer counts as a checkpoint.
    assert os.path.isdir(newest + ".damaged") and list_checkpoints(folder) == [previous]


def test_a_half_written_checkpoint_is_invisible(two_checkpoints, tiny_vxm, monkeypatch):
    folder, (_, newest) = two_checkpoints

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "replace_folder", crash)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(folder, model=tiny_vxm, optimizer_weights=[], state={"step": 30})
    assert latest_checkpoint(folder).path == newest
    assert sorted(os.listdir(folder)) == ["ckpt-00000010", "ckpt-00000020"]
    # A staging folder left by a killed process is cleaned up on the next look.
    os.makedirs(os.path.join(folder, ".staging-killed", "model"))
    assert latest_checkpoint(folder).path == newest
    assert sorted(os.listdir(folder)) == ["ckpt-00000010", "ckpt-00000020"]


def test_no_intact_checkpoint_is_an_error_that_says_what_to_do(two_checkpoints):
    folder, paths = two_checkpoints
    for path in paths:
        damage(path, "truncated")
    with pytest.warns(RuntimeWarning), pytest.raises(CheckpointError, match="resume=False"):
        latest_checkpoint(folder)


def test_resume_uses_the_previous_checkpoint_when_the_newest_is_damaged(small_data, tmp_path):
    settings = {"steps_per_epoch": 3, "learning_rate": 1e-3, "verbose": False, "checkpoint_dir": tmp_path}
    model = hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=0)
    first = hnb.train(model, small_data, epochs=2, **settings)
    damage(latest_checkpoint(tmp_path).path, "flipped byte")
    with pytest.warns(RuntimeWarning, match="damaged|previous good"):
        resumed = hnb.train(hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=1), small_data, epochs=3,
                            resume=True, **settings)
    assert resumed.resumed_from_step == 3   # epoch 2 is redone: at most one epoch lost
    assert resumed.epochs == 3 and resumed.loss[0] == first.loss[0]
    np.testing.assert_allclose(resumed.loss[1], first.loss[1], rtol=1e-4)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_folders_and_files_follow_the_umask(tiny_vxm, tmp_path, umask):
    previous = os.umask(umask)
    try:
        folder = write_checkpoint(tmp_path, model=tiny_vxm, optimizer_weights=[], state={"step": 1})
    finally:
        os.umask(previous)
    modes = modes_under(folder)
    assert modes == expected_modes(folder, umask) and modes["model"] == 0o777 & ~umask
