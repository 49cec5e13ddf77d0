"""Mid-run resume of the real solvers (the checkpoint protocol of ``recon.checkpoint``).

For each resumable solver: run uninterrupted while capturing the state after iteration ``k``,
write it through the HDF5 checkpoint file and read it back, resume from it, and require the
same result as the uninterrupted run (bit for bit: the same operations in the same order) and
the same per-iteration history.  Then the command line: a ``recon run`` that dies right after
writing a checkpoint, resumed with ``--resume``, writes the same reconstruction file as an
uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forward_models import Identity
from recon.checkpoint import load_state, save_state
from recon.solvers import SOLVERS

from ._problems import GaussianSmoother, blur_problem, smooth_image

SERIES_COMPARED = ("iteration", "objective", "primal_residual", "dual_residual", "sigma", "step", "psnr",
                   "cg_iterations", "lr")


def _capture_and_resume(tmp_path, name, A, y, *, k, truth=None, **kw):
    states = {}

    def grab(i, st):
        if i == k:  # through the real checkpoint file: what a killed run leaves behind
            save_state(tmp_path / f"{name}.ckpt", st, iteration=i, run_key={"solver": name})
            states["rng"] = torch.get_rng_state()

    spec = SOLVERS[name]
    full, h_full = spec.run(A, y, truth=truth, state_callback=grab, progress=False, **kw)
    assert (tmp_path / f"{name}.ckpt").exists(), "state_callback was not called at iteration k"
    state, it = load_state(tmp_path / f"{name}.ckpt", run_key={"solver": name})
    assert it == k
    torch.set_rng_state(state.pop("_torch_rng"))
    torch.manual_seed(12345)  # a resumed process starts with another RNG state: it must not matter ...
    torch.set_rng_state(states["rng"])  # ... once the checkpoint's is restored (what recon.workflow.reconstruct does)
    seen = []
    res, h_res = spec.run(A, y, truth=truth, resume_state=state, progress=False,
                          callback=lambda i, x, h: seen.append(i), **kw)
    assert seen[0] == k + 1, "the resumed run must continue after iteration k"
    return full, h_full, res, h_res


def _same(full, h_full, res, h_res):
    assert torch.equal(full, res), f"max diff {float((full - res).abs().max())}"
    for s in SERIES_COMPARED:
        assert getattr(h_full, s) == getattr(h_res, s), s
    assert h_res.meta.get("resumed_after") is not None
    assert len(h_res.time) == len(h_full.time) and h_res.time == sorted(h_res.time)


@pytest.mark.parametrize("name, boundary, kw", [
    ("pnp-admm", "circular", dict(lam=1e-4, rho=0.05, n_iter=8, rho_schedule="increasing", rho_growth=1.5, tol=0)),
    ("pnp-admm", "zero", dict(lam=1e-4, rho=0.05, n_iter=6, tol=0, cg_max_iter=5)),  # warm-started CG prox
    ("hqs", "circular", dict(lam=0.23, n_iter=8)),
    ("hqs", "zero", dict(lam=0.23, n_iter=5, cg_max_iter=5)),
    ("pnp-pgd", "circular", dict(lam=1e-3, n_iter=6)),
    ("red", "circular", dict(lam=0.1, sigma_denoiser=0.02, n_iter=6)),
])
def test_denoiser_solvers_resume_equals_uninterrupted(tmp_path, name, boundary, kw):
    A, x, y = blur_problem(16, noise=0.01, boundary=boundary)
    out = _capture_and_resume(tmp_path, name, A, y, k=2, truth=x, prior=GaussianSmoother(), sigma=0.01,
                              use_defaults=False, **kw)
    _same(*out)


@pytest.mark.parametrize("name, kw", [
    ("cg", dict(damping=1e-3, n_iter=12, tol=1e-12)),
    ("tv", dict(lam=2e-3, n_iter=15, tol=0, bounds=(0.0, 1.0))),
])
def test_classical_solvers_resume_equals_uninterrupted(tmp_path, name, kw):
    A, x, y = blur_problem(16, noise=0.01, boundary="zero", batch=2)
    out = _capture_and_resume(tmp_path, name, A, y, k=4, truth=x, use_defaults=False, **kw)
    _same(*out)


def test_coordinate_resume_restores_field_and_adam(tmp_path):
    x = smooth_image(8, dtype=torch.float32)
    A = Identity((8, 8))
    kw = dict(encoding="pe", n_freqs=3, width=16, depth=2, n_steps=14, lr=5e-3, lr_schedule="cosine",
              metrics_every=3, use_defaults=False)
    full, h_full, res, h_res = _capture_and_resume(tmp_path, "coordinate", A, x.clone(), k=6, truth=x, **kw)
    _same(full, h_full, res, h_res)
    # the fitted fields agree too (parameters, not just the rendering)
    f_full, f_res = h_full.artifacts["fields"][0], h_res.artifacts["fields"][0]
    for (n, a), (_, b) in zip(f_full.state_dict().items(), f_res.state_dict().items()):
        assert torch.equal(a, b), n
    # without the optimizer state the resumed run would differ: the state is really used
    st, _ = load_state(tmp_path / "coordinate.ckpt")
    st.pop("_torch_rng")
    st["optimizer"]["state"] = {}
    other, _ = SOLVERS["coordinate"].run(A, x.clone(), resume_state=st, progress=False, **kw)
    assert not torch.equal(other, full)


@pytest.mark.parametrize("k", [2, 4, 8])  # inside the x0 phase, at its last step, after it
def test_coordinate_resume_across_the_x0_phase(tmp_path, k):
    x = smooth_image(8, dtype=torch.float32)
    A = Identity((8, 8))
    kw = dict(encoding="pe", n_freqs=3, width=16, depth=2, n_steps=14, lr=5e-3, init_steps=5, x0=1 - x,
              use_defaults=False)
    full, h_full, res, h_res = _capture_and_resume(tmp_path, "coordinate", A, x.clone(), k=k, truth=x, **kw)
    _same(full, h_full, res, h_res)


def test_coordinate_batch_resume_in_second_element(tmp_path):
    x = torch.cat([smooth_image(8, dtype=torch.float32), smooth_image(8, dtype=torch.float32).flip(-1)])
    A = Identity((8, 8))
    kw = dict(encoding="none", width=8, depth=2, n_steps=5, lr=1e-2, use_defaults=False)
    states = []
    full, _ = SOLVERS["coordinate"].run(A, x, state_callback=lambda k, s: states.append((k, s)), **kw)
    k, st = states[7]  # element 1, step 2
    assert st["batch_index"] == 1 and st["done"].shape == (1, 1, 8, 8) and k == 2
    res, _ = SOLVERS["coordinate"].run(A, x, resume_state=st, **kw)
    assert torch.equal(full, res)


def test_resume_state_errors():
    A, x, y = blur_problem(16)
    with pytest.raises(ValueError, match="resume_state"):
        SOLVERS["tv"].run(A, y, resume_state={"iteration": 3, "x": y}, use_defaults=False, lam=1e-3, n_iter=5)
    with pytest.raises(TypeError, match="state_callback"):
        SOLVERS["cg"].run(A, y, state_callback=3)
    # fbp is one step; vlbi is a multi-round pipeline (closures, gains, self-calibration) with no resume;
    # the black-hole fits (recon.solvers.blackhole) do not implement the protocol either
    assert all(s.resumable for n, s in SOLVERS.items()
               if n not in ("fbp", "vlbi", "blackhole-voxels", "blackhole-network"))
    assert not SOLVERS["fbp"].resumable and not SOLVERS["vlbi"].resumable


# ---------------------------------------------------------------------------------------- CLI
class _Killed(BaseException):
    """Ends the process abruptly (not an ``Exception``: the CLI must not get to clean up)."""


@pytest.mark.parametrize("solver, extra", [("tv", ["--option", "tol=0"]), ("hqs", ["--prior", "tv"])])
def test_cli_killed_after_checkpoint_then_resume_equals_uninterrupted(tmp_path, monkeypatch, solver, extra):
    import recon.checkpoint as ck
    from recon.cli import main
    from recon.io import read_reconstruction

    meas = tmp_path / "m.h5"
    assert main(["simulate", "--forward-model", "blur", "--size", "24", "--kernel", "gaussian:1.5",
                 "--noise-sigma", "0.02", "-o", str(meas)]) == 0
    n = "8" if solver == "hqs" else "20"
    common = ["run", str(meas), "--solver", solver, "--iterations", n, "--seed", "2", *extra]
    out, ref = tmp_path / "out.h5", tmp_path / "ref.h5"
    real_save = ck.save_state
    writes = []

    def save_then_die(path, state, *, iteration, run_key):
        real_save(path, state, iteration=iteration, run_key=run_key)
        writes.append(iteration)
        if len(writes) == 2:
            raise _Killed

    monkeypatch.setattr(ck, "save_state", save_then_die)
    with pytest.raises(_Killed):
        main([*common, "--checkpoint-every", "3", "-o", str(out)])
    assert writes == [2, 5] and not out.exists()
    monkeypatch.setattr(ck, "save_state", real_save)
    _, it = load_state(tmp_path / "out.h5.ckpt")
    assert it == 5
    assert main([*common, "--checkpoint-every", "3", "--resume", "-o", str(out)]) == 0
    assert not (tmp_path / "out.h5.ckpt").exists()
    assert main([*common, "-o", str(ref)]) == 0
    a, b = read_reconstruction(out), read_reconstruction(ref)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.history["objective"], b.history["objective"])
    assert len(a.history["objective"]) == int(n)
