"""Networks: the registration models, how λ conditions them, and the λ-weighted loss.

- :mod:`.models`: :func:`build_vxm`, :func:`build_hypermorph` and the :class:`ModelSpec`
  every model carries;
- :mod:`.conditioning`: the hypernetwork and FiLM ways for λ to reach the U-Net;
- :mod:`.hyperconv`: neurite's hyper-convolutions without the per-sample loop, for our layers only;
- :mod:`.padding`: any image size, padded inside the model and cropped back;
- :mod:`.resolution`: a U-Net on a coarser grid (``downsample=2``), its field upsampled;
- :mod:`.losses`: ``(1 − λ)·similarity + λ·smoothness`` (:class:`LossConfig`).

Examples
--------
>>> from hypermorph_nb.networks import build_hypermorph
>>> build_hypermorph((32, 32), seed=0).inputs[2].shape[-1]
1
"""
from . import losses, models
from .losses import DEFAULT_IMAGE_SIGMA, LossConfig
from .models import ModelSpec, build_hypermorph, build_vxm, count_parameters, spec_of

__all__ = ["models", "losses", "build_vxm", "build_hypermorph", "ModelSpec", "spec_of",
           "count_parameters", "LossConfig", "DEFAULT_IMAGE_SIGMA"]
