"""Closure phases / log closure amplitudes: hand values on 4 stations, gain invariance, independent-set sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from recon.vlbi.closures import build_closures, closure_phases, log_closure_amplitudes
from recon.vlbi.data import VLBIData

PHI = {(0, 1): 0.1, (0, 2): 0.5, (0, 3): -0.2, (1, 2): 0.3, (1, 3): 0.7, (2, 3): -0.4}
AMP = {(0, 1): 1.0, (0, 2): 2.0, (0, 3): 0.5, (1, 2): 4.0, (1, 3): 1.5, (2, 3): 3.0}


def _data(vis_of, n_sta, times, *, seed=0):
    rows = [(t, i, j) for t in times for i, j in itertools.combinations(range(n_sta), 2)]
    rng = np.random.default_rng(seed)
    vis = np.array([vis_of(t, i, j) for t, i, j in rows])
    return VLBIData(vis=vis, sigma=np.full(len(rows), 0.01), u=rng.uniform(1e9, 5e9, len(rows)),
                    v=rng.uniform(1e9, 5e9, len(rows)), time_hr=np.array([r[0] for r in rows], float),
                    ant1=np.array([r[1] for r in rows]), ant2=np.array([r[2] for r in rows]),
                    scan=np.array([int(r[0]) for r in rows]), stations=[f"S{k}" for k in range(n_sta)])


def test_four_station_hand_values():
    d = _data(lambda t, i, j: AMP[(i, j)] * np.exp(1j * PHI[(i, j)]), 4, [0.0])
    cs = build_closures(d)
    hand_cp = {(0, 1, 2): -0.1, (0, 1, 3): 1.0, (0, 2, 3): 0.3, (1, 2, 3): -0.8}
    assert cs.n_cp == 3 and cs.n_lca == 2  # (N-1)(N-2)/2 and N(N-3)/2
    for idx, val in zip(cs.cp_index, cs.cp):
        tri = tuple(sorted({int(d.ant1[k]) for k in idx} | {int(d.ant2[k]) for k in idx}))
        assert abs(abs(val) - abs(hand_cp[tri])) < 1e-12 and np.sign(val) in (np.sign(hand_cp[tri]),
                                                                               -np.sign(hand_cp[tri]))
    hand_lca = {0.0, np.log(1.5)}
    for idx, val in zip(cs.lca_index, cs.lca):
        # a quadrangle: every station once in the numerator and once in the denominator
        num = sorted([int(d.ant1[idx[0]]), int(d.ant2[idx[0]]), int(d.ant1[idx[1]]), int(d.ant2[idx[1]])])
        den = sorted([int(d.ant1[idx[2]]), int(d.ant2[idx[2]]), int(d.ant1[idx[3]]), int(d.ant2[idx[3]])])
        assert num == den == [0, 1, 2, 3]
        assert min(abs(abs(val) - h) for h in hand_lca) < 1e-12
    # the σ propagate as sqrt(Σ σ²/|V|²)
    k = cs.cp_index[0]
    assert cs.cp_sigma[0] == pytest.approx(np.sqrt(np.sum((0.01 / np.abs(d.vis[k])) ** 2)))


@pytest.mark.parametrize("n_sta", [5, 7])
def test_invariance_to_station_gains(n_sta):
    rng = np.random.default_rng(n_sta)
    true = {(t, i, j): rng.uniform(0.2, 2.0) * np.exp(1j * rng.uniform(-np.pi, np.pi))
            for t in range(3) for i, j in itertools.combinations(range(n_sta), 2)}
    d = _data(lambda t, i, j: true[(t, i, j)], n_sta, [0.0, 1.0, 2.0])
    cs = build_closures(d)
    assert cs.n_cp == 3 * (n_sta - 1) * (n_sta - 2) // 2 and cs.n_lca == 3 * n_sta * (n_sta - 3) // 2
    g_amp = np.exp(rng.normal(0, 0.5, (3, n_sta)))
    g_ph = rng.uniform(-np.pi, np.pi, (3, n_sta))
    t = d.time_hr.astype(int)

    def corrupt(g):
        return d.vis * g[t, d.ant1] * np.conj(g[t, d.ant2])

    v = torch.from_numpy(d.vis)
    cp_phase = closure_phases(torch.from_numpy(corrupt(np.exp(1j * g_ph))), cs.cp_index, cs.cp_sign)
    cp0 = closure_phases(v, cs.cp_index, cs.cp_sign)
    assert np.allclose(np.angle(np.exp(1j * (cp_phase - cp0).numpy())), 0, atol=1e-10)
    lca_amp = log_closure_amplitudes(torch.from_numpy(corrupt(g_amp * np.exp(1j * g_ph))), cs.lca_index)
    assert np.allclose(lca_amp.numpy(), log_closure_amplitudes(v, cs.lca_index).numpy(), atol=1e-10)
    # ... while the plain phases and amplitudes do change
    assert not np.allclose(np.abs(corrupt(g_amp)), np.abs(d.vis))


def test_differentiable_and_rank():
    rng = np.random.default_rng(1)
    d = _data(lambda t, i, j: rng.uniform(0.5, 1.5) * np.exp(1j * rng.uniform(-3, 3)), 6, [0.0])
    cs = build_closures(d)
    # the chosen sets are independent: full row rank of their baseline incidence matrices
    for idx, signs in ((cs.cp_index, cs.cp_sign), (cs.lca_index, np.tile([1, 1, -1, -1], (cs.n_lca, 1)))):
        m = np.zeros((len(idx), len(d.vis)))
        for r, (ii, ss) in enumerate(zip(idx, signs)):
            m[r, ii] = ss
        assert np.linalg.matrix_rank(m) == len(idx)
    v = torch.from_numpy(d.vis).clone().requires_grad_(True)
    (closure_phases(v, cs.cp_index, cs.cp_sign).sum() + log_closure_amplitudes(v, cs.lca_index).sum()).backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_missing_baseline_still_full_set():
    # drop one baseline of 5 stations: cycle space B - N + 1 = 9 - 5 + 1 = 5 closure phases, B - N = 4 amplitudes
    d = _data(lambda t, i, j: (1.0 + i + j) * np.exp(0.3j * (i - j)), 5, [0.0])
    keep = ~((d.ant1 == 0) & (d.ant2 == 4))
    d2 = VLBIData(vis=d.vis[keep], sigma=d.sigma[keep], u=d.u[keep], v=d.v[keep], time_hr=d.time_hr[keep],
                  ant1=d.ant1[keep], ant2=d.ant2[keep], scan=d.scan[keep], stations=d.stations)
    cs = build_closures(d2)
    assert cs.n_cp == 5 and cs.n_lca == 4
