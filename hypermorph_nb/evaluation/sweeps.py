"""Score registrations over image pairs and sweep λ to choose it with numbers.

- :func:`lambda_sweep` registers a set of validation pairs at every λ of a grid
  with one HyperMorph model (λ × pairs in batches, through the model's compiled
  :class:`~hypermorph_nb.registration.pairs.Registrar`) and returns a
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

from __future__ import annotations

from collections.abc import Mapping, Sequence

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from ..checks.arrays import check_count
from ..checks.pairs import check_pairs, resolve_pairs
from ..checks.values import check_lambdas
from ..data.dataset import as_dataset
from ..runtime.environment import quiet_progress
from ..metrics import dice_batch, folding_fraction, image_mse, image_ncc
from ..networks.models import spec_of
from ..registration.pairs import Registrar
from .results import PairScores, SweepResult

if TYPE_CHECKING:
    import tensorflow as tf

    from ..data.dataset import Dataset

__all__ = ["lambda_sweep", "baseline_sweep", "score_pairs", "identity_scores", "auto_batch_size", "score_settings"]


def score_pairs(model: tf.keras.Model, data: Dataset | np.ndarray, *, pairs: ArrayLike,
                lam: float | None = None, labels: ArrayLike | None = None,
                batch_size: int | None = None, progress: bool | str = "none",
                **hyperparameters: float) -> PairScores:
    """Register ``pairs`` of ``data`` (one λ for all) and score each registration.

    Parameters
    ----------
    model : tf.keras.Model
        A baseline (``lam`` None) or a HyperMorph model (``lam`` required).
    data : Dataset or array_like
        Images of the model's shape (arrays as :func:`hypermorph_nb.data.as_dataset` takes them).
    pairs : array_like
        ``(P, 2)`` indices (moving, fixed).
    lam : float, optional
        λ for a HyperMorph model; None for a baseline.
    labels : sequence of int, optional
        Structures to score; default all non-zero labels of ``data``.
    batch_size : int, optional
        Registrations per model call; default :func:`auto_batch_size` of the
        image shape (8 for 2D images, fewer for large volumes).
    progress : {'auto', 'bar', 'log', 'none'} or bool
        A progress bar, as ``train``'s ``progress`` (True: 'auto', False: 'none').
    **hyperparameters : float
        The other hyperparameters of a model conditioned on more than λ (``label_weight=0.5``).

    Returns
    -------
    PairScores

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> data = synthetic(4, (32, 32), seed=0)
    >>> model = hnb.build_vxm((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> scores = score_pairs(model, data, pairs=[[0, 1], [2, 3]])
    >>> scores.dice.shape == (2, len(data.label_values())), scores.mse.shape
    (True, (2,))
    """
    data, registrar = dataset_and_registrar(model, data)
    pairs = check_pairs(pairs, len(data))
    batch_size = _batch_size(batch_size, data)
    labels = labels_of(data, labels)
    with _progress_bar(len(pairs), "registrations", progress) as bar:
        scores = _register_and_score(registrar, data, pairs, None if lam is None else float(lam),
                                     labels, batch_size, bar, hyperparameters)
    if scores.dice is not None:
        scores.dice = np.where(label_presence(data, pairs, labels), scores.dice, np.nan)
    return scores


#: Registrations per model call hold at most about this many voxels (see auto_batch_size).
VOXELS_PER_CALL = 2_000_000
#: ... and at most this many registrations (what 2D sweeps have always used).
MAX_BATCH = 8


def auto_batch_size(shape: Sequence[int]) -> int:
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


def identity_scores(data: Dataset | np.ndarray, *, pairs: ArrayLike,
                    labels: ArrayLike | None = None) -> PairScores:
    """Scores of leaving each moving image unregistered (the baseline to beat).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> scores = identity_scores(synthetic(4, (32, 32), seed=0), pairs=[[0, 1]])
    >>> float(scores.folding[0])
    0.0
    """
    data = as_dataset(data)
    pairs = check_pairs(pairs, len(data))
    labels = labels_of(data, labels)
    rows: list[np.ndarray] = []
    mse, ncc = [], []
    step = auto_batch_size(data.shape)
    for start in range(0, len(pairs), step):    # in chunks: 3D pairs add up to gigabytes
        chunk = pairs[start:start + step]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        mse.append(image_mse(moving, fixed, per_image=True))
        ncc.append(image_ncc(moving, fixed, per_image=True))
        if data.labels is not None:
            rows.append(dice_batch(data.labels[chunk[:, 0]], data.labels[chunk[:, 1]], labels))
    dice = None
    if data.labels is not None:
        dice = np.where(label_presence(data, pairs, labels), np.concatenate(rows), np.nan)
    return PairScores(dice=dice, mse=np.concatenate(mse), folding=np.zeros(len(pairs)),
                      ncc=np.concatenate(ncc))


def lambda_sweep(model: tf.keras.Model, data: Dataset | np.ndarray, lams: ArrayLike, *,
                 pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                 batch_size: int | None = None, progress: bool | str = "auto",
                 **hyperparameters: float) -> SweepResult:
    """Register validation pairs at every λ of a grid and score them (2D or 3D).

    All λ × pair registrations go through the model's compiled function in
    batches of ``batch_size`` pairs at one λ; only the scores are kept, so
    memory does not grow with the number of pairs.

    Parameters
    ----------
    model : tf.keras.Model
        A HyperMorph model.
    data : Dataset or array_like
        Validation images, ideally a Dataset with label maps (for Dice); arrays as
        :func:`hypermorph_nb.data.as_dataset` takes them.
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
    progress : {'auto', 'bar', 'log', 'none'} or bool
        A progress bar (registrations done, rate, time left): 'auto' shows it except under
        CI or papermill, 'log' writes plain lines for log files; True and False mean 'auto'
        and 'none', as before.
    **hyperparameters : float
        Where a model conditioned on more than λ holds the others (``label_weight=0.5``).

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
                         "(score it with score_pairs(model, data, pairs=...), or a grid of "
                         "baselines with baseline_sweep({λ: model, ...}, data))")
    data, registrar = dataset_and_registrar(model, data)
    lams = check_lambdas(lams, allow_repeats=False)
    batch_size = _batch_size(batch_size, data)
    pairs = resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    labels = labels_of(data, None)
    scores = score_settings(registrar, data, pairs, labels, [(float(lam), hyperparameters) for lam in lams],
                            batch_size=batch_size, progress=progress, desc="λ sweep")
    return _sweep_result(lams, pairs, labels, data, scores)


def baseline_sweep(models: dict[float, tf.keras.Model], data: Dataset | np.ndarray, *,
                   pairs: ArrayLike | None = None, n_pairs: int = 16, seed: int = 0,
                   batch_size: int | None = None, progress: bool | str = "auto") -> SweepResult:
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
    lams = check_lambdas(sorted(models), name="the λ of models", allow_repeats=False)
    for lam in lams:
        if spec_of(models[lam]).is_hypermorph:
            raise ValueError(f"the model for λ={lam} is a HyperMorph model; baseline_sweep takes "
                             "baselines trained at one λ each (use lambda_sweep for HyperMorph)")
    data, _ = dataset_and_registrar(models[lams[0]], data)
    registrars = [dataset_and_registrar(models[lam], data)[1] for lam in lams]
    batch_size = _batch_size(batch_size, data)
    pairs = resolve_pairs(pairs, len(data), n_pairs=n_pairs, seed=seed)
    labels = labels_of(data, None)
    with _progress_bar(len(lams) * len(pairs), "baselines", progress) as bar:
        scores = [_register_and_score(registrar, data, pairs, None, labels, batch_size, bar)
                  for registrar in registrars]
    return _sweep_result(lams, pairs, labels, data, _concatenate(scores))


def score_settings(registrar: Registrar, data: Dataset, pairs: np.ndarray, labels: np.ndarray,
                   settings: Sequence[tuple[float | None, Mapping[str, float]]], *,
                   batch_size: int | None = None, progress: bool | str = "none",
                   desc: str = "registrations") -> PairScores:
    """Register every pair at each setting (λ, the other hyperparameters) and score them.

    The one loop of every sweep: per setting, the pairs go through the model's
    compiled function in batches of ``batch_size``; one progress bar counts all
    registrations. Dice is left unmasked (apply :func:`label_presence`).

    Parameters
    ----------
    registrar : Registrar
        The model's (:func:`dataset_and_registrar`).
    data : Dataset
    pairs : np.ndarray
        ``(P, 2)`` (moving, fixed) indices.
    labels : np.ndarray
        Structures to score (:func:`labels_of`).
    settings : sequence of (float or None, mapping)
        λ (None for a baseline) and the other hyperparameters by name, one entry per setting.
    batch_size : int, optional
        Registrations per model call; default :func:`auto_batch_size`.
    progress : {'auto', 'bar', 'log', 'none'} or bool
    desc : str
        The progress bar's title.

    Returns
    -------
    PairScores
        Settings × pairs rows, setting by setting.

    Examples
    --------
    >>> import hypermorph_nb as hnb
    >>> from hypermorph_nb.data import synthetic
    >>> model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
    >>> data, registrar = dataset_and_registrar(model, synthetic(4, (32, 32), seed=0))
    >>> scores = score_settings(registrar, data, np.array([[0, 1], [2, 3]]), labels_of(data, None),
    ...                         [(0.2, {}), (0.8, {})])
    >>> scores.mse.shape
    (4,)
    """
    batch_size = _batch_size(batch_size, data)
    with _progress_bar(len(settings) * len(pairs), desc, progress) as bar:
        scores = [_register_and_score(registrar, data, pairs, lam, labels, batch_size, bar, dict(others))
                  for lam, others in settings]
    return _concatenate(scores)


def _register_and_score(registrar, data, pairs, lam, labels, batch_size, bar, hyperparameters=None):
    """Register ``pairs`` at one ``lam`` (None for a baseline) in batches and score them.

    Dice is left unmasked: the caller applies :func:`label_presence` once per pair.
    """
    dice, mse, folding, ncc = [], [], [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        moving, fixed = data.images[chunk[:, 0]], data.images[chunk[:, 1]]
        moved, flow = registrar.predict(moving, fixed, lam, **(hyperparameters or {}))
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


#: What ``progress=`` takes, as in :func:`hypermorph_nb.train` (True and False: 'auto' and 'none').
PROGRESS_MODES = ("auto", "bar", "log", "none")


def _progress_bar(total, desc, progress):
    """A tqdm bar counting registrations (a context manager).

    'auto' (or True): a bar, except under CI or papermill; 'bar': always; 'log': plain text
    lines at most every 10 s, for logs; 'none' (or False): nothing.
    """
    mode = {True: "auto", False: "none"}.get(progress, progress) if isinstance(progress, bool) else progress
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES} (or True/False), got {progress!r}")
    disable = mode == "none" or (mode == "auto" and quiet_progress())
    options = {"mininterval": 10.0, "ascii": True} if mode == "log" else {}
    return tqdm(total=total, desc=desc, unit="reg", disable=disable, leave=False, **options)


def label_presence(data: Dataset, pairs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(P, K)``: whether each structure is in both the moving and the fixed label map of a pair.

    Dice is NaN (left out of means) where it is not. The structures of each
    image are found once, whatever the number of pairs it takes part in.
    """
    assert data.labels is not None  # called for data with label maps
    present = {index: np.isin(labels, np.unique(data.labels[index])) for index in np.unique(pairs)}
    return np.stack([present[moving] & present[fixed] for moving, fixed in pairs])


def _sweep_result(lams, pairs, labels, data, scores):
    def per_lam(values):
        return values.reshape(len(lams), len(pairs), *values.shape[1:])

    dice = None
    if data.has_labels:
        dice = np.where(label_presence(data, pairs, labels), per_lam(scores.dice), np.nan)
    return SweepResult(
        lams=lams, pairs=pairs, labels=labels, label_names=data.label_names, dice=dice,
        mse=per_lam(scores.mse), folding=per_lam(scores.folding),
        identity=identity_scores(data, pairs=pairs, labels=labels), ncc=per_lam(scores.ncc),
    )


def dataset_and_registrar(model: tf.keras.Model, data: Dataset | ArrayLike) -> tuple[Dataset, Registrar]:
    """``data`` as a Dataset of the model's shape (:func:`~hypermorph_nb.data.as_dataset`), and the model's Registrar."""
    return as_dataset(data, inshape=spec_of(model).inshape), Registrar.for_model(model)


def _batch_size(batch_size, data):
    return auto_batch_size(data.shape) if batch_size is None else check_count(batch_size, "batch_size")


def labels_of(data: Dataset, labels: ArrayLike | None) -> np.ndarray:
    if not data.has_labels:
        return np.array([], dtype=int)
    return data.label_values() if labels is None else np.asarray(labels, dtype=int).reshape(-1)


