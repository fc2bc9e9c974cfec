"""Run a trained model: register image pairs (2D or 3D) at a chosen λ and warp label maps.

:func:`register` is the one-pair convenience call for a user's own arrays: it
checks them first (:mod:`hypermorph_nb.checks.inputs`: dimensions, shape, intensities,
grids) and says what it changed. :class:`Registrar` is the batched, compiled
path used by the sweeps, the export and the widgets: one ``tf.function`` per
model with a fixed input signature, so moving a λ slider never retraces.
Writing a registration to NIfTI files is :func:`hypermorph_nb.export_registration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import warnings
import weakref

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from ..checks.values import check_lambda, check_refine
from ..checks.inputs import check_finite, check_model_shape, prepare_pair, spatial_image
from ..networks.hyperparameters import model_inputs
from ..networks.models import spec_of, vxm
from .refine import refine_registration

_REGISTRARS: weakref.WeakKeyDictionary[Any, Registrar] = weakref.WeakKeyDictionary()


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

    def __init__(self, model: tf.keras.Model) -> None:
        self.spec = spec_of(model)
        self.model = model
        outputs = [model.outputs[0], model.references.pos_flow]
        self.inference = tf.keras.Model(model.inputs, outputs)
        image = tf.TensorSpec([None, *self.spec.inshape, 1], tf.float32)
        field = tf.TensorSpec([None, *self.spec.inshape, len(self.spec.inshape)], tf.float32)
        if self.spec.is_hypermorph:
            lam = tf.TensorSpec([None, len(self.spec.hyperparameters)], tf.float32)
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
    def for_model(cls, model: tf.keras.Model) -> Registrar:
        """Return the cached :class:`Registrar` of ``model`` (built on first use)."""
        registrar = _REGISTRARS.get(model)
        if registrar is None:
            registrar = _REGISTRARS[model] = cls(model)
        return registrar

    def predict(self, moving: ArrayLike, fixed: ArrayLike, lam: ArrayLike | float | None = None,
                **hyperparameters: ArrayLike | float | None) -> tuple[np.ndarray, np.ndarray]:
        """Register batches of pairs.

        Parameters
        ----------
        moving, fixed : array_like
            Shape ``(batch, *inshape, 1)``, float32 in [0, 1].
        lam : array_like or float, optional
            λ per pair (HyperMorph only); a scalar applies to every pair.
        **hyperparameters : array_like or float
            The model's other hyperparameters (``label_weight=0.5``), likewise.

        Returns
        -------
        moved : np.ndarray
            ``(batch, *inshape, 1)``.
        flow : np.ndarray
            Displacement field in voxels, ``(batch, *inshape, ndims)``.
        """
        moving_batch = tf.convert_to_tensor(moving, tf.float32)
        fixed_batch = tf.convert_to_tensor(fixed, tf.float32)
        hypers = self.hyper_inputs(lam, batch=int(moving_batch.shape[0]), **hyperparameters)
        if hypers is not None:
            moved, flow = self._predict(moving_batch, fixed_batch, tf.constant(hypers))
        else:
            moved, flow = self._predict(moving_batch, fixed_batch)
        return np.asarray(moved.numpy()), np.asarray(flow.numpy())

    def hyper_inputs(self, lam: ArrayLike | float | None, *, batch: int,
                     **hyperparameters: ArrayLike | float | None) -> np.ndarray | None:
        """The network's hyperparameter input for ``batch`` pairs: ``(batch, k)`` float32, checked.

        λ alone goes through :func:`lambda_per_pair` (its messages); several through
        :func:`~hypermorph_nb.networks.hyperparameters.model_inputs`. None for a baseline
        (which refuses any value).
        """
        if not self.spec.is_hypermorph:
            if lam is not None or any(v is not None for v in hyperparameters.values()):
                raise ValueError(
                    "this VoxelMorph baseline was trained at one fixed λ and takes no lam; "
                    "call it with lam=None, or use a HyperMorph model to choose λ at test time")
            return None
        if len(self.spec.hyperparameters) == 1 and not any(v is not None for v in hyperparameters.values()):
            return lambda_per_pair(lam, batch=batch)[:, None]
        if lam is None:
            lambda_per_pair(lam, batch=batch)  # the message that asks for λ
        return model_inputs(self.spec.hyperparameters, {"lam": lam, **hyperparameters}, batch=batch)

    def warp(self, volume: ArrayLike, flow: ArrayLike, *, interp: str = "linear") -> np.ndarray:
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
        array = np.asarray(volume)
        values = array.reshape(array.shape[0], *self.spec.inshape, 1).astype(np.float32)
        warped = np.asarray(self._warp[interp](values, tf.convert_to_tensor(flow, tf.float32)).numpy())
        if np.issubdtype(array.dtype, np.integer):
            warped = np.rint(warped)
        return warped.reshape(array.shape).astype(array.dtype)


def lambda_per_pair(lam: ArrayLike | None, *, batch: int) -> np.ndarray:
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


def register(model: tf.keras.Model, moving: np.ndarray, fixed: np.ndarray, *, lam: float | None = None,
             refine: int = 0, normalize: str = "auto", moving_affine: np.ndarray | None = None,
             fixed_affine: np.ndarray | None = None, resample: bool = False,
             **hyperparameters: float) -> tuple[np.ndarray, np.ndarray]:
    """Register one moving image to one fixed image (2D or 3D).

    Parameters
    ----------
    model : tf.keras.Model
        A baseline (then ``lam`` must be None) or a HyperMorph model.
    moving, fixed : np.ndarray
        Shape ``inshape`` or ``(*inshape, 1)``, e.g. ``(160, 192)`` or
        ``(80, 96, 80)``: the shape the model was built for.
    lam : float, optional
        λ in [0, 1] for a HyperMorph model: 0 trusts image similarity only,
        1 smoothness only.
    refine : int
        Iterations of instance optimisation (0: the network's registration
        as it is). Starting from the network's field at λ, the pair's own
        λ-weighted loss, the one the model was trained with (its recorded
        loss settings, else the default :class:`~hypermorph_nb.networks.losses.LossConfig`),
        is minimised over the field, half the iterations at half resolution,
        then at full resolution (:mod:`hypermorph_nb.registration.refine`).
        A baseline is refined at the λ it was trained at.
    normalize : {'auto', 'minmax', 'none'}
        Intensity policy of the data loaders: ``'auto'`` keeps images in
        [0, 1], divides 8-bit images by 255 and rescales anything else by its
        own minimum and maximum, with a ``UserWarning`` saying so;
        ``'minmax'`` always rescales, silently; ``'none'`` refuses images
        outside [0, 1].
    moving_affine, fixed_affine : array_like, optional
        4×4 voxel → world matrices (``nibabel`` ``img.affine``). When both
        are given, the two images must lie on the same grid (shape, voxel
        size, position): otherwise the call is refused, or with
        ``resample=True`` the moving image is resampled onto the fixed grid
        (linear interpolation, with a ``UserWarning`` saying so).
    resample : bool
        See ``moving_affine``.
    **hyperparameters : float
        The values of a model conditioned on more than λ
        (``build_hypermorph(..., hyperparameters=("lam", "label_weight"))``), by name:
        ``label_weight=0.5``. Each is required and checked against the model's range.

    Returns
    -------
    moved : np.ndarray
        The moving image warped onto the fixed grid, float32, shaped like
        ``fixed`` (with a channel axis if ``moving`` has one), in the moving
        image's own intensity units (any normalisation is undone).
    flow : np.ndarray
        Displacement field ``u`` in voxels of the fixed grid, shape
        ``(*inshape, ndims)``, component ``i`` along array axis ``i``:
        ``moved(x) = moving(x + u(x))``.

    Raises
    ------
    ValueError
        For a 2D model given a volume or the reverse, 4D arrays, shapes the
        model was not built for, NaN/inf, out-of-range intensities with
        ``normalize='none'``, or grids that differ without ``resample=True``;
        and, with ``refine``, for a negative or fractional ``refine`` or a fixed
        grid whose voxel size or orientation differs from the model's space.

    Examples
    --------
    >>> import numpy as np, hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> moved, flow = hnb.register(model, np.zeros((32, 32)), np.zeros((32, 32)), lam=0.3)
    >>> moved.shape, flow.shape
    ((32, 32), (32, 32, 2))
    >>> moved, flow = hnb.register(model, np.zeros((32, 32)), np.zeros((32, 32)), lam=0.3, refine=10)
    >>> both = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0,
    ...                             hyperparameters=("lam", "label_weight"))
    >>> moved, flow = hnb.register(both, np.zeros((32, 32)), np.zeros((32, 32)), lam=0.3, label_weight=0.5)
    """
    refine = check_refine(refine)
    registrar = Registrar.for_model(model)
    registrar.hyper_inputs(lam, batch=1, **hyperparameters)  # refuse bad values before any work
    pair = prepare_pair(registrar.spec.inshape, moving, fixed, normalize=normalize,
                        moving_affine=moving_affine, fixed_affine=fixed_affine, resample=resample)
    for note in pair.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if refine:
        moved, flow = refine_registration(model, pair.moving, pair.fixed, lam=lam, iterations=refine,
                                          fixed_affine=fixed_affine, hyperparameters=hyperparameters)
        moved, flow = moved[None, ..., None], flow[None]
    else:
        moved, flow = registrar.predict(pair.moving[None, ..., None], pair.fixed[None, ..., None], lam,
                                        **hyperparameters)
    moved = pair.in_moving_units(moved[0, ..., 0])
    has_channel = np.ndim(moving) == len(registrar.spec.inshape) + 1
    return (moved[..., None] if has_channel else moved), flow[0]


def one_image_batch(image: ArrayLike, name: str, inshape: Sequence[int]) -> np.ndarray:
    """``image`` of shape ``inshape`` or ``(*inshape, 1)`` as a float32 batch of one, checked."""
    array = spatial_image(image, name, inshape)
    check_model_shape(array.shape, inshape, name=name)
    check_finite(array, name)
    return array.astype(np.float32).reshape(1, *inshape, 1)
