"""Closure phases and log closure amplitudes: data products immune to station gains.

A station gain ``g_i`` multiplies a visibility as ``V_ij → g_i conj(g_j) V_ij``.  Around a triangle
``(i, j, k)`` the phases of the gains cancel in the **closure phase**
``ψ_ijk = arg V_ij + arg V_jk + arg V_ki`` (``V_ki = conj V_ik``); on a quadrangle the moduli cancel in
the **log closure amplitude** ``log |V_ij| + log |V_kl| − log |V_ik| − log |V_jl|``.

Per time stamp with ``N`` stations and ``B`` baselines (``N(N−1)/2`` when complete) there are
``B − N + 1`` independent closure phases and ``B − N`` independent log closure amplitudes.
:func:`build_closures` picks a minimal independent set greedily, highest signal-to-noise first:
each candidate is a ±1 vector over the time stamp's baselines and is kept when it is linearly
independent of those kept (Gram-Schmidt), so any baseline graph, complete or not, gets a full set.

σ are propagated to first order from the thermal σ of each of re/im (Jy):
``σ_ψ² = Σ σ_b²/|V_b|²`` (rad²) and ``σ_logCA² = Σ σ_b²/|V_b|²``.

All model functions are differentiable torch functions of the model visibilities ``(..., n_vis)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from .data import VLBIData


@dataclass
class ClosureSet:
    """Indices and observed values of closure quantities of one data set.

    Attributes
    ----------
    cp_index, cp_sign : int ndarray (n_cp, 3)
        Visibility indices of each triangle and the sign of each phase (−1: conjugated).
    cp, cp_sigma : ndarray (n_cp,)
        Observed closure phases and σ (rad).
    cp_time : ndarray (n_cp,)
    lca_index : int ndarray (n_lca, 4)
        Visibility indices ``(ij, kl, ik, jl)``: ``log|V_ij| + log|V_kl| − log|V_ik| − log|V_jl|``.
    lca, lca_sigma : ndarray (n_lca,)
    lca_time : ndarray (n_lca,)
    """

    cp_index: np.ndarray
    cp_sign: np.ndarray
    cp: np.ndarray
    cp_sigma: np.ndarray
    cp_time: np.ndarray
    lca_index: np.ndarray
    lca: np.ndarray
    lca_sigma: np.ndarray
    lca_time: np.ndarray

    @property
    def n_cp(self) -> int:
        return len(self.cp)

    @property
    def n_lca(self) -> int:
        return len(self.lca)


class _Basis:
    """Incremental orthonormal basis: ``add(vec)`` keeps ``vec`` when it is independent."""

    def __init__(self, dim: int):
        self.q = np.zeros((0, dim))

    def add(self, vec: np.ndarray) -> bool:
        r = vec - self.q.T @ (self.q @ vec)
        norm = np.linalg.norm(r)
        if norm < 1e-8 * max(1.0, np.linalg.norm(vec)):
            return False
        self.q = np.vstack([self.q, r / norm])
        return True


def _noise(data: VLBIData, sys_noise: float) -> np.ndarray:
    """σ with a fractional systematic term added in quadrature: ``sqrt(σ² + (f |V|)²)``."""
    return np.sqrt(data.sigma**2 + (float(sys_noise) * np.abs(data.vis)) ** 2)


def build_closures(data: VLBIData, *, min_uv: float = 1e8, min_snr: float = 0.0,
                   sys_noise: float = 0.0) -> ClosureSet:
    """Minimal independent closure phases and log closure amplitudes per time stamp.

    Parameters
    ----------
    data : VLBIData
    min_uv : float
        Baselines shorter than this (wavelengths) are left out: intra-site ("zero") baselines
        resolve nothing in the field, their closures are trivial and their amplitudes include
        flux outside the field (default 1e8 λ).
    min_snr : float
        Baselines with ``|V|/σ`` below this are left out of the closures.
    sys_noise : float
        Fractional systematic error added in quadrature to each visibility's σ.

    Returns
    -------
    ClosureSet
    """
    sig = _noise(data, sys_noise)
    amp = np.abs(data.vis)
    snr = amp / sig
    rel2 = (sig / np.maximum(amp, 1e-300)) ** 2  # σ²/|V|² per visibility
    ok = (data.uvdist >= min_uv) & (snr >= min_snr) & (amp > 0)
    cp_idx, cp_sgn, cp_t, lca_idx, lca_t = [], [], [], [], []
    times, inv = np.unique(data.time_hr, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(times) + 1))
    for ti in range(len(times)):
        rows = order[bounds[ti]:bounds[ti + 1]]
        rows = rows[ok[rows]]
        if len(rows) < 3:
            continue
        bl = {}
        for r in rows:  # one record per baseline and time (the first if repeated)
            bl.setdefault((int(data.ant1[r]), int(data.ant2[r])), int(r))
        keys = list(bl)
        col = {k: c for c, k in enumerate(keys)}
        stations = sorted({s for k in keys for s in k})

        def edge(a, b):
            """(visibility index, sign) of the directed edge a->b, or None."""
            if (a, b) in bl:
                return bl[(a, b)], 1
            if (b, a) in bl:
                return bl[(b, a)], -1
            return None

        # ---- closure phases
        cands = []
        for a, b, c in itertools.combinations(stations, 3):
            e = [edge(a, b), edge(b, c), edge(c, a)]
            if any(x is None for x in e):
                continue
            var = sum(rel2[i] for i, _ in e)
            cands.append((var, e))
        cands.sort(key=lambda t: t[0])
        basis = _Basis(len(keys))
        for _, e in cands:
            vec = np.zeros(len(keys))
            for i, s in e:
                vec[col[(int(data.ant1[i]), int(data.ant2[i]))]] = s
            if basis.add(vec):
                cp_idx.append([i for i, _ in e])
                cp_sgn.append([s for _, s in e])
                cp_t.append(times[ti])
        # ---- log closure amplitudes: for each 4 stations, the quadrangles (ab·cd)/(ac·bd) etc.
        cands = []
        for a, b, c, d in itertools.combinations(stations, 4):
            for num, den in (((a, b), (c, d)), ((a, c), (b, d))), (((a, b), (c, d)), ((a, d), (b, c))), \
                    (((a, c), (b, d)), ((a, d), (b, c))):
                e = [edge(*num[0]), edge(*num[1]), edge(*den[0]), edge(*den[1])]
                if any(x is None for x in e):
                    continue
                cands.append((sum(rel2[i] for i, _ in e), [i for i, _ in e]))
        cands.sort(key=lambda t: t[0])
        basis = _Basis(len(keys))
        for _, q in cands:
            vec = np.zeros(len(keys))
            for i, s in zip(q, (1, 1, -1, -1)):
                vec[col[(int(data.ant1[i]), int(data.ant2[i]))]] = s
            if basis.add(vec):
                lca_idx.append(q)
                lca_t.append(times[ti])
    cp_index = np.asarray(cp_idx, dtype=np.int64).reshape(-1, 3)
    cp_sign = np.asarray(cp_sgn, dtype=np.float64).reshape(-1, 3)
    lca_index = np.asarray(lca_idx, dtype=np.int64).reshape(-1, 4)
    vis = torch.from_numpy(data.vis)
    cp = closure_phases(vis, cp_index, cp_sign).numpy()
    lca = log_closure_amplitudes(vis, lca_index).numpy()
    return ClosureSet(cp_index=cp_index, cp_sign=cp_sign, cp=cp, cp_sigma=np.sqrt(rel2[cp_index].sum(axis=1)),
                      cp_time=np.asarray(cp_t), lca_index=lca_index, lca=lca,
                      lca_sigma=np.sqrt(rel2[lca_index].sum(axis=1)), lca_time=np.asarray(lca_t))


def closure_phases(vis: torch.Tensor, index, sign) -> torch.Tensor:
    """Closure phases (rad, in (−π, π]) of visibilities ``(..., n_vis)`` on triangles ``index`` (n, 3).

    Computed as the argument of the triple product (so the result is wrapped and its gradient is
    that of the sum of the three phases).
    """
    index = torch.as_tensor(index, device=vis.device)
    sign = torch.as_tensor(sign, device=vis.device)
    v = vis[..., index]  # (..., n, 3)
    v = torch.where(sign < 0, v.conj(), v)
    return torch.angle(v[..., 0] * v[..., 1] * v[..., 2])


def log_closure_amplitudes(vis: torch.Tensor, index, *, eps: float = 0.0) -> torch.Tensor:
    """``log|V_0| + log|V_1| − log|V_2| − log|V_3|`` of visibilities ``(..., n_vis)`` on quadrangles (n, 4)."""
    index = torch.as_tensor(index, device=vis.device)
    la = 0.5 * torch.log(vis.real**2 + vis.imag**2 + eps)  # log|V|, smooth in re/im
    q = la[..., index]
    return q[..., 0] + q[..., 1] - q[..., 2] - q[..., 3]


def amplitudes(vis: torch.Tensor) -> torch.Tensor:
    """Visibility amplitudes ``|V|`` (Jy)."""
    return torch.sqrt(vis.real**2 + vis.imag**2 + 1e-30)


def total_flux(image: torch.Tensor) -> torch.Tensor:
    """Total flux density of an image in Jy/pixel: the sum over its last two axes."""
    return image.sum(dim=(-2, -1))


def chi2_closure_phase(model_cp: torch.Tensor, cs: ClosureSet) -> torch.Tensor:
    """Reduced χ² of closure phases, ``(2/N) Σ (1 − cos(ψ − ψ_model))/σ²`` (wrap-safe)."""
    cp = torch.as_tensor(cs.cp, dtype=model_cp.dtype, device=model_cp.device)
    s = torch.as_tensor(cs.cp_sigma, dtype=model_cp.dtype, device=model_cp.device)
    return 2.0 * ((1.0 - torch.cos(cp - model_cp)) / s**2).mean(-1)


def chi2_log_closure_amplitude(model_lca: torch.Tensor, cs: ClosureSet) -> torch.Tensor:
    """Reduced χ² of log closure amplitudes, ``(1/N) Σ ((a − a_model)/σ)²``."""
    a = torch.as_tensor(cs.lca, dtype=model_lca.dtype, device=model_lca.device)
    s = torch.as_tensor(cs.lca_sigma, dtype=model_lca.dtype, device=model_lca.device)
    return (((a - model_lca) / s) ** 2).mean(-1)


__all__ = ["ClosureSet", "amplitudes", "build_closures", "chi2_closure_phase", "chi2_log_closure_amplitude",
           "closure_phases", "log_closure_amplitudes", "total_flux"]
