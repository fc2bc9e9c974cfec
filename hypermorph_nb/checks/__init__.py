"""Input checks: one place for each rule, so the same mistake gets the same error everywhere.

- :mod:`.arrays`: images and label maps (shape, dtype, finite values, normalisation), counts;
- :mod:`.affines`: voxel-to-world matrices, voxel sizes, orientation, same grid or not;
- :mod:`.grids`: an image on another grid than the one a model expects: refuse or resample;
- :mod:`.inputs`: a moving/fixed pair and its label maps made ready for a model, and the
  one check of images against the model's shape (:func:`check_model_shape`);
- :mod:`.values`: λ values (:func:`check_lambda`), lists of λ (:func:`check_lambdas`), a model's λ
  (:func:`check_model_lambda`) or hyperparameters (:func:`check_model_hyperparameters`), refinement iterations (:func:`check_refine`);
- :mod:`.files`: scan files (readable, 3D, on their scan's grid) and output folders, from headers
  only; :func:`check_scan_arguments`, every rule of a raw-scan registration before any work;
- :mod:`.pairs`: (moving, fixed) index pairs (:func:`check_pairs`, :func:`choose_pairs`).

Arrays given where a dataset is expected go through :func:`hypermorph_nb.data.as_dataset`,
which lives beside :class:`~hypermorph_nb.data.Dataset` (this package sits below ``data``) and
uses these checks. Nothing here imports TensorFlow.

Examples
--------
>>> from hypermorph_nb.checks import check_count
>>> check_count(3, "n")
3
"""
from .affines import as_affines, orientation, same_grid, voxel_sizes
from .arrays import as_images, as_labels, check_count, check_normalize
from .grids import check_affine, input_affine
from .inputs import check_model_shape, prepare_labels, prepare_pair
from .pairs import check_pair, check_pairs, choose_pairs, resolve_pairs
from .files import check_out_folder, check_scan_arguments, check_scan_file
from .values import check_lambda, check_lambdas, check_model_hyperparameters, check_model_lambda, check_refine

__all__ = ["as_images", "as_labels", "check_count", "check_normalize",
           "as_affines", "voxel_sizes", "orientation", "same_grid", "check_affine", "input_affine",
           "check_model_shape", "prepare_pair", "prepare_labels",
           "check_lambda", "check_lambdas", "check_model_lambda", "check_model_hyperparameters", "check_refine", "check_scan_file", "check_out_folder",
           "check_scan_arguments", "check_pairs", "check_pair", "choose_pairs",
           "resolve_pairs"]
