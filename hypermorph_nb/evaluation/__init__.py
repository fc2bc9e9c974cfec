"""Evaluation: how good a registration is, and which λ is best.

- :mod:`.metrics`: Dice, the Jacobian determinant and folding, image MSE and NCC;
- :mod:`.sweeps`: :func:`lambda_sweep` and :func:`baseline_sweep` score validation pairs
  over a λ grid;
- :mod:`.results`: :class:`SweepResult` and :func:`compare_sweeps` (optimal λ per structure,
  one model against separately trained ones);
- :mod:`.lambda_tuning`: :func:`optimize_lambda`, λ chosen by gradient.

Examples
--------
>>> from hypermorph_nb.evaluation import metrics
>>> import numpy as np
>>> metrics.dice(np.ones((4, 4)), np.ones((4, 4)), labels=[1])
array([1.])
"""
from . import metrics
from .lambda_tuning import LambdaSearch, optimize_lambda
from .results import LambdaOptimum, PairScores, SweepComparison, SweepResult, compare_sweeps, label_index
from .sweeps import baseline_sweep, choose_pairs, identity_scores, lambda_sweep, score_pairs

__all__ = [
    "metrics", "lambda_sweep", "baseline_sweep", "choose_pairs", "score_pairs", "identity_scores",
    "SweepResult", "PairScores", "LambdaOptimum", "SweepComparison", "compare_sweeps", "label_index",
    "optimize_lambda", "LambdaSearch",
]
