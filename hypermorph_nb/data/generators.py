"""Training pairs: random moving/fixed pairs (and λ for HyperMorph).

Batch number ``step`` is a pure function of ``(seed, step)``, so training that
resumes at step ``s`` sees exactly the batches, and λ values, it would have
seen without the interruption.
"""

import numpy as np
import tensorflow as tf

from .dataset import Dataset
from .sampling import LambdaSampling


class PairBatches:
    """Deterministic stream of random registration batches from a dataset.

    Parameters
    ----------
    data : Dataset or np.ndarray
        Training images; an array must be ``(N, H, W, 1)``.
    batch_size : int
        Pairs per batch.
    seed : int
        Stream seed.
    lam_sampling : LambdaSampling, str or dict, optional
        When given, each batch also carries one λ per pair (HyperMorph).

    Examples
    --------
    >>> from hypermorph_nb.data import synthetic
    >>> batches = PairBatches(synthetic(6, (32, 32)), batch_size=2, seed=0, lam_sampling="uniform")
    >>> batch = batches.batch(0)
    >>> batch["moving"].shape, batch["lam"].shape
    ((2, 32, 32, 1), (2, 1))
    >>> bool((batches.batch(5)["lam"] == batches.batch(5)["lam"]).all())
    True
    """

    def __init__(self, data, *, batch_size=1, seed=0, lam_sampling=None):
        self.images = data.images if isinstance(data, Dataset) else np.asarray(data, np.float32)
        if self.images.ndim != 4 or self.images.shape[-1] != 1:
            raise ValueError(f"training images must have shape (N, H, W, 1), got {self.images.shape}")
        if len(self.images) < 2:
            raise ValueError(f"need at least 2 training images to form pairs, got {len(self.images)}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.lam_sampling = None if lam_sampling is None else LambdaSampling.coerce(lam_sampling)

    def batch(self, step):
        """The batch of training step ``step``: dict with moving, fixed (and lam)."""
        rng = np.random.default_rng([self.seed, int(step)])
        moving = rng.integers(len(self.images), size=self.batch_size)
        fixed = rng.integers(len(self.images), size=self.batch_size)
        batch = {"moving": self.images[moving], "fixed": self.images[fixed]}
        if self.lam_sampling is not None:
            batch["lam"] = self.lam_sampling.sample(rng, self.batch_size)[:, None]
        return batch

    def dataset(self, start_step=0, stop_step=None):
        """A prefetching ``tf.data.Dataset`` of the batches ``start_step..stop_step-1``."""
        shape = self.images.shape[1:]
        signature = {
            "moving": tf.TensorSpec((self.batch_size, *shape), tf.float32),
            "fixed": tf.TensorSpec((self.batch_size, *shape), tf.float32),
        }
        if self.lam_sampling is not None:
            signature["lam"] = tf.TensorSpec((self.batch_size, 1), tf.float32)

        def generate():
            step = start_step
            while stop_step is None or step < stop_step:
                yield self.batch(step)
                step += 1

        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.prefetch(tf.data.AUTOTUNE)
