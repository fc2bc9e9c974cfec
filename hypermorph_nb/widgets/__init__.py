"""Jupyter widgets: move λ and watch a trained HyperMorph model re-register, in 2D or 3D.

- :class:`LambdaExplorer`: one pair, every panel updated as the λ slider moves; volumes
  in three planes (axial, coronal, sagittal) with a slice slider each; a model conditioned
  on more hyperparameters (λ and the label weight γ) gets one slider each and, for two,
  a small Dice/folding map of the pair over both with a marker where the sliders stand
  (:class:`HyperMap`);
- :class:`SweepPanel`: Dice per structure, MSE and folding over λ on validation pairs;
- :func:`plane_views`: how a volume's planes are cut and oriented by its affine;
- :class:`LambdaControls`, :func:`effective_weight`: the λ controls on their own;
  :class:`HyperparameterSliders`: all of a model's sliders.

Examples
--------
>>> import hypermorph_nb as hnb
>>> hnb.widgets.LambdaExplorer.__name__
'LambdaExplorer'
"""
from .controls import HyperparameterSliders, LambdaControls, effective_weight
from .explorer import ExplorerState, LambdaExplorer
from .hyper_map import HyperMap, HyperMapScores
from .animation import save_lambda_animation
from .live_figure import LiveFigure
from .sweep_panel import DEFAULT_SWEEP_LAMBDAS, SweepPanel
from .updates import Coalescer, changed_by_frontend
from .views import PLANES, PlaneView, plane_views

__all__ = [
    "LambdaExplorer", "ExplorerState", "SweepPanel", "DEFAULT_SWEEP_LAMBDAS",
    "LambdaControls", "HyperparameterSliders", "HyperMap", "HyperMapScores", "effective_weight", "LiveFigure", "Coalescer", "changed_by_frontend",
    "PLANES", "PlaneView", "plane_views", "save_lambda_animation",
]
