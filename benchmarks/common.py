"""Shared helpers for the benchmark scripts: timing, machine description, result tables.

Every benchmark prints its table and writes it, with the machine description, to
``benchmarks/results/<name>.md``. Figures are medians over repeats; speed-ups are
ratios measured within the same run.
"""

import datetime
import os
import platform
import statistics
import time

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine_description():
    """A dict describing where the numbers were measured."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as handle:
            memory_gb = round(int(handle.readline().split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu,
        # the cores this process may run on (a run pinned with taskset reports those)
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "machine_cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "gpu": ", ".join(gpus) if gpus else "none",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def median_seconds(fn, *, repeats=20, warmup=3):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(rows):
    """Render a list of dicts (same keys) as a markdown table."""
    if not rows:
        return "(no rows)\n"
    keys = list(rows[0])

    def fmt(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(fmt(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(name, title, rows, *, notes="", command=""):
    """Print the table and write ``results/<name>.md`` with the machine description.

    Returns
    -------
    str
        The path written.
    """
    table = markdown_table(rows)
    print(f"\n## {title}\n\n{table}")
    if notes:
        print(notes)
    machine = machine_description()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.md")
    with open(path, "w") as handle:
        handle.write(f"# {title}\n\n")
        if command:
            handle.write(f"Command: `{command}`\n\n")
        handle.write("Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "\n\n")
        handle.write(table)
        if notes:
            handle.write("\n" + notes.strip() + "\n")
    return path
