"""Try multi-worker training on one machine: N worker processes on 127.0.0.1 with free ports.

:func:`launch_local_workers` starts one process per worker, each with the
``TF_CONFIG`` of a local job (:func:`local_tf_configs`), forwards Ctrl-C to all
of them (they stop together at the same step, with a checkpoint), and stops the
others when one fails or the launcher is terminated. ``hypermorph-nb train --workers N`` uses it. On several
machines, start the same command on each with its own ``TF_CONFIG`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NoReturn, TYPE_CHECKING

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from ..checks.arrays import check_count

if TYPE_CHECKING:
    from types import FrameType


#: Seconds the other workers get to finish on their own after one exits with an error.
GRACE_SECONDS = 30.0


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` TCP ports that are free on ``host`` now.

    Examples
    --------
    >>> ports = free_ports(2)
    >>> len(set(ports)), all(port > 0 for port in ports)
    (2, True)
    """
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind((host, 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def local_tf_configs(count: int, *, host: str = "127.0.0.1", ports: Sequence[int] | None = None) -> list[str]:
    """The ``TF_CONFIG`` (JSON) of each of ``count`` workers of a job on this machine.

    Examples
    --------
    >>> json.loads(local_tf_configs(2, ports=[2001, 2002])[1])
    {'cluster': {'worker': ['127.0.0.1:2001', '127.0.0.1:2002']}, 'task': {'type': 'worker', 'index': 1}}
    """
    ports = free_ports(count, host) if ports is None else [int(port) for port in ports]
    if len(ports) != count:
        raise ValueError(f"need {count} ports for {count} workers, got {len(ports)}")
    workers = [f"{host}:{port}" for port in ports]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(count)]


def launch_local_workers(command: list[str], count: int, *, host: str = "127.0.0.1",
                         env: Mapping[str, str] | None = None, timeout: float | None = None,
                         grace: float = GRACE_SECONDS) -> int:
    """Run ``command`` as ``count`` local workers of one job and wait for them.

    Parameters
    ----------
    command : list of str
        The program each worker runs (it creates the strategy first thing,
        e.g. ``hypermorph-nb train ...``); each gets its ``TF_CONFIG``.
    count : int
        Number of workers (worker 0 is the chief).
    host : str
    env : dict, optional
        Environment of the workers (default: this process's).
    timeout : float, optional
        Stop the workers after this many seconds.
    grace : float
        When a worker exits with an error, seconds the others get to finish
        before they are terminated.

    Returns
    -------
    int
        0 when every worker succeeded, else the first non-zero exit status
        (124 for the timeout).

    Examples
    --------
    >>> launch_local_workers([sys.executable, "-c", "import os, json; json.loads(os.environ['TF_CONFIG'])"], 2)
    0
    """
    count = check_count(count, "the number of workers")
    base = dict(os.environ if env is None else env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with _Signals(processes):
            for config in local_tf_configs(count, host=host):
                # A session of its own: Ctrl-C reaches each worker once, through the forwarder.
                processes.append(subprocess.Popen(list(command), env={**base, "TF_CONFIG": config},
                                                  start_new_session=True))
            return _wait(processes, timeout=timeout, grace=grace)
    finally:
        _stop(processes)


class _Signals:
    """While active, pass every SIGINT on to the workers, and turn SIGTERM into SystemExit.

    SystemExit runs the launcher's cleanup, which terminates the workers.
    """

    def __init__(self, processes: list[subprocess.Popen[bytes]]) -> None:
        self.processes = processes
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for number, handler in ((signal.SIGINT, self._forward), (signal.SIGTERM, self._exit)):
                self._previous[number] = signal.signal(number, handler)
        return self

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    def _exit(self, signum: int, frame: FrameType | None) -> NoReturn:
        raise SystemExit(128 + signum)

    def __exit__(self, *exc: object) -> Literal[False]:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False


def _wait(processes, *, timeout, grace):
    start = time.monotonic()
    failed_at, status = None, 0
    while True:
        codes = [process.poll() for process in processes]
        if all(code is not None for code in codes):
            return status or next((code for code in codes if code), 0)
        failure = next((code for code in codes if code), None)
        if failure is not None and failed_at is None:
            failed_at, status = time.monotonic(), failure
            index = codes.index(failure)
            print(f"hypermorph-nb: worker {index} exited with status {failure}; waiting up to "
                  f"{grace:g} s for the others", file=sys.stderr, flush=True)
        now = time.monotonic()
        if failed_at is not None and now - failed_at > grace:
            return status
        if timeout is not None and now - start > timeout:
            print(f"hypermorph-nb: the workers ran past {timeout:g} s and were stopped",
                  file=sys.stderr, flush=True)
            return 124
        time.sleep(0.1)


def _stop(processes) -> None:
    """Terminate the workers still running (then kill those that do not stop)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
