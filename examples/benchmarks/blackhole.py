"""Benchmark of black-hole emission tomography (issue 4, Performance).

Cases (each in its own subprocess so that peak memory is per case; ``--threads`` CPU threads, 2 by
default; ``--device cuda`` runs the network cases on a GPU):

``network-step``   one Adam step of the bhnerf coordinate-network fit (render at the rotated,
                   delayed samples, loss on the movie, backward, update) at 32x32 rays x 100 samples
                   x 6 frames (a = 0.5, 60°, screen ±8 M, reference Mino sampling).  Only samples
                   inside the network's support (r <= 8 M, |z| <= 4 M, after injection, g > 0) are
                   evaluated; the published implementation evaluates all of them.
``network-step-bf16`` the same step under bfloat16 autocast (``fit_network(mixed_precision=True)``).
``mlp-floor``      plain torch forward+backward of the same MLP (degree-3 encoding, 4x128, skip) on
                   the same number of points: the arithmetic floor of the step.
``mlp-all``        the same on all 32x32x100x6 = 614,400 samples (what the published step computes).
``tomo-fwd-adj``   EmissionTomography at 64x64 rays x 100 samples x 64 frames on a 64³ grid:
                   construction, forward and adjoint.

Times are medians over ``--repeats`` calls after one warm-up; ``peak ΔRSS`` is the peak resident
memory of the case (after imports and ray tracing) and ``peak RSS`` that of the whole process.
For reference (issue 4): the published JAX implementation took 7.3 s per training step at this size
on the same 2-core machine when quiet; the target is <= 1.5 s.

Usage::

    python examples/benchmarks/blackhole.py [--threads 2] [--repeats 5] [--cases network-step,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from memory import peak_mb, reset_peak, rss_mb  # examples/benchmarks/memory.py

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CASES = ("network-step", "network-step-bf16", "mlp-floor", "mlp-all", "tomo-fwd-adj")


def _median_time(fn, repeats: int, sync=lambda: None) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def run_case(case: str, threads: int, repeats: int, device: str, malloc_tuning: bool = True) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from forward_models.blackhole import EmissionTomography, trace_rays
    from recon.blackhole import EmissionField
    from recon.threads import tune_malloc

    # as recon run does for fit_network on CPUs: keep freed activations in the heap instead of page-faulting them
    # back in every step (1.4 of 3.5 s per step at 32x32x100x8 without it); --no-malloc-tuning to compare
    out_malloc = tune_malloc() if (malloc_tuning and device == "cpu") else False

    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    out: dict = {"case": case, "threads": threads, "device": device, "malloc_tuned": out_malloc}
    if case in ("network-step", "network-step-bf16", "mlp-floor", "mlp-all"):
        screen = np.linspace(-8, 8, 32)
        geos = trace_rays(0.5, 60.0, screen, screen, n_samples=100)
        t_frames = np.linspace(0, 117.3, 6)
        op = EmissionTomography(geos, grid_shape=8, extent=8.0, t_frames=t_frames, t_injection=-1032.0)
        field = EmissionField(r_max=8.0, z_max=4.0).to(dev)
        n_points = op.field_samples(**field.support)["coords"].shape[0]
        out["points"] = n_points
        out["all_points"] = 32 * 32 * 100 * 6
        y = torch.rand(1, *op.out_shape, device=dev) * 1e-3
        base, peak0 = rss_mb(), reset_peak()
        if case.startswith("network-step"):
            opt = torch.optim.Adam(field.parameters(), lr=1e-4)
            bf16 = case.endswith("bf16")

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    movie = op.render_field(field, device=dev, dtype=torch.float32, **field.support)
                loss = (movie.float() - y).pow(2).mean()
                loss.backward()
                opt.step()

            out["seconds"] = _median_time(step, repeats, sync)
        else:
            n = n_points if case == "mlp-floor" else out["all_points"]
            out["points"] = n
            pts = torch.rand(n, 3, device=dev) * 2 - 1
            net = field.net

            def fb():
                net.zero_grad(set_to_none=True)
                net(pts).sum().backward()

            out["seconds"] = _median_time(fb, repeats, sync)
            # FLOPs of one forward+backward (3x the forward's multiply-adds x 2)
            lin = net.mlp.linears
            macs = sum(layer.in_features * layer.out_features for layer in lin)
            out["gflop"] = 3 * 2 * macs * n / 1e9
            out["gflops_per_s"] = out["gflop"] / out["seconds"]
    elif case == "tomo-fwd-adj":
        screen = np.linspace(-8, 8, 64)
        geos = trace_rays(0.5, 60.0, screen, screen, n_samples=100)
        base, peak0 = rss_mb(), reset_peak()
        t0 = time.perf_counter()
        op = EmissionTomography(geos, grid_shape=64, extent=8.0, t_frames=np.linspace(0, 117.3, 64),
                                t_injection=-1032.0).to(dev)
        out["build_seconds"] = time.perf_counter() - t0
        out["active_samples"] = op.n_active
        x = torch.rand(1, 64, 64, 64, device=dev)
        y = torch.rand(1, *op.out_shape, device=dev)
        out["forward_seconds"] = _median_time(lambda: op(x), repeats, sync)
        out["adjoint_seconds"] = _median_time(lambda: op.adjoint(y), repeats, sync)
        out["seconds"] = out["forward_seconds"] + out["adjoint_seconds"]
    else:
        raise ValueError(f"unknown case {case!r}; choose from {CASES}")
    out["peak_delta_rss_mb"] = peak_mb() - base if peak0 else float("nan")
    out["peak_rss_mb"] = peak_mb()
    if dev.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--no-malloc-tuning", action="store_true", help="leave glibc's malloc thresholds alone")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(run_case(args._child, args.threads, args.repeats, args.device,
                                  not args.no_malloc_tuning)))
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}; choose from {CASES}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = []
    for c in cases:
        cmd = [sys.executable, __file__, "--_child", c, "--threads", str(args.threads), "--repeats",
               str(args.repeats), "--device", args.device]
        if args.no_malloc_tuning:
            cmd.append("--no-malloc-tuning")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{c}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"threads={args.threads} device={args.device} malloc tuning={not args.no_malloc_tuning}")
    print(f"{'case':<14} {'seconds':>9} {'points/samples':>15} {'peak ΔRSS MB':>13} {'peak RSS MB':>12}  notes")
    for r in results:
        pts = r.get("points", r.get("active_samples", ""))
        notes = ""
        if "gflops_per_s" in r:
            notes = f"{r['gflop']:.0f} GFLOP, {r['gflops_per_s']:.0f} GFLOP/s"
        if r["case"] == "tomo-fwd-adj":
            notes = (f"build {r['build_seconds']:.2f} s, forward {r['forward_seconds']:.3f} s, "
                     f"adjoint {r['adjoint_seconds']:.3f} s")
        if r["case"].startswith("network-step"):
            notes = f"of {r['all_points']} samples; target <= 1.5 s, published JAX 7.3 s"
        print(f"{r['case']:<14} {r['seconds']:>9.3f} {pts!s:>15} {r['peak_delta_rss_mb']:>13.0f} "
              f"{r['peak_rss_mb']:>12.0f}  {notes}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
