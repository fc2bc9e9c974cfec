"""λ-aware instance optimisation: improve one pair's registration by optimising its own loss.

A network trained on many pairs gives a good first guess for a new pair in one
forward pass; a modestly trained one leaves accuracy on the table. Starting
from the network's field at the chosen λ, :func:`refine_field` minimises, for
this one pair, the loss the network was trained with,
``(1 − λ) · similarity + λ · smoothness`` (:func:`hypermorph_nb.networks.losses.weighted_terms`
with the model's :class:`~hypermorph_nb.networks.losses.LossConfig`), over the field itself:

- **parametrisation**: the displacement field, or for a diffeomorphic model its
  stationary velocity field, integrated by scaling and squaring as the model
  does (the smoothness term then applies to the velocity, as in training);
- **coarse to fine**: the first iterations run at half resolution (images and
  field averaged over 2×2(×2) blocks, the field in coarse voxels), and the
  update found there is added, upsampled, to the starting field before the
  rest run at full resolution. With voxel units the smoothness term keeps its
  scale across levels, so both levels optimise (nearly) the same loss;
- **Adam** (Kingma & Ba's update, written out inside one compiled loop, so each
  call starts with fresh moments and traces once per image shape); the loss is
  summed over voxels for the gradient so that Adam's ε stays negligible;
- **warping** with voxelmorph's ``SpatialTransformer`` (linear, ``'ij'``, edge
  values outside the image), as the networks warp.

The label-free loss is the only one optimised: at test time the fixed image's
label map, which a label (Dice) term would need, is not known, and scoring a
refinement by Dice against labels it was fitted to would overstate it.

:func:`hypermorph_nb.register` and :func:`hypermorph_nb.export_registration`
(``refine=N``), and ``hypermorph-nb register --refine N``, call
:func:`refine_registration`.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[:32, :32]
>>> fixed = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 40).astype("float32")
>>> moving = np.exp(-((yy - 18) ** 2 + (xx - 16) ** 2) / 40).astype("float32")
>>> field = refine_field(moving, fixed, np.zeros((32, 32, 2), "float32"), lam=0.1, iterations=60)
>>> bool(field[16, 16, 0] > 0.5)          # fixed voxel 16 finds the blob two rows down
True
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from ..checks.affines import orientation, voxel_sizes
from ..checks.values import check_lambda, check_refine
from ..networks.description import DEFAULT_BASELINE_LAMBDA
from ..networks.losses import LossConfig, weighted_terms
from ..networks.hyperparameters import model_inputs
from ..networks.models import spec_of, vxm

#: Adam's step (in voxels per iteration, before bias correction) used unless told otherwise.
DEFAULT_LEARNING_RATE = 0.1
#: Resolution levels: half, then full.
DEFAULT_LEVELS = 2
#: A level is used only while every side of its grid has at least this many voxels.
MIN_LEVEL_SIDE = 8
_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8
_LEVEL_CACHE: dict[tuple[tuple[int, ...], LossConfig, int], _Level] = {}


def refine_field(moving: np.ndarray, fixed: np.ndarray, start: np.ndarray, *, lam: float, iterations: int,
                 loss_config: LossConfig = LossConfig(), int_steps: int = 0, levels: int = DEFAULT_LEVELS,
                 learning_rate: float = DEFAULT_LEARNING_RATE) -> np.ndarray:
    """Optimise one pair's displacement field for the λ-weighted loss, coarse to fine.

    Parameters
    ----------
    moving, fixed : np.ndarray
        The pair, shape ``spatial`` or ``(*spatial, 1)``, intensities as the
        model sees them (in [0, 1]).
    start : np.ndarray
        ``(*spatial, ndims)``, where to start: the network's flow output (a
        displacement field in voxels, or with ``int_steps > 0`` a stationary
        velocity field), or zeros to optimise from the identity.
    lam : float
        λ in [0, 1] of ``(1 − λ) · similarity + λ · smoothness``.
    iterations : int
        Adam steps in all; with two levels the first half run at half
        resolution. 0 returns the starting field (integrated, for a velocity).
    loss_config : LossConfig
        The similarity term and its scale, as in training.
    int_steps : int
        0: ``start`` is a displacement field and is optimised as one. ``> 0``:
        it is a velocity field, integrated by this many scaling-and-squaring
        steps (a diffeomorphic model's ``int_steps``), and the velocity is
        optimised.
    levels : int
        Resolution levels (each half the previous); levels whose grid would
        have a side under :data:`MIN_LEVEL_SIDE` voxels are skipped.
    learning_rate : float
        Adam's step size, in voxels.

    Returns
    -------
    np.ndarray
        The refined displacement field ``u``, float32 ``(*spatial, ndims)``,
        with ``moved(x) = moving(x + u(x))``.

    Raises
    ------
    ValueError
        For λ outside [0, 1], a negative or fractional ``iterations``, or
        arrays whose shapes do not fit together.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((16, 16), dtype="float32")
    >>> still = refine_field(image, image, np.zeros((16, 16, 2), "float32"), lam=0.5, iterations=5)
    >>> float(np.abs(still).max()) < 0.05      # the pair already matches: the field stays put
    True
    """
    lam = _scalar_lam(lam)
    iterations = check_refine(iterations)
    start = np.asarray(start, dtype=np.float32)
    shape = start.shape[:-1]
    ndims = len(shape)
    if ndims not in (2, 3) or start.shape[-1] != ndims:
        raise ValueError(f"start must be a field of shape (*spatial, ndims) for 2D or 3D images, got {start.shape}")
    moving, fixed = (_image_batch(image, name, shape) for image, name in ((moving, "moving"), (fixed, "fixed")))
    if int(levels) < 1:
        raise ValueError(f"levels must be >= 1, got {levels!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    int_steps = int(int_steps)
    plan = _level_plan(shape, int(levels), iterations)
    param = tf.constant(start[None])
    for factor, steps in plan:
        if steps == 0:
            continue
        level = _level(tuple(_coarse_shape(shape, factor)), loss_config, int_steps)
        level_moving, level_fixed = _downsample(moving, factor), _downsample(fixed, factor)
        level_start = _downsample(param, factor) / factor
        found = level.optimise(level_moving, level_fixed, level_start, lam, steps, learning_rate)
        param = param + _upsample((found - level_start) * factor, shape)
    return np.asarray(_level(tuple(shape), loss_config, int_steps).displacement(param).numpy()[0])


def warp_image(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``image`` warped by the displacement ``field`` as the networks warp (linear, edge values outside).

    Parameters
    ----------
    image : np.ndarray
        ``spatial`` or ``(*spatial, 1)``.
    field : np.ndarray
        ``(*spatial, ndims)``.

    Returns
    -------
    np.ndarray
        float32, shaped like ``image``.

    Examples
    --------
    >>> ramp = np.tile(np.arange(8, dtype="float32"), (8, 1))
    >>> shift = np.zeros((8, 8, 2), "float32"); shift[..., 1] = 1
    >>> warp_image(ramp, shift)[0, :4].tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    field = np.asarray(field, dtype=np.float32)
    shape = field.shape[:-1]
    batch = _image_batch(image, "image", shape)
    warped = _level(tuple(shape), LossConfig(), 0).warp([batch, tf.constant(field[None])])
    return np.asarray(warped.numpy()[0].reshape(np.shape(image)))


def refine_registration(model: tf.keras.Model, moving: np.ndarray, fixed: np.ndarray, *, lam: float | None,
                        iterations: int, fixed_affine: np.ndarray | None = None,
                        learning_rate: float = DEFAULT_LEARNING_RATE,
                        hyperparameters: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Register a prepared pair with ``model`` at λ, then refine the field for ``iterations`` steps.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model, or a baseline (refined at the λ it was trained at:
        its recorded λ, else :data:`hypermorph_nb.networks.description.DEFAULT_BASELINE_LAMBDA`).
    moving, fixed : np.ndarray
        Spatial arrays of the model's shape, intensities in [0, 1] (as
        :func:`hypermorph_nb.checks.inputs.prepare_pair` leaves them).
    lam : float or None
        λ of a HyperMorph model (None for a baseline).
    iterations : int
        See :func:`refine_field`.
    fixed_affine : np.ndarray, optional
        The fixed grid's affine, checked against the model's space
        (:func:`check_model_space`).
    learning_rate : float
        See :func:`refine_field`.
    hyperparameters : mapping of str to float, optional
        The model's other hyperparameters (``{'label_weight': 0.5}``): the network's field at
        all of them is the start. The refinement optimises the pair's image and smoothness terms
        at λ (a label term would need the fixed scan's labels, which registration does not have).

    Returns
    -------
    moved : np.ndarray
        ``moving`` warped by the refined field, float32, spatial.
    flow : np.ndarray
        The refined displacement field ``(*spatial, ndims)``.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], seed=0)
    >>> image = np.random.default_rng(0).random((32, 32), dtype="float32")
    >>> moved, flow = refine_registration(model, image, image, lam=0.5, iterations=4)
    >>> moved.shape, flow.shape
    ((32, 32), (32, 32, 2))
    """
    spec = spec_of(model)
    iterations = check_refine(iterations)
    if spec.is_hypermorph:
        if lam is None:
            raise ValueError("refining needs the λ of the loss to optimise: pass lam=<value in [0, 1]>")
        lam = _scalar_lam(lam)
    elif lam is not None:
        raise ValueError("this VoxelMorph baseline was trained at one fixed λ and takes no lam; it is "
                         "refined at that λ")
    else:
        lam = baseline_lambda(spec)
    check_model_space(spec, fixed_affine)
    training = spec.training
    config = LossConfig() if training is None else training.loss_config()
    diffeomorphic = bool(spec.options.get("diffeomorphic", False))
    int_steps = int(spec.options.get("int_steps", 7)) if diffeomorphic else 0
    hypers = None
    if spec.is_hypermorph:
        hypers = model_inputs(spec.hyperparameters, {"lam": lam, **(hyperparameters or {})}, batch=1)
    elif hyperparameters:
        raise ValueError(f"this VoxelMorph baseline takes no hyperparameters, got {sorted(hyperparameters)}")
    start = _network_flow(model, moving, fixed, hypers)
    field = refine_field(moving, fixed, start, lam=lam, iterations=iterations, loss_config=config,
                         int_steps=int_steps, learning_rate=learning_rate)
    return warp_image(np.asarray(moving, np.float32), field), field


def baseline_lambda(spec: Any) -> float:
    """The λ a VoxelMorph baseline was trained at: its recorded λ, else ``train``'s default.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> baseline_lambda(spec_of(hnb.build_vxm((16, 16), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]])))
    0.5
    """
    recorded = None if spec.training is None else spec.training.lam
    return float(DEFAULT_BASELINE_LAMBDA if recorded is None else recorded)


def check_model_space(spec: Any, fixed_affine: np.ndarray | None) -> None:
    """Refuse refining on a grid whose voxels differ from the model's space.

    The smoothness term is measured in voxels, so λ means what it meant in
    training only on voxels of the training grid's size and orientation. The
    position of the grid is free (each scan's header places it differently).
    Nothing is checked when the model records no space or the fixed affine is
    unknown; the shape is checked for every registration.

    Raises
    ------
    ValueError
        When the voxel sizes or the axis orientation differ.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.networks.description import ModelSpace
    >>> from hypermorph_nb.networks.models import describe
    >>> model = hnb.build_hypermorph((16, 16, 16), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]])
    >>> spec = describe(model, space=ModelSpace(shape=(16, 16, 16), affine=np.diag([2.0, 2, 2, 1])))
    >>> check_model_space(spec, np.diag([1.0, 1, 1, 1]))
    Traceback (most recent call last):
    ...
    ValueError: cannot refine on this pair: the model's space has voxels of (2.0, 2.0, 2.0) mm (RAS), the fixed image (1.0, 1.0, 1.0) mm (RAS); the loss is measured in voxels, so bring the pair onto the model's grid first (resample it to the model's voxel size and orientation)
    """
    space = spec.space
    if space is None or fixed_affine is None:
        return
    ndims = len(spec.inshape)
    fixed_affine = np.asarray(fixed_affine, dtype=np.float64)
    model_sizes = tuple(float(s) for s in np.round(voxel_sizes(space.affine[None], ndims)[0], 4))
    pair_sizes = tuple(float(s) for s in np.round(voxel_sizes(fixed_affine[None], ndims)[0], 4))
    model_axes, pair_axes = orientation(space.affine, ndims), orientation(fixed_affine, ndims)
    if not np.allclose(model_sizes, pair_sizes, rtol=0, atol=1e-3) or model_axes != pair_axes:
        raise ValueError(
            f"cannot refine on this pair: the model's space has voxels of {model_sizes} mm ({model_axes}), "
            f"the fixed image {pair_sizes} mm ({pair_axes}); the loss is measured in voxels, so bring the "
            "pair onto the model's grid first (resample it to the model's voxel size and orientation)")


def _scalar_lam(lam: ArrayLike) -> float:
    values = check_lambda(lam, name="lam").reshape(-1)
    if values.size != 1:
        raise ValueError(f"refining optimises one pair at one λ; got {values.size} λ values")
    return float(values[0])


def _image_batch(image: ArrayLike, name: str, shape: Sequence[int]) -> tf.Tensor:
    array = np.asarray(image, dtype=np.float32)
    if array.shape == (*shape, 1):
        array = array[..., 0]
    if array.shape != tuple(shape):
        raise ValueError(f"the {name} image has shape {np.shape(image)}, the field {tuple(shape)}; "
                         "give images and a field on the same grid")
    return tf.constant(array[None, ..., None])


def _network_flow(model: tf.keras.Model, moving: ArrayLike, fixed: ArrayLike,
                  hypers: np.ndarray | None) -> np.ndarray:
    """The network's flow output (displacement, or a diffeomorphic model's velocity) for one pair."""
    inputs = [np.asarray(moving, np.float32)[None, ..., None], np.asarray(fixed, np.float32)[None, ..., None]]
    if hypers is not None:
        inputs.append(hypers)
    outputs = model([tf.constant(x) for x in inputs], training=False)
    return np.asarray(outputs[1].numpy()[0])


def _level_plan(shape: Sequence[int], levels: int, iterations: int) -> list[tuple[int, int]]:
    """``[(factor, iterations), ...]`` from the coarsest level to full resolution."""
    factors = [2 ** k for k in range(levels)
               if min(_coarse_shape(shape, 2 ** k)) >= MIN_LEVEL_SIDE or k == 0][::-1]
    coarse = iterations // len(factors)
    return [(factor, coarse) for factor in factors[:-1]] + [(1, iterations - coarse * (len(factors) - 1))]


def _coarse_shape(shape: Sequence[int], factor: int) -> list[int]:
    return [-(-int(side) // factor) for side in shape]


def _downsample(tensor: tf.Tensor, factor: int) -> tf.Tensor:
    """Average over ``factor``-sided blocks (partial blocks at the far edges average what they hold)."""
    if factor == 1:
        return tensor
    return tf.nn.avg_pool(tensor, factor, factor, "SAME")


def _upsample(tensor: tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
    """Double every spatial axis until ``shape`` is reached (linear, cell-centred, edges clamped)."""
    while tuple(tensor.shape[1:-1]) != tuple(shape):
        for axis in range(1, len(shape) + 1):
            size = min(2 * int(tensor.shape[axis]), int(shape[axis - 1]))
            tensor = _double_axis(tensor, axis, size)
    return tensor


def _double_axis(tensor: tf.Tensor, axis: int, size: int) -> tf.Tensor:
    count = int(tensor.shape[axis])
    before = tf.gather(tensor, np.maximum(np.arange(count) - 1, 0), axis=axis)
    after = tf.gather(tensor, np.minimum(np.arange(count) + 1, count - 1), axis=axis)
    pairs = tf.stack([0.75 * tensor + 0.25 * before, 0.75 * tensor + 0.25 * after], axis=axis + 1)
    merged_shape = [-1 if i == 0 else int(d) for i, d in enumerate(tensor.shape)]
    merged_shape[axis] = 2 * count
    merged = tf.reshape(pairs, merged_shape)
    return tf.gather(merged, np.arange(size), axis=axis)


def _level(shape: tuple[int, ...], config: LossConfig, int_steps: int) -> _Level:
    key = (shape, config, int_steps)
    level = _LEVEL_CACHE.get(key)
    if level is None:
        level = _LEVEL_CACHE[key] = _Level(shape, config, int_steps)
    return level


class _Level:
    """The compiled optimisation loop for one grid shape, loss configuration and parametrisation."""

    def __init__(self, shape: tuple[int, ...], config: LossConfig, int_steps: int) -> None:
        self.warp = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij", fill_value=None)
        self.integrate = vxm.layers.VecInt(method="ss", int_steps=int_steps) if int_steps else None
        voxels = float(np.prod(shape))
        image = tf.TensorSpec([1, *shape, 1], tf.float32)
        field = tf.TensorSpec([1, *shape, len(shape)], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)

        def loss(param: tf.Tensor, moving: tf.Tensor, fixed: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
            moved = self.warp([moving, self.displacement(param)])
            return weighted_terms(fixed, moved, param, lam, config)["total"][0] * voxels

        def step(t: tf.Tensor, param: tf.Tensor, m: tf.Tensor, v: tf.Tensor, moving: tf.Tensor,
                 fixed: tf.Tensor, lam: tf.Tensor,
                 rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(param)
                value = loss(param, moving, fixed, lam)
            grad = tape.gradient(value, param)
            t = t + 1.0
            m = _BETA1 * m + (1.0 - _BETA1) * grad
            v = _BETA2 * v + (1.0 - _BETA2) * tf.square(grad)
            corrected = rate * tf.sqrt(1.0 - _BETA2 ** t) / (1.0 - _BETA1 ** t)
            return t, param - corrected * m / (tf.sqrt(v) + _EPSILON), m, v

        @tf.function(input_signature=[image, image, field, scalar, tf.TensorSpec([], tf.int32), scalar])
        def optimise(moving: tf.Tensor, fixed: tf.Tensor, start: tf.Tensor, lam: tf.Tensor,
                     iterations: tf.Tensor, rate: tf.Tensor) -> tf.Tensor:
            zeros = tf.zeros_like(start)
            _, param, _, _ = tf.while_loop(
                lambda t, *_: t < tf.cast(iterations, tf.float32),
                lambda t, param, m, v: step(t, param, m, v, moving, fixed, lam, rate),
                [tf.constant(0.0), start, zeros, zeros])
            return param

        self._optimise = optimise

    def displacement(self, param: tf.Tensor) -> tf.Tensor:
        return param if self.integrate is None else self.integrate(param)

    def optimise(self, moving: tf.Tensor, fixed: tf.Tensor, start: tf.Tensor, lam: float, iterations: int,
                 rate: float) -> tf.Tensor:
        return self._optimise(moving, fixed, start, tf.constant(lam, tf.float32),
                              tf.constant(iterations, tf.int32), tf.constant(rate, tf.float32))
