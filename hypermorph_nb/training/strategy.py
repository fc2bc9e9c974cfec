"""Choose the ``tf.distribute`` strategy that :func:`hypermorph_nb.train` runs under."""

import warnings

import tensorflow as tf


def resolve_strategy(strategy, batch_size):
    """Return (strategy, is_the_default_strategy)."""
    if strategy == "auto":
        if tf.distribute.has_strategy():
            strategy = tf.distribute.get_strategy()
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
