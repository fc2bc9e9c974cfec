"""Stop button, crash and resume: nothing (or at most one epoch) is lost, the loss curve continues."""
import os
import signal

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.training import engine
from hypermorph_nb.io.checkpoints import latest_checkpoint, list_checkpoints

from tests.conftest import SHAPE, TINY_FEATURES

EPOCHS, STEPS = 4, 5
SETTINGS = {"steps_per_epoch": STEPS, "learning_rate": 1e-3, "lam_sampling": "oversample",
            "verbose": False, "steps_per_call": 1}


def fresh_model(seed=0):
    return hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=seed)


@pytest.fixture(scope="module")
def uninterrupted(small_data):
    """The reference: the same training run in one go."""
    model = fresh_model()
    history = hnb.train(model, small_data, epochs=EPOCHS, **SETTINGS)
    return history, model.get_weights()


def interrupt_after(monkeypatch, step, how):
    """Stop training once the global step reaches ``step``, as the stop button would."""
    run = engine.Engine.run
    done = {"steps": 0}

    def run_then_interrupt(self, iterator, count):
        if how == "exception" and done["steps"] >= step:
            raise KeyboardInterrupt   # arrives before the next call's steps run
        result = run(self, iterator, count)
        done["steps"] += result[1]
        if how == "signal" and done["steps"] >= step:
            signal.raise_signal(signal.SIGINT)   # what Jupyter's stop button sends
        return result

    monkeypatch.setattr(engine.Engine, "run", run_then_interrupt)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["signal", "exception"])
def test_interrupt_keeps_everything_and_resume_continues_the_same_curve(small_data, uninterrupted, tmp_path,
                                                                        monkeypatch, how):
    reference, reference_weights = uninterrupted
    model = fresh_model()
    with monkeypatch.context() as patch:
        interrupt_after(patch, 7, how)   # 2 steps into epoch 2
        history = hnb.train(model, small_data, epochs=EPOCHS, checkpoints=tmp_path, **SETTINGS)
    assert history.interrupted and "interrupted at step 7" in history.stop_reason
    assert history.steps == 7 and history.epochs == 1 and history.model is model
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.step == 7 and checkpoint.state["partial"]["steps"] == 2
    on_disk = fresh_model(seed=1)
    checkpoint.load_weights_into(on_disk)
    for in_memory, saved in zip(model.get_weights(), on_disk.get_weights()):
        np.testing.assert_array_equal(in_memory, saved)

    resumed_model = fresh_model(seed=2)   # e.g. after a kernel restart
    resumed = hnb.train(resumed_model, small_data, epochs=EPOCHS, checkpoints=tmp_path, resume=True,
                        **SETTINGS)
    assert resumed.resumed_from_step == 7 and not resumed.interrupted
    assert resumed.epochs == EPOCHS and resumed.steps == EPOCHS * STEPS
    # Nothing lost: the same λ/pair stream from step 7 on, the same loss curve, the same weights.
    np.testing.assert_allclose(resumed.loss, reference.loss, rtol=1e-4)
    np.testing.assert_allclose(resumed.smooth, reference.smooth, rtol=1e-3, atol=1e-7)
    for weights, expected in zip(resumed_model.get_weights(), reference_weights):
        np.testing.assert_allclose(weights, expected, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_after_a_crash_resume_loses_at_most_one_epoch(small_data, uninterrupted, tmp_path):
    """A crash (no interrupt handler runs) leaves the end-of-epoch checkpoints only."""
    reference, _ = uninterrupted
    hnb.train(fresh_model(), small_data, epochs=2, checkpoints=tmp_path, **SETTINGS)
    # The process died during epoch 3: only the checkpoint of epoch 2 exists.
    resumed = hnb.train(fresh_model(seed=3), small_data, epochs=EPOCHS, checkpoints=tmp_path,
                        resume=True, **SETTINGS)
    assert resumed.resumed_from_step == 2 * STEPS
    assert resumed.loss[:2] == pytest.approx(reference.loss[:2], rel=1e-6)
    np.testing.assert_allclose(resumed.loss, reference.loss, rtol=1e-4)
    assert [os.path.basename(p) for p in list_checkpoints(tmp_path)] == ["ckpt-00000015", "ckpt-00000020"]


def test_resume_refuses_a_checkpoint_with_other_settings(small_data, tmp_path):
    hnb.train(fresh_model(), small_data, epochs=1, checkpoints=tmp_path, **SETTINGS)
    changed = {**SETTINGS, "lam_sampling": "uniform", "image_sigma": 0.1}
    with pytest.raises(ValueError, match="trained with other settings") as error:
        hnb.train(fresh_model(), small_data, epochs=2, checkpoints=tmp_path, resume=True, **changed)
    assert "lam_sampling" in str(error.value) and "loss" in str(error.value)
    baseline = hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=0)
    with pytest.raises(ValueError, match="model: checkpoint"):
        hnb.train(baseline, small_data, epochs=2, checkpoints=tmp_path, resume=True, verbose=False,
                  steps_per_epoch=STEPS, learning_rate=1e-3)
    with pytest.raises(ValueError, match="data: checkpoint"):
        hnb.train(fresh_model(), small_data[:6], epochs=2, checkpoints=tmp_path, resume=True, **SETTINGS)


def test_a_fresh_start_does_not_mix_with_old_checkpoints(tiny_vxm, small_data, tmp_path, capsys):
    hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=2, checkpoints=tmp_path, verbose=False)
    with pytest.raises(FileExistsError, match="pass resume=True"):
        hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=2, checkpoints=tmp_path, verbose=False)
    # Already complete: resume loads it and trains no further.
    history = hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=2, checkpoints=tmp_path,
                        resume=True, progress="log")
    assert history.epochs == 1 and history.resumed_from_step == 2
    assert "raise epochs to train further" in capsys.readouterr().out


def test_resume_with_an_empty_folder_starts_from_scratch(tiny_vxm, small_data, tmp_path, capsys):
    history = hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=2, checkpoints=tmp_path / "new",
                        resume=True, progress="log")
    assert history.epochs == 1 and history.resumed_from_step is None
    assert "starting from scratch" in capsys.readouterr().out
    assert latest_checkpoint(tmp_path / "new").step == 2
