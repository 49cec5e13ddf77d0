"""Row-by-row stack reconstruction (recon/stack.py, ``recon run --by-row``): resumable per row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forward_models import Radon
from recon import cli, stack, workflow
from recon.io import Measurement, write_measurement


def _stack_measurement(rows: int = 3, n: int = 16, n_angles: int = 12) -> Measurement:
    op = Radon((n, n), np.linspace(0.0, np.pi, n_angles, endpoint=False), channels=rows)
    rng = np.random.default_rng(0)
    x = rng.random((1, rows, n, n))
    with torch.no_grad():
        y = op(torch.from_numpy(x))[0].numpy()
    y = y + 0.01 * rng.standard_normal(y.shape)
    return Measurement.from_operator(op, y, sigma=0.01, ground_truth=x[0])


def _solve_counting(calls):
    def solve(mr):
        calls.append(int(mr.provenance["stack_row"]))
        return workflow.reconstruct(mr, solver="cg", prior="none", threads=1, iterations=4)
    return solve


def test_rows_match_independent_solves(tmp_path):
    """Each assembled row equals that row solved alone as a one-channel measurement (reference)."""
    m = _stack_measurement()
    calls = []
    r = stack.reconstruct_rows(m, rows_dir=tmp_path / "rows", run_key={"k": 1}, solve=_solve_counting(calls),
                               progress=False)
    assert calls == [0, 1, 2] and r.x.shape == (3, 16, 16)
    for row in range(3):
        op1 = Radon((16, 16), m.geometry["angles"])
        m1 = Measurement.from_operator(op1, m.y[row:row + 1], sigma=0.01)
        ref = workflow.reconstruct(m1, solver="cg", prior="none", threads=1, iterations=4)
        np.testing.assert_allclose(r.x[row], np.asarray(ref.x)[0], rtol=1e-6, atol=1e-7)
    assert 0 < r.metrics["data_misfit"] < 1


def test_interrupted_run_resumes_at_next_row(tmp_path, capsys):
    m = _stack_measurement(rows=4)
    full = stack.reconstruct_rows(m, rows_dir=tmp_path / "a", run_key={"k": 1}, solve=_solve_counting([]),
                                  progress=False)

    calls = []
    inner = _solve_counting(calls)

    def dies_after_row_1(mr):
        if int(mr.provenance["stack_row"]) == 2:
            raise KeyboardInterrupt  # the run is killed while solving row 2
        return inner(mr)

    with pytest.raises(KeyboardInterrupt):
        stack.reconstruct_rows(m, rows_dir=tmp_path / "b", run_key={"k": 1}, solve=dies_after_row_1)
    assert calls == [0, 1]
    assert "row 2/4 done" in capsys.readouterr().err
    calls.clear()
    resumed = stack.reconstruct_rows(m, rows_dir=tmp_path / "b", run_key={"k": 1}, solve=inner)
    assert calls == [2, 3]  # only the unfinished rows
    err = capsys.readouterr().err
    assert "resuming: 2 of 4 rows" in err and "row 4/4 done" in err and "ETA" in err
    np.testing.assert_array_equal(resumed.x, full.x)
    with pytest.raises(ValueError, match="different run"):
        stack.reconstruct_rows(m, rows_dir=tmp_path / "b", run_key={"k": 2}, solve=inner)


def test_cli_by_row_resumes(tmp_path, monkeypatch):
    m = _stack_measurement(rows=3)
    meas = tmp_path / "stack.h5"
    write_measurement(meas, m)
    argv = ["run", str(meas), "--solver", "cg", "--iterations", "3", "--threads", "1", "--by-row", "--quiet"]
    assert cli.main(argv + ["-o", str(tmp_path / "ref.h5")]) == 0
    ref = workflow.load_reconstruction(tmp_path / "ref.h5")

    real = workflow.reconstruct
    seen = []

    def killed_on_row_1(mr, **kw):
        seen.append(int(mr.provenance["stack_row"]))
        if seen[-1] == 1 and seen.count(1) == 1:
            raise KeyboardInterrupt
        return real(mr, **kw)

    monkeypatch.setattr(workflow, "reconstruct", killed_on_row_1)
    out = tmp_path / "out.h5"
    assert cli.main(argv + ["-o", str(out)]) == 130  # interrupted
    assert not out.exists() and (tmp_path / "out.h5.rows" / "row_00000.npz").is_file()
    assert cli.main(argv + ["-o", str(out)]) == 0
    assert seen == [0, 1, 1, 2]  # row 0 kept, row 1 redone, then row 2
    assert not (tmp_path / "out.h5.rows").exists()
    np.testing.assert_array_equal(np.asarray(workflow.load_reconstruction(out).x), np.asarray(ref.x))
    assert cli.main(argv + ["--checkpoint-every", "2", "-o", str(tmp_path / "c.h5")]) == 2
