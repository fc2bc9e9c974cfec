"""Pictures: static figures, the shared drawing helpers, and training progress.

- :mod:`.plotting`: the λ-row figure, image rows, Dice/folding-vs-λ plots, comparisons;
- :mod:`.hyper_plotting`: the Dice surface of a sweep over several hyperparameters;
- :mod:`.drawing`: λ axes and labels, label colours and outlines, grid lines;
- :mod:`.training_display`: progress bars, log lines and the live loss plot of ``train``.

matplotlib's backend is left to the caller.

Examples
--------
>>> from hypermorph_nb.viz import drawing
>>> drawing.format_lam(0.5)
'0.5'
"""
from . import drawing, hyper_plotting, plotting, training_display
from .hyper_plotting import plot_hyper_sweep

__all__ = ["plotting", "hyper_plotting", "drawing", "training_display", "plot_hyper_sweep"]
