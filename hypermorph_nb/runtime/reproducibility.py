"""Bit-identical runs: TensorFlow's op determinism plus fixed global seeds.

``build_hypermorph(seed=...)``/``build_vxm(seed=...)`` fix the initial weights
and ``train(seed=...)`` the stream of pairs and λ, yet two trainings of the same
notebook can still end with different weights in the last bits: kernels that
split a sum over threads, pick a cuDNN algorithm by timing, or add with atomics
may add in a different order on each run, and the differences grow over
thousands of steps. :func:`enable_determinism` switches TensorFlow to
deterministic kernels (``tf.config.experimental.enable_op_determinism``), which
makes two runs on the same machine, with the same thread counts, give identical
weights (``tests/test_reproducibility.py`` checks it for two trainings on the
CPU in fresh processes). What it costs is measured by ``benchmarks/determinism.py``.

Limits: identical on the same hardware and software only (another CPU, GPU,
TensorFlow release or thread count may round differently); on a GPU, an op with
no deterministic kernel raises ``UnimplementedError`` instead of running; and
op determinism stays on for the rest of the process.
"""

from __future__ import annotations

from ..checks.arrays import check_count

#: The defaults of :func:`enable_determinism`.
DEFAULT_SEED = 0


def enable_determinism(seed: int = DEFAULT_SEED, *, threads: int | None = None) -> None:
    """Make TensorFlow's kernels deterministic and seed the global generators.

    Call it once, right after ``import hypermorph_nb``, before building or
    training models.

    Parameters
    ----------
    seed : int or None
        Seeds Python's ``random``, NumPy's global generator and TensorFlow's
        global seed (``tf.keras.utils.set_random_seed``), for code that draws
        random numbers without a seed of its own. ``None`` leaves them alone.
        The toolkit's own randomness is set by the ``seed=`` of ``build_*``
        and ``train``.
    threads : int, optional
        Fix TensorFlow's intra- and inter-op thread pools to this many threads,
        so that runs on machines (or containers) with different core counts
        split work the same way. Must be set before TensorFlow runs its first
        operation in this process.

    Raises
    ------
    RuntimeError
        If ``threads`` is given after TensorFlow has started running.

    Examples
    --------
    The first call is not run by the doctests: it would switch their whole process.

    >>> import hypermorph_nb as hnb
    >>> hnb.enable_determinism(seed=0)   # doctest: +SKIP
    >>> hnb.enable_determinism(seed=0, threads=0)
    Traceback (most recent call last):
    ValueError: threads must be an integer >= 1, got 0
    """
    import tensorflow as tf

    if threads is not None:
        threads = check_count(threads, "threads")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as err:
            raise RuntimeError(
                f"enable_determinism(threads={threads}) came after TensorFlow started running ({err}). "
                "Fix: restart the kernel and call hnb.enable_determinism(...) right after "
                "`import hypermorph_nb`, or leave out threads=.") from None
    if seed is not None:
        tf.keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def determinism_enabled() -> bool:
    """True once :func:`enable_determinism` (or ``enable_op_determinism``) ran in this process."""
    from tensorflow.python.framework import config  # TensorFlow 2.21 has no public getter

    return bool(config.is_op_determinism_enabled())
