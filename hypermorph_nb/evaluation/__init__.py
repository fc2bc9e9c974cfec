"""Evaluation: which λ is best, measured with :mod:`hypermorph_nb.metrics`.

- :mod:`.sweeps`: :func:`hypermorph_nb.lambda_sweep` and :func:`hypermorph_nb.baseline_sweep`
  score validation pairs over a λ grid;
- :mod:`.results`: :class:`SweepResult` and :func:`hypermorph_nb.compare_sweeps` (optimal λ per
  structure, one model against separately trained ones);
- :mod:`.lambda_tuning`: :func:`hypermorph_nb.optimize_lambda`, λ chosen by a coarse sweep, then the gradient;
- :mod:`.hyper_sweeps`: :func:`hypermorph_nb.hyper_sweep` scores a grid over every hyperparameter of a
  model (:class:`HyperSweepResult`: the surface, the optimum overall and per structure);
- :mod:`.hyper_tuning`: :func:`hypermorph_nb.optimize_hyperparameters`, several hyperparameters chosen
  together by a coarse grid, then a bounded pattern search (:class:`HyperOptimum`).

Examples
--------
>>> from hypermorph_nb.evaluation import SweepResult
>>> SweepResult.__name__
'SweepResult'
"""
from .hyper_sweeps import HyperSweepResult
from .hyper_tuning import HyperOptimum
from .lambda_tuning import LambdaSearch
from .results import LambdaOptimum, PairScores, SweepComparison, SweepResult, label_index
from .sweeps import identity_scores, score_pairs

__all__ = [
    "score_pairs", "identity_scores",
    "SweepResult", "PairScores", "LambdaOptimum", "SweepComparison", "label_index", "LambdaSearch",
    "HyperSweepResult", "HyperOptimum",
]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {name: f"hypermorph_nb.{name}"
               for name in ("lambda_sweep", "baseline_sweep", "compare_sweeps", "optimize_lambda")}
_DEPRECATED.update(metrics="hypermorph_nb.metrics", choose_pairs="hypermorph_nb.checks.choose_pairs")


def __getattr__(name: str) -> object:
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)
