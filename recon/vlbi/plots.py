"""Figures of a VLBI fit: closure phases and log closure amplitudes against time with residuals, and gains."""

from __future__ import annotations

import numpy as np


def data_fit_figure(data, image, gains=None, *, sys_noise: float = 0.02, min_uv: float = 1e8, title: str = ""):
    """A matplotlib Figure: closure phases, log closure amplitudes (data ± σ and model) and their
    normalised residuals against time, and the station gain amplitudes per scan.

    Parameters
    ----------
    data : VLBIData
    image : array (H, W)
        The image (Jy/pixel) on the data's grid.
    gains : complex array (n_scan, n_sta), optional
        Fitted station gains (e.g. from the reconstruction's history).
    """
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from matplotlib.figure import Figure

    from forward_models.blackhole.observe import VisibilityOperator

    from .closures import build_closures, closure_phases, log_closure_amplitudes

    img = np.asarray(image, dtype=np.float64).reshape(np.shape(image)[-2:])
    op = VisibilityOperator(data.u[None], data.v[None], image_shape=img.shape, psize_rad=data.meta["psize_rad"])
    with torch.no_grad():
        vm = op(torch.as_tensor(img)[None, None])[0, 0]
    cs = build_closures(data, min_uv=min_uv, sys_noise=sys_noise)
    cpm = closure_phases(vm, cs.cp_index, cs.cp_sign).numpy()
    lcm = log_closure_amplitudes(vm, cs.lca_index).numpy()
    ncols = 3 if gains is not None else 2
    fig = Figure(figsize=(4.2 * ncols, 5.6))
    ax = fig.subplots(2, ncols, squeeze=False)
    deg = 180 / np.pi
    ax[0, 0].errorbar(cs.cp_time, cs.cp * deg, cs.cp_sigma * deg, fmt=".", ms=3, lw=0.5, label="data")
    ax[0, 0].plot(cs.cp_time, cpm * deg, "x", ms=3, label="model")
    ax[0, 0].set(ylabel="closure phase (deg)", title="closure phases")
    ax[0, 0].legend(fontsize=7)
    res = np.angle(np.exp(1j * (cs.cp - cpm))) / cs.cp_sigma
    ax[1, 0].plot(cs.cp_time, res, ".", ms=3)
    ax[1, 0].set(xlabel="time (h UTC)", ylabel="residual / σ")
    ax[0, 1].errorbar(cs.lca_time, cs.lca, cs.lca_sigma, fmt=".", ms=3, lw=0.5, label="data")
    ax[0, 1].plot(cs.lca_time, lcm, "x", ms=3, label="model")
    ax[0, 1].set(ylabel="log closure amplitude", title="log closure amplitudes")
    ax[1, 1].plot(cs.lca_time, (cs.lca - lcm) / cs.lca_sigma, ".", ms=3)
    ax[1, 1].set(xlabel="time (h UTC)", ylabel="residual / σ")
    for a in (ax[1, 0], ax[1, 1]):
        a.axhline(0, color="k", lw=0.5)
    if gains is not None:
        g = np.asarray(gains)
        scan_t = np.array([data.time_hr[data.scan == s].mean() if np.any(data.scan == s) else np.nan
                           for s in range(g.shape[0])])
        for k, name in enumerate(data.stations[:g.shape[1]]):
            seen = np.array([np.any((data.scan == s) & ((data.ant1 == k) | (data.ant2 == k)))
                             for s in range(g.shape[0])])
            if seen.any():
                ax[0, 2].plot(scan_t[seen], np.abs(g[seen, k]), "o-", ms=3, lw=0.8, label=name)
                ax[1, 2].plot(scan_t[seen], np.degrees(np.angle(g[seen, k])), "o", ms=3)
        ax[0, 2].set(ylabel="|gain|", title="station gains per scan")
        ax[0, 2].legend(fontsize=6, ncol=2)
        ax[1, 2].set(xlabel="time (h UTC)", ylabel="gain phase (deg)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["data_fit_figure"]
