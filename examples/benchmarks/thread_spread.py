"""How stable is one ``recon run``'s time with torch's thread default against recon's? (issue 26, item 8)

Runs the same small reconstruction ``--repeats`` times in each mode, alternating, in fresh processes:

* ``torch``: ``--threads`` = torch's own default (every core it sees: what ``recon run`` used before);
* ``recon``: no ``--threads``, so :func:`recon.threads.default_threads` decides (the idle physical
  cores, or ``OMP_NUM_THREADS``);
* ``one``: ``--threads 1``.

and prints the solve time ``recon run`` reports (``wall_time_s`` of the file) as median, min, max and
max/min, with the load average before and after, so a loaded and an idle machine can be compared::

    python examples/benchmarks/thread_spread.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def solve_time(args: list[str], out: Path, env: dict) -> float:
    """Run ``recon run`` and return the solve time it recorded (seconds)."""
    subprocess.run([sys.executable, "-m", "recon.cli", "run", *args, "--quiet", "-o", str(out)], check=True, env=env,
                   cwd=ROOT, capture_output=True)
    import h5py

    with h5py.File(out, "r") as f:
        for key in ("reconstruction/metrics", "metrics"):
            if key in f and "wall_time_s" in f[key].attrs:
                return float(f[key].attrs["wall_time_s"])
    from recon.io import read_reconstruction

    return float(read_reconstruction(out).metrics["wall_time_s"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--file", default=str(ROOT / "data" / "radon.h5"))
    p.add_argument("--solver-args", default="--solver tv --iterations 200")
    a = p.parse_args(argv)
    import torch

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    modes = {"torch": ["--threads", str(torch.get_num_threads())], "recon": [], "one": ["--threads", "1"]}
    times: dict[str, list[float]] = {k: [] for k in modes}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            for name, extra in modes.items():
                out = Path(tmp) / f"{name}{i}.h5"
                times[name].append(solve_time([a.file, *a.solver_args.split(), *extra], out, env))
    print(f"{a.file} {a.solver_args}; load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"torch's default {torch.get_num_threads()} threads")
    print("| threads | median (s) | min | max | max/min |\n|---|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} | {max(ts):.2f} | {max(ts) / min(ts):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
