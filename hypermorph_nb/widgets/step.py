"""The explorer's model call: one pair at one λ (and the model's other hyperparameters), with its
label map warped, in one compiled call; and :func:`registration_state`, that call scored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TYPE_CHECKING

import time
import weakref

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from ..networks.hyperparameters import model_inputs
from ..networks.models import require_hypermorph
from ..registration.pairs import Registrar
from ..registration.refine import refine_registration
from .state import ExplorerState

if TYPE_CHECKING:
    from ..data.dataset import Dataset


class RegistrationStep:
    """One pair at one λ (and any other hyperparameters), and its label map warped, in one compiled call.

    Same computation as :meth:`hypermorph_nb.registration.pairs.Registrar.predict` followed by
    ``Registrar.warp(..., interp='nearest')`` (the same inference model and warp layer),
    fused into one ``tf.function`` with a fixed batch-of-one signature: one dispatch per
    slider step instead of two, and no retracing. 2D or 3D; a model conditioned on more
    than λ takes the others by name (``step(moving, fixed, 0.5, label_weight=0.3)``).
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
        self.hyperparameters = spec.hyperparameters  # not the model: the cache holds steps by weak keys
        registrar = Registrar.for_model(model)
        inference, warp = registrar.inference, registrar.warpers["nearest"]
        image = tf.TensorSpec([1, *self.inshape, 1], tf.float32)
        lam = tf.TensorSpec([1, len(spec.hyperparameters)], tf.float32)

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

    def __call__(self, moving: ArrayLike, fixed: ArrayLike, lam: float, moving_labels: ArrayLike | None = None,
                 **hyperparameters: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Register ``moving`` to ``fixed`` at ``lam`` (and ``**hyperparameters``, the model's
        others, by name); warp ``moving_labels`` when given.

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
        lam = tf.constant(model_inputs(self.hyperparameters, {"lam": lam, **hyperparameters}, batch=1))
        if moving_labels is None:
            moved, flow = self._register(moving, fixed, lam)
            return moved.numpy()[0, ..., 0], flow.numpy()[0], None
        labels = np.asarray(moving_labels)
        moved, flow, warped = self._register_and_warp(
            moving, fixed, lam, tf.constant(labels.reshape(shape), tf.float32))
        warped = np.rint(warped.numpy()[0, ..., 0]).astype(labels.dtype)
        return moved.numpy()[0, ..., 0], flow.numpy()[0], warped


def registration_state(model: tf.keras.Model, data: Dataset, moving_index: int, fixed_index: int, *,
                       values: Mapping[str, float], refine: int = 0, label_values: ArrayLike = (),
                       step: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None
                       ) -> ExplorerState:
    """Register pair ``(moving_index, fixed_index)`` of ``data`` at ``values`` and score it.

    ``values`` holds λ (``'lam'``) and the model's other hyperparameters by name. With
    ``refine`` > 0 the network's field is refined for that many iterations
    (:func:`hypermorph_nb.registration.refine.refine_registration`); otherwise the pair goes
    through ``step`` (default: the model's cached :class:`RegistrationStep`).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> state = registration_state(model, synthetic(2, (32, 32)), 0, 1, values={"lam": 0.5})
    >>> state.lam, state.flow.shape
    (0.5, (32, 32, 2))
    """
    others = {name: float(value) for name, value in values.items() if name != "lam"}
    lam = float(values["lam"])
    start = time.perf_counter()
    moving_labels = data.labels[moving_index] if data.labels is not None else None
    if refine:
        moved, flow = refine_registration(
            model, data.images[moving_index, ..., 0], data.images[fixed_index, ..., 0], lam=lam,
            iterations=refine, fixed_affine=None if data.affines is None else data.affines[fixed_index],
            hyperparameters=others or None)
        warped_labels = None if moving_labels is None else Registrar.for_model(model).warp(
            moving_labels[None], flow[None], interp="nearest")[0]
    else:
        step = step or RegistrationStep.for_model(model)
        moved, flow, warped_labels = step(data.images[moving_index], data.images[fixed_index], lam,
                                          moving_labels, **others)
    computed = time.perf_counter()
    state = ExplorerState.scored(
        lam=lam, hyperparameters=others, moving_index=moving_index, fixed_index=fixed_index, moved=moved,
        flow=flow, fixed=data.images[fixed_index, ..., 0], warped_labels=warped_labels,
        fixed_labels=data.labels[fixed_index] if data.labels is not None else None, label_values=label_values)
    state.seconds = {"model": computed - start, "metrics": time.perf_counter() - computed}
    return state
