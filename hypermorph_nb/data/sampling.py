"""How training draws λ: uniform, with end-point oversampling, or from a beta law."""

import dataclasses

import numpy as np

LAMBDA_MODES = ("uniform", "oversample", "beta")


@dataclasses.dataclass(frozen=True)
class LambdaSampling:
    """A distribution of λ over [0, 1] for HyperMorph training.

    Attributes
    ----------
    mode : {'uniform', 'oversample', 'beta'}
        ``uniform``: λ ~ U(0, 1), as in the seed tutorial. ``oversample``:
        with probability ``oversample_rate`` λ is exactly 0 or 1 (half each),
        otherwise uniform, as voxelmorph's ``train_hypermorph.py
        --oversample-rate``. ``beta``: λ ~ Beta(a, b); e.g. ``a=4, b=1``
        concentrates training near λ = 1, where registrations are useful
        with the MSE loss.
    oversample_rate : float
        End-point probability for ``oversample`` (default 0.2).
    a, b : float
        Beta parameters for ``beta``.

    Examples
    --------
    >>> import numpy as np
    >>> sampling = LambdaSampling("oversample", oversample_rate=0.5)
    >>> lam = sampling.sample(np.random.default_rng(0), 10_000)
    >>> round(float(np.isin(lam, [0.0, 1.0]).mean()), 1)
    0.5
    """

    mode: str = "uniform"
    oversample_rate: float = 0.2
    a: float = 1.0
    b: float = 1.0

    def __post_init__(self):
        if self.mode not in LAMBDA_MODES:
            raise ValueError(f"λ sampling mode must be one of {LAMBDA_MODES}, got {self.mode!r}")
        if not 0.0 <= self.oversample_rate <= 1.0:
            raise ValueError(f"oversample_rate must lie in [0, 1], got {self.oversample_rate!r}")
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"beta parameters must be > 0, got a={self.a!r}, b={self.b!r}")

    @classmethod
    def coerce(cls, value):
        """Accept a LambdaSampling, a mode name, or a dict of its fields."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(
            "lam_sampling must be 'uniform', 'oversample', 'beta', a dict such as "
            f"{{'mode': 'beta', 'a': 4, 'b': 1}}, or a LambdaSampling; got {value!r}")

    def sample(self, rng, size):
        """Draw ``size`` λ values (float32) with ``rng`` (a numpy Generator)."""
        if self.mode == "beta":
            return rng.beta(self.a, self.b, size).astype(np.float32)
        lam = rng.random(size)
        if self.mode == "oversample":
            endpoint = rng.random(size) < self.oversample_rate
            lam = np.where(endpoint, (rng.random(size) < 0.5).astype(float), lam)
        return lam.astype(np.float32)

    def to_json(self):
        """A JSON-serialisable dict (for checkpoints and reports)."""
        return dataclasses.asdict(self)
