"""λ values: one rule for a single λ, a λ per pair, and a list of λ (a sweep grid, figure panels);
λ of one registration by a model that takes it or not (:func:`check_model_lambda`), and every
hyperparameter of a model conditioned on several (:func:`check_model_hyperparameters`); and the
number of refinement iterations (:func:`check_refine`).

λ weighs smoothness against image similarity and lies in [0, 1] (0: similarity
only, 1: smoothness only). :func:`check_lambda` checks values that go into a model
(float32, any shape); :func:`check_lambdas` checks a list of one or more λ that a
function loops over (float64, kept exactly as given, repeats refused on request).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def _unit_interval(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as float64, all finite and in [0, 1], or the error every λ check raises."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers in [0, 1], "
                        f"got {values!r}") from None
    bad = ~(np.isfinite(array) & (array >= 0.0) & (array <= 1.0))
    if bad.any():
        raise ValueError(
            f"{name} must lie in [0, 1] (0: image similarity only, 1: smoothness only), "
            f"got {array[bad].ravel()[:5].tolist()}; clip or rescale it into [0, 1]")
    return array


def check_lambda(lam: ArrayLike, *, name: str = "lam") -> np.ndarray:
    """Check that λ values lie in [0, 1] and return them as float32, the model's input type.

    Parameters
    ----------
    lam : float or array-like
        One λ, or one per pair.
    name : str
        The argument's name, quoted in the error.

    Returns
    -------
    np.ndarray
        float32, same shape as ``lam``.

    Raises
    ------
    TypeError
        If ``lam`` is not a number or an array of numbers.
    ValueError
        If a value is NaN, infinite or outside [0, 1].

    Examples
    --------
    >>> check_lambda([0.0, 0.5, 1.0]).tolist()
    [0.0, 0.5, 1.0]
    >>> check_lambda(1.5)
    Traceback (most recent call last):
    ...
    ValueError: lam must lie in [0, 1] (0: image similarity only, 1: smoothness only), got [1.5]; clip or rescale it into [0, 1]
    """
    return _unit_interval(lam, name).astype(np.float32)


def check_lambdas(lams: ArrayLike, *, name: str = "lams", allow_repeats: bool = True) -> np.ndarray:
    """Check a list of one or more λ in [0, 1] (a sweep grid, animation frames, figure panels).

    Parameters
    ----------
    lams : float or sequence of float
        One λ or several; a single number counts as a list of one.
    name : str
        The argument's name, quoted in errors.
    allow_repeats : bool
        Whether a λ may appear twice (a grid that scores each λ once refuses repeats).

    Returns
    -------
    np.ndarray
        1-D float64, in the order given.

    Raises
    ------
    TypeError
        If ``lams`` holds something other than numbers.
    ValueError
        If it is empty, a value lies outside [0, 1], or a value repeats where
        ``allow_repeats`` is False.

    Examples
    --------
    >>> check_lambdas([0.0, 0.5, 0.9]).tolist()
    [0.0, 0.5, 0.9]
    >>> check_lambdas([0.5, 0.5], allow_repeats=False)
    Traceback (most recent call last):
    ...
    ValueError: lams has repeated values [0.5, 0.5]; give each λ once
    >>> check_lambdas([])
    Traceback (most recent call last):
    ...
    ValueError: lams is empty; pass at least one λ in [0, 1], e.g. lams=[0.5, 0.9, 0.99]
    """
    values = _unit_interval(lams, name).reshape(-1)
    if values.size == 0:
        raise ValueError(f"{name} is empty; pass at least one λ in [0, 1], e.g. {name}=[0.5, 0.9, 0.99]")
    if not allow_repeats and len(np.unique(values)) != len(values):
        raise ValueError(f"{name} has repeated values {values.tolist()}; give each λ once")
    return values


def check_refine(refine: Any) -> int:
    """``refine`` as a number of iterations (an int ≥ 0), or a clear error.

    Examples
    --------
    >>> check_refine(20), check_refine(0)
    (20, 0)
    >>> check_refine(2.5)
    Traceback (most recent call last):
    ...
    ValueError: refine must be a whole number of iterations >= 0 (0 leaves the network's field as it is), got 2.5
    """
    if isinstance(refine, bool) or not isinstance(refine, numbers.Integral) or refine < 0:
        raise ValueError("refine must be a whole number of iterations >= 0 (0 leaves the network's field "
                         f"as it is), got {refine!r}")
    return int(refine)


def check_model_lambda(lam: float | None, *, hypermorph: bool, model: str = "this model",
                       name: str = "lam") -> float | None:
    """λ of one registration: given and in [0, 1] for a HyperMorph model, absent for a baseline.

    Parameters
    ----------
    lam : float or None
    hypermorph : bool
        Whether the model takes λ (a HyperMorph model) or was trained at one λ (a baseline).
    model : str
        How the model is called in the error (e.g. its folder).
    name : str
        The argument's name in the error: ``"lam"`` (Python) or ``"--lam"`` (the command line).

    Examples
    --------
    >>> check_model_lambda(0.5, hypermorph=True)
    0.5
    >>> check_model_lambda(None, hypermorph=True, name="--lam")
    Traceback (most recent call last):
    ...
    ValueError: this model is a HyperMorph model, which registers at a λ you choose: give it with --lam, a value in [0, 1] (e.g. --lam 0.5; a larger λ gives a smoother field)
    """
    if hypermorph and lam is None:
        how = (f"give it with {name}, a value in [0, 1] (e.g. {name} 0.5" if name.startswith("-") else
               f"pass {name}=<value in [0, 1]> (e.g. {name}=0.5")
        raise ValueError(f"{model} is a HyperMorph model, which registers at a λ you choose: {how}; a larger λ "
                         "gives a smoother field)")
    if not hypermorph and lam is not None:
        raise ValueError(f"{model} is a VoxelMorph baseline, trained at one fixed λ, and takes no {name}; leave "
                         f"{name} out, or use a HyperMorph model to choose λ at test time")
    return None if lam is None else float(check_lambda(lam, name=name.lstrip("-")).reshape(-1)[0])


def check_model_hyperparameters(values: Mapping[str, Any], recorded: Sequence[Mapping[str, Any]] | None, *,
                                hypermorph: bool, model: str = "this model",
                                command_line: bool = False) -> dict[str, float]:
    """The hyperparameter values of one registration, checked against those the model records.

    The rule of :func:`hypermorph_nb.networks.hyperparameters.model_inputs` (the values the
    network is fed), applied before any work from the model's configuration alone, so that
    the command line can use it before TensorFlow loads.

    Parameters
    ----------
    values : mapping of str to float or None
        Name -> value, ``'lam'`` included; None counts as not given.
    recorded : sequence of mapping, or None
        The model's ``options["hyperparameters"]`` (each with ``name``, ``low``, ``high``, as
        ``model.json`` holds them); None for a model conditioned on λ alone (then
        :func:`check_model_lambda`'s rule and messages).
    hypermorph : bool
        Whether the model takes hyperparameters at all (a baseline takes none).
    model : str
        How the model is called in errors (e.g. its folder).
    command_line : bool
        Name the values as ``--hyper NAME=VALUE`` (the command line) instead of ``NAME=VALUE``.

    Returns
    -------
    dict of str to float
        Every hyperparameter of the model with its value, in the model's order (empty for a
        baseline).

    Raises
    ------
    ValueError
        For a value the model does not take, a missing one, or one outside its range.

    Examples
    --------
    >>> both = [{"name": "lam", "low": 0.0, "high": 1.0}, {"name": "label_weight", "low": 0.0, "high": 1.0}]
    >>> check_model_hyperparameters({"lam": 0.3, "label_weight": 0.5}, both, hypermorph=True)
    {'lam': 0.3, 'label_weight': 0.5}
    >>> check_model_hyperparameters({"lam": 0.3}, both, hypermorph=True)
    Traceback (most recent call last):
    ...
    ValueError: this model is conditioned on lam in [0, 1], label_weight in [0, 1]: pass label_weight=<value in [0, 1]> too, e.g. lam=0.5, label_weight=0.5
    >>> check_model_hyperparameters({"lam": 0.3, "label_weight": 0.5}, None, hypermorph=True)
    Traceback (most recent call last):
    ...
    ValueError: this model is conditioned on λ alone and takes no label_weight; leave it out, or use a model built with hyperparameters=("lam", "label_weight")
    """
    given = {name: value for name, value in values.items() if value is not None}
    shown = "--hyper " if command_line else ""
    if recorded is None or not hypermorph:
        others = sorted(set(given) - {"lam"})
        if others and hypermorph:
            names = ", ".join(f'"{name}"' for name in others)
            raise ValueError(f"{model} is conditioned on λ alone and takes no {', '.join(others)}; leave it out, "
                             f'or use a model built with hyperparameters=("lam", {names})')
        if others:
            raise ValueError(f"{model} is a VoxelMorph baseline, trained at one fixed λ, and takes no "
                             f"{', '.join(others)}; leave {shown}{others[0]} out")
        lam = check_model_lambda(given.get("lam"), hypermorph=hypermorph, model=model,
                                 name="--lam" if command_line else "lam")
        return {} if lam is None else {"lam": lam}
    ranges = {str(entry["name"]): (float(entry.get("low", 0.0)), float(entry.get("high", 1.0)))
              for entry in recorded}
    defaults = {str(entry["name"]): float(entry.get("default", sum(ranges[str(entry["name"])]) / 2))
                for entry in recorded}
    unknown = sorted(set(given) - set(ranges))
    if unknown:
        raise ValueError(f"{model} takes no {', '.join(unknown)}; its hyperparameters are {list(ranges)}")
    checked = {}
    for name, (low, high) in ranges.items():
        if name not in given:
            described = ", ".join(f"{other} in [{low_:g}, {high_:g}]" for other, (low_, high_) in ranges.items())
            example = (" " if command_line else ", ").join(f"{other}={value:g}" for other, value in defaults.items())
            raise ValueError(f"{model} is conditioned on {described}: pass {shown}{name}=<value in "
                             f"[{low:g}, {high:g}]> too, e.g. {shown}{example}")
        try:
            if isinstance(given[name], bool):
                raise TypeError
            value = float(given[name])
        except (TypeError, ValueError):
            raise ValueError(f"{shown}{name} must be a number in [{low:g}, {high:g}], got {given[name]!r}") from None
        if not (np.isfinite(value) and low <= value <= high):
            raise ValueError(f"{shown}{name} must lie in [{low:g}, {high:g}] (the range the model was trained "
                             f"over), got {given[name]!r}")
        checked[name] = value
    return checked
