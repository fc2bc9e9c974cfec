"""Jupyter widgets: move λ and watch a trained HyperMorph model re-register, in 2D or 3D.

- :class:`LambdaExplorer`: one pair, every panel updated as the λ slider moves; volumes
  in three planes (axial, coronal, sagittal) with a slice slider each;
- :class:`SweepPanel`: Dice per structure, MSE and folding over λ on validation pairs;
- :func:`plane_views`: how a volume's planes are cut and oriented by its affine;
- :class:`LambdaControls`, :func:`effective_weight`: the λ controls on their own.

Examples
--------
>>> import hypermorph_nb as hnb
>>> hnb.widgets.LambdaExplorer.__name__
'LambdaExplorer'
"""
from .controls import LambdaControls, effective_weight
from .explorer import ExplorerState, LambdaExplorer
from .animation import save_lambda_animation
from .live_figure import LiveFigure
from .sweep_panel import DEFAULT_SWEEP_LAMBDAS, SweepPanel
from .updates import Coalescer, changed_by_frontend
from .views import PLANES, PlaneView, plane_views

__all__ = [
    "LambdaExplorer", "ExplorerState", "SweepPanel", "DEFAULT_SWEEP_LAMBDAS",
    "LambdaControls", "effective_weight", "LiveFigure", "Coalescer", "changed_by_frontend",
    "PLANES", "PlaneView", "plane_views", "save_lambda_animation",
]
