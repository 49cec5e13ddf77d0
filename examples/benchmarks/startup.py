"""Start-up cost of a small ``recon run`` against torch's own import (issue 26, item 7).

Runs, alternately and ``--repeats`` times each, in fresh processes:

* the peer: ``python -c "import torch"``;
* ``python -X importtime -m recon.cli run data/denoise.h5 --solver cg --threads 1 -o TMP/out.h5``
  (the 64x64 sample file: a 0.01 s solve, so the time is start-up, imports and writing).

Prints the median wall time of each, the difference (what recon adds to torch), and, from the
last ``-X importtime`` log, the top-level imports other than torch with their cumulative time,
largest first, so an import that a run does not need shows up by name::

    OMP_NUM_THREADS=1 python examples/benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def top_level_imports(log: str) -> list[tuple[float, str]]:
    """``[(seconds, module)]`` of the imports at the top of the ``-X importtime`` tree."""
    out = []
    for line in log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (t for t in line[len("import time:"):].split("|"))
        if name[1:].startswith(" ") or not cum.strip().isdigit():
            continue  # a nested import (indented) or the header
        out.append((int(cum) / 1e6, name.strip()))
    return sorted(out, reverse=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--file", default=str(ROOT / "data" / "denoise.h5"))
    a = p.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    peer, run, log = [], [], ""
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
            peer.append(time.perf_counter() - t)
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-X", "importtime", "-m", "recon.cli", "run", a.file, "--solver",
                                  "cg", "--threads", "1", "--quiet", "-o", str(Path(tmp) / f"out{i}.h5")],
                                 check=True, env=env, cwd=ROOT, capture_output=True, text=True)
            run.append(time.perf_counter() - t)
            log = res.stderr
    print(f"load average {os.getloadavg()[0]:.1f}; {a.repeats} repeats each, medians:")
    print(f"  import torch      {statistics.median(peer):.2f} s  (min {min(peer):.2f})")
    print(f"  recon run (64^2)  {statistics.median(run):.2f} s  (min {min(run):.2f})")
    print(f"  recon adds        {statistics.median(run) - statistics.median(peer):.2f} s over torch's import")
    print("top-level imports of the last run (cumulative s):")
    for sec, name in top_level_imports(log)[:12]:
        print(f"  {sec:6.3f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
