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
- :func:`hypermorph_nb.prepare_scans` (:mod:`.preparation`): raw scans (any grid, orientation,
  intensities) reoriented, resampled, normalised, brain-masked and affinely aligned onto one grid
  (:class:`PreparedScans`), with a QC picture (:mod:`.qc`); every bad file named at once
  (:class:`ScanErrors`, :mod:`.scan_lists`);
- :func:`even_split`, :func:`random_split`: training/validation/test sets;
- :func:`as_dataset`: a Dataset, or arrays of images in [0, 1] checked into one (every `data=` argument);
- :class:`PairBatches`, :func:`voxelmorph_generator`, :func:`hypermorph_generator`:
  training pairs, with λ drawn by :class:`LambdaSampling` (the only names here that load
  TensorFlow, on first use: preparing scans needs none).
"""
from .dataset import Dataset, as_dataset
from .files import load_npz, read_label_names
from .folders import load_folder
from .preparation import PreparedScans
from .scan_lists import ScanErrors
from .sampling import LAMBDA_MODES, LambdaSampling
from .sources import SOURCES, find_shared_ixi3d, find_shared_oasis2d, load_source, resize
from .splits import even_split, random_split
from .synthetic import KnownPairs, synthetic, synthetic_pairs
from .tutorial import OASIS_TUTORIAL, DataUnavailableError, TutorialSource, cache_dir, load_tutorial

__all__ = [
    "Dataset", "as_dataset", "PreparedScans", "ScanErrors", "KnownPairs", "synthetic", "synthetic_pairs",
    "load_tutorial", "load_npz", "load_folder", "read_label_names",
    "cache_dir", "OASIS_TUTORIAL", "TutorialSource", "DataUnavailableError",
    "load_source", "SOURCES", "find_shared_oasis2d", "find_shared_ixi3d", "resize",
    "even_split", "random_split",
    "PairBatches", "voxelmorph_generator", "hypermorph_generator",
    "LambdaSampling", "LAMBDA_MODES",
]
#: The training-pair generators: they need TensorFlow, so they load on first use.
_GENERATORS = ("PairBatches", "voxelmorph_generator", "hypermorph_generator")
#: Second paths of earlier releases -> canonical paths (kept one release, with a warning).
_DEPRECATED = {"prepare_scans": "hypermorph_nb.prepare_scans", "check_lambda": "hypermorph_nb.checks.check_lambda"}


def __getattr__(name: str) -> object:
    if name in _GENERATORS:
        from . import generators

        return getattr(generators, name)
    from ..runtime.deprecation import deprecated_attribute

    return deprecated_attribute(__name__, name, _DEPRECATED)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
