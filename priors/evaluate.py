"""The shared denoiser evaluation protocol (see README: "Evaluation protocol for denoisers").

Images are read as uint8 / 255 in float64, sorted by file name; image ``i``
(0-based) gets ``np.random.default_rng(seed=i)`` and
``y = x + (s/255) * rng.standard_normal(x.shape)`` (not clipped, not
quantised); the estimate is clipped to [0, 1]; PSNR with data range 1 over the
whole image; the mean over the set is reported.

Run ``python -m priors.evaluate --denoiser drunet --folder ../shared/data/set12``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from . import metrics
from .data import list_images, read_gray


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB with data range 1 of ``x`` as given (the callers clip): :func:`priors.metrics.psnr`."""
    return metrics.psnr(x, ref, data_range=1.0, clip=False)


def noisy_set(folder: str | Path, sigma255: float, *, max_images: int | None = None, last: int | None = None):
    """Yield ``(name, clean, noisy)`` float64 arrays following the protocol.

    ``max_images`` keeps the first, ``last`` the last that many images of the sorted folder
    (``last=8`` on Train400: the held-out images of ``priors.train``); the noise seed is the
    position in the evaluated list.
    """
    paths = list_images(folder)
    if last is not None:
        paths = paths[-last:]
    for i, path in enumerate(paths[:max_images]):
        x = read_gray(path)
        rng = np.random.default_rng(seed=i)
        y = x + (sigma255 / 255.0) * rng.standard_normal(x.shape)
        yield path.name, x, y


@torch.no_grad()
def evaluate_denoiser(
    denoiser, folder: str | Path, sigma255: float, *, device: str | None = None, max_images: int | None = None,
    last: int | None = None,
) -> dict:
    """Mean PSNR (dB) of ``denoiser`` on ``folder`` at noise ``sigma255``/255, per the protocol.

    ``denoiser(x, sigma)`` takes and returns ``(1, 1, H, W)`` tensors.
    Returns ``{"mean_psnr": float, "per_image": {name: psnr}, "seconds": float}``.
    """
    if hasattr(denoiser, "eval"):
        denoiser.eval()
    per_image = {}
    t0 = time.perf_counter()
    for name, x, y in noisy_set(folder, sigma255, max_images=max_images, last=last):
        yt = torch.from_numpy(y.astype(np.float32))[None, None]
        if device:
            yt = yt.to(device)
        est = denoiser(yt, sigma255 / 255.0)
        est = np.clip(est[0, 0].double().cpu().numpy(), 0.0, 1.0)
        per_image[name] = psnr(est, x)
    return {
        "mean_psnr": float(np.mean(list(per_image.values()))),
        "per_image": per_image,
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: print the protocol PSNR of a denoiser at several noise levels."""
    from . import load_denoiser

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--denoiser", default="drunet", help="name for priors.load_denoiser (drunet, dncnn, bm3d, ...)")
    p.add_argument("--weights", default=None, help="weights file (default: the shipped weights)")
    p.add_argument("--folder", default="../shared/data/set12")
    p.add_argument("--last", type=int, default=None,
                   help="only the last N images of the folder (8 on train400: priors.train's held-out images)")
    p.add_argument("--sigmas", default="15,25,50", help="comma-separated noise levels in 1/255 units")
    p.add_argument("--ensemble", action="store_true",
                   help="x8 self-ensemble: average over the 8 flips/rotations (8x slower)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.last is not None and a.last < 1:
        p.error(f"--last must be at least 1, got {a.last}")
    if a.threads:
        torch.set_num_threads(a.threads)
    den = load_denoiser(a.denoiser, weights=a.weights, device=a.device, ensemble=a.ensemble)
    label = a.denoiser + (" x8 self-ensemble" if a.ensemble else "")
    for s in [float(v) for v in a.sigmas.split(",")]:
        r = evaluate_denoiser(den, a.folder, s, device=a.device, last=a.last)
        print(f"{label} sigma={s:g}: mean PSNR {r['mean_psnr']:.2f} dB over {len(r['per_image'])} images "
              f"({r['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
