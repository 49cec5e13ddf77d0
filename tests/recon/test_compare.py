"""``recon compare``: table, figure, HDF5; n/a pairs; Dask cluster equals the sequential run."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest

from recon.cli import main
from recon.comparison import TIMING_COLUMNS, compare_files
from recon.io import MeasurementFileError

PRIORS = ["tv", "none", "wavelet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("meas")
    out = []
    for name, extra in (("blur", ["--kernel", "gaussian:1"]), ("denoise", [])):
        p = d / f"{name}.h5"
        assert main(["simulate", "--forward-model", name, "--size", "16", "--noise-sigma", "0.05", *extra,
                     "-o", str(p)]) == 0
        out.append(p)
    return out


def _stable(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS and k not in ("options", "key")} for r in rows]


def test_compare_sequential_report(tmp_path, files):
    res = compare_files(files, priors=PRIORS, out=tmp_path / "report", iterations=5)
    assert len(res.rows) == len(files) * len(PRIORS)
    assert all(r["status"] == "ok" for r in res.rows), [r["note"] for r in res.rows]
    folder = tmp_path / "report"
    assert sorted(p.name for p in folder.iterdir()) == ["figure.png", "jobs", "report.md", "results.csv",
                                                         "results.h5"]
    assert len(list((folder / "jobs").glob("*.json"))) == len(res.rows)  # every job streamed to disk
    md = (folder / "report.md").read_text()
    assert "| forward model |" in md and "PSNR (dB)" in md and "figure.png" in md
    with open(folder / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["prior"] for r in table] == PRIORS * 2
    assert {"psnr", "ssim", "data_misfit", "wall_time_s", "iterations"} <= set(table[0])
    # the table's PSNR is recomputable from the stored reconstruction and the file's truth
    from recon.io import read_measurement

    with h5py.File(folder / "results.h5", "r") as f:
        g = f["results/0000"]
        x = g["x"][()]
        assert g.attrs["prior"] == "tv"
    truth = read_measurement(files[0]).ground_truth
    diff = np.clip(x.astype(np.float64), 0, 1) - truth.astype(np.float64)
    psnr = 10 * np.log10(1.0 / np.mean(diff**2))
    assert abs(psnr - float(table[0]["psnr"])) < 1e-6
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_dask_equals_sequential(tmp_path, files):
    pytest.importorskip("dask.distributed")
    seq = compare_files(files, priors=PRIORS, out=None, iterations=5)
    par = compare_files(files, priors=PRIORS, out=tmp_path / "dask", iterations=5, workers=2)
    assert _stable(par.rows) == _stable(seq.rows)
    for i, x in seq.reconstructions.items():
        np.testing.assert_array_equal(par.reconstructions[i], x)
    assert (tmp_path / "dask" / "results.csv").exists()


def test_non_applicable_pairs_are_na(tmp_path, files, monkeypatch):
    """A 2-D denoiser on an operator whose unknown is not an image is reported as n/a."""
    import torch

    import forward_models as fm
    from forward_models.registry import OperatorEntry

    class VolumeSum(fm.LinearOperator):
        registry_name = "test-volume-sum"

        def __init__(self, shape=(4, 5, 6)):
            super().__init__()
            self.shape = tuple(int(s) for s in shape)
            self.in_shape, self.out_shape = self.shape, self.shape[1:]

        def _forward(self, x):
            return x.sum(dim=1)

        def _adjoint(self, y):
            return y[:, None].expand(-1, self.shape[0], *self.shape[1:]).clone()

        def geometry(self):
            return {"shape": (list(self.shape), "voxel")}

        @classmethod
        def from_geometry(cls, g):
            return cls(tuple(int(s) for s in g["shape"]))

    entry = OperatorEntry("test-volume-sum", VolumeSum, lambda dtype=torch.float64: VolumeSum(), "test",
                          image_input=False)
    monkeypatch.setitem(fm.REGISTRY, "test-volume-sum", entry)
    from recon.workflow import simulate
    from recon.io import write_measurement

    op = VolumeSum()
    vol = write_measurement(tmp_path / "vol.h5", simulate(op, np.random.default_rng(0).random(op.in_shape),
                                                          noise_sigma=0.01, seed=1))
    res = compare_files([vol, files[1]], priors=["wavelet", "none"], out=tmp_path / "r", iterations=3)
    status = {(r["forward_model"], r["prior"]): r["status"] for r in res.rows}
    assert status[("test-volume-sum", "wavelet")] == "n/a"
    assert status[("test-volume-sum", "none")] == "ok"
    assert status[("denoise", "wavelet")] == "ok"
    assert "n/a" in (tmp_path / "r" / "results.csv").read_text()


def test_compare_bad_inputs_leave_nothing(tmp_path, files, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    rc = main(["compare", str(files[0]), str(bad), "--priors", "tv", "-o", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(bad) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "rep").exists()
    with pytest.raises(MeasurementFileError, match="does not exist"):
        compare_files(files, priors=["tv"], out=tmp_path / "missing" / "rep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_recon_compare_is_callable(files):
    import recon
    import recon.comparison  # noqa: F401 - importing the module must not rebind recon.compare

    assert recon.compare is recon.comparison.compare
    res = recon.compare(files[:1], priors=["none"], out=None, iterations=2)
    assert res.rows[0]["status"] == "ok"


def test_compare_resumes_and_keeps_killed_work(tmp_path, files, monkeypatch, capsys):
    """A killed comparison keeps its finished jobs; the same command skips them; the report can be
    rebuilt from what exists; the results equal an uninterrupted run's."""
    import recon.comparison as rc

    full = compare_files(files, priors=PRIORS, out=None, iterations=5)
    real = rc.run_job
    calls = []

    def dying(spec):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C during the fourth job
        calls.append(spec.index)
        return real(spec)

    monkeypatch.setattr(rc, "run_job", dying)
    folder = tmp_path / "rep"
    with pytest.raises(KeyboardInterrupt):
        compare_files(files, priors=PRIORS, out=folder, iterations=5)
    assert len(list((folder / "jobs").glob("*.json"))) == 3
    assert "in progress" in (folder / "report.md").read_text()  # the partial table is readable
    partial = compare_files(files, priors=PRIORS, out=folder, iterations=5, run=False)
    assert [r["status"] for r in partial.rows].count("not run") == len(full.rows) - 3
    monkeypatch.setattr(rc, "run_job", lambda spec: calls.append(spec.index) or real(spec))
    capsys.readouterr()
    res = compare_files(files, priors=PRIORS, out=folder, iterations=5, progress=True)
    err = capsys.readouterr().err
    assert "resuming: 3 of 6 jobs already finished" in err and "ETA" in err
    assert sorted(calls) == list(range(6))  # each job ran exactly once over the two runs
    assert _stable(res.rows) == _stable(full.rows)
    for i, x in full.reconstructions.items():
        np.testing.assert_array_equal(res.reconstructions[i], x)
    calls.clear()
    compare_files(files, priors=PRIORS, out=folder, iterations=6)  # other arguments: other jobs
    assert len(calls) == 6


def test_compare_takes_measurements_and_fbp(tmp_path):
    """recon.compare accepts Measurement objects (no files); fbp is offered for CT and n/a elsewhere."""
    import recon
    from recon.inputs import build_operator, load_image

    img = load_image("shepp-logan", size=24)
    ct = recon.simulate(build_operator("radon", image_shape=(24, 24), angles=12), img[0], noise_sigma=0.05)
    den = recon.simulate(build_operator("denoise", image_shape=(24, 24)), img[0], noise_sigma=0.05)
    res = recon.compare([ct, den], priors=["fbp", "none"], out=tmp_path / "r", iterations=3)
    st = {(r["forward_model"], r["prior"]): r for r in res.rows}
    assert st[("radon", "fbp")]["status"] == "ok" and st[("radon", "fbp")]["solver"] == "fbp"
    assert st[("denoise", "fbp")]["status"] == "n/a"
    from recon.solvers import fbp
    import torch

    x_ref, _ = fbp(ct.operator(), torch.as_tensor(ct.y)[None].float(), filter="hann")
    idx = res.rows.index(st[("radon", "fbp")])
    np.testing.assert_allclose(res.reconstructions[idx], x_ref[0].numpy(), atol=1e-5)


def test_compare_offers_the_model_specific_solvers_of_the_registry(tmp_path):
    """Solvers that use no prior and apply to some models only (fbp, the black-hole fits) are compare columns,
    taken from the registry: blackhole-voxels runs on the black-hole file as `reconstruct` would, n/a on blur."""
    from pathlib import Path

    import recon
    from recon.comparison import solver_priors
    from recon.solvers import SOLVERS

    expected = {n for n, s in SOLVERS.items() if s.needs_prior is False and s.applies_to}
    assert set(solver_priors()) == expected and {"fbp", "blackhole-voxels"} <= expected
    data = Path(__file__).resolve().parents[2] / "data"
    bh, blur = recon.load_measurement(data / "blackhole.h5"), recon.load_measurement(data / "blur.h5")
    res = recon.compare([bh, blur], priors=["blackhole-voxels"], out=tmp_path / "r", iterations=3)
    st = {r["forward_model"]: r for r in res.rows}
    assert st["blackhole"]["status"] == "ok" and st["blackhole"]["solver"] == "blackhole-voxels"
    assert st["blur"]["status"] == "n/a"
    ref = recon.reconstruct(bh, solver="blackhole-voxels", prior="none", iterations=3)
    np.testing.assert_allclose(res.reconstructions[res.rows.index(st["blackhole"])], np.asarray(ref.x), atol=1e-5)
