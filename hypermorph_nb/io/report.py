"""Write results as JSON that reports, notebooks and tests can read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import json
import math
import os

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain Python; NaN becomes None.

    Examples
    --------
    >>> to_jsonable({"dice": np.float32(0.5), "lams": np.array([0.0, 1.0]), "x": float("nan")})
    {'dice': 0.5, 'lams': [0.0, 1.0], 'x': None}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: File name of the metrics that the demo and every notebook write.
METRICS_NAME = "metrics.json"


def save_metrics(output_dir: str | os.PathLike[str], metrics: Mapping[str, Any], *,
                 name: str = METRICS_NAME) -> str:
    """Write ``metrics`` to ``output_dir/name`` (created) as JSON, atomically, and return the path.

    Examples
    --------
    >>> import tempfile, json
    >>> path = save_metrics(tempfile.mkdtemp(), {"dice": np.float64(0.8)})
    >>> json.load(open(path))
    {'dice': 0.8}
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, name)
    # written beside the target and renamed over it: an interruption never leaves half a file
    staging = f"{path}.tmp-{os.getpid()}"
    try:
        with open(staging, "w") as handle:
            json.dump(to_jsonable(metrics), handle, indent=2)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path
