"""Save and load models as a folder: ``model.json`` (how to rebuild) + ``weights.h5``.

No pickle, and no Keras whole-model serialisation (voxelmorph 0.2's
``VxmDense(hyp_model=...).save()`` does not restore the hypernetwork). A save
writes into a temporary sibling folder and renames it into place, so an
interrupted save never leaves a half-written model where a good one was.
"""

from __future__ import annotations

from typing import cast

import json
import os
import shutil
import tempfile

from nibabel.spatialimages import SpatialImage
import nibabel as nib
import numpy as np
import tensorflow as tf

from .files import replace_folder
from ..networks.description import ModelSpace
from ..networks.models import ModelSpec, build_from_spec, spec_of
from ..pretrained.registry import is_pretrained_name, pretrained_folder

CONFIG_NAME = "model.json"
WEIGHTS_NAME = "weights.h5"
#: The model space's images, saved beside the config when the model has a space.
SPACE_IMAGE_NAMES = {"reference": "reference.nii.gz", "reference_mask": "reference_mask.nii.gz"}
FORMAT_VERSION = 1


def save_model(model: tf.keras.Model, path: str | os.PathLike[str]) -> str:
    """Save a model built by hypermorph_nb to the folder ``path``.

    Parameters
    ----------
    model : tf.keras.Model
    path : str or os.PathLike
        Folder to create or replace.

    Returns
    -------
    str
        The folder path.

    Examples
    --------
    >>> import hypermorph_nb as hnb, tempfile, os
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> folder = hnb.save_model(model, os.path.join(tempfile.mkdtemp(), "baseline"))
    >>> sorted(os.listdir(folder))
    ['model.json', 'weights.h5']
    """
    spec = spec_of(model)
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path} exists and is not a folder; choose another path for the model")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".saving-", dir=parent)
    try:
        model.save_weights(os.path.join(staging, WEIGHTS_NAME))
        config = {"format": "hypermorph_nb", "version": FORMAT_VERSION, **spec.to_json()}
        if spec.space is not None:
            _write_space_images(spec.space, staging)
        with open(os.path.join(staging, CONFIG_NAME), "w") as handle:
            json.dump(config, handle, indent=2)
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def load_model(path: str | os.PathLike[str]) -> tf.keras.Model:
    """Rebuild a model saved by :func:`save_model` and load its weights.

    Parameters
    ----------
    path : str or os.PathLike
        The folder written by :func:`save_model`, or ``"pretrained:NAME"`` for a model
        shipped with the package (:func:`hypermorph_nb.pretrained.names` lists them;
        its files are checked against their checksums first).

    Returns
    -------
    tf.keras.Model

    Raises
    ------
    FileNotFoundError
        If the folder or one of its two files is missing.
    ValueError
        If ``model.json`` is not a hypermorph_nb config or the weights do not
        fit the architecture it describes; for an unknown pretrained name (the
        message lists the known ones) or a shipped file that fails its checksum.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.load_model("pretrained:ixi-t1-2mm")
    >>> hnb.networks.spec_of(model).inshape, hnb.networks.spec_of(model).conditioning
    ((80, 96, 80), 'film')
    """
    if is_pretrained_name(path):
        path = pretrained_folder(str(path))
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_NAME)
    weights_path = os.path.join(path, WEIGHTS_NAME)
    for required in (config_path, weights_path):
        if not os.path.isfile(required):
            raise FileNotFoundError(
                f"{required} not found: a saved model is a folder with {CONFIG_NAME} and "
                f"{WEIGHTS_NAME}, written by hypermorph_nb.save_model(model, path)")
    try:
        with open(config_path) as handle:
            config = json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"{config_path} is not valid JSON ({err}); re-save the model") from err
    if not isinstance(config, dict) or config.get("format") != "hypermorph_nb":
        raise ValueError(f"{config_path} is not a hypermorph_nb model config; give the folder that "
                         "hypermorph_nb.save_model (or a training checkpoint) wrote")
    if config.get("version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{config_path} was written by a newer hypermorph_nb (format {config['version']}); "
            "upgrade hypermorph_nb to load it")
    try:
        spec = ModelSpec.from_json(config, space_images=_read_space_images(path, config))
    except ValueError as err:
        raise ValueError(f"{config_path}: {err}; re-save the model") from err
    model = build_from_spec(spec)
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"{weights_path} does not match the architecture in {CONFIG_NAME} "
            f"or is damaged ({err}); re-save the model") from err
    return model


def _write_space_images(space: ModelSpace, folder: str) -> None:
    for name, file_name in SPACE_IMAGE_NAMES.items():
        image = getattr(space, name)
        if image is not None:
            dtype = np.uint8 if image.dtype == bool else np.float32
            nib.save(nib.Nifti1Image(image.astype(dtype), space.affine), os.path.join(folder, file_name))


def _read_space_images(folder: str, config: object) -> dict[str, np.ndarray]:
    space = config.get("space") if isinstance(config, dict) else None
    if not isinstance(space, dict):
        return {}
    images = {}
    for name, file_name in SPACE_IMAGE_NAMES.items():
        if space.get(name):
            file_path = os.path.join(folder, file_name)
            if not os.path.isfile(file_path):
                raise FileNotFoundError(f"{file_path} not found: the model's config says it has a "
                                        f"{name.replace('_', ' ')}; re-save the model")
            images[name] = np.asanyarray(cast(SpatialImage, nib.load(file_path)).dataobj)
    return images
