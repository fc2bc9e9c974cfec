"""Training: :func:`hypermorph_nb.train` and the :class:`History` it returns.

- :mod:`.loop`: ``hypermorph_nb.train``: its options resolved, one run started or resumed;
- :mod:`.run`: :class:`~.run.TrainingRun`, the epoch loop (progress, validation, checkpoints, stops);
- :mod:`.options`: its grouped options (:class:`CheckpointConfig`, :class:`ValidationConfig`);
- :mod:`.recipes`: build options and settings that belong together (:data:`VOLUMES`, the 3D recipe);
- :mod:`.coarse`: training data on a ``downsample`` model's coarse grid;
- :mod:`.engine`: the model replica, the optimizer and the compiled steps;
- :mod:`.schedules`: learning-rate schedules (``lr_schedule``);
- :mod:`.divergence`: the guard against a loss that blows up without NaN;
- :mod:`.resume`: the settings a checkpoint stores and a resumed call must repeat;
- :mod:`.monitoring`: scores of fixed validation pairs during training;
- :mod:`.strategy`: which ``tf.distribute`` strategy a run uses;
- :mod:`.history`: the per-epoch record.
"""
from .history import History
from .resume import RESUME_KEYS
from .monitoring import DEFAULT_VALIDATION_LAMBDAS
from .options import CheckpointConfig, ValidationConfig
from .recipes import VOLUMES, Recipe

__all__ = ["History", "CheckpointConfig", "ValidationConfig", "Recipe", "VOLUMES", "DEFAULT_VALIDATION_LAMBDAS",
           "RESUME_KEYS"]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {"train": "hypermorph_nb.train",
               "DEFAULT_BASELINE_LAMBDA": "hypermorph_nb.networks.DEFAULT_BASELINE_LAMBDA"}


def __getattr__(name: str) -> object:
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)
