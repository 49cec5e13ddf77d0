"""Figures: the PNG preview written beside every reconstruction (Pillow only, so ``recon run`` pays
for no plotting library) and the comparison report's figure grid (matplotlib).

Volumes are shown as maximum-intensity projections along their first axis, channels averaged.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .methods import method_label

if TYPE_CHECKING:
    from .io import Reconstruction


def display_image(arr: np.ndarray) -> np.ndarray:
    """A 2-D view of any array for previews: channels averaged, volumes max-projected."""
    a = np.asarray(arr)
    if np.iscomplexobj(a):
        a = np.abs(a)
    a = a.astype(np.float64)
    while a.ndim > 2:
        # (C, H, W): mean over channels; volumes: maximum-intensity projection along the first axis
        a = a.mean(axis=0) if a.ndim == 3 and a.shape[0] <= 4 else a.max(axis=0)
    if a.ndim == 1:
        a = a[None, :]
    return a


def _afmhot(v: np.ndarray) -> np.ndarray:
    """matplotlib's ``afmhot`` colour map (r = 2v, g = 2v - 0.5, b = 2v - 1, clipped), as uint8 RGB."""
    rgb = np.stack([2 * v, 2 * v - 0.5, 2 * v - 1.0], axis=-1)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def preview_png(r: Reconstruction) -> bytes:
    """PNG bytes of a preview: the truth when known, and the estimate, titled with the method and PSNR.

    Drawn with Pillow (no matplotlib: a ``recon run`` pays only for what it shows).  Images are
    shown on [0, 1] in grey, other unknowns (emission volumes) in ``afmhot`` on [0, the truth's
    maximum]; a volume is shown as its maximum-intensity projection along the first axis, and the
    title says so.  Small grids are enlarged by an integer factor (nearest neighbour) to at least
    256 pixels.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = r.measurement.entry.image_input
    gt = r.measurement.ground_truth
    panels = []
    if gt is not None:
        panels.append(("truth", gt))
    title = method_label(r.solver, r.prior)
    if r.metrics.get("psnr") is not None:
        title += f", PSNR {r.metrics['psnr']:.2f} dB"
    panels.append((title, r.x))
    vmax = 1.0 if image else float(np.max(display_image(gt if gt is not None else r.x))) or 1.0
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    tiles = []
    for name, arr in panels:
        raw = np.squeeze(np.asarray(np.abs(arr) if np.iscomplexobj(arr) else arr))
        a = display_image(arr)
        if raw.ndim >= 3 and not (raw.ndim == 3 and raw.shape[0] <= 4):
            name += " (max projection)"
        v = np.clip(a / vmax, 0.0, 1.0)
        pix = Image.fromarray((v * 255 + 0.5).astype(np.uint8), "L") if image else Image.fromarray(_afmhot(v), "RGB")
        k = max(1, -(-256 // max(a.shape)))
        pix = pix.convert("RGB").resize((a.shape[1] * k, a.shape[0] * k), Image.NEAREST)
        tile = Image.new("RGB", (max(pix.width, 8 * len(name) + 8), pix.height + 24), "white")
        ImageDraw.Draw(tile).text((4, 4), name, fill="black", font=font)
        tile.paste(pix, (0, 24))
        tiles.append(tile)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)),
                    "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 8
    buf = _io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


#: Axis labels of the measurement panel per forward model: (rows, columns) of the 2-D view shown.
MEASUREMENT_AXES = {"radon": ("detector bin", "view (angle index)"), "blackhole": ("β (pixel)", "α (pixel)")}
#: The caption under the figure: what every number on it means.
FIGURE_CAPTION = ("Titles: method and PSNR in dB against the truth (images on [0, 1], estimate clipped; "
                  "volumes against the truth's range). Grey images share the scale [0, 1]; each colour bar "
                  "gives its panel's values. Volumes (3-D emission) are shown as maximum-intensity "
                  "projections along their first axis, a movie's measurement as its frame average; "
                  "a sinogram as detector bin against view.")


def _view(arr, *, measurement: bool = False) -> tuple[np.ndarray, str]:
    """The 2-D view of a panel and how it was made (``""``, ``"max projection"``, ``"frame average"``)."""
    a = np.squeeze(np.abs(arr) if np.iscomplexobj(arr) else np.asarray(arr))
    how = ""
    if a.ndim >= 3:
        how = "frame average" if measurement else "max projection"
        if measurement:
            while a.ndim > 2:
                a = a.mean(axis=0)
            return a.astype(np.float64), how
    return display_image(arr), how


def figure_png(rows: list[dict], measurements: dict[str, Any], priors: list[str]) -> bytes:
    """Figure grid: a row per measurement file; columns truth, measurement, each prior.

    Legible at its size (10-point titles at 100 dpi), a colour bar on every panel, labelled
    measurement axes (a sinogram is detector bin against view), volumes as labelled maximum
    projections, and a caption defining the numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    files = list(measurements)
    ncol = 2 + len(priors)
    fig = Figure(figsize=(2.9 * ncol, 2.9 * len(files) + 0.9))
    axes = fig.subplots(len(files), ncol, squeeze=False)
    by_key = {(r["file"], r["prior"]): r for r in rows}
    for i, f in enumerate(files):
        m = measurements[f]
        image = m.entry.image_input
        cmap = "gray" if image else "afmhot"
        gt, gt_how = _view(m.ground_truth) if m.ground_truth is not None else (None, "")
        lims = {"vmin": 0.0, "vmax": 1.0} if image else (
            {"vmin": 0.0, "vmax": float(gt.max()) or 1.0} if gt is not None else {})
        meas, meas_how = _view(m.y, measurement=True)
        panels = [("truth" + (f" ({gt_how})" if gt_how else ""), gt, lims, "truth"),
                  ("measurement" + (f" ({meas_how})" if meas_how else ""), meas, {}, "measurement")]
        for p in priors:
            r = by_key.get((f, p))
            if r is None or r.get("x") is None:
                panels.append((p, None, {"status": (r or {}).get("status", "n/a")}, "result"))
            else:
                x, how = _view(r["x"])
                t = p if r.get("psnr") is None else f"{p}: {r['psnr']:.1f} dB"
                if r.get("pearson_support") is not None:
                    t += f", ρ {r['pearson_support']:.2f}"
                panels.append((t + (f"\n({how})" if how else ""), x, lims, "result"))
        for j, (name, arr, kw, kind) in enumerate(panels):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if arr is None:
                ax.text(0.5, 0.5, kw.get("status", "n/a"), ha="center", va="center", fontsize=11,
                        transform=ax.transAxes)
                ax.set_frame_on(False)
            else:
                if kind == "measurement":
                    im = ax.imshow(arr, cmap="gray", aspect="auto" if arr.shape[0] != arr.shape[1] else "equal")
                    rows_label, cols_label = MEASUREMENT_AXES.get(m.forward_model, ("", ""))
                    ax.set_xlabel(cols_label, fontsize=9)
                    if j != 0:
                        ax.set_ylabel(rows_label, fontsize=9)
                else:
                    im = ax.imshow(arr, cmap=cmap, **kw)
                cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
                cb.ax.tick_params(labelsize=8)
            ax.set_title(name, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{m.forward_model}\n{Path(f).name}", fontsize=10)
    fig.text(0.01, 0.005, FIGURE_CAPTION, fontsize=8.5, wrap=True, va="bottom")
    fig.tight_layout(rect=(0, 0.9 / (2.9 * len(files) + 0.9), 1, 1))
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


__all__ = ["FIGURE_CAPTION", "MEASUREMENT_AXES", "display_image", "figure_png", "preview_png"]
