"""The loss hyperparameters a model is conditioned on: λ alone, or a vector of named ones.

A HyperMorph model takes one value per hyperparameter as its third input, in the order of
its :attr:`~hypermorph_nb.networks.models.ModelSpec.hyperparameters`. Each
:class:`Hyperparameter` has a name (the keyword that sets it: ``register(..., lam=0.3,
label_weight=0.5)``), a range that training covers, and a default that displays start from.
The model sees each value rescaled to [0, 1] over its range (:func:`model_inputs`), so a
range is a property of the model, saved with it.

Known names (:data:`KNOWN`):

- ``lam`` — λ, the weight of smoothness against similarity (every model has it);
- ``label_weight`` — γ, the weight of the label (Dice) term beside the image term:
  the loss is ``(1 − λ) · (image + γ · label) + λ · smooth``.

Examples
--------
>>> hypers = resolve(("lam", "label_weight"))
>>> [h.name for h in hypers]
['lam', 'label_weight']
>>> model_inputs(hypers, {"lam": 0.3, "label_weight": [0.0, 1.0]}, batch=2).tolist()
[[0.30000001192092896, 0.0], [0.30000001192092896, 1.0]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One loss hyperparameter a model is conditioned on.

    Attributes
    ----------
    name : str
        The keyword that sets it (``'lam'``, ``'label_weight'``).
    low, high : float
        The range training draws it from (its values are checked against it).
    default : float
        Where sliders, validation and sweeps over the other hyperparameters hold it.
    label : str
        How figures and widgets name it, e.g. ``'λ'``.

    Examples
    --------
    >>> gamma = Hyperparameter("label_weight", high=2.0, default=1.0, label="γ")
    >>> gamma.unit([0.0, 1.0, 2.0]).tolist()
    [0.0, 0.5, 1.0]
    >>> Hyperparameter.from_json(gamma.to_json()) == gamma
    True
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    default: float = 0.5
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"a hyperparameter's name must be a Python identifier (it becomes a keyword, "
                             f"e.g. label_weight=0.5), got {self.name!r}")
        low, high, default = float(self.low), float(self.high), float(self.default)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"hyperparameter {self.name!r} needs a finite range low < high, got "
                             f"[{self.low}, {self.high}]")
        if not low <= default <= high:
            raise ValueError(f"hyperparameter {self.name!r}: default {self.default} lies outside its range "
                             f"[{low}, {high}]")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "label", self.label or self.name)

    def check(self, values: ArrayLike, *, name: str | None = None) -> np.ndarray:
        """``values`` as float32, refused (``ValueError`` naming the range) unless finite and in range."""
        shown = name or self.name
        try:
            array = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{shown} must be a number in [{self.low:g}, {self.high:g}], got {values!r}") from err
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{shown} must be finite, got {values!r}")
        if array.size and (array.min() < self.low or array.max() > self.high):
            raise ValueError(f"{shown} must lie in [{self.low:g}, {self.high:g}] (the range the model was "
                             f"trained over), got {values!r}")
        return array

    def unit(self, values: ArrayLike) -> np.ndarray:
        """``values`` rescaled from ``[low, high]`` to [0, 1] (what the network sees)."""
        return ((np.asarray(values, np.float32) - self.low) / (self.high - self.low)).astype(np.float32)

    def grid(self, count: int) -> np.ndarray:
        """``count`` evenly spaced values over the range (float64), ends included."""
        return np.linspace(self.low, self.high, int(count))

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> Hyperparameter:
        """Inverse of :meth:`to_json`."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in known})


#: The hyperparameters the losses of this package know, with their default ranges.
KNOWN: dict[str, Hyperparameter] = {
    "lam": Hyperparameter("lam", 0.0, 1.0, 0.5, "λ"),
    "label_weight": Hyperparameter("label_weight", 0.0, 1.0, 0.5, "γ"),
}
#: What every HyperMorph model without a ``hyperparameters`` option is conditioned on.
LAMBDA_ONLY: tuple[Hyperparameter, ...] = (KNOWN["lam"],)


def resolve(entries: Sequence[str | Hyperparameter | Mapping[str, Any]]) -> tuple[Hyperparameter, ...]:
    """The hyperparameters named by ``entries`` (names of :data:`KNOWN`, instances or their JSON).

    Raises
    ------
    ValueError
        For an unknown name, a name given twice, or a list without ``'lam'``.

    Examples
    --------
    >>> [h.label for h in resolve(["lam", Hyperparameter("label_weight", high=2.0, label="γ")])]
    ['λ', 'γ']
    >>> resolve(["label_weight"])
    Traceback (most recent call last):
    ...
    ValueError: hyperparameters must include 'lam' (λ, the smoothness weight every model learns), got ['label_weight']
    """
    if isinstance(entries, (str, Hyperparameter)):
        entries = [entries]
    resolved = []
    for entry in entries:
        if isinstance(entry, Hyperparameter):
            resolved.append(entry)
        elif isinstance(entry, str):
            if entry not in KNOWN:
                raise ValueError(f"unknown hyperparameter {entry!r}; known: {sorted(KNOWN)} (or give a "
                                 "hypermorph_nb.networks.Hyperparameter with its range)")
            resolved.append(KNOWN[entry])
        elif isinstance(entry, Mapping):
            resolved.append(Hyperparameter.from_json(entry))
        else:
            raise ValueError(f"hyperparameters are names like 'lam' or Hyperparameter objects, got {entry!r}")
    names = [h.name for h in resolved]
    if "lam" not in names:
        raise ValueError(f"hyperparameters must include 'lam' (λ, the smoothness weight every model learns), "
                         f"got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"each hyperparameter may be named once, got {names}")
    lam = resolved[names.index("lam")]
    if lam.low < 0.0 or lam.high > 1.0:
        raise ValueError(f"λ weighs smoothness against similarity as (1 − λ, λ): its range must lie within "
                         f"[0, 1], got [{lam.low:g}, {lam.high:g}]")
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise ValueError(f"the losses know no hyperparameter {unknown[0]!r}; known: {sorted(KNOWN)}")
    return tuple(resolved)


def model_inputs(hyperparameters: Sequence[Hyperparameter], values: Mapping[str, ArrayLike | None], *,
                 batch: int) -> np.ndarray:
    """The network's hyperparameter input, ``(batch, len(hyperparameters))`` float32 in [0, 1].

    Parameters
    ----------
    hyperparameters : sequence of Hyperparameter
        The model's (``spec.hyperparameters``), in input order.
    values : mapping of str to float or array_like
        One value per hyperparameter name (a scalar for every pair, or one per pair).
    batch : int
        Number of pairs.

    Raises
    ------
    ValueError
        For a missing, unknown or out-of-range value, or the wrong number of values.
    """
    names = [h.name for h in hyperparameters]
    given = {k: v for k, v in values.items() if v is not None}
    extra = sorted(set(given) - set(names))
    if extra:
        raise ValueError(f"this model takes no {', '.join(extra)}; its hyperparameters are {names}")
    columns = []
    for hyper in hyperparameters:
        if hyper.name not in given:
            raise ValueError(f"this model is conditioned on {describe(hyperparameters)}: pass "
                             f"{hyper.name}=<value in [{hyper.low:g}, {hyper.high:g}]> too, e.g. "
                             f"{', '.join(f'{h.name}={h.default:g}' for h in hyperparameters)}")
        column = hyper.check(given[hyper.name]).reshape(-1)
        if column.size == 1:
            column = np.repeat(column, batch)
        if column.size != batch:
            raise ValueError(f"got {column.size} {hyper.name} values for {batch} image pairs; pass one "
                             "value or one per pair")
        columns.append(hyper.unit(column))
    return np.stack(columns, axis=1).astype(np.float32)


def describe(hyperparameters: Sequence[Hyperparameter]) -> str:
    """The hyperparameters with their ranges, for messages: ``'lam in [0, 1], label_weight in [0, 1]'``."""
    return ", ".join(f"{h.name} in [{h.low:g}, {h.high:g}]" for h in hyperparameters)


def unit_grid(count: int, dims: int) -> np.ndarray:
    """``count ** dims`` points of the unit cube as ``(n, dims)`` float32 (``count`` points per side)."""
    axes = np.meshgrid(*[np.linspace(0.0, 1.0, int(count))] * int(dims), indexing="ij")
    return np.stack([a.reshape(-1) for a in axes], axis=1).astype(np.float32)
