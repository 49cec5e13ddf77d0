"""How many torch threads a run should use: the physical cores it may run on, not more.

torch's own default is the number of cores it sees; on a shared machine that oversubscribes
(every busy core is shared by two thread pools, and a run's time then varies several-fold from
one repeat to the next).  :func:`default_threads` counts the *physical* cores in this process's
CPU affinity set (hyper-threads of one core count once), honours ``OMP_NUM_THREADS`` when set,
and leaves out the cores the 1-minute load average says are busy (never fewer than one).
``recon run --threads N`` overrides it.

:func:`tune_malloc` is the other process-wide runtime setting: glibc's allocator thresholds, set
by program entry points (``recon run`` through the black-hole network solver's registry entry, the
black-hole examples and benchmarks), never by the science code.
"""

from __future__ import annotations

import os
from pathlib import Path


def physical_cores(cpus=None) -> int:
    """Physical cores among ``cpus`` (default: this process's affinity set); at least 1.

    Reads ``/sys/devices/system/cpu/cpuN/topology`` (package and core ids); where that is not
    available every logical CPU counts as a core.
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            return max(1, os.cpu_count() or 1)
    cores = set()
    for c in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(),
                       topo.joinpath("core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(c)))
    return max(1, len(cores))


def _env_threads() -> int | None:
    v = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        n = int(v)
    except ValueError:
        return None
    return n if n >= 1 else None


def default_threads(*, load_aware: bool = True) -> int:
    """Threads for one run: ``OMP_NUM_THREADS`` if set, else the idle physical cores (at least 1).

    Parameters
    ----------
    load_aware : bool
        Subtract the cores the 1-minute load average says are busy (rounded to the nearest
        core), so a run beside other jobs does not fight them for the same cores.
    """
    cores = physical_cores()
    env = _env_threads()
    if env is not None:
        return max(1, min(env, cores))
    if load_aware:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
        return max(1, min(cores, cores - int(busy + 0.5)))
    return cores


_MALLOC_TUNED = False


def tune_malloc(threshold_bytes: int = 1 << 30) -> bool:
    """Keep freed large blocks in this process's heap (glibc ``mallopt``); returns whether it applied.

    glibc serves blocks above ``M_MMAP_THRESHOLD`` (dynamic, at most 32 MB) with ``mmap`` and
    returns them to the OS when freed, and trims the heap top above ``M_TRIM_THRESHOLD``.  A
    black-hole network training step (:func:`recon.blackhole.fit_network`) allocates and frees
    ~100 MB of activations, so each step page-faults them back in: on the 32x32 rays x 100
    samples x 8 frames fit that was 1.4 of 3.5 s per step (0.7 M minor faults), and 0.01 s with
    both thresholds at 1 GiB.  Process-wide: freed memory is kept for reuse instead of returned,
    so the resident size does not shrink after a fit and its peak grows through fragmentation
    (benchmark step: 1.45 GB instead of 0.98 GB) -- which is why only entry points that run such
    fits call it.  A no-op (``False``) where glibc is absent.

    Parameters
    ----------
    threshold_bytes : int
        New ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` in bytes (default 1 GiB).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = bool(libc.mallopt(m_mmap_threshold, int(threshold_bytes))) and \
            bool(libc.mallopt(m_trim_threshold, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False
    _MALLOC_TUNED = ok
    return ok


__all__ = ["default_threads", "physical_cores", "tune_malloc"]
