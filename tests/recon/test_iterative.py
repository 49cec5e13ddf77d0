"""The common iterative loop (:mod:`recon.solvers.iterative`), on a toy algorithm with a closed form.

The toy is the damped fixed-point iteration ``x ← x + a (b − x)`` with ``a`` halved every step
(a number in the state), so ``x_k − b = (x_0 − b) Π_{j<k} (1 − a_j)``: the iterates, their
relative changes and the PSNR against ``b`` are known without running the loop.
"""

from __future__ import annotations

import math

import pytest
import torch

from recon.checkpoint import load_state, save_state
from recon.solvers.common import NonFiniteIterateError, ResumeStateError
from recon.solvers.iterative import IterativeSolver, relative_change, require_finite


class Toward(IterativeSolver):
    name = "toward"

    def __init__(self, b, x0, *, n_iter=12, a0=0.9, nan_at=None, done_at=None):
        self.b, self.x0, self.n_iter, self.a0 = b, x0, n_iter, a0
        self.nan_at, self.done_at = nan_at, done_at
        self.meta = dict(a0=a0)

    def init(self):
        return dict(x=self.x0.clone(), a=float(self.a0))

    def x(self, state):
        return state["x"]

    def step(self, state, k):
        if k == self.done_at:
            return None
        x = state["x"] + state["a"] * (self.b - state["x"])
        if k == self.nan_at:
            x = require_finite(x * float("nan"))
        state.update(x=x, a=state["a"] / 2)
        return dict(objective=float(0.5 * ((x - self.b) ** 2).sum()), step=state["a"] * 2)


def _problem():
    g = torch.Generator().manual_seed(0)
    b = torch.rand(2, 1, 6, 5, generator=g, dtype=torch.float64)
    return b, torch.zeros_like(b)


def _closed_form(b, x0, a0, k):
    """``x_k`` (after iteration ``k``, 0-based)."""
    factor = math.prod(1 - a0 / 2**j for j in range(k + 1))
    return b + (x0 - b) * factor


def test_iterates_and_history_follow_the_closed_form():
    b, x0 = _problem()
    seen = {}
    x, h = Toward(b, x0, n_iter=6).run(truth=b, callback=lambda k, x, h: seen.__setitem__(k, x.clone()))
    assert h.iteration == list(range(6)) and h.meta["stopped"] == "max_iter" and h.meta["solver"] == "toward"
    for k, xk in seen.items():
        assert torch.allclose(xk, _closed_form(b, x0, 0.9, k), rtol=0, atol=1e-14)
    mse = ((x - b) ** 2).reshape(2, -1).mean(1)
    assert h.psnr[-1] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-12)
    assert h.step == pytest.approx([0.9 / 2**k for k in range(6)])


def test_tol_rule_stops_at_the_first_small_relative_change():
    b, x0 = _problem()
    tol = 2e-3
    xs = []
    x, h = Toward(b, x0, n_iter=50).run(tol=tol, callback=lambda k, x, h: xs.append(x.clone()))
    assert h.meta["stopped"] == "converged" and len(h) < 50
    changes = [float(relative_change(xs[k], xs[k - 1]).max()) for k in range(1, len(xs))]
    assert changes[-1] < tol and all(c >= tol for c in changes[:-1])


def test_no_tol_runs_the_whole_budget():
    b, x0 = _problem()
    _, h = Toward(b, x0, n_iter=30).run()
    assert len(h) == 30 and h.meta["stopped"] == "max_iter"


def test_custom_stop_rule_and_logger():
    b, x0 = _problem()
    logged = []
    _, h = Toward(b, x0, n_iter=20).run(stop=[lambda k, x, xp, rec: "small" if rec["objective"] < 0.05 else None],
                                        loggers=[lambda k, rec: logged.append((k, rec["objective"]))])
    assert h.meta["stopped"] == "small" and h.objective[-1] < 0.05 <= h.objective[-2]
    assert logged == list(zip(h.iteration, h.objective))


def test_callback_true_stops_after_that_iteration():
    b, x0 = _problem()
    calls = []
    x, h = Toward(b, x0, n_iter=20).run(callback=lambda k, x, h: calls.append(k) or k == 3)
    assert calls == [0, 1, 2, 3] and len(h) == 4 and h.meta["stopped"] == "callback"
    assert torch.allclose(x, _closed_form(b, x0, 0.9, 3), rtol=0, atol=1e-14)


def test_nan_guard_keeps_the_last_finite_iterate():
    b, x0 = _problem()
    seen = {}
    with pytest.raises(NonFiniteIterateError) as e:
        Toward(b, x0, nan_at=4).run(callback=lambda k, x, h: seen.__setitem__(k, x.clone()))
    assert e.value.iteration == 4 and torch.equal(e.value.last_finite, seen[3])
    assert len(e.value.history) == 4 and e.value.history.meta["stopped"] == "non-finite iterate"


def test_step_returning_none_stops_as_converged_without_a_record():
    b, x0 = _problem()
    x, h = Toward(b, x0, done_at=5).run()
    assert len(h) == 5 and h.meta["stopped"] == "converged"
    assert torch.allclose(x, _closed_form(b, x0, 0.9, 4), rtol=0, atol=1e-14)


def test_metrics_every_records_psnr_at_that_stride_and_at_the_last():
    b, x0 = _problem()
    _, h = Toward(b, x0, n_iter=11).run(truth=b, metrics_every=4)
    assert len(h.psnr) == 4  # iterations 0, 4, 8 and the last, 10
    assert len(h.objective) == 11


@pytest.mark.parametrize("k", [0, 3, 7])
def test_resume_through_a_checkpoint_file_equals_the_uninterrupted_run(tmp_path, k):
    b, x0 = _problem()
    path = tmp_path / "toy.ckpt"

    def grab(i, st):
        if i == k:
            save_state(path, st, iteration=i, run_key={"solver": "toward"})

    full, h_full = Toward(b, x0, n_iter=9).run(truth=b, state_callback=grab)
    state, it = load_state(path, run_key={"solver": "toward"})
    assert it == k and isinstance(state["a"], float)
    resumed, h_res = Toward(b, x0, n_iter=9).run(truth=b, resume_state=state)
    assert torch.equal(full, resumed)
    for s in ("iteration", "objective", "step", "psnr"):
        assert getattr(h_full, s) == getattr(h_res, s), s
    assert h_res.meta["resumed_after"] == k and h_res.time == sorted(h_res.time)


def test_state_callback_sees_every_iteration_the_run_continues_past():
    b, x0 = _problem()
    ks = []
    Toward(b, x0, n_iter=20).run(callback=lambda k, x, h: k == 5, state_callback=lambda k, st: ks.append(k))
    assert ks == [0, 1, 2, 3, 4]


def test_resume_state_that_does_not_fit_is_refused():
    b, x0 = _problem()
    states = {}
    Toward(b, x0, n_iter=5).run(state_callback=lambda k, st: states.setdefault(k, st))
    good = states[2]
    with pytest.raises(ResumeStateError, match="shape"):
        Toward(b[:1], x0[:1], n_iter=5).run(resume_state=good)
    with pytest.raises(ResumeStateError, match="outside"):
        Toward(b, x0, n_iter=3).run(resume_state=states[3])
    with pytest.raises(ResumeStateError, match="lacks"):
        Toward(b, x0, n_iter=5).run(resume_state={k: v for k, v in good.items() if k != "a"})
    with pytest.raises(ResumeStateError, match="NaN"):
        Toward(b, x0, n_iter=5).run(resume_state=dict(good, x=good["x"] * float("nan")))
