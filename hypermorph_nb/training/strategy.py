"""The ``tf.distribute`` strategy that :func:`hypermorph_nb.train` runs under, and its input.

Whatever the strategy (one device, ``MirroredStrategy`` over the GPUs of one
machine, ``MultiWorkerMirroredStrategy`` over several machines), step ``s``
trains on the global batch ``s`` of the ``(seed, s)`` stream: every worker
draws that batch and keeps its own slice (:func:`distribute_batches`), so the
result does not depend on how many workers and devices share the work, and a
resumed run continues the same stream.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import warnings

import tensorflow as tf

from .workers import multiworker_strategy, several_workers

if TYPE_CHECKING:
    from ..data.generators import PairBatches



def resolve_strategy(strategy: str | tf.distribute.Strategy | None,
                     batch_size: int) -> tuple[tf.distribute.Strategy, bool]:
    """Return (strategy, is_the_default_strategy).

    'auto': the strategy whose scope is active; else the process's
    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several workers;
    else a ``MirroredStrategy`` over several GPUs; else one device.
    """
    if strategy == "auto":
        if tf.distribute.has_strategy():
            strategy = tf.distribute.get_strategy()
        elif several_workers():
            strategy = multiworker_strategy()
        else:
            gpus = tf.config.list_logical_devices("GPU")
            if len(gpus) < 2:
                return tf.distribute.get_strategy(), True
            if batch_size % len(gpus):
                warnings.warn(
                    f"training on one GPU: batch_size={batch_size} does not split evenly over "
                    f"{len(gpus)} GPUs; pass batch_size={len(gpus)} (or a multiple) to use all of them",
                    RuntimeWarning, stacklevel=4)
                return tf.distribute.get_strategy(), True
            strategy = tf.distribute.MirroredStrategy()
    elif strategy is None:
        if tf.distribute.has_strategy():
            raise ValueError("strategy=None inside a distribution strategy scope; pass that strategy, "
                             "or call train outside the scope")
        return tf.distribute.get_strategy(), True
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be 'auto', None or a tf.distribute.Strategy, got {strategy!r}")
    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise ValueError(f"batch_size={batch_size} does not split over the strategy's {replicas} "
                         f"replicas; pass batch_size={replicas} or a multiple of it")
    return strategy, False


def distribute_batches(strategy: tf.distribute.Strategy, batches: PairBatches, start_step: int,
                       stop_step: int) -> Any:
    """The batches ``start_step..stop_step-1`` of ``batches``, split over workers and replicas.

    Each worker draws the whole global batch ``s`` of the ``(seed, s)`` stream
    and keeps its slice: worker ``i`` of ``W`` the pairs ``i*B/W`` to
    ``(i+1)*B/W - 1``, which its local replicas share in consecutive equal
    parts. The global batch of step ``s`` is thus the batch one process
    draws.

    Parameters
    ----------
    strategy : tf.distribute.Strategy
    batches : hypermorph_nb.data.PairBatches
        Its ``batch_size`` is the global batch (a multiple of the replicas).
    start_step, stop_step : int

    Returns
    -------
    tf.distribute.DistributedDataset or tf.data.Dataset

    Examples
    --------
    >>> from hypermorph_nb.data import PairBatches, synthetic
    >>> batches = PairBatches(synthetic(4, (32, 32)), batch_size=2, seed=0)
    >>> first = next(iter(distribute_batches(tf.distribute.get_strategy(), batches, 3, 5)))
    >>> bool((first["moving"].numpy() == batches.batch(3)["moving"]).all())
    True
    """
    global_batch = batches.batch_size

    def dataset_fn(context):
        dataset = batches.dataset(start_step, stop_step)
        per_replica = context.get_per_replica_batch_size(global_batch)
        if per_replica == global_batch:
            return dataset
        share = global_batch // context.num_input_pipelines
        first = context.input_pipeline_id * share
        dataset = dataset.map(lambda batch: {key: value[first:first + share] for key, value in batch.items()})
        return dataset.unbatch().batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)
