"""One function over many items: here, on local processes, or on any executor (a Dask cluster).

:func:`run_each` is what ``workers=`` and ``executor=`` mean wherever they appear
(:func:`hypermorph_nb.prepare_scans`, :func:`hypermorph_nb.register_scans` on a cohort):

- ``workers=1`` and no executor: the items one after the other in this process;
- ``workers=N``: a :class:`~concurrent.futures.ProcessPoolExecutor` of N processes started with
  ``"spawn"`` (TensorFlow and ``fork`` do not mix), each given its share of the cores for
  TensorFlow's and ITK's threads (:func:`share_cores`), shut down at the end;
- ``executor=``: any :class:`concurrent.futures.Executor` you own and shut down yourself, e.g. a
  Dask cluster's ``distributed.Client(...).get_executor()``.

The function and the items travel to the workers by pickle, so the function is one of a module
(not a lambda) and the items hold plain values. The results come back in the items' order,
whatever ran them. :func:`progress_bar` is the tqdm bar these runs show, with the conventions of
the λ sweeps (``progress="auto"``: a bar, but none under CI or papermill).

Examples
--------
>>> run_each(abs, [-2, 3, -4])
[2, 3, 4]
>>> run_each(abs, [-1], workers=0)
Traceback (most recent call last):
...
ValueError: workers must be a whole number >= 1 (processes on this machine), got 0
"""
from __future__ import annotations

import contextlib
import multiprocessing
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .environment import quiet_progress

Item = TypeVar("Item")
Result = TypeVar("Result")

#: What ``progress=`` takes (True and False: 'auto' and 'none'), as the λ sweeps and ``train``.
PROGRESS_MODES = ("auto", "bar", "log", "none")


def check_workers(workers: int, executor: Executor | None) -> None:
    """Refuse a ``workers`` that is not a count >= 1, or one given beside an ``executor``.

    Examples
    --------
    >>> check_workers(2, None)
    >>> check_workers(2, ProcessPoolExecutor(1))
    Traceback (most recent call last):
    ...
    ValueError: give workers= (local processes) or executor= (e.g. a Dask client's get_executor()), not both
    """
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1 (processes on this machine), got {workers!r}")
    if executor is not None and workers != 1:
        raise ValueError("give workers= (local processes) or executor= (e.g. a Dask client's "
                         "get_executor()), not both")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor (a ProcessPoolExecutor, "
                        f"distributed.Client(...).get_executor(), ...), got {type(executor).__name__}")


@contextlib.contextmanager
def executor_for(workers: int, executor: Executor | None) -> Iterator[Executor | None]:
    """The executor to run on: the one given, a spawn process pool of ``workers``, or None (here).

    Examples
    --------
    >>> with executor_for(1, None) as executor:
    ...     executor is None
    True
    """
    check_workers(workers, executor)
    if executor is not None or workers == 1:
        yield executor
        return
    threads = max(1, _cores() // int(workers))
    with ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("spawn"), initializer=share_cores,
                             initargs=(threads,)) as pool:
        yield pool


def share_cores(threads: int) -> None:
    """Let this process's TensorFlow and ITK use ``threads`` threads (a worker's share of the cores).

    Run before TensorFlow starts (a worker's initializer): N workers with every core each
    would run N times as many threads as there are cores.

    Examples
    --------
    >>> import subprocess, sys
    >>> code = "from hypermorph_nb.runtime.parallel import share_cores; share_cores(1); import os; print(os.environ['TF_NUM_INTRAOP_THREADS'])"
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    '1'
    """
    import SimpleITK

    for variable in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1" if threads == 1 else "2"
    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_each(function: Callable[[Item], Result], items: Sequence[Item], *, workers: int = 1,
             executor: Executor | None = None, done: Callable[[Result], None] | None = None) -> list[Result]:
    """``[function(item) for item in items]``, run here, on ``workers`` processes or on ``executor``.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled for the workers).
    items : sequence
        Its arguments, one call each.
    workers : int
        Local processes (``"spawn"``); 1 runs here.
    executor : concurrent.futures.Executor, optional
        Runs the calls instead (not shut down here).
    done : callable, optional
        Called with each result as it arrives (in the order they finish), e.g. to move a bar.

    Returns
    -------
    list
        The results in the items' order.

    Examples
    --------
    >>> finished = []
    >>> run_each(len, ["ab", "c"], done=finished.append), sorted(finished)
    ([2, 1], [1, 2])
    """
    with executor_for(workers, executor) as runner:
        if runner is None:
            results = []
            for item in items:
                results.append(function(item))
                if done is not None:
                    done(results[-1])
            return results
        futures = [runner.submit(function, item) for item in items]
        if done is not None:
            for future in as_completed(futures):
                done(future.result())
        return [future.result() for future in futures]


def progress_bar(total: int, desc: str, progress: bool | str, *, unit: str = "scan") -> Any:
    """A tqdm bar of ``total`` steps (a context manager), or a silent one.

    'auto' (or True): a bar, except under CI or papermill (``TQDM_DISABLE`` decides when set);
    'bar': always; 'log': plain text lines at most every 10 s, for logs; 'none' (or False): nothing.

    Examples
    --------
    >>> with progress_bar(2, "pairs", "none", unit="pair") as bar:
    ...     bar.disable
    True
    """
    mode = {True: "auto", False: "none"}[progress] if isinstance(progress, bool) else progress
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES} (or True/False), got {progress!r}")
    disable = mode == "none" or (mode == "auto" and quiet_progress())
    options = {"mininterval": 10.0, "ascii": True} if mode == "log" else {}
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, **options)
