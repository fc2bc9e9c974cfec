"""Learning-rate schedules of :func:`hypermorph_nb.train`, functions of the global step.

``train(..., lr_schedule=...)`` takes ``None`` (constant), ``"step"``,
``"cosine"`` or any Keras ``LearningRateSchedule``. The named schedules are
:class:`StepDecay` and :class:`CosineDecay` (and :class:`Constant` for
``None``), each with an optional linear warm-up over ``warmup_steps``:

- ``"step"``: ``learning_rate``, then ``learning_rate * 0.1`` for the last 25%
  of the steps (the recipe of ``benchmarks/amortization.py``);
- ``"cosine"``: half a cosine from ``learning_rate`` down to
  ``learning_rate * 0.01`` at the last step.

Adam reads the rate at its own step counter (``optimizer.iterations``, saved
in every checkpoint), so a resumed run continues the schedule exactly. A named
schedule spans the steps of the call that *started* training
(``epochs * steps_per_epoch``); that length is stored with the checkpoints, so
a resumed call that raises ``epochs`` trains the extra steps at the schedule's
final rate. For another length or other factors build the schedule yourself,
e.g. ``StepDecay(1e-3, total_steps=5000, decay_fraction=0.5)``, and pass it as
``lr_schedule``.
"""

from __future__ import annotations

from typing import Any

import json
import math
import numbers

import tensorflow as tf

from ..checks.arrays import check_count

#: The names ``lr_schedule`` accepts (``None`` is the constant rate).
SCHEDULE_NAMES = ("step", "cosine")
#: Learning rate of :func:`hypermorph_nb.train` when none is given, by number of image dimensions:
#: 1e-3 in 2D (the amortization benchmark's recipe); 1e-4 for volumes, voxelmorph's own 3D
#: default, since plain VoxelMorph at 48³ with 1e-3 diverged (benchmarks/stability_3d.py).
DEFAULT_LEARNING_RATE = {2: 1e-3, 3: 1e-4}


class _Warmup(tf.keras.optimizers.schedules.LearningRateSchedule):
    """A rate ``learning_rate * decay(step)`` after a linear warm-up over ``warmup_steps``."""

    def __init__(self, learning_rate: float, *, total_steps: int, warmup_steps: int = 0) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        check_count(total_steps, "total_steps")
        if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: tf.Tensor | int) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        rate = self.learning_rate * self._decay(step)
        if self.warmup_steps:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def _decay(self, step):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


@tf.keras.utils.register_keras_serializable(package="hypermorph_nb")
class Constant(_Warmup):
    """A constant rate (after the warm-up).

    Examples
    --------
    >>> [round(float(Constant(1e-3, total_steps=10, warmup_steps=4)(s)), 6) for s in (0, 3, 9)]
    [0.00025, 0.001, 0.001]
    """

    def _decay(self, step):
        return tf.ones_like(step)


@tf.keras.utils.register_keras_serializable(package="hypermorph_nb")
class StepDecay(_Warmup):
    """``learning_rate``, then ``learning_rate * decay_factor`` for the last ``decay_fraction`` of the steps.

    Examples
    --------
    >>> schedule = StepDecay(1e-3, total_steps=100)
    >>> [round(float(schedule(s)), 6) for s in (0, 74, 75, 99, 500)]
    [0.001, 0.001, 0.0001, 0.0001, 0.0001]
    """

    def __init__(self, learning_rate: float, *, total_steps: int, warmup_steps: int = 0,
                 decay_fraction: float = 0.25, decay_factor: float = 0.1) -> None:
        super().__init__(learning_rate, total_steps=total_steps, warmup_steps=warmup_steps)
        if not 0 <= decay_fraction <= 1:
            raise ValueError(f"decay_fraction must lie in [0, 1], got {decay_fraction!r}")
        if not decay_factor > 0:
            raise ValueError(f"decay_factor must be > 0, got {decay_factor!r}")
        self.decay_fraction = float(decay_fraction)
        self.decay_factor = float(decay_factor)
        #: First step at the decayed rate.
        self.boundary = self.total_steps - round(self.total_steps * self.decay_fraction)

    def _decay(self, step):
        return tf.where(step >= self.boundary, self.decay_factor, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "decay_fraction": self.decay_fraction,
                "decay_factor": self.decay_factor}


@tf.keras.utils.register_keras_serializable(package="hypermorph_nb")
class CosineDecay(_Warmup):
    """Half a cosine from ``learning_rate`` (after the warm-up) to ``learning_rate * final_factor``.

    Examples
    --------
    >>> schedule = CosineDecay(1e-3, total_steps=101, warmup_steps=0)
    >>> [round(float(schedule(s)), 6) for s in (0, 50, 100, 500)]
    [0.001, 0.000505, 1e-05, 1e-05]
    """

    def __init__(self, learning_rate: float, *, total_steps: int, warmup_steps: int = 0,
                 final_factor: float = 0.01) -> None:
        super().__init__(learning_rate, total_steps=total_steps, warmup_steps=warmup_steps)
        if not 0 <= final_factor <= 1:
            raise ValueError(f"final_factor must lie in [0, 1], got {final_factor!r}")
        self.final_factor = float(final_factor)

    def _decay(self, step):
        span = max(self.total_steps - 1 - self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + tf.cos(math.pi * progress))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "final_factor": self.final_factor}


_NAMED = {None: Constant, "step": StepDecay, "cosine": CosineDecay}


def make_schedule(lr_schedule: str | tf.keras.optimizers.schedules.LearningRateSchedule | None, *,
                  learning_rate: float, total_steps: int,
                  warmup_steps: int = 0) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    """The ``LearningRateSchedule`` that ``train(..., lr_schedule=...)`` uses.

    Parameters
    ----------
    lr_schedule : None, 'step', 'cosine' or LearningRateSchedule
        A schedule object is returned as it is (it sets the rate itself).
    learning_rate : float
        Peak rate of a named schedule.
    total_steps : int
        Steps the named schedule spans.
    warmup_steps : int
        Linear warm-up of a named schedule.

    Examples
    --------
    >>> schedule = make_schedule("step", learning_rate=1e-3, total_steps=8)
    >>> type(schedule).__name__, [round(float(schedule(s)), 5) for s in range(8)]
    ('StepDecay', [0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.0001, 0.0001])
    """
    if isinstance(lr_schedule, tf.keras.optimizers.schedules.LearningRateSchedule):
        return lr_schedule
    if isinstance(lr_schedule, str) and lr_schedule in _NAMED:
        return _NAMED[lr_schedule](learning_rate, total_steps=total_steps, warmup_steps=warmup_steps)
    if lr_schedule is None:
        return Constant(learning_rate, total_steps=total_steps, warmup_steps=warmup_steps)
    raise ValueError(
        f"lr_schedule must be None (constant), one of {list(SCHEDULE_NAMES)} or a "
        f"tf.keras.optimizers.schedules.LearningRateSchedule, got {lr_schedule!r}")


def schedule_settings(lr_schedule: str | tf.keras.optimizers.schedules.LearningRateSchedule | None, *,
                      learning_rate: float | None, warmup_steps: int,
                      ndim: int = 2) -> tuple[Any, float | None]:
    """The schedule's settings as JSON (what a resumed call must repeat), and the peak rate.

    A named schedule is ``{"name": ..., "warmup_steps": ...}`` (its length is the
    first call's, stored separately); a schedule object is its Keras
    serialisation.

    Examples
    --------
    >>> schedule_settings("cosine", learning_rate=None, warmup_steps=100)
    ({'name': 'cosine', 'warmup_steps': 100}, 0.001)
    >>> schedule_settings(None, learning_rate=None, warmup_steps=0, ndim=3)
    ({'name': None, 'warmup_steps': 0}, 0.0001)
    """
    if isinstance(lr_schedule, tf.keras.optimizers.schedules.LearningRateSchedule):
        if learning_rate is not None:
            raise ValueError("lr_schedule is a LearningRateSchedule, which sets the rate itself; "
                             "leave out learning_rate (or pass lr_schedule=None/'step'/'cosine')")
        if warmup_steps:
            raise ValueError("warmup_steps applies to lr_schedule=None/'step'/'cosine'; build the "
                             "warm-up into your LearningRateSchedule instead")
        serialised = tf.keras.optimizers.schedules.serialize(lr_schedule)
        return json.loads(json.dumps(serialised, default=repr)), None
    make_schedule(lr_schedule, learning_rate=1.0, total_steps=1)   # checks the name
    rate = DEFAULT_LEARNING_RATE[ndim] if learning_rate is None else learning_rate
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    return {"name": lr_schedule, "warmup_steps": int(warmup_steps)}, float(rate)
