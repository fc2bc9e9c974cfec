"""How training draws λ: uniform, end-point oversampling, beta, log-uniform near 1, or fixed."""

from __future__ import annotations

from typing import Any

import dataclasses
import numbers

import numpy as np

from ..checks.values import check_lambda

LAMBDA_MODES = ("uniform", "oversample", "beta", "log1m", "fixed")


@dataclasses.dataclass(frozen=True)
class LambdaSampling:
    """A distribution of λ over [0, 1] for HyperMorph training.

    Attributes
    ----------
    mode : {'uniform', 'oversample', 'beta', 'log1m', 'fixed'}
        ``uniform``
            λ ~ U(0, 1), as in the seed tutorial.
        ``oversample``
            With probability ``oversample_rate`` λ is exactly 0 or 1 (half
            each), otherwise λ ~ U(0, 1), as voxelmorph's
            ``train_hypermorph.py --oversample-rate``.
        ``beta``
            λ ~ Beta(a, b); e.g. ``a=4, b=1`` puts more training near λ = 1.
        ``log1m``
            ``1 − λ = 10 ** U(log10(low), 0)``: log-uniform in ``1 − λ``, so
            each decade 0.9, 0.99, 0.999 ... down to ``1 − low`` gets the same
            share of training. With the tutorial's MSE loss the useful
            registrations lie at λ close to 1, which this mode resolves.
            λ lies in ``[0, 1 − low]``.
        ``fixed``
            Every λ equals ``value`` (e.g. to fine-tune or validate at one λ).
    oversample_rate : float
        End-point probability for ``oversample`` (default 0.2), in [0, 1].
    a, b : float
        Beta parameters for ``beta`` (> 0).
    low : float
        Smallest ``1 − λ`` for ``log1m`` (default 1e-3), in (0, 1).
    value : float
        The λ of ``fixed``, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> sampling = LambdaSampling("oversample", oversample_rate=0.5)
    >>> lam = sampling.sample(np.random.default_rng(0), 10_000)
    >>> round(float(np.isin(lam, [0.0, 1.0]).mean()), 1)
    0.5
    >>> lam = LambdaSampling("log1m", low=1e-3).sample(np.random.default_rng(0), 10_000)
    >>> round(float((lam > 0.99).mean()), 1)   # 1 − λ < 10⁻² for a third of the draws
    0.3
    >>> LambdaSampling.coerce(0.9).mode
    'fixed'
    """

    mode: str = "uniform"
    oversample_rate: float = 0.2
    a: float = 1.0
    b: float = 1.0
    low: float = 1e-3
    value: float = 0.5

    def __post_init__(self):
        if self.mode not in LAMBDA_MODES:
            raise ValueError(f"λ sampling mode must be one of {LAMBDA_MODES}, got {self.mode!r}")
        if not 0.0 <= self.oversample_rate <= 1.0:
            raise ValueError(f"oversample_rate must lie in [0, 1], got {self.oversample_rate!r}")
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"beta parameters must be > 0, got a={self.a!r}, b={self.b!r}")
        if not 0.0 < self.low < 1.0:
            raise ValueError(f"low (the smallest 1 − λ of 'log1m') must lie in (0, 1), "
                             f"e.g. 1e-3; got {self.low!r}")
        check_lambda(self.value, name="value (the λ of 'fixed')")

    @classmethod
    def coerce(cls, value: LambdaSampling | str | dict[str, Any] | float) -> LambdaSampling:
        """Accept a LambdaSampling, a mode name, a dict of its fields, or a fixed λ.

        Examples
        --------
        >>> LambdaSampling.coerce({"mode": "beta", "a": 4, "b": 1}).a
        4
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        if isinstance(value, dict):
            unknown = set(value) - {field.name for field in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"unknown λ sampling field(s) {sorted(unknown)}; known: "
                                 f"{[field.name for field in dataclasses.fields(cls)]}")
            return cls(**value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return cls(mode="fixed", value=float(check_lambda(float(value), name="lam_sampling")))
        raise TypeError(
            f"lam_sampling must be one of the modes {LAMBDA_MODES}, a dict such as "
            "{'mode': 'beta', 'a': 4, 'b': 1}, a fixed λ in [0, 1], or a LambdaSampling; "
            f"got {value!r}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` λ values (float32) with ``rng`` (a numpy Generator)."""
        if self.mode == "fixed":
            return np.full(size, self.value, np.float32)
        if self.mode == "beta":
            return rng.beta(self.a, self.b, size).astype(np.float32)
        if self.mode == "log1m":
            one_minus = 10.0 ** rng.uniform(np.log10(self.low), 0.0, size)
            return (1.0 - one_minus).astype(np.float32)
        lam = rng.random(size)
        if self.mode == "oversample":
            endpoint = rng.random(size) < self.oversample_rate
            lam = np.where(endpoint, (rng.random(size) < 0.5).astype(float), lam)
        return lam.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for checkpoints and reports); ``coerce`` reads it back."""
        return dataclasses.asdict(self)
