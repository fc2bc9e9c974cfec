"""Build the two registration models: a VoxelMorph baseline and HyperMorph.

Both are voxelmorph 0.2 ``VxmDense`` networks (a U-Net that predicts a dense
displacement field, followed by a spatial transformer). HyperMorph adds a small
dense *hypernetwork* that maps λ to the U-Net's convolution weights, so one
model covers every λ in [0, 1].

Every model built here carries a :class:`ModelSpec` (``model.hypermorph_spec``)
from which :func:`hypermorph_nb.load_model` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dataclasses

import numpy as np
import tensorflow as tf

from ..runtime.compat import import_registration_libraries
from .description import ModelSpace, TrainingRecord
from .hyperparameters import LAMBDA_ONLY, Hyperparameter, resolve
from .padding import MIN_SIDE, padded_shape, pooling_multiple, wrap_padded
from .resolution import coarse_shape, wrap_downsampled

ne, vxm = import_registration_libraries()

# conditioning.py and hyperconv.py use neurite/voxelmorph as imported just above
from .hyperconv import fast_hyperconvs, fix_hyperconv_initialisation, hyperconv_layers  # noqa: E402
from .conditioning import (FILM_UNITS, build_film_vxm, build_hypernetwork,  # noqa: E402
                           check_conditioning, check_units, init_residual_hyperconvs)

#: The seed tutorial's hypernetwork: four Dense layers with ReLU.
TUTORIAL_HYPER_UNITS = (32, 64, 128, 128)

KINDS = ("vxm", "hypermorph")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything a model knows about itself (saved as JSON beside its weights).

    Attributes
    ----------
    kind : {'vxm', 'hypermorph'}
        Baseline VoxelMorph (fixed λ at training time) or HyperMorph (λ input).
    inshape : tuple of int
        Spatial shape of the images, e.g. ``(160, 192)``.
    options : dict
        Keyword options given to the builder (JSON-serialisable).
    training : TrainingRecord or None
        How the model was trained (loss, σ, λ sampling); None before :func:`hypermorph_nb.train`.
    space : ModelSpace or None
        The grid and reference image of its training data; None when they had no affine.
    """

    kind: str
    inshape: tuple
    options: dict
    training: TrainingRecord | None = None
    space: ModelSpace | None = None

    @property
    def is_hypermorph(self) -> bool:
        """True when the model takes λ as a third input."""
        return self.kind == "hypermorph"

    @property
    def conditioning(self) -> str | None:
        """How λ reaches the U-Net: ``'hypernetwork'``, ``'film'``, or None for a baseline."""
        if not self.is_hypermorph:
            return None
        return self.options.get("conditioning", "hypernetwork")

    @property
    def hyperparameters(self) -> tuple[Hyperparameter, ...]:
        """What the model is conditioned on, in input order: λ alone unless built with more; none for a baseline."""
        if not self.is_hypermorph:
            return ()
        entries = self.options.get("hyperparameters")
        return LAMBDA_ONLY if entries is None else resolve(entries)

    @property
    def downsample(self) -> int:
        """Block size of the images the U-Net sees (1: the images' own resolution)."""
        return int(self.options.get("downsample", 1))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (the space's images are saved separately)."""
        config = {"kind": self.kind, "inshape": list(self.inshape), "options": dict(self.options)}
        if self.training is not None:
            config["training"] = self.training.to_json()
        if self.space is not None:
            config["space"] = self.space.to_json()
        return config

    @classmethod
    def from_json(cls, config: Any, *, space_images: Mapping[str, np.ndarray] | None = None) -> ModelSpec:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on a malformed dict.

        ``space_images`` maps ``'reference'`` / ``'reference_mask'`` to the arrays saved
        beside the config.
        """
        try:
            kind, inshape, options = config["kind"], config["inshape"], config.get("options", {})
        except (KeyError, TypeError) as err:
            raise ValueError(f"model config needs 'kind' and 'inshape', got {config!r}") from err
        if kind not in KINDS:
            raise ValueError(f"model config kind must be one of {KINDS}, got {kind!r}")
        training = config.get("training")
        space = config.get("space")
        if space is not None:
            images = space_images or {}
            space = ModelSpace(shape=space["shape"], affine=space["affine"],
                               reference=images.get("reference"),
                               reference_mask=images.get("reference_mask"))
        return cls(kind=kind, inshape=tuple(int(d) for d in inshape), options=dict(options),
                   training=None if training is None else TrainingRecord.from_json(training),
                   space=space)


def build_vxm(inshape: Sequence[int], *, nb_features: Sequence[Sequence[int]] | None = None,
              diffeomorphic: bool = False, int_steps: int = 7, downsample: int = 1,
              seed: int | None = None) -> tf.keras.Model:
    """Build the VoxelMorph baseline (the seed tutorial's first model).

    Parameters
    ----------
    inshape : tuple of int
        Spatial image shape (2D or 3D), any size with sides of at least 8.
        The U-Net pools once per encoder level (four by default), so sides
        that are not multiples of 16 (``2 ** levels``) are zero-padded inside
        the model and its outputs cropped back
        (:mod:`hypermorph_nb.networks.padding`): inputs and outputs have this shape.
    nb_features : list of two lists of int, optional
        U-Net encoder and decoder features; voxelmorph's default
        ``[[16, 32, 32, 32], [32, 32, 32, 32, 32, 16, 16]]`` when None.
    diffeomorphic : bool
        If False (the tutorial's ``int_steps=0``), the network predicts a
        displacement field. If True, it predicts a stationary velocity field
        integrated by scaling and squaring into a diffeomorphic warp.
    int_steps : int
        Scaling-and-squaring steps, used only when ``diffeomorphic``.
    downsample : int
        1 (default): the U-Net sees the images at their resolution. ``f > 1``: it
        sees them averaged over ``f``-voxel blocks and predicts its field there; the
        field is upsampled to the image grid and the moved image warped at full
        resolution (:mod:`hypermorph_nb.networks.resolution`), about ``f ** ndim``
        times cheaper. 2 is what the 3D recipe uses.
    seed : int, optional
        Seeds TensorFlow's global RNG before the weights are created, for a
        reproducible initialisation.

    Returns
    -------
    tf.keras.Model
        Inputs ``[moving, fixed]``, outputs ``[moved, flow]``.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.build_vxm((64, 64), seed=0)
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 64, 64, 1), (None, 64, 64, 2)]
    """
    options = _vxm_options(nb_features, diffeomorphic, int_steps, seed, downsample)
    return _build(ModelSpec("vxm", _check_inshape(inshape), options))


def build_hypermorph(inshape: Sequence[int], *, conditioning: str = "hypernetwork", hyper_encoding: str = "mip",
                     hyper_units: Sequence[int] = TUTORIAL_HYPER_UNITS, film_units: Sequence[int] = FILM_UNITS,
                     nb_features: Sequence[Sequence[int]] | None = None, diffeomorphic: bool = False,
                     int_steps: int = 7, downsample: int = 1, seed: int | None = None,
                     hyperparameters: Sequence[str | Hyperparameter] = ("lam",)) -> tf.keras.Model:
    """Build HyperMorph: a VoxelMorph U-Net whose weights come from λ (and other loss hyperparameters).

    A dense hypernetwork (the tutorial's 32-64-128-128 by default, the same
    design as ``vxm.networks.HyperVxmDense``) maps λ to every U-Net convolution
    kernel and bias. After building, the generated weights are re-initialised
    so that the U-Net starts like a plain VoxelMorph network (see
    :func:`hypermorph_nb.networks.hyperconv.fix_hyperconv_initialisation`); without that, HyperMorph barely
    learns.

    Parameters
    ----------
    inshape : tuple of int
        Spatial image shape (2D or 3D), any size (padded inside the model as in
        :func:`build_vxm`).
    conditioning : {'hypernetwork', 'film'}
        ``'hypernetwork'``: HyperMorph, λ generates every U-Net weight.
        ``'film'``: a plain U-Net whose features are scaled and shifted per
        channel by a small MLP of λ (:func:`hypermorph_nb.networks.conditioning.build_film_vxm`).
    hyper_encoding : {'mip', 'tutorial'}
        Hypernetwork only. ``'mip'`` (default): λ enters as ``[λ, 1 − λ]`` and
        generated weights are residuals around a learned base (the
        magnitude-invariant parametrisation, :mod:`hypermorph_nb.networks.conditioning`),
        so every λ, small ones included, reaches the U-Net from the first step.
        ``'tutorial'``: the seed tutorial's raw λ input; models saved before
        this option existed load so.
    hyper_units : sequence of int
        Units of the hypernetwork's Dense layers (ReLU).
    film_units : sequence of int
        FiLM only: hidden units of the λ-MLP.
    nb_features, diffeomorphic, int_steps, downsample, seed
        As in :func:`build_vxm`.
    hyperparameters : sequence of str or Hyperparameter
        What the model is conditioned on (:mod:`hypermorph_nb.networks.hyperparameters`):
        ``("lam",)`` (default) or e.g. ``("lam", "label_weight")``, λ and the label term's
        weight γ, learned together; training then needs label maps. Both conditionings take
        any number.

    Returns
    -------
    tf.keras.Model
        Inputs ``[moving, fixed, lam]`` (``lam`` of shape ``(batch, k)``: one row of the
        ``k`` hyperparameters per sample, each rescaled to [0, 1] over its range), outputs
        ``[moved, flow]``.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.build_hypermorph((64, 64), seed=0)
    >>> [tuple(t.shape) for t in model.inputs]
    [(None, 64, 64, 1), (None, 64, 64, 1), (None, 1)]
    >>> both = hnb.build_hypermorph((64, 64), hyperparameters=("lam", "label_weight"), seed=0)
    >>> tuple(both.inputs[2].shape), [h.name for h in hnb.networks.spec_of(both).hyperparameters]
    ((None, 2), ['lam', 'label_weight'])
    """
    check_conditioning(conditioning, hyper_encoding)
    hypers = resolve(hyperparameters)
    options = _vxm_options(nb_features, diffeomorphic, int_steps, seed, downsample)
    if conditioning == "film":
        options.update(conditioning="film", film_units=check_units(film_units, "film_units"))
    else:
        options.update(hyper_units=check_units(hyper_units, "hyper_units"), hyper_encoding=hyper_encoding)
    if hypers != LAMBDA_ONLY:  # absent from λ-only models, so that their saved configs stay as they were
        options["hyperparameters"] = [h.to_json() for h in hypers]
    return _build(ModelSpec("hypermorph", _check_inshape(inshape), options))


def build_from_spec(spec: ModelSpec) -> tf.keras.Model:
    """Rebuild a model from a :class:`ModelSpec` (weights freshly initialised)."""
    _check_inshape(spec.inshape)
    return _build(spec)


def spec_of(model: tf.keras.Model) -> ModelSpec:
    """Return the :class:`ModelSpec` of a model built by this package.

    Raises
    ------
    TypeError
        If ``model`` was not made by :func:`build_vxm`, :func:`build_hypermorph`
        or :func:`hypermorph_nb.load_model`.
    """
    spec = getattr(model, "hypermorph_spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(
            f"{type(model).__name__} was not built by hypermorph_nb; create models with "
            "hypermorph_nb.build_vxm(...), hypermorph_nb.build_hypermorph(...) or "
            "hypermorph_nb.load_model(path)."
        )
    return spec


def coarse_network(model: tf.keras.Model) -> tf.keras.Model:
    """The network a ``downsample=f`` model runs on its coarse grid; ``model`` itself without one.

    It shares its weights with ``model`` (training one trains the other) and is a model of
    this package at :func:`~hypermorph_nb.networks.resolution.coarse_shape` ``(inshape, f)``.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> model = hnb.build_vxm((20, 24), nb_features=[[8, 8, 8], [8, 8, 8, 8, 8]], downsample=2, seed=0)
    >>> core = coarse_network(model)
    >>> spec_of(core).inshape, "downsample" in spec_of(core).options, core.weights[0] is model.weights[0]
    ((10, 12), False, True)
    """
    return model.references.core if spec_of(model).downsample > 1 else model


def describe(model: tf.keras.Model, *, training: TrainingRecord | None = None, space: ModelSpace | None = None) -> ModelSpec:
    """Record how ``model`` was trained and/or the space it works in; return the new spec.

    Examples
    --------
    >>> import hypermorph_nb as hnb, numpy as np
    >>> from hypermorph_nb.networks.description import ModelSpace
    >>> model = hnb.build_hypermorph((16, 16, 16), seed=0)
    >>> describe(model, space=ModelSpace(shape=(16, 16, 16), affine=np.diag([2., 2., 2., 1.]))).space.voxel_size
    (2.0, 2.0, 2.0)
    """
    spec = spec_of(model)
    changes: dict[str, Any] = {}
    if training is not None:
        changes["training"] = training
    if space is not None:
        if tuple(space.shape) != tuple(spec.inshape):
            raise ValueError(f"the space's grid {tuple(space.shape)} is not the model's input shape "
                             f"{tuple(spec.inshape)}")
        changes["space"] = space
    spec = dataclasses.replace(spec, **changes)
    model.hypermorph_spec = spec
    return spec


def _vxm_options(nb_features, diffeomorphic, int_steps, seed, downsample: int = 1):
    if nb_features is not None:
        try:
            nb_features = [[int(f) for f in level] for level in nb_features]
        except TypeError as err:
            raise ValueError(
                "nb_features must be two lists of ints ([[encoder], [decoder]]), "
                f"got {nb_features!r}"
            ) from err
        if len(nb_features) != 2:
            raise ValueError(f"nb_features must be [[encoder], [decoder]], got {nb_features!r}")
    if int(int_steps) < 1 and diffeomorphic:
        raise ValueError("a diffeomorphic model needs int_steps >= 1")
    options = {
        "nb_features": nb_features,
        "diffeomorphic": bool(diffeomorphic),
        "int_steps": int(int_steps),
        "seed": seed,
    }
    if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1:
        raise ValueError(f"downsample must be a whole number >= 1 (1: the U-Net at the images' resolution, "
                         f"2: at half of it), got {downsample!r}")
    if downsample > 1:  # absent from models without it, so that their saved configs stay as they were
        options["downsample"] = int(downsample)
    return options


def _check_inshape(inshape):
    try:
        shape = tuple(int(d) for d in inshape)
    except (TypeError, ValueError) as err:
        raise ValueError(f"inshape must be a tuple like (160, 192), got {inshape!r}") from err
    if len(shape) not in (2, 3):
        raise ValueError(
            f"inshape must be 2D or 3D spatial (no batch or channel axis), got {shape}; "
            "for images of shape (N, H, W, 1) pass images.shape[1:3], or data.shape"
        )
    if min(shape) < MIN_SIDE:
        raise ValueError(
            f"each side of inshape must be at least {MIN_SIDE} voxels, got {shape}; a short side is "
            "usually a channel or slice axis: pass the spatial shape only (data.shape), or "
            "resample the images to a larger grid"
        )
    return shape


def _build(spec):
    """The model of ``spec``: built at its (coarse) shape, or at the next poolable one and wrapped."""
    factor = spec.downsample
    shape = coarse_shape(spec.inshape, factor)
    if min(shape) < MIN_SIDE:
        raise ValueError(f"downsample={factor} leaves the U-Net a grid of {shape}, under {MIN_SIDE} voxels "
                         f"a side; use a smaller downsample for images of {spec.inshape}")
    core_shape = padded_shape(shape, pooling_multiple(spec.options.get("nb_features")))
    model = _build_core(spec, core_shape)
    if core_shape != shape:
        model = wrap_padded(model, shape)
    if factor > 1:   # the inner network is itself a model of this package, at the coarse grid
        model.hypermorph_spec = ModelSpec(spec.kind, shape, {k: v for k, v in spec.options.items()
                                                             if k != "downsample"})
        model = wrap_downsampled(model, spec.inshape, factor)
    model.hypermorph_spec = spec
    return model


def _build_core(spec, inshape):
    """The network of ``spec`` built at ``inshape``, a shape the U-Net can pool."""
    options = spec.options
    if options.get("seed") is not None:
        tf.keras.utils.set_random_seed(int(options["seed"]))
    diffeomorphic = options.get("diffeomorphic", False)
    inputs = len(spec.hyperparameters)
    if spec.is_hypermorph and options.get("conditioning") == "film":
        return build_film_vxm(inshape, nb_features=options.get("nb_features"),
                              int_steps=options.get("int_steps", 7) if diffeomorphic else 0,
                              film_units=options["film_units"], hyper_inputs=inputs, name="hypermorph_film")
    hyp_model = None
    # models saved before hyper_encoding existed have the tutorial's raw-λ input
    encoding = options.get("hyper_encoding", "tutorial")
    if spec.is_hypermorph:
        hyp_model = build_hypernetwork(options["hyper_units"], encoding=encoding, inputs=inputs)
    with fast_hyperconvs():  # the hyper-convolutions without neurite's per-sample loop
        model = vxm.networks.VxmDense(
            inshape,
            nb_unet_features=options.get("nb_features"),
            int_steps=options.get("int_steps", 7) if diffeomorphic else 0,
            # integrate at full resolution, so that the flow output keeps the image shape
            int_resolution=1,
            hyp_model=hyp_model,
            name="hypermorph" if spec.is_hypermorph else "vxm",
        )
    if spec.is_hypermorph:
        fix_hyperconv_initialisation(model, seed=options.get("seed"))
        if encoding == "mip":
            init_residual_hyperconvs(hyperconv_layers(model), hyp_model)
    return model


def count_parameters(model: tf.keras.Model) -> int:
    """Number of trainable parameters (for reports)."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def require_hypermorph(model: tf.keras.Model, what: str) -> ModelSpec:
    """Return the model's spec; raise a clear error unless it takes λ (HyperMorph or FiLM, 2D or 3D).

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> vxm = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]])
    >>> require_hypermorph(vxm, "the explorer")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the explorer needs a HyperMorph model (λ is its input); ...
    """
    spec = spec_of(model)
    if not spec.is_hypermorph:
        raise ValueError(f"{what} needs a HyperMorph model (λ is its input); this VoxelMorph "
                         "baseline was trained at one fixed λ: build one with "
                         "hypermorph_nb.build_hypermorph")
    return spec
