"""Speed of closure quantities and station-gain fits on a day of EHT 2017 data (~6,000 visibilities).

    python examples/benchmarks/vlbi_speed.py [--uvfits PATH] [--repeats 5]

Reads the UVFITS file without averaging (10-s records), then times (median of ``--repeats``):
building the minimal independent closure sets (recon.vlbi.closures.build_closures), evaluating
closure phases + log closure amplitudes and their gradient for a model (torch autograd), and
self-calibration of complex gains per scan (recon.vlbi.gains.selfcal, StEFCal) -- beside the
peer in the same run: a general-purpose L-BFGS fit of the same gains (torch) -- plus the peak
resident memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT = ROOT.parent / "shared" / "data" / "eht_m87_2017" / "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits"


def timed(fn, repeats):
    out, ts = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, statistics.median(ts)


def lbfgs_gains(data, model, n_iter=200):
    """The peer: complex gains per scan by L-BFGS on log-amplitude and phase (torch autograd)."""
    import numpy as np
    import torch

    from recon.vlbi.gains import gain_factors

    n_scan, n_sta = int(data.scan.max()) + 1, data.n_stations
    vis, vm = torch.from_numpy(data.vis), torch.as_tensor(model)
    sig = torch.from_numpy(data.sigma)
    la = torch.zeros(n_scan, n_sta, dtype=torch.float64, requires_grad=True)
    ph = torch.zeros(n_scan, n_sta, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([la, ph], max_iter=n_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((vis - gain_factors(la, ph, data) * vm).abs() ** 2 / sig**2).sum() + ((la / 0.2) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return np.exp((la + 1j * ph).detach().numpy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uvfits", default=str(DEFAULT))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    from recon.importers.uvfits import import_uvfits
    from recon.vlbi.closures import build_closures, closure_phases, log_closure_amplitudes
    from recon.vlbi.data import VLBIData
    from recon.vlbi.gains import apply_gains, selfcal
    from recon.vlbi.simulate import model_image, psize_uas, random_gains, simulate_observation

    torch.set_num_threads(1)
    data = VLBIData.from_measurement(import_uvfits(args.uvfits, average="none"))
    print(f"{len(data.vis)} visibilities, {len(np.unique(data.time_hr))} time stamps, "
          f"{int(data.scan.max()) + 1} scans, "
          f"{data.n_stations} stations; torch threads 1; median of {args.repeats}")
    cs, t_build = timed(lambda: build_closures(data, sys_noise=0.02), args.repeats)
    print(f"build_closures: {cs.n_cp} closure phases, {cs.n_lca} log closure amplitudes: {t_build:.3f} s")
    v = torch.from_numpy(data.vis).clone().requires_grad_(True)

    def evaluate():
        loss = closure_phases(v, cs.cp_index, cs.cp_sign).sum() + log_closure_amplitudes(v, cs.lca_index).sum()
        loss.backward()
        return loss

    _, t_eval = timed(evaluate, args.repeats)
    print(f"closure phases + log closure amplitudes + gradient: {t_eval * 1e3:.2f} ms")
    truth = model_image("crescent", data.meta["npix"], psize_uas(data))
    clean = simulate_observation(data, truth, noise=False)
    g = random_gains(data, seed=1)
    corrupted = clean.with_vis(apply_gains(clean.vis, g, data))
    est, t_stef = timed(lambda: selfcal(corrupted, clean.vis, gain_sigma=1.0), args.repeats)
    est2, t_lbfgs = timed(lambda: lbfgs_gains(corrupted, clean.vis), max(1, args.repeats // 2))

    def err(e):
        a = e[data.scan, data.ant1] * np.conj(e[data.scan, data.ant2])
        b = g[data.scan, data.ant1] * np.conj(g[data.scan, data.ant2])
        return float(np.max(np.abs(a - b)))

    print(f"gain fit, StEFCal (recon.vlbi.gains.selfcal): {t_stef:.3f} s, max |g_i g_j* error| {err(est):.2e}")
    print(f"gain fit, L-BFGS peer (torch): {t_lbfgs:.3f} s, max |g_i g_j* error| {err(est2):.2e}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
