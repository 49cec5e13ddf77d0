"""Image the EHT's 5 April 2017 M87 observation with every prior; one figure with the images and ring diameters.

    python examples/eht_m87.py [--quick | --smoke] [--uvfits PATH] [--out DIR]

Imports the UVFITS file (scan-averaged, 64x64 pixels over 160 µas), runs the ``vlbi`` solver
(closure phases + log closure amplitudes, blur and re-image, amplitudes with self-calibrated
station gains) with each prior (mem, tv, tsv, l1, drunet, coordinate), measures the ring of each
image (recon.vlbi.ring) and writes ``eht_m87.png``, ``eht_m87.md`` (reduced χ² and ring per prior) and
``eht_m87_fit.png`` (the first prior's closure-phase / log-closure-amplitude fit against time and its gains).
``--quick`` fits the coordinate network with fewer steps; ``--smoke`` runs every step in seconds (16x16
pixels, one self-calibration round, 20 iterations per round, mem/tv/drunet/coordinate).  The file is
../shared/data/eht_m87_2017/ relative to the repository (the examples test skips this script without it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT = ROOT.parent / "shared" / "data" / "eht_m87_2017" / "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits"
PRIORS = ("mem", "tv", "tsv", "l1", "drunet", "coordinate")
SMOKE_PRIORS = ("mem", "tv", "drunet", "coordinate")
OUTPUTS = ("eht_m87.png", "eht_m87.md", "eht_m87_fit.png")
#: The default input lives in ../shared (not in a fresh clone): tests/test_examples.py skips this script without it.
NEEDS_SHARED = True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uvfits", default=str(DEFAULT), help="the UVFITS file (default: the shared 5 April file)")
    ap.add_argument("--out", default=".", help="output folder (default: the current one)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer coordinate-network steps")
    mode.add_argument("--smoke", action="store_true", help="every step in seconds: 16x16 pixels, short fits, "
                      f"priors {','.join(SMOKE_PRIORS)} unless --priors is given")
    ap.add_argument("--priors", default=None, help=f"comma-separated (default {','.join(PRIORS)})")
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    import recon
    from recon.vlbi.data import UAS_PER_RAD

    torch.set_num_threads(1)
    if not Path(args.uvfits).is_file():
        print(f"{args.uvfits}: no such file (give --uvfits)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = recon.import_uvfits(args.uvfits, npix=16) if args.smoke else recon.import_uvfits(args.uvfits)
    ps = float(m.geometry["psize_rad"]) * UAS_PER_RAD
    opts = (dict(coord_steps=150) if args.quick else dict(n_iter=20, selfcal_rounds=1, coord_steps=10) if args.smoke
            else {})
    priors = args.priors or ",".join(SMOKE_PRIORS if args.smoke else PRIORS)
    results, fits_history = [], {}
    for prior in [p.strip() for p in priors.split(",") if p.strip()]:
        t0 = time.perf_counter()
        try:
            r = recon.reconstruct(m, prior=prior, threads=1, **opts)
        except FileNotFoundError as e:  # learned weights not installed
            print(f"{prior}: skipped ({str(e).splitlines()[0]})", file=sys.stderr)
            continue
        met = r.metrics
        results.append((prior, np.asarray(r.x).reshape(r.x.shape[-2:]), met))
        fits_history[prior] = r.history
        print(f"{prior:10s} d {met['ring_diameter_uas']:.1f} uas  PA {met['ring_position_angle_deg']:.0f} deg  "
              f"width {met['ring_width_uas']:.1f}  f_c {met['ring_central_depression']:.2f}  "
              f"chi2 cphase {met['chi2_cphase']:.2f} logcamp {met['chi2_logcamp']:.2f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.6 * len(results), 3.0))
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    half = ps * results[0][1].shape[0] / 2 if results else 1
    for ax, (prior, img, met) in zip(axes, results):
        # east left, north up: column 0 is east, row 0 north (extent in µas, RA offset decreasing to the right)
        ax.imshow(img, cmap="afmhot", origin="upper", extent=(half, -half, -half, half))
        ax.set_title(f"{prior}\nd = {met['ring_diameter_uas']:.1f} µas, PA {met['ring_position_angle_deg']:.0f}°",
                     fontsize=8)
        ax.set_xlabel("ΔRA (µas)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"M87, EHT {m.geometry['vlbi_date_obs']}, {float(m.geometry['vlbi_freq_hz']) / 1e9:.0f} GHz",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "eht_m87.png", dpi=110)
    lines = ["| prior | ring d (µas) | width (µas) | PA (°) | f_c | χ² cphase | χ² logcamp | χ² amp |",
             "|---|---|---|---|---|---|---|---|"]
    for prior, _, met in results:
        lines.append(f"| {prior} | {met['ring_diameter_uas']:.1f} | {met['ring_width_uas']:.1f} | "
                     f"{met['ring_position_angle_deg']:.0f} | {met['ring_central_depression']:.2f} | "
                     f"{met['chi2_cphase']:.2f} | {met['chi2_logcamp']:.2f} | "
                     f"{met.get('chi2_amp', float('nan')):.2f} |")
    (out / "eht_m87.md").write_text("\n".join(lines) + "\n")
    if results:  # the data fit of the first prior's image: closures vs time, residuals, station gains
        from recon.vlbi.data import VLBIData
        from recon.vlbi.plots import data_fit_figure

        prior, img, _ = results[0]
        h = fits_history[prior]
        gains = None
        if "gain_amp" in h:
            shape = tuple(int(v) for v in h["gain_shape"])
            gains = (h["gain_amp"] * np.exp(1j * np.radians(h["gain_phase_deg"]))).reshape(shape)
        data_fit_figure(VLBIData.from_measurement(m), img, gains, title=f"data fit: {prior}").savefig(
            out / "eht_m87_fit.png", dpi=100)
    print(f"wrote {out / 'eht_m87.png'}, {out / 'eht_m87_fit.png'} and {out / 'eht_m87.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
