"""Data: loaders, the synthetic default, splits and training-pair generators.

Every loader returns a :class:`Dataset`: ``images`` ``(N, *spatial, 1)`` float32
in [0, 1] (2D ``(N, H, W, 1)`` or 3D ``(N, D, H, W, 1)``), ``labels``
``(N, *spatial)`` int32 label maps (or None) and ``affines`` ``(N, 4, 4)``
voxel-to-world matrices (or None).

- :func:`load_tutorial`: the seed tutorial's 2D OASIS file, downloaded once and cached;
- :func:`load_npz`: a stack in one ``.npz`` (e.g. ``../shared/data/oasis2d/oasis2d_300.npz``,
  or the 3D ``../shared/data/ixi3d/ixi3d_150.npz``);
- :func:`load_folder`: the neurite-oasis folder layouts (2D and 3D) or a folder of your
  own NIfTI/MGZ/NumPy/PNG files;
- :func:`synthetic`, :func:`synthetic_pairs`: the embedded default in 2D or 3D, no download;
- :func:`load_source`: pick one of the above by name (the notebooks' parameter), with fallbacks;
- :func:`prepare_scans`: raw scans (any grid, orientation, intensities) reoriented, resampled,
  normalised, brain-masked and affinely aligned onto one grid (:class:`PreparedScans`);
- :func:`even_split`, :func:`random_split`: training/validation/test sets;
- :func:`as_dataset`: a Dataset, or arrays of images in [0, 1] checked into one (every `data=` argument);
- :class:`PairBatches`, :func:`voxelmorph_generator`, :func:`hypermorph_generator`:
  training pairs, with λ drawn by :class:`LambdaSampling`.
"""
from ..checks.values import check_lambda  # public here since 0.1; its home is hypermorph_nb.checks
from .dataset import Dataset, as_dataset
from .files import load_npz, read_label_names
from .folders import load_folder
from .generators import PairBatches, hypermorph_generator, voxelmorph_generator
from .preparation import PreparedScans, prepare_scans
from .sampling import LAMBDA_MODES, LambdaSampling
from .sources import SOURCES, find_shared_ixi3d, find_shared_oasis2d, load_source, resize
from .splits import even_split, random_split
from .synthetic import KnownPairs, synthetic, synthetic_pairs
from .tutorial import OASIS_TUTORIAL, DataUnavailableError, TutorialSource, cache_dir, load_tutorial

__all__ = [
    "Dataset", "as_dataset", "prepare_scans", "PreparedScans", "KnownPairs", "synthetic", "synthetic_pairs",
    "load_tutorial", "load_npz", "load_folder", "read_label_names",
    "cache_dir", "OASIS_TUTORIAL", "TutorialSource", "DataUnavailableError",
    "load_source", "SOURCES", "find_shared_oasis2d", "find_shared_ixi3d", "resize",
    "even_split", "random_split",
    "PairBatches", "voxelmorph_generator", "hypermorph_generator",
    "LambdaSampling", "LAMBDA_MODES", "check_lambda",
]
