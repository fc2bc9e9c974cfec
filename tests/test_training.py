"""train(): history, log output, argument errors, NaN recovery, and that training helps."""
import re

import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.networks.models import spec_of
from hypermorph_nb.training import engine
from hypermorph_nb.io.checkpoints import latest_checkpoint
from hypermorph_nb.data import PairBatches, synthetic
from hypermorph_nb.checks import choose_pairs
from hypermorph_nb.evaluation.sweeps import identity_scores, score_pairs

from tests.conftest import SHAPE, TINY_FEATURES


def test_history_holds_the_model_and_finite_terms_per_epoch(tiny_vxm, small_data):
    history = hnb.train(tiny_vxm, small_data, epochs=2, steps_per_epoch=3, verbose=False)
    assert history.model is tiny_vxm
    assert history.epochs == 2 and history.steps == 6
    for name in ("loss", "image", "smooth", "epoch_seconds"):
        values = getattr(history, name)
        assert len(values) == 2 and np.all(np.isfinite(values)), name
    # total = (1 - λ)·image + λ·smooth with the baseline's default λ = 0.5
    np.testing.assert_allclose(history.loss, 0.5 * np.add(history.image, history.smooth), rtol=1e-5)
    assert history.config["lam"] == 0.5 and history.config["replicas"] == 1
    assert not history.interrupted and history.stop_reason == ""


def test_script_output_is_one_short_line_per_epoch(tiny_vxm, small_data, capsys):
    hnb.train(tiny_vxm, small_data, epochs=3, steps_per_epoch=2, progress="log")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "ETA" in lines[0] and "steps/s" in lines[-1] and all(len(line) < 120 for line in lines)


def test_verbose_false_prints_nothing(tiny_vxm, small_data, capsys):
    hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=2, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == ""


def test_steps_per_call_does_not_change_the_training(small_data):
    losses = []
    for steps_per_call in (1, 4):
        model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
        history = hnb.train(model, small_data, epochs=2, steps_per_epoch=6, learning_rate=1e-3,
                            steps_per_call=steps_per_call, verbose=False)
        losses.append(history.loss)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"epochs": "3"}, "epochs must be an integer >= 1"),
    ({"steps_per_epoch": float("nan")}, "steps_per_epoch must be an integer >= 1"),
    ({"validate_every": 1.5}, "validate_every must be an integer >= 1"),
    ({"steps_per_call": 0}, "steps_per_call must be an integer >= 1"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"lam": 1.5}, "lam must lie in [0, 1]"),
    ({"progress": "fancy"}, "progress must be one of"),
    ({"strategy": "mirrored"}, "strategy must be 'auto', None or a tf.distribute.Strategy"),
    ({"resume": True}, "resume=True needs checkpoint_dir"),
    ({"validation_lams": [0.5]}, "validation_lams is for HyperMorph"),
])
def test_bad_arguments_are_explained(tiny_vxm, small_data, kwargs, message):
    options = {"epochs": 1, "steps_per_epoch": 1, "verbose": False, **kwargs}
    if "validation_lams" in kwargs:
        options["validation_data"] = small_data
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        hnb.train(tiny_vxm, small_data, **options)


def test_a_whole_float_count_is_accepted_like_an_int(tiny_vxm, small_data):
    history = hnb.train(tiny_vxm, small_data, epochs=2.0, steps_per_epoch=1.0, verbose=False)
    assert len(history.loss) == 2


def test_images_of_another_shape_are_refused(tiny_vxm):
    with pytest.raises(ValueError, match="build a model for their shape"):
        hnb.train(tiny_vxm, synthetic(4, (64, 64)), epochs=1, steps_per_epoch=1, verbose=False)


def test_hypermorph_refuses_a_fixed_lambda(tiny_hypermorph, small_data):
    with pytest.raises(ValueError, match="pass lam_sampling, not lam"):
        hnb.train(tiny_hypermorph, small_data, epochs=1, steps_per_epoch=1, lam=0.5, verbose=False)


@pytest.mark.parametrize("broken", ["loss", "displacement field"])
def test_nan_stops_training_and_restores_the_last_good_weights(tiny_vxm, small_data, monkeypatch, tmp_path,
                                                              broken):
    """Step 7 (in epoch 3 of 3 steps) goes NaN: the weights after epoch 2 come back.

    A NaN image makes the displacement field NaN, which on the CPU fails
    inside the spatial transformer; a NaN loss alone is made by poisoning the
    loss of the marked batch (its fixed image is shifted below 0).
    """
    clean_batch, clean_terms = PairBatches.batch, engine.weighted_terms

    def marked_batch(self, step):
        batch = clean_batch(self, step)
        if step == 7:
            batch["moving"] = np.full_like(batch["moving"], np.nan) if broken != "loss" else batch["moving"]
            batch["fixed"] = batch["fixed"] - 2.0
        return batch

    def poisoned_terms(fixed, moved, flow, lam, config):
        terms = clean_terms(fixed, moved, flow, lam, config)
        poison = tf.where(tf.reduce_min(fixed) < -1.0, np.nan, 0.0)
        return {name: value + poison for name, value in terms.items()}

    monkeypatch.setattr(PairBatches, "batch", marked_batch)
    monkeypatch.setattr(engine, "weighted_terms", poisoned_terms)
    with pytest.warns(RuntimeWarning, match=f"the {broken} became NaN or infinite in epoch 3"):
        history = hnb.train(tiny_vxm, small_data, epochs=4, steps_per_epoch=3, verbose=False,
                            steps_per_call=1, checkpoints=tmp_path)
    assert history.epochs == 2 and history.steps == 6 and np.all(np.isfinite(history.loss))
    assert "restored" in history.stop_reason and "end of epoch 2" in history.stop_reason
    good = hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=1)
    latest_checkpoint(tmp_path).load_weights_into(good)   # written at the end of epoch 2
    for restored, expected in zip(tiny_vxm.get_weights(), good.get_weights()):
        np.testing.assert_array_equal(restored, expected)


def test_a_diverging_learning_rate_restores_the_initial_weights(tiny_vxm, small_data):
    """Huge weights give a NaN displacement field (on the CPU the spatial transformer fails on it)."""
    initial = tiny_vxm.get_weights()
    with pytest.warns(RuntimeWarning, match="became NaN or infinite in epoch 1"):
        history = hnb.train(tiny_vxm, small_data, epochs=2, steps_per_epoch=4, learning_rate=1e6,
                            verbose=False)
    assert history.epochs == 0 and "start of this run" in history.stop_reason
    for restored, expected in zip(tiny_vxm.get_weights(), initial):
        np.testing.assert_array_equal(restored, expected)


def test_validation_scores_dice_at_each_lambda(tiny_hypermorph, small_data):
    history = hnb.train(tiny_hypermorph, small_data[:8], epochs=2, steps_per_epoch=2, verbose=False,
                        validation=hnb.training.ValidationConfig(small_data[8:], pairs=3, lams=[0.2, 0.8], every=2))
    assert history.val_epochs == [2] and history.val_lams == [0.2, 0.8]
    assert np.shape(history.val_mse) == (1, 2) and np.shape(history.val_dice) == (1, 2)
    assert 0 < np.min(history.val_dice) <= np.max(history.val_dice) <= 1
    assert history.has_validation_dice


@pytest.mark.slow
@pytest.mark.parametrize("build", [hnb.build_vxm, hnb.build_hypermorph], ids=["vxm", "hypermorph"])
def test_short_training_on_the_synthetic_default_beats_the_identity(build):
    data = synthetic(24)   # the embedded default: 64x64 labelled subjects
    train_data, val_data = data[:16], data[16:]
    pairs = choose_pairs(len(val_data), 12, seed=0)
    model = build(data.shape, nb_features=TINY_FEATURES, seed=0)
    hnb.train(model, train_data, epochs=2, steps_per_epoch=100, learning_rate=3e-3, loss=hnb.networks.LossConfig(image_sigma=0.1),
              verbose=False)
    lam = 0.5 if spec_of(model).is_hypermorph else None
    trained = np.nanmean(np.nanmean(score_pairs(model, val_data, pairs=pairs, lam=lam).dice, axis=1))
    identity = np.nanmean(np.nanmean(identity_scores(val_data, pairs=pairs).dice, axis=1))
    assert trained > identity + 0.03, (trained, identity)
