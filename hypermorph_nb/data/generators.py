"""Training pairs: random moving/fixed pairs (and λ for HyperMorph).

One sampling implementation, :class:`PairBatches`, serves three front ends:

- :meth:`PairBatches.dataset`: a prefetching ``tf.data`` pipeline (what
  :func:`hypermorph_nb.train` uses), so the input never stalls training;
- :func:`voxelmorph_generator`: the seed tutorial's generator, yielding
  ``([moving, fixed], [fixed, zeros])`` for ``model.fit``;
- :func:`hypermorph_generator`: the same with λ appended to the inputs,
  ``([moving, fixed, lam], [fixed, zeros])``.

Batch number ``step`` is a pure function of ``(seed, step)``, so training that
resumes at step ``s`` sees exactly the batches, and λ values, it would have
seen without the interruption.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TYPE_CHECKING

from numpy.typing import ArrayLike
import numpy as np
import tensorflow as tf

from .dataset import as_dataset
from .sampling import LambdaSampling
from ..checks.arrays import check_count

if TYPE_CHECKING:
    from .dataset import Dataset
    from ..networks.hyperparameters import Hyperparameter



class PairBatches:
    """Deterministic stream of random registration batches from a dataset.

    Each pair draws its moving and its fixed image independently and uniformly
    from the training images, as the seed tutorial's generator does.

    Parameters
    ----------
    data : Dataset or np.ndarray
        Training images, 2D or 3D; an array must be ``(N, *spatial, 1)`` or
        ``(N, *spatial)`` with values in [0, 1].
    batch_size : int
        Pairs per batch.
    seed : int
        Stream seed.
    lam_sampling : LambdaSampling, str, dict or float, optional
        When given, each batch also carries one λ per pair (HyperMorph); see
        :class:`LambdaSampling` for the modes.
    include_labels : bool
        Also carry ``moving_labels`` and ``fixed_labels`` ``(B, *spatial)``
        int32 (``data`` must be a Dataset with labels), e.g. to score
        validation batches with Dice.
    label_structures : int, optional
        With ``include_labels``: also carry ``label_ids`` ``(B, label_structures)``
        int32, the label values (background 0 left out) whose one-hot maps a
        Dice term compares for each pair. A pair whose two maps hold at most
        this many structures gets all of them, padded with -1 (a value no
        label map holds); one with more gets that many drawn at random from
        them, so that one-hot maps stay small (a brain atlas has well over a
        hundred structures) while every structure is drawn in turn. The draws
        come after the pair's and λ's, so the images and λ of every step are
        those of a stream without labels.
    include_affines : bool
        Also carry ``moving_affine`` and ``fixed_affine`` ``(B, 4, 4)`` float64,
        the voxel-to-world affines of the images drawn (``data`` must be a
        Dataset with affines), e.g. to write registrations as NIfTI files.
        Off by default: the batches hold exactly what training needs.
    extra_sampling : sequence of (Hyperparameter, LambdaSampling)
        A model's hyperparameters besides λ and how to draw them: each batch carries
        ``batch[name]`` ``(B, 1)``, the sampling's draw over [0, 1] mapped onto the
        hyperparameter's range, drawn after λ (so λ's stream is unchanged).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> batches = PairBatches(synthetic(6, (32, 32)), batch_size=2, seed=0, lam_sampling="uniform")
    >>> batch = batches.batch(0)
    >>> batch["moving"].shape, batch["lam"].shape
    ((2, 32, 32, 1), (2, 1))
    >>> bool((batches.batch(5)["lam"] == batches.batch(5)["lam"]).all())
    True
    >>> PairBatches(synthetic(3, (16, 16, 16)), include_affines=True).batch(0)["fixed_affine"].shape
    (1, 4, 4)
    >>> labelled = PairBatches(synthetic(4, (32, 32)), include_labels=True, label_structures=3)
    >>> labelled.batch(0)["label_ids"].shape
    (1, 3)
    """

    def __init__(self, data: Dataset | ArrayLike, *, batch_size: int = 1, seed: int = 0,
                 lam_sampling: LambdaSampling | str | dict[str, Any] | float | None = None,
                 include_labels: bool = False, include_affines: bool = False,
                 label_structures: int | None = None,
                 extra_sampling: Sequence[tuple[Hyperparameter, LambdaSampling]] = ()) -> None:
        data = as_dataset(data, name="training images")
        self.images = data.images
        if len(self.images) < 2:
            raise ValueError(f"need at least 2 training images to form pairs, got {len(self.images)}")
        self.batch_size = check_count(batch_size, "batch_size")
        self.labels: np.ndarray | None = None
        if include_labels:
            if data.labels is None:
                raise ValueError("include_labels=True needs a Dataset with label maps; load data "
                                 "with labels (e.g. load_npz on a file with 'segs') or pass "
                                 "include_labels=False")
            self.labels = data.labels.astype(np.int32, copy=False)
            if self.labels.shape != self.images.shape[:-1]:
                raise ValueError(f"the label maps have shape {self.labels.shape} but the images "
                                 f"{self.images.shape[:-1]}; give one label map per image, on its grid")
        self.label_structures: int | None = None
        self.structures: list[np.ndarray] | None = None
        if label_structures is not None:
            if self.labels is None:
                raise ValueError("label_structures needs include_labels=True and a Dataset with label maps")
            self.label_structures = check_count(label_structures, "label_structures")
            self.structures = [values[values > 0] for values in map(np.unique, self.labels)]
        self.affines = None
        if include_affines:
            if data.affines is None:
                raise ValueError("include_affines=True needs a Dataset with affines (from NIfTI/MGZ "
                                 "files, an .npz with 'affine', or synthetic data); pass "
                                 "Dataset(..., affines=...) or include_affines=False")
            self.affines = data.affines
        self.seed = int(seed)
        self.lam_sampling = None if lam_sampling is None else LambdaSampling.coerce(lam_sampling)
        self.extra_sampling = [(hyper, LambdaSampling.coerce(sampling)) for hyper, sampling in extra_sampling]

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """The batch of training step ``step``: dict with moving, fixed (and lam, labels)."""
        rng = np.random.default_rng([self.seed, int(step)])
        moving = rng.integers(len(self.images), size=self.batch_size)
        fixed = rng.integers(len(self.images), size=self.batch_size)
        batch = {"moving": self.images[moving], "fixed": self.images[fixed]}
        if self.lam_sampling is not None:
            batch["lam"] = self.lam_sampling.sample(rng, self.batch_size)[:, None]
        for hyper, sampling in self.extra_sampling:
            unit = sampling.sample(rng, self.batch_size)[:, None]
            batch[hyper.name] = (hyper.low + (hyper.high - hyper.low) * unit).astype(np.float32)
        if self.labels is not None:
            batch["moving_labels"] = self.labels[moving]
            batch["fixed_labels"] = self.labels[fixed]
        if self.structures is not None:
            batch["label_ids"] = np.stack([self._label_ids(rng, m, f) for m, f in zip(moving, fixed)])
        if self.affines is not None:
            batch["moving_affine"] = self.affines[moving]
            batch["fixed_affine"] = self.affines[fixed]
        return batch

    def _label_ids(self, rng: np.random.Generator, moving: int, fixed: int) -> np.ndarray:
        assert self.structures is not None and self.label_structures is not None  # with label_structures only
        present = np.union1d(self.structures[moving], self.structures[fixed])
        if present.size > self.label_structures:
            present = np.sort(rng.choice(present, size=self.label_structures, replace=False))
        ids = np.full(self.label_structures, -1, np.int32)
        ids[:present.size] = present
        return ids

    def batches(self, start_step: int = 0, stop_step: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Iterate over the batches ``start_step..stop_step-1`` (forever when None)."""
        step = int(start_step)
        while stop_step is None or step < stop_step:
            yield self.batch(step)
            step += 1

    def dataset(self, start_step: int = 0, stop_step: int | None = None) -> tf.data.Dataset:
        """A prefetching ``tf.data.Dataset`` of the batches ``start_step..stop_step-1``."""
        shape = self.images.shape[1:]
        signature = {
            "moving": tf.TensorSpec((self.batch_size, *shape), tf.float32),
            "fixed": tf.TensorSpec((self.batch_size, *shape), tf.float32),
        }
        if self.lam_sampling is not None:
            signature["lam"] = tf.TensorSpec((self.batch_size, 1), tf.float32)
        for hyper, _ in self.extra_sampling:
            signature[hyper.name] = tf.TensorSpec((self.batch_size, 1), tf.float32)
        if self.labels is not None:
            for key in ("moving_labels", "fixed_labels"):
                signature[key] = tf.TensorSpec((self.batch_size, *shape[:-1]), tf.int32)
        if self.structures is not None:
            signature["label_ids"] = tf.TensorSpec((self.batch_size, self.label_structures), tf.int32)
        if self.affines is not None:
            for key in ("moving_affine", "fixed_affine"):
                signature[key] = tf.TensorSpec((self.batch_size, 4, 4), tf.float64)
        dataset = tf.data.Dataset.from_generator(
            lambda: self.batches(start_step, stop_step), output_signature=signature)
        return dataset.prefetch(tf.data.AUTOTUNE)


def voxelmorph_generator(data: Dataset | ArrayLike, *, batch_size: int = 1, seed: int = 0,
                         start_step: int = 0) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """The seed tutorial's VoxelMorph generator, batched and seeded.

    Yields ``([moving, fixed], [fixed, zeros])`` forever: the model registers
    moving onto fixed, the first loss compares the moved image with
    ``fixed``, and the smoothness loss ignores its target, so it gets zeros
    of the flow's shape ``(B, *spatial, ndim)``.

    Parameters
    ----------
    data : Dataset or np.ndarray
        Training images.
    batch_size : int
    seed : int
    start_step : int
        First batch number (to resume a stream).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> inputs, targets = next(voxelmorph_generator(synthetic(4, (32, 32)), batch_size=2))
    >>> [x.shape for x in inputs], [y.shape for y in targets]
    ([(2, 32, 32, 1), (2, 32, 32, 1)], [(2, 32, 32, 1), (2, 32, 32, 2)])
    """
    batches = PairBatches(data, batch_size=batch_size, seed=seed)
    return _keras_pairs(batches, start_step)


def hypermorph_generator(data: Dataset | ArrayLike, *, batch_size: int = 1, seed: int = 0,
                         lam_sampling: LambdaSampling | str | dict[str, Any] | float = "uniform",
                         start_step: int = 0) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """The seed tutorial's HyperMorph generator: VoxelMorph pairs plus one λ per pair.

    Yields ``([moving, fixed, lam], [fixed, zeros])`` forever, ``lam`` of
    shape ``(B, 1)`` drawn by ``lam_sampling`` (the tutorial's is uniform).

    Parameters
    ----------
    data : Dataset or np.ndarray
        Training images.
    batch_size : int
    seed : int
    lam_sampling : LambdaSampling, str, dict or float
        See :class:`LambdaSampling`.
    start_step : int
        First batch number (to resume a stream).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> inputs, targets = next(hypermorph_generator(synthetic(4, (32, 32)), lam_sampling="oversample"))
    >>> inputs[2].shape, inputs[2].dtype
    ((1, 1), dtype('float32'))
    """
    batches = PairBatches(data, batch_size=batch_size, seed=seed, lam_sampling=lam_sampling)
    return _keras_pairs(batches, start_step)


def _keras_pairs(batches: PairBatches,
                 start_step: int) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    zeros = np.zeros((batches.batch_size, *batches.images.shape[1:-1], batches.images.ndim - 2),
                     np.float32)
    for batch in batches.batches(start_step):
        inputs = [batch["moving"], batch["fixed"]]
        if "lam" in batch:
            inputs.append(batch["lam"])
        yield inputs, [batch["fixed"], zeros]
