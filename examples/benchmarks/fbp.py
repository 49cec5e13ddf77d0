"""FBP cost against one backprojection (Aᵀ) on every Radon backend, and against scikit-image's ``iradon``.

The target (issue 23): filtering is one FFT, so ``Radon.fbp`` costs at most 1.5x one ``A.adjoint``
on each backend.  For each backend the script times, interleaved in the same run, ``A.adjoint(y)``
and ``A.fbp(y)`` (median of ``--repeats`` calls after a warm-up call), plus
``skimage.transform.iradon(circle=False, output_size=n)`` on the same sinogram, and the peak memory
of each case (peak RSS reset before the case; ``memory.py``).  It also checks that the FBP equals
``iradon`` (relative difference printed).

Backends: ``numba`` (CPU default), ``torch`` (gathers / index-adds), ``sparse`` (CSR matrices; their
one-off build is done in the warm-up call and not timed).  FBP on a CPU tensor always uses the compiled
pixel-driven backprojection when numba is installed (whatever the operator's backend), else torch gathers.

Usage::

    python examples/benchmarks/fbp.py                       # 512² x 180 angles, 2 threads
    python examples/benchmarks/fbp.py --size 256 --angles 90 --backends numba torch --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from problems import timed  # noqa: E402  examples/benchmarks/problems.py


def _time(fn, repeats: int) -> tuple[float, float]:
    """(median seconds over ``repeats`` calls, peak ΔRSS MB of those calls); one warm-up call first."""
    return timed(fn, repeats)[:2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--angles", type=int, default=180)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backends", nargs="+", default=["numba", "torch", "sparse"])
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a = p.parse_args(argv)

    import numpy as np
    import torch
    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, resize

    from forward_models.radon import Radon, angles_from_degrees

    torch.set_num_threads(a.threads)
    n = a.size
    theta = np.linspace(0.0, 180.0, a.angles, endpoint=False)
    img = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)
    dt = getattr(torch, a.dtype)
    print(f"FBP vs adjoint: {n}x{n}, {a.angles} angles, {a.dtype}, {a.threads} thread(s), "
          f"load {os.getloadavg()[0]:.2f}")
    ops = {b: Radon((n, n), angles_from_degrees(theta), backend=b) for b in a.backends}
    y = next(iter(ops.values()))(torch.from_numpy(img)[None, None].to(dt))
    sino = y[0, 0].double().numpy()
    t_sk, m_sk = _time(lambda: iradon(sino, theta=theta, circle=False, output_size=n), max(1, a.repeats // 2))
    ref = iradon(sino, theta=theta, circle=False, output_size=n)
    print(f"{'backend':8s} {'adjoint ms':>11s} {'fbp ms':>9s} {'fbp/adj':>8s} {'iradon/fbp':>10s} "
          f"{'adj MB':>7s} {'fbp MB':>7s} {'rel. diff to iradon':>20s}")
    for b, op in ops.items():
        t_adj, m_adj = _time(lambda: op.adjoint(y), a.repeats)
        t_fbp, m_fbp = _time(lambda: op.fbp(y), a.repeats)
        out = op.fbp(y)[0, 0].double().numpy()
        rel = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
        print(f"{b:8s} {1e3 * t_adj:11.1f} {1e3 * t_fbp:9.1f} {t_fbp / t_adj:8.2f} {t_sk / t_fbp:10.1f} "
              f"{m_adj:7.0f} {m_fbp:7.0f} {rel:20.2e}")
    print(f"skimage iradon: {1e3 * t_sk:.0f} ms, peak ΔRSS {m_sk:.0f} MB; load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
