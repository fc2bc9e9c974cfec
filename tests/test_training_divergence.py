"""The divergence guard: a finite loss that blows up stops training like a NaN; noise does not."""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.io.checkpoints import latest_checkpoint
from hypermorph_nb.data import PairBatches
from hypermorph_nb.training import engine, run
from hypermorph_nb.training.divergence import DivergenceGuard

from tests.conftest import SHAPE, TINY_FEATURES


def trips(call_losses, epoch_losses):
    guard = DivergenceGuard()
    running = np.cumsum(call_losses) / np.arange(1, len(call_losses) + 1)
    return [guard.check(call_loss=c, epoch_mean=m, epoch_losses=epoch_losses) for c, m in zip(call_losses, running)]


def test_the_rule_ignores_a_fast_fall_and_noisy_small_batches():
    rng = np.random.default_rng(0)
    # the first epoch of a healthy run: the loss falls fast, one pair is 3x the others
    assert not any(trips([1.0, 0.9, 2.5, 0.6, 0.4, 0.3, 0.8, 0.2, 0.15], []))
    # an easy first pair (identical images) does not make the next ones look diverged
    assert not any(trips([0.01, 0.8, 0.9, 0.7, 0.6, 0.5], []))
    # later: batch-1 losses scattered 2-3x around a falling median
    epochs = [1.0, 0.3, 0.1, 0.05, 0.04]
    assert not any(trips(list(0.04 * rng.lognormal(0, 0.5, 200)) + [0.12, 0.1], epochs))


def test_the_rule_trips_on_a_blow_up():
    # the 3D probe: 0.011 at step 1000, 6810 at step 2000, never NaN
    assert trips([0.011, 0.02, 50.0], [0.05, 0.02, 0.011])[-1]
    # a blow-up in the first epoch, relative to where training started
    assert trips([0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 40.0, 80.0], [])[-1]
    # not above the first epoch's loss: not a divergence, even at 10x the recent median
    assert not trips([0.5], [0.6, 0.05, 0.04, 0.04])[-1]


@pytest.fixture
def spike_from_step(monkeypatch):
    """From batch 7 on (the second step of epoch 3, with 3-step epochs) the loss is 10^4 times larger, finite."""
    clean_batch, clean_terms = PairBatches.batch, engine.weighted_terms

    def marked_batch(self, step):
        batch = clean_batch(self, step)
        if step >= 7:
            batch["fixed"] = batch["fixed"] - 2.0   # the marker; the terms below undo it
        return batch

    def spiking_terms(fixed, moved, flow, lam, config):
        marked = tf.reduce_min(fixed) < -1.0
        fixed = tf.where(marked, fixed + 2.0, fixed)
        terms = clean_terms(fixed, moved, flow, lam, config)
        return {name: tf.where(marked, value * 1e4, value) for name, value in terms.items()}

    monkeypatch.setattr(PairBatches, "batch", marked_batch)
    monkeypatch.setattr(engine, "weighted_terms", spiking_terms)


def test_a_loss_spike_restores_the_last_good_epoch_and_says_what_to_lower(tiny_vxm, small_data, tmp_path,
                                                                         spike_from_step):
    with pytest.warns(RuntimeWarning, match="the loss diverged in epoch 3") as caught:
        history = hnb.train(tiny_vxm, small_data, epochs=5, steps_per_epoch=3, learning_rate=1e-3,
                            lr_schedule="step", verbose=False, steps_per_call=1, checkpoints=tmp_path)
    assert history.epochs == 2 and history.steps == 6 and not history.interrupted
    reason = history.stop_reason
    assert reason == str(caught[0].message)
    assert "without becoming NaN" in reason and "end of epoch 2 (step 6) were restored" in reason
    assert "Lower learning_rate (now 0.001 with lr_schedule='step')" in reason and "warmup_steps" in reason
    good = hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=1)
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.step == 6
    checkpoint.load_weights_into(good)
    for restored, expected in zip(tiny_vxm.get_weights(), good.get_weights()):
        np.testing.assert_array_equal(restored, expected)


def test_the_adam_state_is_restored_too(tiny_vxm, small_data, spike_from_step, monkeypatch):
    captured = {}
    remember, restore = engine.Engine.remember_good, run.TrainingRun._restore

    def remember_and_copy(self):
        remember(self)
        captured["good"] = [w.copy() for w in self.optimizer.get_weights()]

    def restore_and_copy(self, good_step, failed_step):
        result = restore(self, good_step, failed_step)
        captured["restored"] = self.engine.optimizer.get_weights()
        return result

    monkeypatch.setattr(engine.Engine, "remember_good", remember_and_copy)
    monkeypatch.setattr(run.TrainingRun, "_restore", restore_and_copy)
    with pytest.warns(RuntimeWarning, match="diverged"):
        hnb.train(tiny_vxm, small_data, epochs=4, steps_per_epoch=3, verbose=False, steps_per_call=1)
    assert captured["restored"][0] == 6   # Adam's step counter (so the schedule) is back at epoch 2's end
    for restored, good in zip(captured["restored"], captured["good"]):
        np.testing.assert_array_equal(restored, good)   # and its moments


def test_a_healthy_noisy_run_is_not_stopped(small_data):
    """Batch 1, one step per call, λ drawn per pair: the noisiest losses train() sees."""
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    history = hnb.train(model, small_data, epochs=5, steps_per_epoch=8, learning_rate=3e-3,
                        lam_sampling="uniform", verbose=False, steps_per_call=1)
    assert history.stop_reason == "" and history.epochs == 5


@pytest.mark.slow   # trains a while to show no false alarm
def test_a_negative_ncc_loss_trains_on_without_a_false_alarm():
    # NCC losses start near 0 and fall towards −1: ten times a negative level is *below* it
    data = hnb.data.synthetic(8, (32, 32), seed=0)
    model = hnb.build_hypermorph((32, 32), nb_features=TINY_FEATURES, conditioning="film", seed=0)
    history = hnb.train(model, data, epochs=3, steps_per_epoch=8, steps_per_call=2, learning_rate=1e-3,
                        loss=hnb.networks.LossConfig(image_loss="ncc", ncc_window=5), seed=0,
                        verbose=False, progress="none", live_plot=False)
    assert max(history.loss) < 0 and len(history.loss) == 3, history.loss
    assert not history.stop_reason, history.stop_reason
