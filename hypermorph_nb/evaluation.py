"""Score registrations over image pairs and sweep λ to choose it with numbers.

- :func:`lambda_sweep` registers a set of validation pairs at every λ of a grid
  with one HyperMorph model (λ × pairs in batches, through the model's compiled
  :class:`~hypermorph_nb.registration.Registrar`) and returns a
  :class:`SweepResult`: Dice per structure, image MSE/NCC and folding per λ,
  and the optimal λ overall and per structure with the curve it came from.
- :func:`baseline_sweep` scores a grid of separately trained VoxelMorph models
  (one per λ) the same way, and :func:`compare_sweeps` sets the two side by side.
- :func:`score_pairs` and :func:`identity_scores` score one model at one λ, or
  no registration at all.

Dice convention: a structure is scored on a pair only when it appears in both
the moving and the fixed label map (2D slices of different subjects do not all
cut every structure); elsewhere its Dice is NaN and means skip it.
"""

import numpy as np
from tqdm.auto import tqdm

from .data.dataset import Dataset
from .data.validation import check_count
from .environment import quiet_progress
from .metrics import dice_batch, folding_fraction, image_mse, image_ncc
from .models import spec_of
from .registration import Registrar
from .sweep_results import LambdaOptimum, PairScores, SweepComparison, SweepResult, compare_sweeps
from .sweep_results import _quiet_nan_warnings  # noqa: F401 (training.validation imports it from here)

__all__ = [
    "lambda_sweep", "baseline_sweep", "score_pairs", "identity_scores", "choose_pairs",
    "auto_batch_size", "compare_sweeps", "SweepResult", "SweepComparison", "LambdaOptimum",
    "PairScores",
]


def choose_pairs(n_images, n_pairs, *, seed=0):
    """Distinct random (moving, fixed) index pairs with moving != fixed.

    Parameters
    ----------
    n_images : int
    n_pairs : int
        Number of pairs; at most ``n_images * (n_images - 1)`` are returned.
    seed : int

    Returns
    -------
    np.ndarray
        ``(n_pairs, 2)`` int.

    Examples
    --------
    >>> choose_pairs(4, 3, seed=0).shape
    (3, 2)
    """
    if n_images < 2:
        raise ValueError(f"need at least 2 images to form pairs, got {n_images}")
    available = n_images * (n_images - 1)
    n_pairs = min(check_count(n_pairs, "n_pairs"), available)
    flat = np.random.default_rng(seed).choice(available, size=n_pairs, replace=False)
    moving = flat // (n_images - 1)
    fixed = flat % (n_images - 1)
    fixed = fixed + (fixed >= moving)
    return np.stack([moving, fixed], axis=1)


def score_pairs(model, data, pairs, *, lam=None, labels=None, batch_size=None, progress=False):
    """Register ``pairs`` of ``data`` (one λ for all) and score each registration.

    Parameters
    ----------
    model : tf.keras.Model
        A baseline (``lam`` None) or a HyperMorph model (``lam`` required).
    data : Dataset
    pairs : array_like
        ``(P, 2)`` indices (moving, fixed).
    lam : float, optional
        λ for a HyperMorph model; None for a baseline.
    labels : sequence of int, optional
        Structures to score; default all non-zero labels of ``data``.
    batch_size : int, optional
        Registrations per model call; default :func:`auto_batch_size` of the
        image shape (8 for 2D images, fewer for large volumes).
    progress : bool
        Show a progress bar.

    Returns
    -------
    PairScores

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> scores = score_pairs(model, data, [[0, 1], [2, 3]])
    >>> scores.dice.shape == (2, len(data.label_values())), scores.mse.shape
    (True, (2,))
    """
    registrar = _registrar(model, data)
    pairs = _check_pairs(pairs, len(data))
    batch_size = _batch_size(batch_size, data)
    labels = _labels_of(data, labels)
    with _progress_bar(len(pairs), "registrations", progress) as bar:
        scores = _register_and_score(registrar, data, pairs, None if lam is None else float(lam),
                                     labels, batch_size, bar)
    if scores.dice is not None:
        scores.dice = np.where(_presence(data, pairs, labels), scores.dice, np.nan)
    return scores


#: Registrations per model call hold at most about this many voxels (see auto_batch_size).
VOXELS_PER_CALL = 2_000_000
#: ... and at most this many registrations (what 2D sweeps have always used).
MAX_BATCH = 8


def auto_batch_size(shape):
    """Registrations per model call for images of ``shape``: memory-bounded, at most 8.

    One call holds at most :data:`VOXELS_PER_CALL` voxels per image stack (moving,
    fixed, moved, the field and the network's activations scale with it), and
    never fewer than one registration.

    Examples
    --------
    >>> auto_batch_size((160, 192)), auto_batch_size((80, 96, 80)), auto_batch_size((160, 192, 224))
    (8, 3, 1)
    """
    voxels = int(np.prod(shape))
    return int(min(MAX_BATCH, max(1, VOXELS_PER_CALL // voxels)))


def identity_scores(data, pairs, *, labels=None):
    """Scores of leaving each moving image unregistered (the baseline to beat).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> scores = identity_scores(synthetic(4, (32, 32), seed=0), [[0, 1]])
    >>> float(scores.folding[0])
    0.0
    """
    _check_data(data)
    pairs = _check_pairs(pairs, len(data))
    labels = _labels_of(data, labels)
    dice, mse, ncc = [], [], []
    step = auto_batch_size(data.shape)
    for start in range(0, len(pairs), step):    # in chunks: 3D pairs add up to gigabytes
        chunk = pairs[start:start + step]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        mse.append(image_mse(moving, fixed, per_image=True))
        ncc.append(image_ncc(moving, fixed, per_image=True))
        if data.has_labels:
            dice.append(dice_batch(data.labels[chunk[:, 0]], data.labels[chunk[:, 1]], labels))
    if data.has_labels:
        dice = np.where(_presence(data, pairs, labels), np.concatenate(dice), np.nan)
    return PairScores(dice=dice if data.has_labels else None, mse=np.concatenate(mse),
                      folding=np.zeros(len(pairs)), ncc=np.concatenate(ncc))


def lambda_sweep(model, data, lams, *, pairs=None, n_pairs=16, seed=0, batch_size=None,
                 progress=True):
    """Register validation pairs at every λ of a grid and score them (2D or 3D).

    All λ × pair registrations go through the model's compiled function in
    batches of ``batch_size`` pairs at one λ; only the scores are kept, so
    memory does not grow with the number of pairs.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    data : Dataset
        Validation images, ideally with label maps (for Dice).
    lams : sequence of float
        λ values in [0, 1].
    pairs : array_like, optional
        ``(P, 2)`` (moving, fixed) indices; default ``n_pairs`` random pairs.
    n_pairs : int
        Number of random pairs when ``pairs`` is None.
    seed : int
        Seed for the random pairs.
    batch_size : int, optional
        Registrations per model call; default :func:`auto_batch_size` of the
        image shape (8 for 2D images, 3 at 80×96×80, 1 for larger volumes).
    progress : bool
        Show a progress bar (registrations done, rate, time left).

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> result = hnb.lambda_sweep(model, data, [0.0, 0.5, 1.0], n_pairs=4, progress=False)
    >>> result.mean_dice.shape, result.optimal_lam in (0.0, 0.5, 1.0)
    ((3,), True)
    >>> best = result.optimum()
    >>> best.lam == result.optimal_lam, best.curve.shape
    (True, (3,))
    """
    if not spec_of(model).is_hypermorph:
        raise ValueError("lambda_sweep needs a HyperMorph model; a baseline has one fixed λ "
                         "(score it with score_pairs(model, data, pairs), or a grid of "
                         "baselines with baseline_sweep({λ: model, ...}, data))")
    registrar = _registrar(model, data)
    lams = _check_lams(lams)
    batch_size = _batch_size(batch_size, data)
    pairs = _resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    labels = _labels_of(data, None)
    with _progress_bar(len(lams) * len(pairs), "λ sweep", progress) as bar:
        scores = [_register_and_score(registrar, data, pairs, float(lam), labels, batch_size, bar)
                  for lam in lams]
    return _sweep_result(lams, pairs, labels, data, _concatenate(scores))


def baseline_sweep(models, data, *, pairs=None, n_pairs=16, seed=0, batch_size=None, progress=True):
    """Score a grid of separately trained baselines, one model per λ.

    The result has the same form as :func:`lambda_sweep`'s, so the optimal λ
    of the grid and :func:`compare_sweeps` work the same way.

    Parameters
    ----------
    models : dict of float to tf.keras.Model
        ``{λ: VoxelMorph baseline trained at that λ}``.
    data, pairs, n_pairs, seed, batch_size, progress
        As in :func:`lambda_sweep`.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(6, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> baseline_sweep({0.5: model, 0.9: model}, data, n_pairs=4, progress=False).lams.tolist()
    [0.5, 0.9]
    """
    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict {λ: baseline model}, e.g. "
                        "{0.5: model_a, 0.9: model_b}")
    _check_data(data)
    lams = _check_lams(sorted(models))
    for lam in lams:
        if spec_of(models[lam]).is_hypermorph:
            raise ValueError(f"the model for λ={lam} is a HyperMorph model; baseline_sweep takes "
                             "baselines trained at one λ each (use lambda_sweep for HyperMorph)")
    registrars = [_registrar(models[lam], data) for lam in lams]
    batch_size = _batch_size(batch_size, data)
    pairs = _resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    labels = _labels_of(data, None)
    with _progress_bar(len(lams) * len(pairs), "baselines", progress) as bar:
        scores = [_register_and_score(registrar, data, pairs, None, labels, batch_size, bar)
                  for registrar in registrars]
    return _sweep_result(lams, pairs, labels, data, _concatenate(scores))


def _register_and_score(registrar, data, pairs, lam, labels, batch_size, bar):
    """Register ``pairs`` at one ``lam`` (None for a baseline) in batches and score them.

    Dice is left unmasked: the caller applies :func:`_presence` once per pair.
    """
    dice, mse, folding, ncc = [], [], [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        moved, flow = registrar.predict(moving, fixed, lam)
        mse.append(image_mse(moved, fixed, per_image=True))
        ncc.append(image_ncc(moved, fixed, per_image=True))
        folding.append(np.atleast_1d(folding_fraction(flow)))
        if data.has_labels:
            moving_labels, fixed_labels = data.labels[chunk[:, 0]], data.labels[chunk[:, 1]]
            warped = registrar.warp(moving_labels, flow, interp="nearest")
            dice.append(dice_batch(warped, fixed_labels, labels))
        bar.update(len(chunk))
    return PairScores(dice=np.concatenate(dice) if dice else None, mse=np.concatenate(mse),
                      folding=np.concatenate(folding), ncc=np.concatenate(ncc))


def _concatenate(scores):
    """One :class:`PairScores` of several, in order (e.g. one per λ)."""
    return PairScores(
        dice=np.concatenate([s.dice for s in scores]) if scores[0].dice is not None else None,
        mse=np.concatenate([s.mse for s in scores]),
        folding=np.concatenate([s.folding for s in scores]),
        ncc=np.concatenate([s.ncc for s in scores]),
    )


def _progress_bar(total, desc, enabled):
    """A tqdm bar counting registrations (a context manager; inert when not ``enabled``, under CI or papermill)."""
    return tqdm(total=total, desc=desc, unit="reg", disable=not enabled or quiet_progress(), leave=False)


def _presence(data, pairs, labels):
    """``(P, K)``: whether each structure is in both the moving and the fixed label map of a pair.

    Dice is NaN (left out of means) where it is not. The structures of each
    image are found once, whatever the number of pairs it takes part in.
    """
    present = {index: np.isin(labels, np.unique(data.labels[index])) for index in np.unique(pairs)}
    return np.stack([present[moving] & present[fixed] for moving, fixed in pairs])


def _sweep_result(lams, pairs, labels, data, scores):
    def per_lam(values):
        return values.reshape(len(lams), len(pairs), *values.shape[1:])

    dice = None
    if data.has_labels:
        dice = np.where(_presence(data, pairs, labels), per_lam(scores.dice), np.nan)
    return SweepResult(
        lams=lams, pairs=pairs, labels=labels, label_names=data.label_names, dice=dice,
        mse=per_lam(scores.mse), folding=per_lam(scores.folding),
        identity=identity_scores(data, pairs, labels=labels), ncc=per_lam(scores.ncc),
    )


def _check_data(data):
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a hypermorph_nb.data.Dataset, got {type(data).__name__}; "
                        "wrap arrays with Dataset.from_arrays(images, labels)")


def _registrar(model, data):
    """The model's :class:`Registrar`, after checking that it takes images of the data's shape."""
    _check_data(data)
    inshape = tuple(spec_of(model).inshape)
    if tuple(data.shape) != inshape:
        kind = {2: "2D images", 3: "3D volumes"}
        raise ValueError(
            f"the model registers {kind[len(inshape)]} of shape {inshape}, but the data holds "
            f"{kind.get(len(data.shape), 'images')} of shape {tuple(data.shape)}; build the model "
            "for the data (hnb.build_hypermorph(data.shape)) or resize the data to the model")
    return Registrar.for_model(model)


def _batch_size(batch_size, data):
    return auto_batch_size(data.shape) if batch_size is None else check_count(batch_size, "batch_size")


def _check_lams(lams):
    try:
        values = np.asarray(lams, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"lams must be a list of numbers in [0, 1], got {lams!r}") from None
    if values.size == 0 or not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"lams must be a non-empty list of values in [0, 1], got {values.tolist()}")
    if len(np.unique(values)) != len(values):
        raise ValueError(f"lams has repeated values {values.tolist()}; give each λ once")
    return values


def _check_pairs(pairs, n_images):
    try:
        array = np.asarray(pairs)
    except (TypeError, ValueError):
        array = np.asarray([], dtype=object)
    if array.ndim == 1 and array.size == 2:
        array = array.reshape(1, 2)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0 \
            or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"pairs must be a non-empty (P, 2) array of integer (moving, fixed) "
                         f"indices, got {np.shape(pairs)} of {getattr(array, 'dtype', '?')}")
    if array.min() < 0 or array.max() >= n_images:
        raise ValueError(f"pairs index images {array.min()}..{array.max()}, but the data has "
                         f"{n_images} images (valid indices 0..{n_images - 1})")
    return array.astype(int)


def _resolve_pairs(pairs, n_images, *, n_pairs, seed):
    """The given ``pairs``, checked, or ``n_pairs`` random ones from :func:`choose_pairs`."""
    return choose_pairs(n_images, n_pairs, seed=seed) if pairs is None else _check_pairs(pairs, n_images)


def _labels_of(data, labels):
    if not data.has_labels:
        return np.array([], dtype=int)
    return data.label_values() if labels is None else np.asarray(labels, dtype=int).reshape(-1)


