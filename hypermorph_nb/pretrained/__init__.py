"""Pretrained models shipped with the package, loadable by name.

``hypermorph_nb.load_model("pretrained:ixi-t1-2mm")`` loads a λ-conditioned 3D brain model
without training; :func:`names` lists what is shipped. Each model's folder holds its
weights, its space (grid and reference image, so raw scans can be brought to it with
:func:`hypermorph_nb.prepare_scans`), a model card (``README.md``: how it was trained,
what it scores) and the terms of the data that shaped it (``LICENSE-DATA.md``). Every file
is checked against the checksum recorded here before loading.

Examples
--------
>>> from hypermorph_nb import pretrained
>>> pretrained.names()
['pretrained:ixi-t1-2mm']
"""
from .registry import PREFIX, PretrainedModel, card, is_pretrained_name, names, pretrained_folder

__all__ = ["PREFIX", "PretrainedModel", "names", "card", "is_pretrained_name", "pretrained_folder"]
