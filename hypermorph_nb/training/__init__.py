"""Training: :func:`train` and the :class:`History` it returns.

- :mod:`.loop`: ``train`` and the epoch loop (progress, validation, checkpoints, stops);
- :mod:`.engine`: the model replica, the optimizer and the compiled steps;
- :mod:`.validation`: scores of fixed validation pairs during training;
- :mod:`.strategy`: which ``tf.distribute`` strategy a run uses;
- :mod:`.history`: the per-epoch record.
"""
from .history import History
from .loop import DEFAULT_BASELINE_LAMBDA, RESUME_KEYS, train
from .validation import DEFAULT_VALIDATION_LAMBDAS

__all__ = ["train", "History", "DEFAULT_BASELINE_LAMBDA", "DEFAULT_VALIDATION_LAMBDAS", "RESUME_KEYS"]
