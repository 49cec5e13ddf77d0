"""The black-hole fits as registered solvers: the registry path gives what the fits give directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from forward_models import get_entry
from forward_models.blackhole import gaussian_hotspot
from recon import blackhole as rb
from recon.io import Measurement, forward_model_registry
from recon.solvers import SOLVERS

SAMPLE = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def tiny():
    """The registry's example operator (6x6 rays x 12 samples x 2 frames, 8^3 grid) and a hotspot movie."""
    forward_model_registry()
    op = get_entry("blackhole").example(dtype=torch.float32)
    truth = gaussian_hotspot(op.grid_shape, extent=8.0, center=(3.0, 0.0, 0.0), std=2.0)
    truth = (truth / truth.max()).astype(np.float32)
    y = op(torch.from_numpy(truth)[None])
    return op, truth, y


def _misfit(op, x, y) -> float:
    with torch.no_grad():
        return float(torch.linalg.vector_norm(op(x.reshape(1, *op.in_shape)) - y) / torch.linalg.vector_norm(y))


def test_registered_for_blackhole_measurements_only():
    for name in ("blackhole-voxels", "blackhole-network"):
        spec = SOLVERS[name]
        assert set(spec.applies_to) == {"blackhole", "blackhole-lightcurve", "blackhole-visibilities"}
        assert spec.needs_prior is False
        assert spec.iteration_param == "n_iter" and spec.iteration_param in spec.params


def test_voxel_solver_is_fit_voxels_and_reduces_the_misfit(tiny):
    op, truth, y = tiny
    x, hist = SOLVERS["blackhole-voxels"].run(op, y, n_iter=40, smoothness=0.01, support_radius=7.0)
    direct, _ = rb.fit_voxels(op, y, n_iter=40, smoothness=0.01, support=rb.radius_mask(op, 7.0))
    assert x.shape == (1, *op.in_shape)
    torch.testing.assert_close(x[0], direct, rtol=1e-6, atol=1e-7)
    assert _misfit(op, x, y) < 0.3  # from 1.0 at the zero start
    assert float(x.min()) >= 0 and float(x[0][torch.from_numpy(~rb.radius_mask(op, 7.0))].abs().max()) == 0
    assert hist.meta["solver"] == "blackhole-voxels" and hist.meta["params"]["n_iter"] == 40


def test_voxel_solver_on_light_curves_renders_then_observes(tiny):
    from forward_models.blackhole import LightCurveTomography

    op, truth, _ = tiny
    A = LightCurveTomography(op)
    y = A(torch.from_numpy(truth)[None])
    x, _ = SOLVERS["blackhole-voxels"].run(A, y, n_iter=25)
    direct, _ = rb.fit_voxels(op, y, observation=A.observation, n_iter=25)
    torch.testing.assert_close(x[0], direct, rtol=1e-6, atol=1e-7)
    assert _misfit(A, x, y) < 0.1


def test_network_solver_is_fit_network(tiny):
    op, truth, y = tiny
    kw = dict(n_iter=6, width=16, amplitude=3.0, log_every=5)
    x, hist = SOLVERS["blackhole-network"].run(op, y, use_defaults=False, **kw)
    field, direct_hist = rb.fit_network(op, y, **kw)
    torch.testing.assert_close(x[0], field.on_grid(op), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hist.objective, direct_hist.objective, rtol=1e-5)
    assert hist.objective[-1] < hist.objective[0]
    assert len(hist.artifacts["fields"]) == 1


def test_other_operators_priors_and_options_are_refused(tiny):
    from forward_models import Identity

    op, _, y = tiny
    with pytest.raises(ValueError, match="blackhole forward model"):
        SOLVERS["blackhole-voxels"].run(Identity((4, 4)), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown option"):
        SOLVERS["blackhole-voxels"].run(op, y, lam=0.1)
    with pytest.raises(ValueError, match="no prior"):
        SOLVERS["blackhole-voxels"].run(op, y, prior="tv", n_iter=1)
    with pytest.raises(ValueError, match="x0"):
        SOLVERS["blackhole-network"].run(op, y, x0=torch.zeros(1, *op.in_shape), n_iter=1)


def test_recon_run_reaches_the_fit_by_name(tiny, tmp_path, capsys):
    from recon.cli import main
    from recon.io import read_reconstruction, write_measurement

    op, truth, y = tiny
    path = write_measurement(tmp_path / "bh.h5", Measurement.from_operator(op, y, sigma=1e-3, ground_truth=truth))
    out = tmp_path / "out.h5"
    assert main(["run", str(path), "--solver", "blackhole-voxels", "--iterations", "30", "--threads", "1",
                 "-o", str(out)]) == 0
    r = read_reconstruction(out)
    assert r.solver == "blackhole-voxels" and r.options["n_iter"] == 30
    direct, _ = rb.fit_voxels(op, y, n_iter=30)
    np.testing.assert_allclose(r.x, direct.numpy(), rtol=1e-5, atol=1e-7)
    assert r.metrics["data_misfit"] < 0.3
    capsys.readouterr()
    # a black-hole solver on another forward model: one line naming both, exit 2
    assert main(["run", str(SAMPLE / "denoise.h5"), "--solver", "blackhole-voxels", "-o",
                 str(tmp_path / "d.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "blackhole-voxels" in err and "denoise" in err
