"""Detect a loss that blows up without becoming NaN (the guard of :func:`hypermorph_nb.train`).

A diverging run can climb by orders of magnitude and fold the field while
every number stays finite (plain VoxelMorph at 48³, lr 1e-3:
``benchmarks/results/stability_3d_lr1e-3_step.md``). :class:`DivergenceGuard` calls a loss diverged
when it lies more than ``FACTOR - 1`` times the size of the median of the last
:data:`WINDOW` epoch losses above that median (``FACTOR`` times it, for a positive
loss) *and* above the first epoch's loss (training never legitimately climbs above
where it started). Measuring the jump by the loss's size keeps the rule right for
losses at or below zero (NCC falls towards −1; with label supervision, ``−NCC`` and
``1 − Dice`` add up to about 0): there the size is at least that of where training started. Each compiled call's mean loss is
checked once an epoch is complete; during the first epoch the running epoch
mean is compared with the largest of the first :data:`WINDOW` calls' losses
(where training starts), so a single hard (or easy) pair -- 2-3x the mean on a
small batch is normal -- does not stop a healthy run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A loss this many times its recent median counts as diverged.
FACTOR = 10.0
#: Epochs whose median is the recent range.
WINDOW = 5


class DivergenceGuard:
    """Decide whether the loss has left its recent range (see the module docstring).

    Examples
    --------
    >>> guard = DivergenceGuard()
    >>> [guard.check(call_loss=x, epoch_mean=x, epoch_losses=[]) for x in (0.1, 0.9, 0.8, 0.7, 0.6)]
    [False, False, False, False, False]
    >>> guard.check(call_loss=30.0, epoch_mean=12.0, epoch_losses=[])   # > 10x where it started
    True
    >>> guard.check(call_loss=2.5, epoch_mean=2.5, epoch_losses=[1.0, 0.5, 0.3, 0.25])  # a noisy call
    False
    >>> guard.check(call_loss=6810.0, epoch_mean=3000.0, epoch_losses=[1.0, 0.02, 0.011])
    True
    >>> negative = DivergenceGuard()   # an NCC loss starts near 0 and falls below it
    >>> [negative.check(call_loss=x, epoch_mean=x, epoch_losses=[]) for x in (-0.05, -0.1, -0.2, -0.3, -0.4, -0.3)]
    [False, False, False, False, False, False]
    >>> negative.check(call_loss=-0.1, epoch_mean=-0.1, epoch_losses=[-0.05, -0.3, -0.45])  # noisy, not diverged
    False
    >>> negative.check(call_loss=5.0, epoch_mean=2.0, epoch_losses=[-0.05, -0.3, -0.45])
    True
    >>> near_zero = DivergenceGuard()  # NCC + label term: the total crosses 0 (a call below the start is noise)
    >>> near_zero.check(call_loss=0.25, epoch_mean=0.25, epoch_losses=[0.3, 0.01, -0.005, 0.002])
    False
    """

    def __init__(self, factor: float = FACTOR, window: int = WINDOW) -> None:
        self.factor = float(factor)
        self.window = int(window)
        self.start: list[float] = []
        self.limit: float | None = None

    def check(self, *, call_loss: float, epoch_mean: float, epoch_losses: Sequence[float]) -> bool:
        """Whether training diverged; sets :attr:`limit` (the threshold crossed)."""
        if epoch_losses:
            recent = float(np.median(epoch_losses[-self.window:]))
            self.limit = max(self._above(recent, float(epoch_losses[0])), float(epoch_losses[0]))
            return call_loss > self.limit
        if len(self.start) < self.window:
            self.start.append(call_loss)
            return False
        self.limit = self._above(max(self.start), self.start[0])
        return epoch_mean > self.limit

    def _above(self, level: float, start: float) -> float:
        """``FACTOR`` times a positive level; as far above one at or below 0, by the larger of its size and the start's."""
        size = level if level > 0 else max(abs(level), abs(start))
        return level + (self.factor - 1.0) * size

    def message(self, *, loss: float, epoch: int, origin: str, good_step: int, learning_rate: float) -> str:
        """The ``stop_reason`` for a divergence stop: what happened and what to lower."""
        return (
            f"training stopped: the loss diverged in epoch {epoch} (it reached {loss:.4g}, more than "
            f"{self.factor:g}x the size of its recent level and above the first epoch's; limit {self.limit:.4g}) "
            f"without becoming NaN; the weights and optimizer state from {origin} (step {good_step}) "
            f"were restored. Lower learning_rate (now {learning_rate}), or use lr_schedule='cosine' "
            "with warmup_steps, then resume=True or train again.")
