"""Training on several machines: ``TF_CONFIG``, the chief and the other workers.

TensorFlow's multi-worker engine, ``tf.distribute.MultiWorkerMirroredStrategy``,
learns the job from the ``TF_CONFIG`` environment variable of each process,
e.g. for the second of two workers::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 1}}

:func:`hypermorph_nb.train` runs under it like under any strategy
(``strategy='auto'`` picks it when ``TF_CONFIG`` names several workers). What
one process does in the job is its :class:`WorkerRole`:

- the chief (``task`` ``chief``, or worker 0 when there is none) shows progress
  and the live plot, validates, and writes the real checkpoints; the other
  workers write theirs to temporary folders that they remove (TensorFlow's rule:
  every worker runs the same saving code) and log one line per epoch;
- every worker resumes from the chief's newest intact checkpoint, so
  ``checkpoint_dir`` must be a folder that all of them read (a shared file
  system), as for Keras' ``BackupAndRestore``;
- the workers agree on the steps of each compiled call and on a stop request,
  so interrupting any one of them stops all at the same step, with a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TYPE_CHECKING

import dataclasses
import glob
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from ..viz import training_display
from ..io.checkpoints import PREFIX, CheckpointError, latest_checkpoint, verify_checkpoint, write_checkpoint

if TYPE_CHECKING:
    from ..io.checkpoints import Checkpoint
    from .history import History


#: Folders (in ``checkpoint_dir``) where a worker other than the chief writes its checkpoint copy.
TEMP_PREFIX = ".worker-temp-"
_TASK_TYPES = ("chief", "worker")
_STRATEGY = None


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One process's view of a multi-worker job (from ``TF_CONFIG``).

    Attributes
    ----------
    workers : tuple of str
        ``host:port`` of every training task, the chief first.
    task_type : {'chief', 'worker'}
    task_index : int
        Index of this task among the tasks of its type.
    with_chief : bool
        Whether the cluster has a ``chief`` task (else worker 0 is the chief).

    Examples
    --------
    >>> cluster = Cluster(("a:1", "b:2"), "worker", 1)
    >>> cluster.num_workers, cluster.index, cluster.is_chief, cluster.label
    (2, 1, False, 'worker 1')
    """

    workers: tuple[str, ...]
    task_type: str
    task_index: int
    with_chief: bool = False

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    @property
    def index(self) -> int:
        """Position of this process among all workers (the chief is 0)."""
        if self.task_type == "chief":
            return 0
        return self.task_index + int(self.with_chief)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def label(self) -> str:
        """How logs name this process, e.g. 'worker 1'."""
        return f"{self.task_type} {self.task_index}"


def cluster_from_env(environ: Mapping[str, Any] | None = None) -> Cluster | None:
    """The :class:`Cluster` that ``TF_CONFIG`` describes, or None when it is unset.

    Parameters
    ----------
    environ : mapping, optional
        Defaults to ``os.environ``.

    Raises
    ------
    ValueError
        If ``TF_CONFIG`` is not JSON of the form ``{"cluster": {...}, "task":
        {"type": ..., "index": ...}}`` with this task among the training tasks.

    Examples
    --------
    >>> config = {"cluster": {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]},
    ...           "task": {"type": "worker", "index": 0}}
    >>> cluster_from_env({"TF_CONFIG": json.dumps(config)}).is_chief
    True
    >>> cluster_from_env({}) is None
    True
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    example = ('e.g. {"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        task_type, task_index = task.get("type"), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"TF_CONFIG is not a valid cluster description ({err}); {example}") from err
    if not chiefs + workers:
        raise ValueError(f"TF_CONFIG names no 'chief' or 'worker' tasks in its cluster; {example}")
    if len(chiefs) > 1:
        raise ValueError(f"TF_CONFIG names {len(chiefs)} chiefs; a job has at most one")
    if task_type not in _TASK_TYPES:
        raise ValueError(f"TF_CONFIG task type {task_type!r} does not train; MultiWorkerMirroredStrategy "
                         f"runs 'chief' and 'worker' tasks ({example})")
    tasks = chiefs if task_type == "chief" else workers
    if not 0 <= task_index < len(tasks):
        raise ValueError(f"TF_CONFIG task index {task_index} is outside the {len(tasks)} "
                         f"'{task_type}' addresses of its cluster")
    return Cluster(tuple(chiefs + workers), task_type, task_index, with_chief=bool(chiefs))


def several_workers(environ: Mapping[str, Any] | None = None) -> bool:
    """True when ``TF_CONFIG`` describes a job of more than one worker.

    Examples
    --------
    >>> several_workers({})
    False
    """
    cluster = cluster_from_env(environ)
    return cluster is not None and cluster.num_workers > 1


def multiworker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """This process's ``MultiWorkerMirroredStrategy`` for ``TF_CONFIG`` (created on the first call).

    TensorFlow requires the strategy to exist before any other TensorFlow
    operation runs in the process: call this at the start of a worker
    program, then ``train(..., strategy='auto')`` finds it.

    Raises
    ------
    RuntimeError
        If TensorFlow already ran operations in this process.
    """
    global _STRATEGY
    if _STRATEGY is None:
        cluster_from_env()  # a clear error for a malformed TF_CONFIG
        try:
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            if "startup" not in str(err):
                raise
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before any other TensorFlow operation "
                "runs in the process: call hypermorph_nb.training.workers.multiworker_strategy() at the "
                "start of each worker program (before loading data or building models), then "
                "train(..., strategy='auto'). In a notebook, restart the kernel and call it in the "
                "first cell.") from err
    return _STRATEGY


class WorkerRole:
    """What this process does in a training run: all of it, or its part of a multi-worker job.

    Outside a multi-worker job (one process, any other strategy) every method
    is the plain single-process behaviour and no collective runs.

    Examples
    --------
    >>> role = WorkerRole.of(tf.distribute.get_strategy())
    >>> role.is_chief, role.several, role.agree_on_count(7), role.stop_everywhere(False)
    (True, False, 7, False)
    """

    def __init__(self, strategy: tf.distribute.Strategy, cluster: Cluster | None) -> None:
        self.strategy = strategy
        self.cluster = cluster
        self.several = cluster is not None and cluster.num_workers > 1
        self.is_chief = cluster is None or not self.several or cluster.is_chief
        self._reducers: dict[str, Callable[[Sequence[float]], Any]] = {}

    @classmethod
    def of(cls, strategy: tf.distribute.Strategy) -> WorkerRole:
        """The role of this process under ``strategy``."""
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return cls(strategy, None)
        resolver = strategy.cluster_resolver
        spec = resolver.cluster_spec().as_dict()
        chiefs, workers = list(spec.get("chief", [])), list(spec.get("worker", []))
        if not resolver.task_type or len(chiefs + workers) < 2:
            return cls(strategy, None)
        return cls(strategy, Cluster(tuple(chiefs + workers), resolver.task_type, int(resolver.task_id),
                                     with_chief=bool(chiefs)))

    def progress(self, mode: str, **kwargs: Any) -> training_display.SilentProgress:
        """The chief's progress reporter, or the one-line-per-epoch log of another worker."""
        if self.is_chief or mode == "none":
            return training_display.make_progress(mode, **kwargs)
        assert self.cluster is not None  # not the chief: one of several workers
        return WorkerLog(self.cluster.label, **kwargs)

    # Agreement between the workers: one small collective each, in the same order on every worker.

    def agree_on_count(self, count: int) -> int:
        """The chief's number of steps for the next compiled call (each worker sizes its own)."""
        if not self.several:
            return count
        return int(self._collective("broadcast", [float(count)])[0])

    def stop_everywhere(self, requested: bool) -> bool:
        """True on every worker when a stop was requested on any of them."""
        if not self.several:
            return bool(requested)
        return bool(self._collective("sum", [float(requested)])[0] > 0)

    def share_chief_state(self, variables: Sequence[tf.Variable]) -> None:
        """Give every worker the chief's values of ``variables`` (model and optimizer state)."""
        if not self.several:
            return
        values = [tf.cast(v, tf.float64) for v in variables]  # one dtype for the collective, exact
        for variable, value in zip(variables, self._collective("broadcast", values, as_numpy=False)):
            variable.assign(tf.cast(value, variable.dtype))

    def _all_true(self, flag: bool) -> bool:
        return bool(self._collective("sum", [float(not flag)])[0] == 0)

    def _collective(self, kind: str, values: Sequence[float], *, as_numpy: bool = True) -> list[Any]:
        """'broadcast': the chief's values on every worker; 'sum': the sum over all replicas."""
        if kind not in self._reducers:
            self._reducers[kind] = _collective(self.strategy, from_chief=kind == "broadcast")
        values = [tf.constant(v, tf.float64) if isinstance(v, float) else v for v in values]
        reduced = self._reducers[kind](values)
        return [np.asarray(value) for value in reduced] if as_numpy else reduced

    # Checkpoints: the chief's are real; every worker resumes from them.

    def write_checkpoint(self, directory: str, **kwargs: Any) -> str:
        """Write a checkpoint: the chief's into ``directory``, the others' into a temporary folder they remove.

        Returns the chief's checkpoint folder on every worker.
        """
        if self.is_chief:
            return write_checkpoint(directory, **kwargs)
        os.makedirs(directory, exist_ok=True)
        assert self.cluster is not None  # not the chief: one of several workers
        prefix = f"{TEMP_PREFIX}{self.cluster.index}-"
        for stale in glob.glob(os.path.join(glob.escape(directory), prefix + "*")):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
        temporary = tempfile.mkdtemp(prefix=prefix, dir=directory)
        try:
            written = write_checkpoint(temporary, **kwargs)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return os.path.join(directory, os.path.basename(written))

    def latest_checkpoint(self, directory: str) -> Checkpoint | None:
        """The chief's newest intact checkpoint in ``directory`` (None when there is none), on every worker.

        The chief chooses (setting damaged checkpoints aside, see
        :func:`hypermorph_nb.io.checkpoints.latest_checkpoint`); the others read
        the one it chose. Every worker raises if one of them cannot.
        """
        if not self.several:
            return latest_checkpoint(directory)
        chosen, error = None, None
        if self.is_chief:
            try:
                chosen = latest_checkpoint(directory)
            except CheckpointError as err:
                error = err
        code = -2 if error is not None else (-1 if chosen is None else chosen.step)
        step = int(self._collective("broadcast", [float(code)])[0])
        if step == -2:
            raise error if error is not None else CheckpointError(
                f"the chief found no intact checkpoint in {directory} (see its log)")
        if step >= 0 and not self.is_chief:
            path = os.path.join(directory, f"{PREFIX}{step:08d}")
            assert self.cluster is not None  # not the chief: one of several workers
            try:
                chosen = verify_checkpoint(path)
            except CheckpointError as err:
                error = CheckpointError(
                    f"{self.cluster.label} cannot read the chief's checkpoint {path} ({err}); "
                    "checkpoint_dir must be a folder that every worker reads, on a shared file system")
        if not self._all_true(error is None):
            raise error if error is not None else CheckpointError(
                f"another worker could not read the chief's checkpoint in {directory} (see its log); "
                "checkpoint_dir must be a folder that every worker reads, on a shared file system")
        return chosen


class WorkerLog(training_display.SilentProgress):
    """The log of a worker other than the chief: one line per epoch, prefixed with the worker."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = f"[{label}]"

    def epoch_end(self, history: History) -> None:
        print(f"{self.prefix} epoch {history.epochs}/{self.epochs}  loss {history.loss[-1]:.4g}  "
              f"{history.epoch_seconds[-1]:.1f} s", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(f"{self.prefix} {text}", file=self.stream, flush=True)


def _collective(strategy, *, from_chief):
    """A compiled all-reduce over the replicas of all workers: a broadcast from the chief, or a sum."""

    def replica_fn(values):
        context = tf.distribute.get_replica_context()
        if from_chief:
            first = tf.equal(context.replica_id_in_sync_group, 0)  # the chief's first device
            values = [tf.where(first, v, tf.zeros_like(v)) for v in values]
        else:
            values = [tf.identity(v) for v in values]  # a copy on the replica's device
        return context.all_reduce(tf.distribute.ReduceOp.SUM, values)

    @tf.function
    def reduce(values):
        return strategy.experimental_local_results(strategy.run(replica_fn, args=(values,)))[0]

    return reduce
