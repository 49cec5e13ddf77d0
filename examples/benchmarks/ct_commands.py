"""The two commands of a real scan at a real size: wall time and peak memory of ``recon import`` and ``recon run``.

Writes a simulated Data Exchange scan (``recon.simulate_tomography.write_scan``: one detector row of
``--n-det`` columns, ``--angles`` angles over 180° with both ends, the axis ``--offset`` columns off
centre, flats, darks, Poisson counts; an object of 83 % of the detector whose largest line integral is
about 2.3), then runs, each as its own process, ``recon import`` (axis found automatically) and
``recon run`` with every ``--solvers`` entry (``fbp``; ``tv`` and ``pnp-admm`` for ``--iterations``
iterations).  For each command: wall time and its process's peak RSS (``os.wait4``); for the import, the
axis found against the truth.

Usage::

    python examples/benchmarks/ct_commands.py --n-det 2048 --angles 1501 --solvers fbp tv --iterations 3
    python examples/benchmarks/ct_commands.py --n-det 256 --angles 181        # a quick check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOLVER_ARGS = {"fbp": ["--solver", "fbp"], "tv": ["--solver", "tv", "--prior", "tv"],
               "pnp-admm": ["--solver", "pnp-admm", "--prior", "drunet-ct"]}


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS of that process in GB) of one command (a list: no shell)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with proc.stderr:
        err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage (ru_maxrss in kB on Linux)
    wall = time.perf_counter() - t0
    code = proc.returncode = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err.strip()[-400:]}")
    return wall, usage.ru_maxrss / 2**20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-det", type=int, default=2048)
    p.add_argument("--angles", type=int, default=1501)
    p.add_argument("--offset", type=float, default=17.3)
    p.add_argument("--solvers", nargs="+", default=["fbp"], choices=sorted(SOLVER_ARGS))
    p.add_argument("--iterations", type=int, default=3, help="iterations of tv and pnp-admm")
    p.add_argument("--out", default=None, help="folder for the files (default: a temporary one)")
    a = p.parse_args(argv)

    from recon.simulate_tomography import write_scan

    out = Path(a.out or tempfile.mkdtemp(prefix="ct_commands_"))
    out.mkdir(parents=True, exist_ok=True)
    obj = int(round(0.83 * a.n_det))
    t0 = time.perf_counter()
    scan = write_scan(out / "scan.h5", object_size=obj, n_det=a.n_det, center=(a.n_det - 1) / 2 + a.offset,
                      n_angles=a.angles, rows=1, photons=1e4, mu=8.6 / obj)
    print(f"scan: {a.n_det} columns x {a.angles} angles, object {obj} px, axis {scan.center:.2f} "
          f"(written in {time.perf_counter() - t0:.1f} s) in {out}")
    exe = [sys.executable, "-m", "recon.cli"]
    wall, peak = _timed([*exe, "import", str(out / "scan.h5"), "-o", str(out / "meas.h5")])
    from recon.io import read_measurement

    found = read_measurement(out / "meas.h5").geometry["center"]
    print(f"recon import: {wall:.1f} s, peak RSS {peak:.2f} GB; axis {found:.2f} (error {found - scan.center:+.2f})")
    for solver in a.solvers:
        extra = [] if solver == "fbp" else ["--iterations", str(a.iterations)]
        wall, peak = _timed([*exe, "run", str(out / "meas.h5"), *SOLVER_ARGS[solver], *extra,
                                "-o", str(out / f"{solver}.h5")])
        what = "" if solver == "fbp" else f" ({a.iterations} iterations)"
        print(f"recon run --solver {solver}{what}: {wall:.1f} s, peak RSS {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
