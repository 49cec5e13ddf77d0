"""Issue 26 (a new user's first hour): relative noise, progress, budgets, option help, threads, FITS
headers, 2-D images, the discrepancy stop of coordinate networks, metrics for volumes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from recon.cli import main

DATA = Path(__file__).resolve().parents[2] / "data"


def test_noise_relative_is_a_fraction_of_the_clean_peak(tmp_path):
    from forward_models import Radon
    from recon.io import read_measurement

    out = tmp_path / "ct.h5"
    assert main(["simulate", "--forward-model", "radon", "--image", "shepp-logan", "--size", "32", "--angles", "12",
                 "--noise-relative", "0.02", "-o", str(out)]) == 0
    m = read_measurement(out)
    A = Radon((32, 32), np.linspace(0, np.pi, 12, endpoint=False))
    peak = float(A(torch.as_tensor(m.ground_truth, dtype=torch.float64)[None]).abs().max())
    assert m.sigma == pytest.approx(0.02 * peak, rel=1e-6)
    assert m.provenance["config"]["noise_relative"] == 0.02
    assert main(["simulate", "--forward-model", "radon", "--noise-relative", "-1", "-o", str(tmp_path / "x.h5")]) == 2


def test_simulate_accepts_a_2d_image():
    import recon
    from recon.inputs import build_operator

    img = np.random.default_rng(0).random((16, 16))
    op = build_operator("blur", image_shape=(16, 16))
    a = recon.simulate(op, img, noise_sigma=0.01, seed=3)
    b = recon.simulate(op, img[None], noise_sigma=0.01, seed=3)
    np.testing.assert_array_equal(a.y, b.y)
    with pytest.raises(ValueError, match="expects"):
        recon.simulate(op, img[:8], noise_sigma=0.01)


def test_help_options_lists_every_key(capsys):
    from recon.solvers import SOLVERS

    assert main(["run", "--solver", "coordinate", "--help-options"]) == 0
    text = capsys.readouterr().out
    for key in SOLVERS["coordinate"].params:
        assert f"  {key} = " in text
    assert "radon" in text  # per-forward-model defaults are shown
    assert main(["run", "--solver", "nope", "--help-options"]) == 2


@pytest.mark.parametrize("solver", ["coordinate", "blackhole-network"])
def test_help_options_gives_the_network_defaults(solver, capsys):
    """The network's own arguments (passed through to its builder) show its signature's defaults."""
    import inspect

    from recon.solvers import SOLVERS

    spec = SOLVERS[solver]
    assert main(["run", "--solver", solver, "--help-options"]) == 0
    text = capsys.readouterr().out
    shown = 0
    for name, par in inspect.signature(spec.field()).parameters.items():
        key = "field_seed" if name == "seed" else name
        if key in spec.params and key not in inspect.signature(spec.algorithm).parameters:
            assert f"  {key} = {par.default!r}" in text, key
            shown += 1
    assert shown >= 3  # e.g. depth, width and the seed


def test_run_prints_budget_and_progress(tmp_path, capsys):
    out = tmp_path / "c.h5"
    assert main(["run", str(DATA / "denoise.h5"), "--solver", "coordinate", "--iterations", "3", "--progress",
                 "--threads", "1", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "coordinate budget: 3 Adam steps" in err and "n_steps=2000" in err
    assert "obj=" in err  # the bar shows the objective
    assert main(["run", str(DATA / "denoise.h5"), "--solver", "coordinate", "--iterations", "3", "--quiet",
                 "--threads", "1", "-o", str(tmp_path / "d.h5")]) == 0
    err = capsys.readouterr().err
    assert "budget" not in err and "obj=" not in err


def test_default_threads_respects_env_and_cores(monkeypatch):
    from recon.threads import default_threads, physical_cores

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "999")
    assert default_threads() == physical_cores()  # never more threads than cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.getloadavg", lambda: (1e6, 0, 0))
    assert default_threads() == 1  # a saturated machine: one thread
    assert physical_cores({0}) == 1


def test_fits_header_says_what_it_is(tmp_path):
    from astropy.io import fits

    out, sky = tmp_path / "bh.h5", tmp_path / "bh.fits"
    assert main(["run", str(DATA / "blackhole.h5"), "--solver", "cg", "--iterations", "2", "--quiet",
                 "-o", str(out), "--fits", str(sky)]) == 0
    h = fits.getheader(sky)
    assert h["BUNIT"] == "" and "uncalibrated" in h.comments["BUNIT"]  # the sample's units are '1'
    history = " ".join(str(v) for v in h["HISTORY"]).replace(" ", "")
    assert hashlib.sha256((DATA / "blackhole.h5").read_bytes()).hexdigest() in history
    assert "averaged over" in h["IMTYPE"]
    assert h["BH_MASS"] > 1e6 and h["BH_DIST"] > 0 and h["UASPERM"] > 0 and 0 <= h["BH_SPIN"] < 1


def test_coordinate_stops_at_the_noise_level():
    """Morozov's rule: the fit stops at the first step whose misfit RMS is <= tau * sigma."""
    from forward_models import Identity
    from recon.solvers import run_solver

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)
    sigma, tau = 0.1, 1.5
    y = x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
    A = Identity((16, 16))
    _, h = run_solver("coordinate", A, y, sigma=sigma, n_steps=400, misfit_stop=tau, width=32, depth=2,
                      lr=1e-2, amp="none", progress=False)
    rms = np.sqrt(2 * np.asarray(h.objective) / y.numel())
    assert h.meta["stopped"] == "discrepancy" and len(rms) < 400
    assert rms[-1] <= tau * sigma < rms[-2]


def test_amp_auto_follows_the_hardware():
    from recon.solvers.coordinate import bf16_supported, resolve_amp

    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == ("bf16" if bf16_supported(cpu) else "none")
    assert resolve_amp("none", cpu) == "none"
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("fp8", cpu)


def test_pearson_over_support_against_numpy():
    from recon.methods import method_label
    from recon.metrics import pearson_over_support

    rng = np.random.default_rng(1)
    t = np.zeros((6, 6, 6))
    t[2:4, 2:4, 2:4] = rng.random((2, 2, 2)) + 0.5
    x = t * 3 + 0.1 * rng.random(t.shape)
    sup = t > 0.01 * t.max()
    assert pearson_over_support(x, t) == pytest.approx(np.corrcoef(x[sup], t[sup])[0, 1])
    assert pearson_over_support(np.zeros_like(t), t) is None
    assert method_label("tv", "none") == method_label("tv", "tv") == "tv"
    assert method_label("pnp-admm", "drunet") == "drunet (pnp-admm)"


def test_auto_prior_follows_the_measured_table():
    import recon
    from recon.inputs import build_operator, load_image
    from recon.methods import auto_prior
    from recon.solvers.defaults import CT_PRIOR_GAIN, ct_prior

    for (size, views, noise), gain in CT_PRIOR_GAIN.items():
        assert ct_prior(size, views, noise)[0] == ("drunet-ct" if gain > 0 else "drunet")
    img = load_image("shepp-logan", size=40)[0]
    m = recon.simulate(build_operator("radon", image_shape=(40, 40), angles=24), img, noise_relative=0.02)
    prior, why = auto_prior(m)
    # the relative noise seen from the data: sigma over the noisy peak, a little under 2%
    assert prior == ct_prior(40, 24, m.sigma / float(np.abs(m.y).max()))[0] and "CT_PRIOR_GAIN" in why
    den = recon.simulate(build_operator("denoise", image_shape=(40, 40)), img, noise_sigma=0.1)
    assert auto_prior(den)[0] == "drunet"


@pytest.mark.slow
def test_quick_demo_streams_every_job(tmp_path, capsys):
    """recon demo --quick: every job reported with its time and an ETA, and kept in jobs/."""
    from recon.demo import DEMO_PRIORS

    assert main(["demo", "--quick", "-o", str(tmp_path / "demo")]) == 0
    err = capsys.readouterr().err
    done = re.findall(r"^\[(\d+)/(\d+)\] .* s, .*\| elapsed [\d:]+, ETA [\d:]+$", err, flags=re.M)
    assert done and done[-1][0] == done[-1][1]
    assert len(list((tmp_path / "demo" / "jobs").glob("*.json"))) == int(done[-1][1])
    assert set(DEMO_PRIORS) >= {"dnresnet", "fbp"}


def test_dnresnet_is_shipped_and_denoises():
    """Every offered prior loads: the shipped DN-ResNet removes most of sigma-25 noise from a natural image."""
    import priors
    from recon.inputs import load_image

    den = priors.load_denoiser("dnresnet")
    x = load_image("camera", size=64)[0]
    y = x + 25 / 255 * np.random.default_rng(0).standard_normal(x.shape)
    with torch.no_grad():
        est = den(torch.as_tensor(y, dtype=torch.float32)[None, None], 25 / 255)[0, 0].double().numpy()

    def psnr(a):
        return 10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - x) ** 2))

    assert psnr(est) > psnr(y) + 5.0
