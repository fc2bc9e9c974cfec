"""The explorer's model call: one pair at one λ, with its label map warped, in one compiled call."""

from __future__ import annotations

from typing import Any

import weakref

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from ..networks.models import require_hypermorph
from ..registration.pairs import Registrar


class RegistrationStep:
    """One pair at one λ, and its label map warped, in one compiled call (2D or 3D).

    Same computation as :meth:`hypermorph_nb.registration.pairs.Registrar.predict` followed by
    ``Registrar.warp(..., interp='nearest')`` (the same inference model and warp layer),
    fused into one ``tf.function`` with a fixed batch-of-one signature: one dispatch per
    slider step instead of two, and no retracing.
    Runs on the GPU when TensorFlow sees one.

    Get it with :meth:`for_model` (cached per model).

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> step = RegistrationStep.for_model(model)
    >>> moved, flow, labels = step(np.zeros((32, 32)), np.zeros((32, 32)), 0.5, np.ones((32, 32), int))
    >>> moved.shape, flow.shape, labels.dtype.kind
    ((32, 32), (32, 32, 2), 'i')
    """

    _cache: weakref.WeakKeyDictionary[Any, RegistrationStep] = weakref.WeakKeyDictionary()

    def __init__(self, model: tf.keras.Model) -> None:
        spec = require_hypermorph(model, "RegistrationStep")
        self.inshape = tuple(spec.inshape)
        registrar = Registrar.for_model(model)
        inference, warp = registrar.inference, registrar.warpers["nearest"]
        image = tf.TensorSpec([1, *self.inshape, 1], tf.float32)
        lam = tf.TensorSpec([1, 1], tf.float32)

        def register(moving, fixed, lam):
            return inference([moving, fixed, lam], training=False)

        def register_and_warp(moving, fixed, lam, labels):
            moved, flow = inference([moving, fixed, lam], training=False)
            return moved, flow, warp([labels, flow])

        self._register = tf.function(register, input_signature=[image, image, lam])
        self._register_and_warp = tf.function(register_and_warp, input_signature=[image, image, lam, image])

    @classmethod
    def for_model(cls, model: tf.keras.Model) -> RegistrationStep:
        """The cached step of ``model`` (compiled on first use)."""
        step = cls._cache.get(model)
        if step is None:
            step = cls._cache[model] = cls(model)
        return step

    def __call__(self, moving: ArrayLike, fixed: ArrayLike, lam: float,
                 moving_labels: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Register ``moving`` to ``fixed`` at ``lam``; warp ``moving_labels`` when given.

        Returns
        -------
        moved : np.ndarray
            ``spatial``, e.g. ``(H, W)`` or ``(D, H, W)``.
        flow : np.ndarray
            ``(*spatial, ndims)`` in voxels.
        warped_labels : np.ndarray or None
            ``spatial`` with the dtype of ``moving_labels``.
        """
        shape = (1, *self.inshape, 1)
        moving = tf.constant(np.reshape(moving, shape), tf.float32)
        fixed = tf.constant(np.reshape(fixed, shape), tf.float32)
        lam = tf.constant([[lam]], tf.float32)
        if moving_labels is None:
            moved, flow = self._register(moving, fixed, lam)
            return moved.numpy()[0, ..., 0], flow.numpy()[0], None
        labels = np.asarray(moving_labels)
        moved, flow, warped = self._register_and_warp(
            moving, fixed, lam, tf.constant(labels.reshape(shape), tf.float32))
        warped = np.rint(warped.numpy()[0, ..., 0]).astype(labels.dtype)
        return moved.numpy()[0, ..., 0], flow.numpy()[0], warped
