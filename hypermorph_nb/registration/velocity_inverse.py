"""A diffeomorphic model's inverse, in the model's space: its velocity negated and integrated.

:func:`hypermorph_nb.register_scans` (``inverse=True``) composes it into the written
``inverse_transform.nii.gz`` exactly as it composes the forward field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from scipy import ndimage

from ..networks.models import spec_of, vxm
from .apply import polish_inverse
from .pairs import Registrar


def velocity_inverse(model: Any, images: Sequence[np.ndarray], lam: float | None,
                     hyperparameters: dict[str, float], field: np.ndarray) -> np.ndarray:
    """The inverse of the forward ``field`` (voxels of the model's grid) from a diffeomorphic model's velocity.

    The velocity the model gives for the (moving, fixed) ``images`` at ``lam`` and ``hyperparameters`` is
    negated and integrated where the model integrates it (on the coarse grid of a ``downsample`` model, then
    upsampled as the model does), then refined towards ``w(x) = -u(x + w(x))`` by the fixed-point steps of
    :func:`~hypermorph_nb.registration.apply.polish_inverse`.
    """
    return _refined(_integrated(model, images, lam, hyperparameters), field)


def _refined(inverse: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``inverse`` refined towards the inverse of ``x ↦ x + flow(x)`` on the grid's voxel points."""
    points = np.indices(flow.shape[:3], dtype=np.float64).reshape(3, -1)

    def forward(at: np.ndarray) -> np.ndarray:   # x + u(x) at voxel points (3, n)
        pulled = np.stack([ndimage.map_coordinates(flow[..., axis], at, order=1, mode="nearest")
                           for axis in range(3)])
        return np.asarray(at + pulled)

    refined = polish_inverse(forward, points, points + inverse.reshape(-1, 3).T)
    return np.asarray((refined - points).T.reshape(inverse.shape))


def _integrated(model: Any, images: Sequence[np.ndarray], lam: float | None,
                hyperparameters: dict[str, float]) -> np.ndarray:
    """The model's velocity for the pair, negated and integrated as the model integrates its own."""
    spec = spec_of(model)
    inputs = [tf.constant(image[None, ..., None], tf.float32) for image in images]
    if spec.is_hypermorph:
        inputs.append(tf.constant(Registrar.for_model(model).hyper_inputs(lam, batch=1, **hyperparameters)))
    integrate = vxm.layers.VecInt(method="ss", int_steps=int(spec.options.get("int_steps", 7)))
    if spec.downsample == 1:
        return np.asarray(integrate(-model(inputs, training=False)[1]).numpy()[0])
    # a downsampled model integrates on its coarse grid, then upsamples (networks.resolution): the same here
    upsample = model.get_layer("upsample_field")
    velocity = tf.keras.Model(model.inputs, upsample.input)(inputs, training=False)
    return np.asarray(upsample(integrate(-velocity)).numpy()[0])
