"""Run a trained model: register image pairs at a chosen λ and warp label maps.

:func:`register` is the one-pair convenience call. :class:`Registrar` is the
batched, compiled path used by the sweep and the widgets: one ``tf.function``
per model with a fixed input signature, so moving a λ slider never retraces.
"""

import weakref

import numpy as np
import tensorflow as tf

from .data.sampling import check_lambda
from .models import spec_of, vxm

_REGISTRARS = weakref.WeakKeyDictionary()


class Registrar:
    """Compiled inference for one model (get it with :meth:`for_model`).

    Parameters
    ----------
    model : tf.keras.Model
        A model from :func:`hypermorph_nb.build_vxm`,
        :func:`hypermorph_nb.build_hypermorph` or :func:`hypermorph_nb.load_model`.

    Attributes
    ----------
    inference : tf.keras.Model
        The model with two outputs: moved image and displacement field.
    warpers : dict
        ``{'linear': layer, 'nearest': layer}``: spatial transformers for
        images and label maps.

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> run = Registrar.for_model(model)
    >>> pair = np.random.default_rng(0).random((2, 4, 32, 32, 1), dtype="float32")
    >>> moved, flow = run.predict(pair[0], pair[1], lam=np.full(4, 0.5))
    >>> moved.shape, flow.shape
    ((4, 32, 32, 1), (4, 32, 32, 2))
    """

    def __init__(self, model):
        self.spec = spec_of(model)
        self.model = model
        outputs = [model.outputs[0], model.references.pos_flow]
        self.inference = tf.keras.Model(model.inputs, outputs)
        image = tf.TensorSpec([None, *self.spec.inshape, 1], tf.float32)
        field = tf.TensorSpec([None, *self.spec.inshape, len(self.spec.inshape)], tf.float32)
        if self.spec.is_hypermorph:
            lam = tf.TensorSpec([None, 1], tf.float32)
            self._predict = tf.function(
                lambda m, f, l: self.inference([m, f, l], training=False),
                input_signature=[image, image, lam])
        else:
            self._predict = tf.function(
                lambda m, f: self.inference([m, f], training=False),
                input_signature=[image, image])
        self.warpers = {
            method: vxm.layers.SpatialTransformer(interp_method=method, indexing="ij", fill_value=0.0)
            for method in ("linear", "nearest")
        }
        self._warp = {
            method: tf.function(lambda v, u, layer=layer: layer([v, u]),
                                input_signature=[image, field])
            for method, layer in self.warpers.items()
        }

    @classmethod
    def for_model(cls, model):
        """Return the cached :class:`Registrar` of ``model`` (built on first use)."""
        registrar = _REGISTRARS.get(model)
        if registrar is None:
            registrar = _REGISTRARS[model] = cls(model)
        return registrar

    def predict(self, moving, fixed, lam=None):
        """Register batches of pairs.

        Parameters
        ----------
        moving, fixed : array_like
            Shape ``(batch, *inshape, 1)``, float32 in [0, 1].
        lam : array_like or float, optional
            λ per pair (HyperMorph only); a scalar applies to every pair.

        Returns
        -------
        moved : np.ndarray
            ``(batch, *inshape, 1)``.
        flow : np.ndarray
            Displacement field in voxels, ``(batch, *inshape, ndims)``.
        """
        moving = tf.convert_to_tensor(moving, tf.float32)
        fixed = tf.convert_to_tensor(fixed, tf.float32)
        if self.spec.is_hypermorph:
            lam = lambda_per_pair(lam, batch=int(moving.shape[0]))
            moved, flow = self._predict(moving, fixed, tf.constant(lam[:, None]))
        else:
            if lam is not None:
                raise ValueError(
                    "this VoxelMorph baseline was trained at one fixed λ and takes no lam; "
                    "call it with lam=None, or use a HyperMorph model to choose λ at test time")
            moved, flow = self._predict(moving, fixed)
        return moved.numpy(), flow.numpy()

    def warp(self, volume, flow, *, interp="linear"):
        """Warp images (``interp='linear'``) or label maps (``'nearest'``).

        Parameters
        ----------
        volume : array_like
            ``(batch, *inshape)`` or ``(batch, *inshape, 1)``; label maps may be
            any integer dtype.
        flow : array_like
            ``(batch, *inshape, ndims)`` from :meth:`predict`.
        interp : {'linear', 'nearest'}

        Returns
        -------
        np.ndarray
            The warped volume with the dtype and shape of ``volume``.
        """
        if interp not in self._warp:
            raise ValueError(f"interp must be 'linear' or 'nearest', got {interp!r}")
        volume = np.asarray(volume)
        values = volume.reshape(volume.shape[0], *self.spec.inshape, 1).astype(np.float32)
        warped = self._warp[interp](values, tf.convert_to_tensor(flow, tf.float32)).numpy()
        if np.issubdtype(volume.dtype, np.integer):
            warped = np.rint(warped)
        return warped.reshape(volume.shape).astype(volume.dtype)


def lambda_per_pair(lam, *, batch):
    """Validate λ and broadcast it to one float32 value per pair.

    Raises
    ------
    ValueError
        If λ is missing, outside [0, 1] or of the wrong length.
    """
    if lam is None:
        raise ValueError(
            "HyperMorph needs a regularisation weight: pass lam=<value in [0, 1]>, "
            "e.g. register(model, moving, fixed, lam=0.5)")
    values = check_lambda(lam).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, batch)
    if values.size != batch:
        raise ValueError(f"got {values.size} λ values for {batch} image pairs; pass one λ or one per pair")
    return values


def register(model, moving, fixed, lam=None):
    """Register one moving image to one fixed image.

    Parameters
    ----------
    model : tf.keras.Model
        A baseline (then ``lam`` must be None) or a HyperMorph model.
    moving, fixed : np.ndarray
        Shape ``inshape`` or ``(*inshape, 1)``, e.g. ``(160, 192)``.
    lam : float, optional
        λ in [0, 1] for a HyperMorph model: 0 trusts image similarity only,
        1 smoothness only.

    Returns
    -------
    moved : np.ndarray
        The moving image warped onto the fixed one, same shape as ``moving``.
    flow : np.ndarray
        Displacement field in voxels, shape ``(*inshape, ndims)``.

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> moved, flow = hnb.register(model, np.zeros((32, 32)), np.zeros((32, 32)), lam=0.3)
    >>> moved.shape, flow.shape
    ((32, 32), (32, 32, 2))
    """
    registrar = Registrar.for_model(model)
    moving_batch = one_image_batch(moving, "moving", registrar.spec.inshape)
    fixed_batch = one_image_batch(fixed, "fixed", registrar.spec.inshape)
    moved, flow = registrar.predict(moving_batch, fixed_batch, lam)
    return moved[0].reshape(np.shape(moving)), flow[0]


def one_image_batch(image, name, inshape):
    """``image`` of shape ``inshape`` or ``(*inshape, 1)`` as a float32 batch of one, checked."""
    array = np.asarray(image, dtype=np.float32)
    if array.shape not in (tuple(inshape), (*inshape, 1)):
        raise ValueError(
            f"{name} has shape {array.shape}, but the model expects {tuple(inshape)} or "
            f"{(*inshape, 1)}; resize the image, or build a model for its shape")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or mask them first")
    return array.reshape(1, *inshape, 1)
