"""Quality metrics of a reconstruction: PSNR and SSIM (the one implementation, :mod:`priors.metrics`,
re-exported), the workflow's :func:`quality_metrics`, the correlation over the truth's support and
the relative data misfit."""

from __future__ import annotations

import numpy as np

from priors.metrics import psnr, ssim

#: Voxels whose truth exceeds this fraction of its maximum make the support of :func:`pearson_over_support`.
SUPPORT_FRACTION = 0.01


def quality_metrics(x: np.ndarray, truth: np.ndarray | None, *, image: bool) -> dict[str, float | None]:
    """PSNR (dB) and SSIM of ``x`` against ``truth``.

    Images are compared with data range 1 (intensities in [0, 1]) on the estimate
    clipped to [0, 1]; other unknowns (e.g. 3-D emission) with the truth's range.
    PSNR from :mod:`priors.metrics`. SSIM of images ``(C, H, W)``: :func:`priors.metrics.ssim`
    (Gaussian window, sigma 1.5, 11 pixels; none below 11 pixels); of anything else (a volume):
    scikit-image's n-D ``structural_similarity`` (its 7-voxel uniform window; none below 7).
    Non-images also get :func:`pearson_over_support`.
    """
    if truth is None:
        return {"psnr": None, "ssim": None}
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if image:
        x, rng = np.clip(x, 0.0, 1.0), 1.0
    else:
        rng = float(t.max() - t.min()) or 1.0
    value = psnr(x, t, data_range=rng)  # the estimate clipped to [0, data range]
    # SSIM's Gaussian window (sigma 1.5) is 11 pixels wide: smaller images get no SSIM
    if x.ndim == 3 and image:
        similarity = ssim(x[None], t[None], data_range=rng) if min(x.shape[-2:]) >= 11 else None
    else:
        similarity = _ssim_skimage(x, t, rng)
    out = {"psnr": value, "ssim": similarity}
    if not image:  # a mostly empty volume: PSNR is dominated by the empty voxels; say how the shape agrees
        out["pearson_support"] = pearson_over_support(x, t)
    return out


def pearson_over_support(x: np.ndarray, truth: np.ndarray, fraction: float = SUPPORT_FRACTION) -> float | None:
    """Pearson correlation of ``x`` and ``truth`` over the truth's support (``truth > fraction · max``).

    For emission volumes that are mostly empty, PSNR against the truth's range is high for any
    estimate that is near zero where the truth is; the correlation over where the emission is
    measures whether its shape was recovered (1 = exact up to scale and offset, 0 = unrelated).
    ``None`` when the support has fewer than 2 voxels or either side is constant there.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    sup = t > fraction * float(t.max()) if t.size and t.max() > 0 else np.zeros(t.shape, bool)
    if int(sup.sum()) < 2:
        return None
    xs, ts = x[sup] - x[sup].mean(), t[sup] - t[sup].mean()
    den = float(np.sqrt((xs * xs).sum() * (ts * ts).sum()))
    return float((xs * ts).sum() / den) if den > 0 else None


def _ssim_skimage(x: np.ndarray, t: np.ndarray, rng: float) -> float | None:
    from skimage.metrics import structural_similarity

    xs, ts = np.squeeze(x), np.squeeze(t)
    if min(xs.shape) < 7:
        return None
    return float(structural_similarity(xs, ts, data_range=rng))


def data_misfit(op, x: np.ndarray, y: np.ndarray) -> float:
    """Relative data misfit ``‖A x − y‖ / ‖y‖`` of ``x`` (shape ``op.in_shape``) against ``y`` (``op.out_shape``)."""
    import torch

    xt = torch.as_tensor(np.asarray(x))[None]
    yt = torch.as_tensor(np.asarray(y))[None]
    if not yt.is_complex():
        yt = yt.to(xt.dtype)
    with torch.no_grad():
        r = op.forward(xt) - yt
    ny = float(torch.linalg.vector_norm(yt))
    return float(torch.linalg.vector_norm(r)) / (ny if ny > 0 else 1.0)


__all__ = ["SUPPORT_FRACTION", "data_misfit", "pearson_over_support", "psnr", "quality_metrics", "ssim"]
