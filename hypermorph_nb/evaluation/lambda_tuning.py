"""Choose λ by gradient: test-time tuning of a trained λ-conditioned model.

With the network frozen, λ in [0, 1] is tuned on validation pairs for a
differentiable objective: the soft Dice of warped one-hot label maps (mean over
structures, or one structure), or, without label maps, an image term (MSE or
NCC) plus a folding penalty. λ enters the model as an input, so the objective's
derivative in λ comes from one backward pass.

The search first scores a coarse, evenly spaced set of λ (0 and 1 included),
all of them in the same batched model calls, so that a curve with bumps
cannot lead it into a local optimum far from the best: it continues from the
best coarse λ only. There the derivative says whether the optimum is an end
of [0, 1] (e.g. λ = 0 when any smoothing costs overlap) or lies between that
λ and its uphill neighbour, and safeguarded secant steps on the derivative
close in on it, which needs far fewer registrations than a fine λ grid.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Callable, Sequence

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
        ``(λ, objective)`` at every evaluation, in order: the coarse sweep's first.
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
                    folding_weight: float = 1.0, batch_size: int = 8,
                    coarse: int = 5) -> LambdaSearch:
    """Tune λ of a trained HyperMorph (or FiLM) model on validation pairs: a coarse sweep, then the gradient.

    The ``coarse`` evenly spaced λ of [0, 1] (and ``init_lam``) are scored
    first, in batches that mix λ and pairs; from the best of them the
    derivative in λ either shows that the optimum is that end of [0, 1], or
    brackets it between that λ and its uphill neighbour, where safeguarded
    secant steps on the derivative close in on it. A curve with bumps (a local
    optimum near the middle, the best one elsewhere) therefore cannot lead the
    search away from the best coarse λ's neighbourhood.

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
        Most objective evaluations, the coarse ones included (each registers every
        pair once, with gradient); at least the number of coarse λ.
    init_lam : float
        A λ in (0, 1) scored with the coarse ones (e.g. the one chosen last time);
        the default 0.5 is already among them.
    tol : float
        Stop once the bracket around the optimum is narrower than ``tol`` in λ.
    image_loss : {'mse', 'ncc'}, optional
        The image term of ``objective='image'``; by default the one the model was trained
        with (its saved :class:`~hypermorph_nb.networks.description.TrainingRecord`), else
        'mse'. Another one than the model's own warns.
    folding_weight : float
    batch_size : int
        Registrations per model call (gradients are summed over batches).
    coarse : int
        Evenly spaced λ of the first sweep, 0 and 1 included (at least 2).

    Returns
    -------
    LambdaSearch

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> found = hnb.optimize_lambda(model, data, n_pairs=2, coarse=3, steps=5)
    >>> found.lams[:3].tolist(), 0 <= found.lam <= 1, len(found.trace) <= 5
    ([0.0, 0.5, 1.0], True, True)
    >>> found.model_calls == 2 * len(found.trace)
    True
    """
    if not spec_of(model).is_hypermorph:
        raise ValueError("optimize_lambda needs a λ-conditioned model (build_hypermorph); a "
                         "VoxelMorph baseline was trained at one fixed λ")
    others = [h.name for h in spec_of(model).hyperparameters if h.name != "lam"]
    if others:
        held = ", ".join(f"{name!r}: ..." for name in others)
        raise ValueError(f"this model is also conditioned on {', '.join(others)}: tune λ with them held, "
                         f"hnb.optimize_hyperparameters(model, data, fixed={{{held}}}), or all of them "
                         "together, hnb.optimize_hyperparameters(model, data)")
    data = as_dataset(data, inshape=spec_of(model).inshape)
    if objective not in ("dice", "image"):
        raise ValueError(f"objective must be 'dice' or 'image', got {objective!r}")
    image_loss = resolve_image_loss(spec_of(model).training, image_loss)
    if image_loss not in ("mse", "ncc"):
        raise ValueError(f"image_loss must be 'mse' or 'ncc', got {image_loss!r}")
    if not 0 < float(init_lam) < 1:
        raise ValueError(f"init_lam must lie strictly between 0 and 1, got {init_lam!r}")
    if check_count(coarse, "coarse") < 2:
        raise ValueError(f"coarse must be at least 2 (λ = 0 and 1 are always scored), got {coarse!r}")
    start = _coarse_lambdas(int(coarse), float(init_lam))
    steps = check_count(steps, "steps")
    if steps < len(start):
        raise ValueError(f"steps={steps} is fewer than the {len(start)} λ of the coarse sweep "
                         f"{start}; raise steps or lower coarse")
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
    search = _search(_Evaluator(model, target, batch_size), start, steps, float(tol))
    sign = 1.0 if objective == "dice" else -1.0
    trace = [(float(lam), sign * score) for lam, score in search]
    best = int(np.argmax([score for _, score in search]))
    return LambdaSearch(lam=trace[best][0], value=trace[best][1], trace=trace,
                        model_calls=len(trace) * len(pairs), objective=objective, label=label,
                        pairs=pairs)


def _coarse_lambdas(coarse: int, init_lam: float | None = None) -> list[float]:
    """The first λ that :func:`optimize_lambda` scores: ``coarse`` evenly spaced on [0, 1], and ``init_lam``.

    Examples
    --------
    >>> _coarse_lambdas(5), _coarse_lambdas(3, 0.3)
    ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.3, 0.5, 1.0])
    """
    lams = {round(float(lam), 12) for lam in np.linspace(0.0, 1.0, coarse)}
    if init_lam is not None:
        lams.add(float(init_lam))
    return sorted(lams)


#: The search stops where the slope promises less than this fraction of how much the
#: objective varies over the coarse λ (its largest minus its smallest score).
_GAIN_RTOL = 1e-3

#: What the search evaluates: several λ at once → (score, d score / dλ) at each, to maximise.
_Objective = Callable[[Sequence[float]], Sequence[tuple[float, float]]]


def _search(evaluate: _Objective, start: Sequence[float], steps: int,
            tol: float) -> list[tuple[float, float]]:
    """Maximise a score of λ on [0, 1] in at most ``steps`` evaluations; return [(λ, score), ...].

    ``start`` (sorted, 0 and 1 among them) is evaluated in one call. Its best
    λ ``b`` and its slope decide the rest: a slope pointing out of [0, 1] at an
    end, or one too small to matter, means ``b`` is the optimum. Otherwise the
    slope points to a neighbour ``e`` that scores no higher, so a local maximum
    above ``b``'s score lies strictly between them. Each step probes a point
    ``c`` inside (the zero of the derivative's secant where the slopes at ``b``
    and ``e`` differ in sign, else the midpoint; the midpoint also when the
    secant point falls near an end, or when the same end moved twice in a
    row): if ``c`` scores higher it becomes ``b``, its slope choosing which old
    point stays as ``e``; otherwise ``c`` becomes ``e``. The search stops when
    the interval is narrower than ``tol``, or when the gain the slope at ``b``
    promises over it (slope × width) is below ``_GAIN_RTOL`` of the spread of
    the start's scores (a plateau, or a curve flat to that precision).
    """
    lams = [float(lam) for lam in start]
    scored = list(evaluate(lams))
    trace = [(lam, float(score)) for lam, (score, _) in zip(lams, scored)]
    best = int(np.argmax([score for score, _ in scored]))
    (b, (s_b, g_b)), neighbour = (lams[best], scored[best]), best + int(np.sign(scored[best][1]))
    spread = max(score for _, score in trace) - min(score for _, score in trace)
    if not 0 <= neighbour < len(lams):
        return trace  # still uphill at an end of [0, 1]: the optimum is that end
    e, (_, g_e) = lams[neighbour], scored[neighbour]
    last_moved, bisect = None, False
    while len(trace) < steps and abs(e - b) > tol and abs(g_b * (e - b)) > _GAIN_RTOL * spread:
        width = e - b  # signed: b's slope points from b towards e
        c = b + width / 2
        if not bisect and np.sign(g_e) == -np.sign(g_b):
            secant = b + width * g_b / (g_b - g_e)
            if 0.1 <= (secant - b) / width <= 0.9:
                c = secant
        [(s_c, g_c)] = evaluate([c])
        trace.append((c, float(s_c)))
        if s_c > s_b:
            if np.sign(g_c) != np.sign(g_b):  # c's slope points back: the optimum lies before c
                e, g_e = b, g_b
            b, s_b, g_b, moved = c, s_c, g_c, "best"
        else:
            e, g_e, moved = c, g_c, "end"
        bisect, last_moved = moved == last_moved, moved
    return trace


class _Evaluator:
    """Score and d(score)/dλ at several λ, summed over all pairs, in batches mixing λ and pairs."""

    def __init__(self, model: tf.keras.Model, target: _DiceTarget | _ImageTarget, batch_size: int) -> None:
        self.target, self.batch_size = target, batch_size
        self._step = _step_function(model, target.kind, target.extra_specs)

    def __call__(self, lams: Sequence[float]) -> list[tuple[float, float]]:
        n_pairs = len(self.target.pairs)
        which = np.repeat(np.arange(len(lams)), n_pairs)  # λ index of every registration
        rows = np.tile(np.arange(n_pairs), len(lams))  # pair index of every registration
        lam_of = np.asarray(lams, np.float32)[which]
        scores, slopes = np.zeros(len(lams)), np.zeros(len(lams))
        for start in range(0, len(rows), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            moving, fixed, *extras = self.target.inputs(rows[chunk])
            score, slope = self._step(tf.constant(lam_of[chunk][:, None]), moving, fixed, tuple(extras))
            np.add.at(scores, which[chunk], score.numpy())
            np.add.at(slopes, which[chunk], slope.numpy())
        return list(zip(scores.tolist(), slopes.tolist()))


def _step_function(model, kind, extra_specs):
    """The compiled per-registration (score, d score / dλ) of one batch, cached per model and objective.

    ``kind`` is (objective, number of label channels or None, *static score
    arguments); ``extra_specs`` the specs of the score's batch inputs. Every
    registration has its own λ (a ``(B, 1)`` input) and depends on no other in
    the batch, so the gradient of the summed score is each registration's own
    derivative. Any batch size (the coarse sweep's, the refinement's, a last
    partial batch) runs through one trace.
    """
    cache = _STEPS.setdefault(model, {})
    if kind not in cache:
        inference = Registrar.for_model(model).inference  # outputs [moved, displacement]
        score, static = _SCORES[kind[0]], kind[2:]
        warper = vxm.layers.SpatialTransformer(interp_method="linear", indexing="ij", fill_value=0.0)

        def step(lams, moving, fixed, extras):
            with tf.GradientTape() as tape:
                tape.watch(lams)
                moved, flow = inference([moving, fixed, lams], training=False)
                values = score(moved, flow, fixed, warper, *static, *extras)
                total = tf.reduce_sum(values)
            return values, tape.gradient(total, lams)[:, 0]

        image = tf.TensorSpec([None, *spec_of(model).inshape, 1], tf.float32)
        signature = [tf.TensorSpec([None, 1], tf.float32), image, image, extra_specs]
        cache[kind] = tf.function(step, input_signature=signature)
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
        maps = tf.TensorSpec([None, *data.shape, len(labels)], tf.float32)
        self.extra_specs = (maps, maps, tf.TensorSpec([None, len(labels)], tf.float32))

    def inputs(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Images, one-hot label maps and weights of the pairs ``rows`` (indices into ``pairs``)."""
        chunk = self.pairs[rows]
        return (self.data.images[chunk[:, 0]], self.data.images[chunk[:, 1]],
                self._one_hot(self.data.labels[chunk[:, 0]]),
                self._one_hot(self.data.labels[chunk[:, 1]]), self.weights[rows])

    def _one_hot(self, maps):
        return (maps[..., None] == self.labels).astype(np.float32)


def _dice_score(moved, flow, fixed, warper, moving_maps, fixed_maps, weights):
    """Per registration, the weighted sum over structures of the soft Dice of warped one-hot maps."""
    warped = warper([moving_maps, flow])
    axes = list(range(1, len(moving_maps.shape) - 1))
    overlap = tf.reduce_sum(warped * fixed_maps, axis=axes)
    size = tf.reduce_sum(warped, axis=axes) + tf.reduce_sum(fixed_maps, axis=axes)
    return tf.reduce_sum(weights * 2.0 * overlap / tf.maximum(size, 1e-6), axis=-1)


class _ImageTarget:
    """Minus (image term + folding_weight × mean relu(−det J)), averaged over pairs."""

    def __init__(self, data, pairs, image_loss, folding_weight) -> None:
        self.data, self.pairs = data, pairs
        self.kind = ("image", None, image_loss)
        self.extra_specs = (tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32))
        self.weight = np.float32(folding_weight)

    def inputs(self, rows: np.ndarray) -> tuple[np.ndarray | np.float32, ...]:
        """Images of the pairs ``rows`` (indices into ``pairs``), the pair weight and folding weight."""
        chunk = self.pairs[rows]
        return (self.data.images[chunk[:, 0]], self.data.images[chunk[:, 1]],
                np.float32(1.0 / len(self.pairs)), self.weight)


def _image_score(moved, flow, fixed, warper, image_loss, pair_weight, folding_weight):
    """Per registration, minus its weighted image term and folding penalty."""
    axes = list(range(1, len(moved.shape)))
    if image_loss == "mse":
        image = tf.reduce_mean(tf.square(moved - fixed), axis=axes)
    else:
        a = moved - tf.reduce_mean(moved, axis=axes, keepdims=True)
        b = fixed - tf.reduce_mean(fixed, axis=axes, keepdims=True)
        ncc = tf.reduce_sum(a * b, axis=axes) / tf.sqrt(
            tf.reduce_sum(a * a, axis=axes) * tf.reduce_sum(b * b, axis=axes) + 1e-8)
        image = 1.0 - ncc
    return -pair_weight * (image + folding_weight * _folding_penalty(flow))


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
