"""How many torch threads a run should use: the physical cores it may run on, not more.

torch's own default is the number of cores it sees; on a shared machine that oversubscribes
(every busy core is shared by two thread pools, and a run's time then varies several-fold from
one repeat to the next).  :func:`default_threads` counts the *physical* cores in this process's
CPU affinity set (hyper-threads of one core count once), honours ``OMP_NUM_THREADS`` when set,
and leaves out the cores the 1-minute load average says are busy (never fewer than one).
``recon run --threads N`` overrides it.
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


__all__ = ["default_threads", "physical_cores"]
