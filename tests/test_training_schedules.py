"""Learning-rate schedules in train(): values, errors, and resume continuing the same curve."""
import re

import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.io.checkpoints import latest_checkpoint
from hypermorph_nb.training import engine
from hypermorph_nb.training.schedules import Constant, CosineDecay, StepDecay, make_schedule

from tests.conftest import SHAPE, TINY_FEATURES

EPOCHS, STEPS = 4, 5
SETTINGS = {"steps_per_epoch": STEPS, "learning_rate": 2e-3, "lr_schedule": "cosine", "warmup_steps": 6,
            "lam_sampling": "oversample", "verbose": False, "steps_per_call": 1}


def rates(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_step_decay_is_a_tenth_for_the_last_quarter():
    schedule = make_schedule("step", learning_rate=1e-3, total_steps=400)
    assert rates(schedule, [0, 299, 300, 399, 1000]) == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-4])


def test_cosine_warms_up_linearly_then_falls_to_a_hundredth():
    schedule = make_schedule("cosine", learning_rate=1e-3, total_steps=1100, warmup_steps=100)
    assert rates(schedule, [0, 49, 99]) == pytest.approx([1e-5, 5e-4, 1e-3])
    # after the warm-up: 1e-3 * (0.01 + 0.99 * (1 + cos(pi * progress)) / 2), progress over steps 100..1099
    assert rates(schedule, [100, 599.5, 1099, 5000]) == pytest.approx([1e-3, 5.05e-4, 1e-5, 1e-5], rel=1e-4)
    assert np.all(np.diff(rates(schedule, range(100, 1100, 50))) < 0)


def test_constant_with_warm_up():
    assert rates(Constant(1e-3, total_steps=10, warmup_steps=4), [0, 1, 3, 9]) == pytest.approx(
        [2.5e-4, 5e-4, 1e-3, 1e-3])


@pytest.mark.parametrize("kwargs, message", [
    ({"lr_schedule": "linear"}, "lr_schedule must be None (constant), one of ['step', 'cosine'] or a "
                                "tf.keras.optimizers.schedules.LearningRateSchedule, got 'linear'"),
    ({"lr_schedule": 3}, "lr_schedule must be None (constant)"),
    ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0, got -1"),
    ({"warmup_steps": 2.5}, "warmup_steps must be an integer >= 0"),
    ({"learning_rate": -1e-3}, "learning_rate must be > 0, got -0.001"),
    ({"lr_schedule": StepDecay(1e-3, total_steps=10), "learning_rate": 1e-3},
     "lr_schedule is a LearningRateSchedule, which sets the rate itself; leave out learning_rate"),
    ({"lr_schedule": StepDecay(1e-3, total_steps=10), "warmup_steps": 5},
     "build the warm-up into your LearningRateSchedule"),
])
def test_bad_schedules_are_explained(tiny_vxm, small_data, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        hnb.train(tiny_vxm, small_data, epochs=1, steps_per_epoch=1, verbose=False, **kwargs)


def test_bad_schedule_parameters_are_explained():
    with pytest.raises(ValueError, match=re.escape("decay_fraction must lie in [0, 1], got 2")):
        StepDecay(1e-3, total_steps=10, decay_fraction=2)
    with pytest.raises(ValueError, match=re.escape("total_steps must be an integer >= 1, got 0")):
        CosineDecay(1e-3, total_steps=0)


def test_history_records_the_rate_of_each_epoch_and_adam_uses_it(tiny_vxm, small_data, monkeypatch):
    seen = []
    run = engine.Engine.run

    def run_and_record(self, iterator, count):
        result = run(self, iterator, count)
        seen.append(float(self.optimizer._decayed_lr(tf.float32)))   # the rate of the next step
        return result

    monkeypatch.setattr(engine.Engine, "run", run_and_record)
    history = hnb.train(tiny_vxm, small_data, epochs=4, steps_per_epoch=2, learning_rate=1e-3,
                        lr_schedule="step", steps_per_call=1, verbose=False)
    assert history.learning_rate == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4])
    assert seen == pytest.approx([1e-3] * 5 + [1e-4] * 3)   # steps 0-5 at 1e-3, 6-7 at 1e-4
    assert history.config["lr_schedule"] == {"name": "step", "warmup_steps": 0}
    assert history.config["schedule_steps"] == 8


def test_a_keras_schedule_object_is_used_and_serialised(tiny_vxm, small_data):
    schedule = tf.keras.optimizers.schedules.PiecewiseConstantDecay([2], [1e-3, 5e-4])
    history = hnb.train(tiny_vxm, small_data, epochs=2, steps_per_epoch=2, lr_schedule=schedule,
                        verbose=False)
    assert history.learning_rate == pytest.approx([1e-3, 5e-4])
    assert history.config["lr_schedule"]["class_name"] == "PiecewiseConstantDecay"
    assert history.config["learning_rate"] is None


@pytest.fixture(scope="module")
def uninterrupted(small_data):
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    return hnb.train(model, small_data, epochs=EPOCHS, **SETTINGS), model.get_weights()


@pytest.mark.slow
def test_resume_follows_the_same_learning_rate_curve_and_loss_stream(small_data, uninterrupted, tmp_path,
                                                                     monkeypatch):
    reference, reference_weights = uninterrupted
    run = engine.Engine.run

    def run_then_interrupt(self, iterator, count):
        if int(self.optimizer.iterations) >= 7:   # 2 steps into epoch 2, inside the warm-up
            raise KeyboardInterrupt
        return run(self, iterator, count)

    with monkeypatch.context() as patch:
        patch.setattr(engine.Engine, "run", run_then_interrupt)
        first = hnb.train(hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0), small_data,
                          epochs=EPOCHS, checkpoints=tmp_path, **SETTINGS)
    assert first.interrupted and first.steps == 7
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=5)
    resumed = hnb.train(model, small_data, epochs=EPOCHS, checkpoints=tmp_path, resume=True, **SETTINGS)
    assert resumed.resumed_from_step == 7 and resumed.epochs == EPOCHS
    np.testing.assert_allclose(resumed.learning_rate, reference.learning_rate, rtol=1e-6)
    np.testing.assert_allclose(resumed.loss, reference.loss, rtol=1e-4)
    for weights, expected in zip(model.get_weights(), reference_weights):
        np.testing.assert_allclose(weights, expected, rtol=1e-3, atol=1e-5)
    # the curve rose during the warm-up, then fell along the cosine
    assert reference.learning_rate[0] < reference.learning_rate[1] > reference.learning_rate[-1]

    # More epochs: the cosine keeps the length of the first call and the extra epoch runs at its floor.
    longer = hnb.train(model, small_data, epochs=EPOCHS + 1, checkpoints=tmp_path, resume=True, **SETTINGS)
    assert longer.learning_rate[:EPOCHS] == pytest.approx(reference.learning_rate)
    assert longer.learning_rate[-1] == pytest.approx(2e-3 * 0.01)
    assert latest_checkpoint(tmp_path).state["config"]["schedule_steps"] == EPOCHS * STEPS


def test_resume_with_another_schedule_is_refused_naming_it(tiny_vxm, small_data, tmp_path):
    options = {"steps_per_epoch": 2, "verbose": False, "checkpoint_dir": tmp_path}
    hnb.train(tiny_vxm, small_data, epochs=1, lr_schedule="step", **options)
    with pytest.raises(ValueError, match="lr_schedule: checkpoint .*'step'.*this call .*'cosine'"):
        hnb.train(tiny_vxm, small_data, epochs=2, lr_schedule="cosine", resume=True, **options)
    with pytest.raises(ValueError, match="lr_schedule: checkpoint .*'warmup_steps': 0.*'warmup_steps': 3"):
        hnb.train(tiny_vxm, small_data, epochs=2, lr_schedule="step", warmup_steps=3, resume=True, **options)
