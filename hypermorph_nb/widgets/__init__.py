"""Jupyter widgets: move λ and watch a trained HyperMorph model re-register.

- :class:`LambdaExplorer`: one pair, every panel updated as the λ slider moves;
- :class:`SweepPanel`: Dice per structure, MSE and folding over λ on validation pairs;
- :class:`LambdaControls`, :func:`effective_weight`: the λ controls on their own.

Examples
--------
>>> import hypermorph_nb as hnb
>>> hnb.widgets.LambdaExplorer.__name__
'LambdaExplorer'
"""
from .controls import LambdaControls, effective_weight
from .explorer import ExplorerState, LambdaExplorer
from .live_figure import LiveFigure
from .sweep_panel import DEFAULT_SWEEP_LAMS, SweepPanel
from .updates import Coalescer, changed_by_frontend

__all__ = [
    "LambdaExplorer", "ExplorerState", "SweepPanel", "DEFAULT_SWEEP_LAMS",
    "LambdaControls", "effective_weight", "LiveFigure", "Coalescer", "changed_by_frontend",
]
