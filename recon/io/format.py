"""What every recon file is stamped with: format names and version, software version, creation time,
and the conversions of values into what is written (arrays, JSON)."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import numpy as np

from .errors import MeasurementFileError


FORMAT_MEASUREMENT = "recon-measurement"
FORMAT_RECONSTRUCTION = "recon-reconstruction"
FORMAT_VERSION = "1.0"
SUPPORTED_MAJOR = 1


def software_version() -> str:
    """Version of the installed ``recon`` distribution (falls back to the source tree's)."""
    try:
        from importlib.metadata import version

        return version("recon")
    except Exception:  # not installed: running from a checkout
        from .. import __version__

        return __version__


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the ``created`` / ``DATE`` stamp)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def to_numpy(v) -> np.ndarray:
    """A NumPy array of ``v`` (a torch tensor is detached and copied to the CPU)."""
    try:
        import torch

        if isinstance(v, torch.Tensor):
            return v.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np.asarray(v)


def squeeze_batch(a: np.ndarray, shape) -> np.ndarray:
    """``a`` without a leading batch axis of length 1 when ``a`` has one more axis than ``shape``."""
    if a.ndim == len(shape) + 1 and a.shape[0] == 1:
        return a[0]
    return a


def json_default(o):
    """``json.dumps(default=...)`` for arrays, NumPy scalars and paths (what options and configs hold)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def parse_version(text: str, path) -> tuple[int, int]:
    """``"MAJOR.MINOR"`` -> ``(major, minor)``, else a :class:`MeasurementFileError`."""
    match = _VERSION_RE.match(str(text))
    if not match:
        raise MeasurementFileError(path, f"format_version {text!r} is not of the form MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2))
