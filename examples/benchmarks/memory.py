"""Process memory for the benchmarks: current and peak resident set size, and a peak reset.

Linux exposes the peak RSS as ``VmHWM`` in ``/proc/self/status`` and lets a process reset it to
the current RSS by writing ``5`` to ``/proc/self/clear_refs``; a benchmark resets it just before
the measured work so that the peak excludes imports and set-up.  Elsewhere (or where the reset is
not allowed) the peak falls back to ``ru_maxrss``, the high-water mark of the whole process: an
upper bound.
"""

from __future__ import annotations

import resource


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` entry (kB) in MB, None where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Current resident set size in MB (NaN where unknown)."""
    v = _status_mb("VmRSS")
    return float("nan") if v is None else v


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS; False where impossible (then :func:`peak_mb` is an upper bound)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak resident set size in MB since the last :func:`reset_peak` (else since the process started)."""
    v = _status_mb("VmHWM")
    return v if v is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
