"""Networks: the registration models, how λ conditions them, and the λ-weighted loss.

- :mod:`.models`: :func:`hypermorph_nb.build_vxm`, :func:`hypermorph_nb.build_hypermorph` and
  the :class:`ModelSpec` every model carries;
- :mod:`.description`: what a model records of its training and space (:data:`DEFAULT_BASELINE_LAMBDA`);
- :mod:`.hyperparameters`: what a model is conditioned on, λ alone or with others (:class:`Hyperparameter`);
- :mod:`.conditioning`: the hypernetwork and FiLM ways for λ to reach the U-Net;
- :mod:`.hyperconv`: neurite's hyper-convolutions without the per-sample loop, for our layers only;
- :mod:`.padding`: any image size, padded inside the model and cropped back;
- :mod:`.resolution`: a U-Net on a coarser grid (``downsample=2``), its field upsampled;
- :mod:`.losses`: ``(1 − λ)·similarity + λ·smoothness`` (:class:`LossConfig`).

Examples
--------
>>> import hypermorph_nb as hnb
>>> from hypermorph_nb.networks import count_parameters
>>> count_parameters(hnb.build_hypermorph((32, 32), seed=0)) > 0
True
"""
from . import description, hyperparameters, losses, models
from .description import DEFAULT_BASELINE_LAMBDA
from .hyperparameters import Hyperparameter
from .losses import DEFAULT_IMAGE_SIGMA, LossConfig
from .models import ModelSpec, count_parameters, spec_of

__all__ = ["models", "losses", "description", "hyperparameters", "Hyperparameter", "ModelSpec", "spec_of",
           "count_parameters", "LossConfig", "DEFAULT_IMAGE_SIGMA", "DEFAULT_BASELINE_LAMBDA"]
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {name: f"hypermorph_nb.{name}" for name in ("build_vxm", "build_hypermorph")}


def __getattr__(name: str) -> object:
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)
