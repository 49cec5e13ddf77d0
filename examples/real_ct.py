"""From a beamline file to reconstructions: the "Your own scan" workflow on a simulated scan.

Builds a small Data Exchange file (what APS/tomopy beamlines write) from a phantom scanned with the
rotation axis off the detector centre, flat and dark frames and Poisson counts
(:func:`recon.simulate_tomography.write_scan`), imports it like ``recon import`` does (dark/flat
correction, -log, statistical weights, the rotation axis found from the data), and compares FBP, TV,
PnP-ADMM with the CT-adapted DRUNet (``drunet-ct``) and a coordinate network in one figure, each
with its Pearson correlation and PSNR against the true slice.  Nothing is downloaded.

    python examples/real_ct.py --quick --out results/real_ct
    python examples/real_ct.py --write-scan scan.h5      # only write the simulated beamline file
    python examples/real_ct.py --smoke --out /tmp/real_ct  # seconds: the same steps at a quarter of --quick's size
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import save_figure

OUTPUTS = ("scan.h5", "measurement.h5", "real_ct.png")


def write_demo_scan(path, *, quick: bool, seed: int = 0, smoke: bool = False):
    """The simulated scan: axis 23.4 columns right of the detector centre, 1e4 photons, flats, darks.

    ``smoke``: a quarter of ``quick``'s size (24-pixel object, 40 columns, 46 angles, axis 5.85 columns off).
    """
    from recon.simulate_tomography import write_scan

    size, n_det, n_angles = (24, 40, 46) if smoke else (96, 160, 181) if quick else (192, 320, 361)
    offset = 23.4 * n_det / 160 if smoke else 23.4
    return write_scan(path, layout="dxchange", object_size=size, n_det=n_det, center=(n_det - 1) / 2 + offset,
                      n_angles=n_angles, rows=3, photons=1e4, mu=3.0 / size, seed=seed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="96-pixel object, 160-column detector, short fits")
    mode.add_argument("--smoke", action="store_true", help="every step at a 24-pixel object, 40 columns, "
                      "10 coordinate steps (seconds)")
    p.add_argument("--out", default="results/real_ct", help="folder for the scan, measurement and figure")
    p.add_argument("--write-scan", metavar="PATH", default=None,
                   help="only write the simulated Data Exchange file to PATH (for `recon import`) and exit")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.write_scan:
        scan = write_demo_scan(a.write_scan, quick=True)
        print(f"wrote {scan.path}: Data Exchange scan, rotation axis at detector column {scan.center:.2f}")
        return 0

    import numpy as np

    import recon
    from recon.io import write_measurement

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    scan = write_demo_scan(out / "scan.h5", quick=a.quick, smoke=a.smoke)
    t0 = time.perf_counter()
    m = recon.import_scan(scan.path, slice=1)
    cfg = m.provenance["config"]
    print(f"imported {scan.path} in {time.perf_counter() - t0:.1f} s: {cfg['summary']} "
          f"(true {scan.center:.2f}, error {cfg['center'] - scan.center:+.3f} px)")
    # the true slice in the measurement's units (attenuation per pixel / value_scale), on its n_det grid
    n = m.operator().image_shape[0]
    k = scan.phantom.shape[1]
    truth = np.zeros((n, n))
    o = n // 2 - k // 2
    truth[o:o + k, o:o + k] = scan.phantom[1] / cfg["value_scale"]
    m.ground_truth = truth[None]
    write_measurement(out / "measurement.h5", m)

    steps = 10 if a.smoke else 300 if a.quick else 2000
    runs = [("FBP", "fbp", "none", {}), ("TV", "tv", "tv", {}), ("PnP-ADMM drunet-ct", "pnp-admm", "drunet-ct", {}),
            ("coordinate net", "coordinate", "coordinate", {"n_steps": steps})]
    vmax = float(truth.max())
    panels = [(f"truth (axis {scan.center:.1f})", truth / vmax)]
    inside = truth > 0.02 * vmax
    for label, solver, prior, kw in runs:
        t0 = time.perf_counter()
        try:
            r = recon.reconstruct(m, solver=solver, prior=prior, threads=a.threads, **kw)
        except (FileNotFoundError, ValueError) as exc:  # e.g. learned weights not shipped
            print(f"{label:20s} skipped: {str(exc).splitlines()[0]}")
            continue
        x = np.asarray(r.x)[0]
        pearson = float(np.corrcoef(x[inside], truth[inside])[0, 1])
        print(f"{label:20s} PSNR {r.metrics['psnr']:6.2f} dB  Pearson {pearson:.4f}  {time.perf_counter() - t0:6.1f} s")
        panels.append((f"{label}\n{r.metrics['psnr']:.2f} dB, r={pearson:.3f}", np.clip(x / vmax, 0, 1)))
    save_figure(panels, out / "real_ct.png",
                title=f"simulated beamline scan, rotation axis found at column {cfg['center']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
