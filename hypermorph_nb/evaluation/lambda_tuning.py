"""Choose λ by gradient: test-time tuning of a trained λ-conditioned model.

With the network frozen, λ in [0, 1] is tuned on validation pairs for a
differentiable objective: the soft Dice of warped one-hot label maps (mean over
structures, or one structure), or, without label maps, an image term (MSE or
NCC) plus a folding penalty. λ enters the model as an input, so the objective's
derivative in λ comes from one backward pass. The search probes the uphill end
of [0, 1] (an optimum may lie at λ = 0 or 1), otherwise brackets the zero of the
derivative and closes in on it by safeguarded secant steps, which needs far
fewer registrations than a fine λ grid.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from ..checks.arrays import check_count
from ..checks.pairs import resolve_pairs
from ..data.dataset import as_dataset
from .sweeps import labels_of, label_presence
from ..networks.description import resolve_image_loss
from ..networks.models import spec_of, vxm
from ..registration.pairs import Registrar
from ..metrics import determinant_of_gradients
from .results import label_index

if TYPE_CHECKING:
    from ..data.dataset import Dataset

@dataclasses.dataclass
class LambdaSearch:
    """Result of :func:`optimize_lambda`.

    Attributes
    ----------
    lam : float
        The best λ found (highest Dice, or lowest image objective).
    value : float
        The objective at ``lam``: soft Dice (higher is better) or image loss
        (lower is better).
    trace : list of (float, float)
        ``(λ, objective)`` at every evaluation, in order.
    model_calls : int
        Registrations run (evaluations × pairs), each with a backward pass.
    objective : str
        ``'dice'`` or ``'image'``.
    label : int or None
        The structure tuned for (None: the mean over structures).
    pairs : np.ndarray
        ``(P, 2)`` (moving, fixed) indices used.
    """

    lam: float
    value: float
    trace: list[tuple[float, float]]
    model_calls: int
    objective: str
    label: object
    pairs: np.ndarray

    @property
    def lams(self) -> np.ndarray:
        """λ of every evaluation."""
        return np.array([lam for lam, _ in self.trace])


def optimize_lambda(model: tf.keras.Model, data: Dataset | np.ndarray, *,
                    pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                    label: int | str | None = None, objective: str = "dice", steps: int = 12,
                    init_lam: float = 0.5, tol: float = 0.01, image_loss: str | None = None,
                    folding_weight: float = 1.0, batch_size: int = 8) -> LambdaSearch:
    """Tune λ of a trained HyperMorph (or FiLM) model by gradient on validation pairs.

    Parameters
    ----------
    model : tf.keras.Model
        A λ-conditioned model from :func:`hypermorph_nb.build_hypermorph`; it is not changed.
    data : Dataset or array_like
        Validation data, a Dataset with label maps for ``objective='dice'`` (arrays as
        :func:`hypermorph_nb.data.as_dataset` takes them).
    pairs : array_like, optional
        ``(P, 2)`` (moving, fixed) indices; default ``n_pairs`` random pairs
        chosen as :func:`hypermorph_nb.lambda_sweep` does (same ``seed``, same pairs).
    n_pairs, seed : int
    label : int or str, optional
        Tune for one structure (label value or name); default the mean Dice
        over structures present in both images of a pair.
    objective : {'dice', 'image'}
        ``'dice'``: maximise the soft Dice of the moving one-hot label maps,
        warped linearly, against the fixed ones. ``'image'``: minimise
        ``image_loss`` + ``folding_weight`` × mean(relu(−det J)), with det J
        defined as in :func:`hypermorph_nb.metrics.jacobian_determinant`
        (the folding the sweeps report).
    steps : int
        Most objective evaluations (each registers every pair once, with gradient).
    init_lam : float
        Starting λ in (0, 1).
    tol : float
        Stop once the bracket around the optimum is narrower than ``tol`` in λ.
    image_loss : {'mse', 'ncc'}, optional
        The image term of ``objective='image'``; by default the one the model was trained
        with (its saved :class:`~hypermorph_nb.networks.description.TrainingRecord`), else
        'mse'. Another one than the model's own warns.
    folding_weight : float
    batch_size : int
        Pairs per model call (gradients are summed over batches).

    Returns
    -------
    LambdaSearch

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> found = hnb.optimize_lambda(model, data, n_pairs=2, steps=3)
    >>> 0 <= found.lam <= 1, len(found.trace) <= 3, found.model_calls == 2 * len(found.trace)
    (True, True, True)
    """
    if not spec_of(model).is_hypermorph:
        raise ValueError("optimize_lambda needs a λ-conditioned model (build_hypermorph); a "
                         "VoxelMorph baseline was trained at one fixed λ")
    data = as_dataset(data, inshape=spec_of(model).inshape)
    if objective not in ("dice", "image"):
        raise ValueError(f"objective must be 'dice' or 'image', got {objective!r}")
    image_loss = resolve_image_loss(spec_of(model).training, image_loss)
    if image_loss not in ("mse", "ncc"):
        raise ValueError(f"image_loss must be 'mse' or 'ncc', got {image_loss!r}")
    if not 0 < float(init_lam) < 1:
        raise ValueError(f"init_lam must lie strictly between 0 and 1, got {init_lam!r}")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    pairs = resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    target: _DiceTarget | _ImageTarget
    if objective == "dice":
        if not data.has_labels:
            raise ValueError("objective='dice' needs label maps; this data has none. Use "
                             "objective='image' (image term with a folding penalty) instead")
        target = _DiceTarget(data, pairs, label)
        label = target.label
    else:
        if label is not None:
            raise ValueError("label applies to objective='dice' only")
        target = _ImageTarget(data, pairs, image_loss, float(folding_weight))
    evaluate = _Evaluator(model, target, batch_size)
    search = _search(evaluate, float(init_lam), steps, tol)
    sign = 1.0 if objective == "dice" else -1.0
    trace = [(float(lam), sign * score) for lam, score in search]
    best = int(np.argmax([score for _, score in search]))
    return LambdaSearch(lam=trace[best][0], value=trace[best][1], trace=trace,
                        model_calls=len(trace) * len(pairs), objective=objective, label=label,
                        pairs=pairs)


def _search(evaluate, lam0, steps, tol):
    """Maximise a score of λ on [0, 1] in at most ``steps`` evaluations; return [(λ, score), ...].

    From ``lam0`` the slope says which end of [0, 1] lies uphill; that end is
    probed next. If the slope there still points out of the range, the
    optimum is that end (a boundary optimum, e.g. λ = 0 when any smoothing
    costs overlap). Otherwise the derivative changes sign between ``lam0`` and
    the end, and the bracket shrinks by a secant step on the derivative, or
    the midpoint when the secant point falls near an end of the bracket or the
    same end moved twice in a row (Illinois-like safeguard).
    """
    trace = []

    def probe(lam):
        score, slope = evaluate(lam)
        trace.append((lam, score))
        return slope

    g0 = probe(lam0)
    if g0 == 0 or steps < 2:
        return trace
    end = 1.0 if g0 > 0 else 0.0
    g_end = probe(end)
    if g_end == 0 or np.sign(g_end) == np.sign(g0):
        return trace  # still uphill at the end of the range: the optimum is that end
    (lo, g_lo), (hi, g_hi) = sorted([(lam0, g0), (end, g_end)])  # g_lo > 0 > g_hi
    last_side, bisect = None, False
    while len(trace) < steps and hi - lo > tol:
        width = hi - lo
        c = lo + width * g_lo / (g_lo - g_hi)  # zero of the derivative's secant
        if bisect or not lo + 0.1 * width <= c <= hi - 0.1 * width:
            c = lo + width / 2
        gc = probe(c)
        if gc == 0:
            break
        side = gc > 0
        bisect, last_side = side == last_side, side
        if side:
            lo, g_lo = c, gc
        else:
            hi, g_hi = c, gc
    return trace


class _Evaluator:
    """Score and d(score)/dλ summed over all pairs, in batches, with the model frozen."""

    def __init__(self, model, target, batch_size) -> None:
        self.target, self.batch_size = target, batch_size
        self._step = _step_function(model, target.kind)

    def __call__(self, lam):
        total, slope = 0.0, 0.0
        for moving, fixed, *extras in self.target.batches(self.batch_size):
            score, grad = self._step(tf.constant(lam, tf.float32), moving, fixed, tuple(extras))
            total, slope = total + float(score), slope + float(grad)
        return total, slope


def _step_function(model, kind):
    """The compiled (score, d score / dλ) of one batch, cached per model and objective.

    ``kind`` is (objective, number of label channels or None, *static score arguments).
    """
    cache = _STEPS.setdefault(model, {})
    if kind not in cache:
        inference = Registrar.for_model(model).inference  # outputs [moved, displacement]
        score, static = _SCORES[kind[0]], kind[2:]
        warper = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij", fill_value=0.0)

        def step(lam, moving, fixed, extras):
            with tf.GradientTape() as tape:
                tape.watch(lam)
                moved, flow = inference([moving, fixed, tf.fill([tf.shape(moving)[0], 1], lam)],
                                        training=False)
                value = score(moved, flow, fixed, warper, *static, *extras)
            return value, tape.gradient(value, lam)

        cache[kind] = tf.function(step, reduce_retracing=True)
    return cache[kind]


_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _DiceTarget:
    """Soft Dice of linearly warped one-hot label maps, weighted like the sweep's means."""

    def __init__(self, data, pairs, label):
        labels = labels_of(data, None)
        self.label: int | None
        if label is not None:
            labels = labels[[label_index(labels, label, data.label_names)]]
            self.label = int(labels[0])
        else:
            self.label = None
        present = label_presence(data, pairs, labels).astype(np.float64)  # (P, K)
        if label is not None:
            if not present.any():
                raise ValueError(f"no pair has structure {label!r} in both its moving and fixed "
                                 "label maps; use more pairs (n_pairs) or another structure")
            weights = present / present.sum()  # mean over the pairs that have it
        else:
            per_pair = present.sum(axis=1, keepdims=True)
            scored = per_pair[:, 0] > 0
            if not scored.any():
                raise ValueError("no pair shares a structure between its moving and fixed label "
                                 "maps; use more pairs (n_pairs)")
            weights = np.where(per_pair > 0, present / np.maximum(per_pair, 1), 0) / scored.sum()
        self.data, self.pairs, self.labels = data, pairs, labels
        self.weights = weights.astype(np.float32)
        # the compiled step is cached per kind: its spatial transformer is built for K channels
        self.kind = ("dice", len(labels))

    def batches(self, size):
        for start in range(0, len(self.pairs), size):
            chunk = self.pairs[start:start + size]
            yield (self.data.images[chunk[:, 0]], self.data.images[chunk[:, 1]],
                   self._one_hot(self.data.labels[chunk[:, 0]]),
                   self._one_hot(self.data.labels[chunk[:, 1]]), self.weights[start:start + size])

    def _one_hot(self, maps):
        return (maps[..., None] == self.labels).astype(np.float32)


def _dice_score(moved, flow, fixed, warper, moving_maps, fixed_maps, weights):
    """Weighted sum over pairs and structures of the soft Dice of warped one-hot maps."""
    warped = warper([moving_maps, flow])
    axes = list(range(1, len(moving_maps.shape) - 1))
    overlap = tf.reduce_sum(warped * fixed_maps, axis=axes)
    size = tf.reduce_sum(warped, axis=axes) + tf.reduce_sum(fixed_maps, axis=axes)
    return tf.reduce_sum(weights * 2.0 * overlap / tf.maximum(size, 1e-6))


class _ImageTarget:
    """Minus (image term + folding_weight × mean relu(−det J)), averaged over pairs."""

    def __init__(self, data, pairs, image_loss, folding_weight) -> None:
        self.data, self.pairs = data, pairs
        self.kind = ("image", None, image_loss)
        self.weight = np.float32(folding_weight)

    def batches(self, size):
        for start in range(0, len(self.pairs), size):
            chunk = self.pairs[start:start + size]
            yield (self.data.images[chunk[:, 0]], self.data.images[chunk[:, 1]],
                   np.float32(1.0 / len(self.pairs)), self.weight)


def _image_score(moved, flow, fixed, warper, image_loss, pair_weight, folding_weight):
    axes = list(range(1, len(moved.shape)))
    if image_loss == "mse":
        image = tf.reduce_mean(tf.square(moved - fixed), axis=axes)
    else:
        a = moved - tf.reduce_mean(moved, axis=axes, keepdims=True)
        b = fixed - tf.reduce_mean(fixed, axis=axes, keepdims=True)
        ncc = tf.reduce_sum(a * b, axis=axes) / tf.sqrt(
            tf.reduce_sum(a * a, axis=axes) * tf.reduce_sum(b * b, axis=axes) + 1e-8)
        image = 1.0 - ncc
    return -pair_weight * tf.reduce_sum(image + folding_weight * _folding_penalty(flow))


def _folding_penalty(flow):
    """Mean of relu(−det J) per field of a ``(B, *spatial, ndims)`` batch: 0 where nothing folds."""
    return tf.reduce_mean(tf.nn.relu(-_jacobian_determinant(flow)),
                          axis=list(range(1, len(flow.shape) - 1)))


_SCORES = {"dice": _dice_score, "image": _image_score}


def _jacobian_determinant(flow):
    """:func:`~hypermorph_nb.metrics.jacobian_determinant` of ``(B, *spatial, ndims)`` fields, differentiable.

    The same definition in TensorFlow: central differences, one-sided at the
    border (``np.gradient``), and the same determinant formula
    (:func:`~hypermorph_nb.metrics.determinant_of_gradients`).

    Examples
    --------
    >>> float(tf.reduce_max(tf.abs(_jacobian_determinant(tf.zeros((1, 5, 5, 2))) - 1)))
    0.0
    """
    return determinant_of_gradients([_central_differences(flow, axis)
                                     for axis in range(1, flow.shape[-1] + 1)])


def _central_differences(tensor, axis):
    """``np.gradient(tensor, axis=axis)`` in TensorFlow: unit spacing, one-sided at both ends."""
    size = tensor.shape[axis]

    def part(start, stop):
        index = [slice(None)] * len(tensor.shape)
        index[axis] = slice(start, stop)
        return tensor[tuple(index)]

    inner = (part(2, size) - part(0, size - 2)) / 2.0
    return tf.concat([part(1, 2) - part(0, 1), inner, part(size - 1, size) - part(size - 2, size - 1)],
                     axis=axis)
