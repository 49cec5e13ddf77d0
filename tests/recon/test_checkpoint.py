"""Checkpoints: atomic state files, run keys, and a SIGKILLed ``recon run`` that resumes to the
same result as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recon.checkpoint import load_state, save_state
from recon.cli import main
from recon.io import MeasurementFileError, read_reconstruction

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ("import sys; from tests.recon.standin import install; install(); "
          "from recon.cli import main; sys.exit(main(sys.argv[1:]))")


def test_state_round_trip(tmp_path):
    torch.manual_seed(5)
    state = {"x": torch.randn(1, 2, 3, dtype=torch.float64), "iteration": 7,
             "history": {"objective": [1.0, 0.5]}, "nested": {"u": torch.ones(2, dtype=torch.float32), "rho": 2.0},
             "arr": np.arange(4)}
    key = {"solver": "s", "seed": 0}
    rng = torch.get_rng_state()
    save_state(tmp_path / "c.ckpt", state, iteration=7, run_key=key)
    back, it = load_state(tmp_path / "c.ckpt", run_key=key)
    assert it == 7 and back["iteration"] == 7 and back["history"] == {"objective": [1.0, 0.5]}
    torch.testing.assert_close(back["x"], state["x"])
    assert back["nested"]["u"].dtype == torch.float32 and back["nested"]["rho"] == 2.0
    np.testing.assert_array_equal(back["arr"], np.arange(4))
    assert torch.equal(back["_torch_rng"], rng)
    with pytest.raises(MeasurementFileError, match="different run"):
        load_state(tmp_path / "c.ckpt", run_key={"solver": "other", "seed": 0})
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temporary files left


def test_checkpoints_follow_the_entry_s_resumable_flag(tmp_path, measurement, capsys, standin):
    """Checkpoints are written for a ``resumable`` registry entry (landweber) only; another restarts with a note."""
    from recon.checkpoint import Checkpointer
    from recon.io import read_measurement

    m = read_measurement(measurement)
    Checkpointer(tmp_path / "a.ckpt", every=2, run_key={"k": 1}).run(m, solver="landweber", prior="none", iterations=5)
    assert load_state(tmp_path / "a.ckpt")[1] == 3  # written after iterations 2 and 4 (indices 1 and 3)
    capsys.readouterr()
    Checkpointer(tmp_path / "b.ckpt", every=2, run_key={"k": 1}).run(m, solver="pnp-admm", prior="tv", iterations=3)
    assert not (tmp_path / "b.ckpt").exists() and "does not expose its state" in capsys.readouterr().err


@pytest.fixture
def measurement(tmp_path):
    path = tmp_path / "m.h5"
    assert main(["simulate", "--forward-model", "blur", "--size", "16", "--kernel", "gaussian:1", "-o", str(path)]) == 0
    return path


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", RUNNER, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, measurement):
    common = ["run", measurement, "--solver", "landweber", "--iterations", "40", "--option", "noise=0.001",
              "--seed", "3", "--threads", "1"]
    out, ckpt = tmp_path / "out.h5", tmp_path / "out.h5.ckpt"
    # slow iterations so the kill lands mid-run; the sleep is a solver option, identical in both runs
    proc = _run([*common, "--option", "sleep=0.1", "--checkpoint-every", "5", "-o", out])
    deadline = time.time() + 60
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert ckpt.exists(), proc.communicate()[1]
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and not out.with_suffix(".png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.h5.") and not p.name.startswith(
        ".out.h5.ckpt")], "partial output left behind"
    _, done_it = load_state(ckpt)
    assert 4 <= done_it < 39

    res = _run([*common, "--option", "sleep=0.1", "--checkpoint-every", "5", "--resume", "-o", out])
    _, err = res.communicate(timeout=120)
    assert res.returncode == 0, err
    assert "resuming from" in err
    assert not ckpt.exists()  # removed once the output is safely written

    ref = tmp_path / "ref.h5"
    res = _run([*common, "--option", "sleep=0.1", "-o", ref])
    _, err = res.communicate(timeout=120)
    assert res.returncode == 0, err
    a, b = read_reconstruction(out), read_reconstruction(ref)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.history["objective"], b.history["objective"])
    assert len(a.history["objective"]) == 40


def test_resume_refuses_checkpoint_of_another_run(tmp_path, measurement, capsys, standin):
    out = tmp_path / "o.h5"
    save_state(tmp_path / "o.h5.ckpt", {"x": torch.zeros(1, 1, 16, 16), "iteration": 3, "history": {}},
               iteration=3, run_key={"something": "else"})
    rc = main(["run", str(measurement), "--solver", "landweber", "--iterations", "5", "--resume", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "different run" in err and not out.exists()


def test_solver_without_protocol_restarts(tmp_path, measurement, capsys):
    """Real solvers that do not expose their state still run (restarting on --resume)."""
    out = tmp_path / "o.h5"
    rc = main(["run", str(measurement), "--solver", "cg", "--iterations", "5", "--checkpoint-every", "2",
               "--resume", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert read_reconstruction(out).metrics["iterations"] >= 1
