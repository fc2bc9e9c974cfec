"""The per-epoch record that :func:`hypermorph_nb.train` returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TYPE_CHECKING

import dataclasses

from ..viz import training_display

if TYPE_CHECKING:
    from matplotlib.figure import Figure



@dataclasses.dataclass
class History:
    """Per-epoch training record returned by :func:`train`.

    Attributes
    ----------
    loss, image, smooth : list of float
        Epoch means of the total loss and of its two unweighted terms.
    epoch_seconds : list of float
        Wall time of each epoch.
    learning_rate : list of float
        Adam's learning rate at the last step of each epoch (see ``lr_schedule``).
    config : dict
        The training settings (JSON-serialisable).
    model : tf.keras.Model
        The trained model (trained in place).
    val_epochs : list of int
        Epochs (1-based) after which validation ran.
    val_lams : list
        λ values validated (``[None]`` for a baseline; empty without validation).
    val_mse : list of list of float
        Mean image MSE of the validation pairs, per validated epoch and λ.
    val_dice : list of list of float
        Mean Dice, per validated epoch and λ (empty without label maps).
    steps : int
        Global training steps completed (including an unfinished epoch).
    interrupted : bool
        True when training was stopped by KeyboardInterrupt (the stop button).
    stop_reason : str
        Why training ended early ('' when it ran all epochs).
    checkpoint : str or None
        The last checkpoint written or resumed from.
    resumed_from_step : int or None
        Step of the checkpoint this run resumed from.

    Examples
    --------
    >>> History(loss=[2.0, 1.5], image=[3.0, 2.0], smooth=[0.1, 0.2]).epochs
    2
    """

    loss: list = dataclasses.field(default_factory=list)
    image: list = dataclasses.field(default_factory=list)
    smooth: list = dataclasses.field(default_factory=list)
    epoch_seconds: list = dataclasses.field(default_factory=list)
    learning_rate: list = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)
    model: object = dataclasses.field(default=None, repr=False, compare=False)
    val_epochs: list = dataclasses.field(default_factory=list)
    val_lams: list = dataclasses.field(default_factory=list)
    val_mse: list = dataclasses.field(default_factory=list)
    val_dice: list = dataclasses.field(default_factory=list)
    steps: int = 0
    interrupted: bool = False
    stop_reason: str = ""
    checkpoint: str | None = None
    resumed_from_step: int | None = None

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.loss)

    @property
    def has_validation_dice(self) -> bool:
        """True when validation scores Dice (the validation data have label maps)."""
        return bool((self.config.get("validation") or {}).get("dice"))

    def steps_per_second(self) -> float:
        """Mean training throughput over the recorded epochs."""
        seconds = sum(self.epoch_seconds)
        steps = self.config.get("steps_per_epoch", 0) * len(self.epoch_seconds)
        return steps / seconds if seconds else float("nan")

    def plot(self) -> Figure:
        """The loss curves (and validation scores) as a matplotlib Figure."""
        return training_display.loss_figure(self)

    _SAVED = ("loss", "image", "smooth", "epoch_seconds", "learning_rate", "val_epochs", "val_lams", "val_mse",
              "val_dice")

    def to_json(self) -> dict[str, list[Any]]:
        """The per-epoch record as a JSON-serialisable dict (what checkpoints store)."""
        return {name: list(getattr(self, name)) for name in self._SAVED}

    def extend_from_json(self, record: Mapping[str, Any]) -> None:
        """Take the per-epoch record of :meth:`to_json` (when resuming)."""
        for name in self._SAVED:
            setattr(self, name, list(record.get(name, [])))
