"""Benchmark the Radon operator against scikit-image (and ASTRA's CPU projector when installed).

For each image size (default 256² and 512², 180 angles, float32) and each implementation it times the
forward projection and the backprojection (median of ``--repeats`` runs after one warm-up run) and
measures peak memory, then prints one table with the speed-up over scikit-image from the same run.

Implementations
---------------
recon-numba  ``forward_models.Radon`` compiled CPU kernel (the default on CPU), called as users do:
             ``A(x)`` / ``A.adjoint(y)``, including the base class's input validation.
recon-raw    the same kernels through ``A._forward`` / ``A._adjoint`` (no validation, no autograd
             wrapper): shows how much of the call is the operator itself.
recon-torch  ``forward_models.Radon(backend="torch")`` (gathers / index-adds, geometry recomputed per
             call: the CUDA path for operators whose sparse matrices do not fit).
recon-sparse ``forward_models.Radon(backend="sparse")``: the operator as CSR matrices built once (the
             CUDA default; ``first ms`` is the first call, which builds them).
skimage      ``skimage.transform.radon(circle=False)``; backprojection = ``iradon(filter_name=None,
             circle=False)`` (pixel-driven, unfiltered: the closest skimage has to Aᵀ).
astra        ASTRA CPU ``linear`` (Joseph) projector, when ``import astra`` works.

Memory method
-------------
Every (implementation, operation, size) case runs in its own subprocess.  The subprocess first runs
the case on a 32² image (imports, numba JIT/cache load), creates the full-size input, then resets
the kernel's peak-RSS counter (``/proc/self/clear_refs``; without it, the ``ru_maxrss`` high-water
mark is used and the figure is an upper bound) and records the current RSS.  ``peak ΔRSS`` is the
peak resident set size reached while building the operator and running all timed calls, minus that
baseline: the operator's own memory (geometry, outputs, temporaries) for numpy *and* torch
allocations.  ``peak RSS`` is the whole process (Python, torch and numba included).

Threads: ``torch.set_num_threads(T)`` and ``numba.set_num_threads(T)`` with ``T = --threads`` (2).

``--device cuda`` runs the recon implementations on the GPU (each timed call ends with
``torch.cuda.synchronize()``) and reports the peak GPU memory allocated by the case
(``torch.cuda.max_memory_allocated`` after a reset) in the ``peak ΔRSS`` column.

Machine load: the 1-minute load average is printed before and after the run; on a shared machine
absolute times scale with it, so compare the ``x skimage`` ratios (skimage runs in the same run,
interleaved with the other implementations case by case).

Usage::

    python examples/benchmarks/radon.py                 # 256 and 512: recon-numba, skimage, astra
    python examples/benchmarks/radon.py --sizes 512 --repeats 7
    python examples/benchmarks/radon.py --sizes 256 --impls recon-numba recon-torch skimage
    python examples/benchmarks/radon.py --sizes 512 --impls recon-numba recon-raw skimage --repeats 7
    python examples/benchmarks/radon.py --sizes 180 256 --angles 60 --impls recon-numba recon-torch recon-sparse
    python examples/benchmarks/radon.py --device cuda --sizes 256 512 --impls recon-torch recon-sparse
    python examples/benchmarks/radon.py --sizes 256 512 1024 2048 --threads 1 --clock cpu --impls recon-numba astra
    python examples/benchmarks/radon.py --sizes 4096 --angles 16 --threads 1 --clock cpu --impls recon-numba astra
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from memory import peak_mb, reset_peak, rss_mb  # examples/benchmarks/memory.py

IMPLS = ("recon-numba", "recon-raw", "recon-torch", "recon-sparse", "skimage", "astra")
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- one case (subprocess)
def _make(impl: str, op: str, n: int, n_angles: int, device: str = "cpu"):
    """Return (setup, run): setup() builds the operator and the input, run(state) does one call."""
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    rng = np.random.default_rng(0)
    x = rng.random((n, n), dtype=np.float32)
    if impl.startswith("recon"):
        import torch

        from forward_models import Radon, angles_from_degrees

        backend = {"recon-numba": "numba", "recon-raw": "numba", "recon-torch": "torch",
                   "recon-sparse": "sparse"}[impl]
        if device != "cpu" and backend == "numba":
            raise ImportError("the numba kernels run on the CPU only")
        xt = torch.from_numpy(x)[None, None].to(device)

        def setup():
            A = Radon((n, n), angles_from_degrees(theta), backend=backend).to(device)
            arg = xt if op == "forward" else torch.from_numpy(
                rng.random((1, 1, A.n_detectors, n_angles), dtype=np.float32)).to(device)
            if impl == "recon-raw":
                return (A._forward if op == "forward" else A._adjoint), arg
            return (A if op == "forward" else A.adjoint), arg

        setup.samples = Radon((n, n), angles_from_degrees(theta), backend="torch").n_samples
        return setup, lambda s: s[0](s[1])
    if impl == "skimage":
        from skimage.transform import iradon, radon

        def setup():
            if op == "forward":
                return x
            nd = int(np.ceil(np.sqrt(2) * n))
            return rng.random((nd, n_angles), dtype=np.float32)

        if op == "forward":
            return setup, lambda s: radon(s, theta=theta, circle=False)
        return setup, lambda s: iradon(s, theta=theta, filter_name=None, circle=False, output_size=n)
    if impl == "astra":
        import astra  # noqa: F401  (ImportError -> case skipped)

        def setup():
            nd = int(np.ceil(np.sqrt(2) * n))
            vol = astra.create_vol_geom(n, n)
            proj = astra.create_proj_geom("parallel", 1.0, nd, np.deg2rad(theta))
            pid = astra.create_projector("linear", proj, vol)
            arg = x if op == "forward" else rng.random((n_angles, nd), dtype=np.float32)
            return pid, arg

        def run(s):
            pid, arg = s
            if op == "forward":
                i, out = astra.create_sino(arg, pid)
            else:
                i, out = astra.create_backprojection(arg, pid)
            astra.data2d.delete(i)
            return out

        return setup, run
    raise ValueError(f"unknown implementation {impl!r}")


def run_case(impl: str, op: str, n: int, n_angles: int, repeats: int, threads: int, device: str = "cpu",
             clock: str = "wall") -> dict:
    import torch

    if device != "cpu" and not impl.startswith("recon"):
        return {"skipped": f"{impl}: runs on the CPU only"}
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:
        setup_small, run_small = _make(impl, op, 32, n_angles, device)
    except ImportError as exc:
        return {"skipped": f"{impl}: {exc}"}
    run_small(setup_small())  # imports, JIT / cache load, CUDA context
    sync()
    setup, run = _make(impl, op, n, n_angles, device)
    reset = reset_peak()
    base = rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated() / 2**20
    state = setup()
    now = time.process_time if clock == "cpu" else time.perf_counter
    t0 = now()
    run(state)  # warm-up (builds the sparse matrices of recon-sparse)
    sync()
    first = now() - t0
    times = []
    for _ in range(repeats):
        t0 = now()
        run(state)
        sync()
        times.append(now() - t0)
    peak = peak_mb()
    if cuda:
        peak, base = torch.cuda.max_memory_allocated() / 2**20, base_gpu
    return {"median_s": float(np.median(times)), "min_s": float(min(times)), "first_s": first,
            "samples": getattr(setup, "samples", None),
            "peak_delta_mb": peak - base, "peak_mb": peak, "peak_reset": reset}


# ---------------------------------------------------------------------------- driver
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--angles", type=int, default=180)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impls", nargs="+", default=["recon-numba", "skimage", "astra"], choices=IMPLS,
                   help="recon-torch (the CUDA code path) is slow on CPU and off by default")
    p.add_argument("--device", default="cpu", help="cpu or cuda (recon implementations only)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: the process's CPU time (all its threads) instead of wall time: on a shared "
                        "machine, compare single-threaded implementations by the work they do")
    p.add_argument("--case", nargs=3, metavar=("IMPL", "OP", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        impl, op, n = args.case
        print(json.dumps(run_case(impl, op, int(n), args.angles, args.repeats, args.threads, args.device,
                                  args.clock)))
        return
    load_before = os.getloadavg()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    rows = []
    for n in args.sizes:
        for op in ("forward", "adjoint"):
            for impl in args.impls:
                cmd = [sys.executable, __file__, "--case", impl, op, str(n), "--angles", str(args.angles),
                       "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device,
                       "--clock", args.clock]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    print(f"[{impl} {op} {n}] failed:\n{res.stderr[-2000:]}", file=sys.stderr)
                    continue
                out = json.loads(res.stdout.strip().splitlines()[-1])
                if "skipped" in out:
                    print(f"[skipped] {out['skipped']}", file=sys.stderr)
                    continue
                rows.append((n, op, impl, out))
                print(f"  {n}² {op:8s} {impl:12s} {out['median_s'] * 1e3:9.1f} ms", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(f"\nRadon benchmark: {args.angles} angles, float32, device {args.device}, {args.threads} threads, "
          f"{'CPU' if args.clock == 'cpu' else 'wall'} time, "
          f"median of {args.repeats} (after warm-up); cpu count {os.cpu_count()}; "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'size':>6} {'op':8} {'impl':12} {'median ms':>10} {'min ms':>8} {'first ms':>9} {'x skimage':>10} "
          f"{'x sk.radon':>10} {'x torch':>8} {'x astra':>8} {'ns/sample':>9} {'peak ΔRSS MB':>13} {'peak RSS MB':>12}")

    def ratio(ref, out):
        return f"{ref['median_s'] / out['median_s']:10.1f}" if ref else f"{'-':>10}"

    for n, op, impl, out in rows:
        ref = next((o for m, q, i, o in rows if m == n and q == op and i == "skimage"), None)
        ref_radon = next((o for m, q, i, o in rows if m == n and q == "forward" and i == "skimage"), None)
        ref_torch = next((o for m, q, i, o in rows if m == n and q == op and i == "recon-torch"), None)
        xt = f"{ref_torch['median_s'] / out['median_s']:8.1f}" if ref_torch else f"{'-':>8}"
        ref_astra = next((o for m, q, i, o in rows if m == n and q == op and i == "astra"), None)
        xa = f"{ref_astra['median_s'] / out['median_s']:8.2f}" if ref_astra else f"{'-':>8}"
        nss = f"{out['median_s'] / out['samples'] * 1e9:9.2f}" if out.get("samples") else f"{'-':>9}"
        print(f"{n:>5}² {op:8} {impl:12} {out['median_s'] * 1e3:10.1f} {out['min_s'] * 1e3:8.1f} "
              f"{out['first_s'] * 1e3:9.1f} {ratio(ref, out)} {ratio(ref_radon, out)} {xt} {xa} {nss} "
              f"{out['peak_delta_mb']:13.1f} {out['peak_mb']:12.1f}")
    print("(skimage adjoint = iradon(filter_name=None), a pixel-driven backprojection; x skimage = skimage "
          "median / median for the same op; x sk.radon = skimage radon (forward) median / median; x torch = "
          "recon-torch median / median; x astra = ASTRA CPU median / median for the same op; ns/sample = median "
          "/ ray samples (bilinear interpolations) of the recon operator; with --device cuda the memory columns "
          "are GPU memory allocated)")


if __name__ == "__main__":
    main()
