"""Data: loaders, the synthetic default, splits and training-pair generators."""
from .dataset import Dataset
from .synthetic import KnownPairs, synthetic, synthetic_pairs

__all__ = ["Dataset", "KnownPairs", "synthetic", "synthetic_pairs"]
