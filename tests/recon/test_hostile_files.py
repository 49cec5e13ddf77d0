"""Files and runs that try to turn recon against its user (issue 21, parts B-D).

Files pointing at other files (external storage, external links, virtual datasets), tiny
files declaring huge arrays, outputs over things recon did not write, full disks, tampered
checkpoints, units and values that would give a wrong answer with exit status 0, messages,
and the provenance hash of what was actually read.  Every refusal is one line naming the
file (or option) and the problem, exit status 2, with nothing written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.cli import main as _cli_main
from recon.io import MeasurementFileError, read_measurement, read_reconstruction

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def main(argv) -> int:
    return _cli_main([str(a) for a in argv])


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _copy(name: str, dst: Path) -> Path:
    shutil.copy(DATA / f"{name}.h5", dst)
    return dst


def _replace(path: Path, key: str, **create) -> None:
    """Replace dataset ``key`` (keeping its attributes) by ``create_dataset(**create)``."""
    with h5py.File(path, "r+") as f:
        attrs = dict(f[key].attrs)
        del f[key]
        ds = f.create_dataset(key, **create)
        ds.attrs.update(attrs)


def _run_cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err.strip()


def _one_line_exit2(rc: int, err: str, *needles) -> None:
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert str(n) in err, (n, err)


# ============================================================================ 6. files pointing elsewhere
def _secret(tmp_path: Path, n: int) -> Path:
    s = tmp_path / "secret.bin"
    s.write_bytes(np.arange(n, dtype="<f4").tobytes())
    return s


def _external_raw(path: Path, tmp_path: Path) -> None:
    with h5py.File(path, "r") as f:
        shape = f["measurement/y"].shape
    secret = _secret(tmp_path, int(np.prod(shape)))
    _replace(path, "measurement/y", shape=shape, dtype="<f4", external=[(str(secret), 0, secret.stat().st_size)])


def _external_link(path: Path, tmp_path: Path) -> None:
    with h5py.File(path, "r") as f:
        y = f["measurement/y"][()]
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["y"] = y + 1
    with h5py.File(path, "r+") as f:
        del f["measurement/y"]
        f["measurement/y"] = h5py.ExternalLink(str(other), "/y")


def _virtual(path: Path, tmp_path: Path, *, missing_source: bool) -> None:
    with h5py.File(path, "r") as f:
        y = f["measurement/y"][()]
    src = tmp_path / "source.h5"
    with h5py.File(src, "w") as g:
        g["y"] = y
    layout = h5py.VirtualLayout(shape=y.shape, dtype=y.dtype)
    layout[...] = h5py.VirtualSource(str(src), "y", shape=y.shape)
    with h5py.File(path, "r+") as f:
        attrs = dict(f["measurement/y"].attrs)
        del f["measurement/y"]
        f["measurement"].create_virtual_dataset("y", layout, fillvalue=0)
        f["measurement/y"].attrs.update(attrs)
    if missing_source:
        src.unlink()


def _external_kernel(path: Path, tmp_path: Path) -> None:
    with h5py.File(path, "r") as f:
        k = f["geometry/kernel"][()]
    other = tmp_path / "kernel.h5"
    with h5py.File(other, "w") as g:
        g["k"] = k
    with h5py.File(path, "r+") as f:
        del f["geometry/kernel"]
        f["geometry/kernel"] = h5py.ExternalLink(str(other), "/k")


POINTING = {
    "external-raw-storage": (_external_raw, "/measurement/y", "external"),
    "external-link": (_external_link, "/measurement/y", "external link"),
    "virtual-dataset": (lambda p, t: _virtual(p, t, missing_source=False), "/measurement/y", "virtual"),
    "virtual-missing-source": (lambda p, t: _virtual(p, t, missing_source=True), "/measurement/y", "virtual"),
    "external-link-in-geometry": (_external_kernel, "/geometry/kernel", "external link"),
}


@pytest.mark.parametrize("case", sorted(POINTING))
@pytest.mark.parametrize("command", ["run", "info"])
def test_files_pointing_elsewhere_are_refused(tmp_path, capsys, case, command, monkeypatch):
    monkeypatch.delenv("RECON_ALLOW_EXTERNAL", raising=False)
    make, dataset, word = POINTING[case]
    bad = _copy("blur", tmp_path / "in.h5")
    make(bad, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.h5"
    argv = ["run", bad, "--solver", "cg", "--iterations", "1", "-o", out] if command == "run" else ["info", bad]
    rc, err = _run_cli(argv, capsys)
    _one_line_exit2(rc, err, bad, dataset, word)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_external_data_is_read_when_the_user_opts_in(tmp_path, monkeypatch):
    bad = _copy("blur", tmp_path / "in.h5")
    _external_link(bad, tmp_path)
    with pytest.raises(MeasurementFileError, match="external link"):
        read_measurement(bad)
    with h5py.File(tmp_path / "other.h5", "r") as g:
        expected = g["y"][()]
    np.testing.assert_array_equal(read_measurement(bad, allow_external=True).y, expected)
    monkeypatch.setenv("RECON_ALLOW_EXTERNAL", "1")
    np.testing.assert_array_equal(read_measurement(bad).y, expected)


# ============================================================================ 7. memory and time bombs
def _huge_unwritten_y(path: Path) -> None:
    _replace(path, "measurement/y", shape=(30000, 30000), dtype="<f4", chunks=(1000, 1000))


def _many_angles(path: Path) -> None:  # 10^8 declared angles, never written (a few KB on disk)
    _replace(path, "geometry/angles", shape=(10 ** 8,), dtype="<f8", chunks=(10 ** 6,))


def _angles_too_many_views(path: Path) -> None:  # 10^6 written angles: y would be 91 x 10^6
    _replace(path, "geometry/angles", data=np.linspace(0, np.pi, 10 ** 6, endpoint=False))


def _wide_screen(path: Path) -> None:  # black hole: 10^4 screen columns (2.4 10^5 rays x 64 samples)
    _replace(path, "geometry/alpha", data=np.linspace(-8, 8, 10 ** 4))


BOMBS = {
    "30000x30000-unwritten-y": ("blur", _huge_unwritten_y, "/measurement/y"),
    "1e8-angles": ("radon", _many_angles, "/geometry/angles"),
    "1e6-angles": ("radon", _angles_too_many_views, "radon"),
    "1e4-screen-columns": ("blackhole", _wide_screen, "blackhole"),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
@pytest.mark.parametrize("command", ["run", "info"])
def test_size_limits_are_checked_before_reading(tmp_path, capsys, case, command):
    name, make, where = BOMBS[case]
    bad = _copy(name, tmp_path / "in.h5")
    make(bad)
    assert bad.stat().st_size < 10_000_000
    out = tmp_path / "out.h5"
    argv = ["run", bad, "-o", out] if command == "run" else ["info", bad]
    rc, err = _run_cli(argv, capsys)
    _one_line_exit2(rc, err, bad, where, "limit", "RECON_MAX_")
    assert not out.exists()


def test_size_limit_can_be_raised(tmp_path, monkeypatch):
    bad = _copy("blur", tmp_path / "in.h5")
    monkeypatch.setenv("RECON_MAX_ELEMENTS", "1000")
    with pytest.raises(MeasurementFileError, match="limit"):
        read_measurement(bad)
    monkeypatch.setenv("RECON_MAX_ELEMENTS", "5000")
    assert read_measurement(bad).y.shape == (1, 64, 64)


def test_info_reads_no_data_array(tmp_path, capsys, monkeypatch):
    path = _copy("blur", tmp_path / "in.h5")
    assert main(["run", path, "--solver", "cg", "--iterations", "2", "-o", tmp_path / "r.h5"]) == 0
    read = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        read.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    for f in (path, tmp_path / "r.h5"):
        capsys.readouterr()
        assert main(["info", f]) == 0
        text = capsys.readouterr().out
        assert "data y: shape (1, 64, 64) float" in text
    assert read and all(n.startswith("/geometry/") or n == "/measurement/sigma" for n in read), read


# ============================================================================ 8. nothing the user has is overwritten
def _run_ok(src: Path, out: Path, *extra) -> list:
    return ["run", src, "--solver", "cg", "--iterations", "2", *extra, "-o", out]


def test_checkpoint_path_over_a_user_file_is_refused(tmp_path, capsys):
    src = _copy("blur", tmp_path / "in.h5")
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    rc, err = _run_cli(_run_ok(src, tmp_path / "o.h5", "--checkpoint-every", "1", "--checkpoint", mine), capsys)
    _one_line_exit2(rc, err, mine, "checkpoint", "not written by recon")
    assert mine.read_text() == "my notes\n" and not (tmp_path / "o.h5").exists()


def test_output_over_weights_is_refused(tmp_path, capsys):
    src = _copy("denoise", tmp_path / "in.h5")
    shipped = ROOT / "priors" / "weights" / "dncnn.safetensors"
    w = tmp_path / "w.safetensors"
    shutil.copy(shipped, w)
    before = _sha(w)
    rc, err = _run_cli(["run", src, "--prior", "dncnn", "--weights", w, "--iterations", "1", "-o", w], capsys)
    _one_line_exit2(rc, err, w)
    assert _sha(w) == before


@pytest.mark.parametrize("existing", ["out.h5", "out.png"])
def test_output_over_a_file_recon_did_not_write_is_refused(tmp_path, capsys, existing):
    src = _copy("blur", tmp_path / "in.h5")
    mine = tmp_path / existing
    mine.write_bytes(b"\x89PNG my holiday picture" if existing.endswith(".png") else b"my data")
    rc, err = _run_cli(_run_ok(src, tmp_path / "out.h5"), capsys)
    _one_line_exit2(rc, err, mine, "not written by recon")
    assert mine.read_bytes().endswith(b"picture" if existing.endswith(".png") else b"my data")


def test_recon_outputs_and_checkpoints_are_replaced(tmp_path, capsys):
    src = _copy("blur", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    assert main(_run_ok(src, out)) == 0
    first = read_reconstruction(out).metrics["iterations"]
    assert main(["run", src, "--solver", "cg", "--iterations", "3", "-o", out]) == 0  # replaces its own output
    assert read_reconstruction(out).metrics["iterations"] != first
    ck = tmp_path / "run.ckpt"
    assert main(_run_ok(src, tmp_path / "o2.h5", "--checkpoint-every", "1", "--checkpoint", ck)) == 0
    assert not ck.exists()


def test_compare_output_folder_holding_its_input_is_refused(tmp_path, capsys):
    src = _copy("denoise", tmp_path / "results.h5")  # the name compare gives its HDF5 output
    before = _sha(src)
    rc, err = _run_cli(["compare", src, "--priors", "none", "--iterations", "1", "-o", tmp_path], capsys)
    _one_line_exit2(rc, err, src)
    assert _sha(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.h5"]


# ============================================================================ 9. disk full / file-size limit
FSIZE_RUNNER = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
from recon.cli import main
import recon.workflow, torch, h5py, matplotlib  # imported before the limit (their caches write files)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def _limited(limit: int, argv, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLCONFIGDIR=str(cwd))
    return subprocess.run([sys.executable, "-c", FSIZE_RUNNER, str(limit), *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_file_size_limit_during_run_keeps_the_old_output(tmp_path):
    src = _copy("blur", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    assert main(_run_ok(src, out)) == 0
    old = {p.name: _sha(p) for p in (out, out.with_suffix(".png"))}
    res = _limited(20_000, ["run", src, "--solver", "cg", "--iterations", "3", "-o", out], tmp_path)
    err = res.stderr.strip()
    assert res.returncode == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "out.h5" in err and "too large" in err.lower(), err
    assert {p.name: _sha(p) for p in (out, out.with_suffix(".png"))} == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_file_size_limit_during_compare_keeps_the_old_report(tmp_path):
    src = _copy("denoise", tmp_path / "in.h5")
    rep = tmp_path / "rep"
    argv = ["compare", src, "--priors", "none", "--iterations", "1", "-o", rep]
    assert main([str(a) for a in argv]) == 0
    old = {p.name: _sha(p) for p in rep.iterdir() if p.is_file()}
    assert sorted(old) == ["figure.png", "report.md", "results.csv", "results.h5"]
    res = _limited(20_000, ["compare", src, "--priors", "none", "--iterations", "2", "-o", rep], tmp_path)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 1, res.stderr
    assert "too large" in err[-1].lower() and "Traceback" not in res.stderr, res.stderr
    # the final report is all-or-nothing: results.h5 and figure.png are the old ones, and report.md is
    # either the old one or the streamed table of the jobs finished so far, marked as in progress
    now = {p.name: _sha(p) for p in rep.iterdir() if p.is_file()}
    assert {k: now[k] for k in ("results.h5", "figure.png")} == {k: old[k] for k in ("results.h5", "figure.png")}
    assert now["report.md"] == old["report.md"] or "(in progress)" in (rep / "report.md").read_text()
    assert not [p for p in rep.rglob("*.tmp")]


def test_run_outputs_are_all_or_nothing(tmp_path, capsys, monkeypatch):
    """A failing preview write leaves neither a new .h5 nor a new .png."""
    src = _copy("blur", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    assert main(_run_ok(src, out)) == 0
    old = {p.name: _sha(p) for p in (out, out.with_suffix(".png"))}
    real = os.replace

    def failing(a, b, *args, **kw):
        if str(b).endswith(".png"):
            raise OSError(28, "No space left on device")
        return real(a, b, *args, **kw)

    monkeypatch.setattr(os, "replace", failing)
    rc, err = _run_cli(["run", src, "--solver", "cg", "--iterations", "3", "-o", out], capsys)
    monkeypatch.setattr(os, "replace", real)
    assert rc == 1 and len(err.splitlines()) == 1 and "No space left" in err, err
    assert {p.name: _sha(p) for p in (out, out.with_suffix(".png"))} == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ============================================================================ 10. stale checkpoint temporaries
def test_resume_cleans_stale_checkpoint_temporaries(tmp_path, capsys):
    src = _copy("blur", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    stale = tmp_path / ".out.h5.ckpt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert main(_run_ok(src, out, "--checkpoint-every", "1", "--resume")) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5", "out.h5", "out.png"]


# ============================================================================ 11. units
def _set_units(path: Path, key: str, units: str, scale: float = 1.0) -> None:
    with h5py.File(path, "r+") as f:
        ds = f[key]
        if scale != 1.0:
            ds[...] = ds[()] * scale
        ds.attrs["units"] = units


@pytest.mark.parametrize("units", ["deg", "degree", "degrees"])
def test_angles_in_degrees_are_converted(tmp_path, units):
    path = _copy("radon", tmp_path / "in.h5")
    _set_units(path, "geometry/angles", units, scale=180 / np.pi)
    ref = read_measurement(DATA / "radon.h5")
    m = read_measurement(path)
    np.testing.assert_allclose(m.geometry["angles"], ref.geometry["angles"], rtol=1e-12, atol=1e-15)
    assert m.geometry_units["angles"] == "rad"


def test_inclination_in_radians_is_converted(tmp_path):
    path = _copy("blackhole", tmp_path / "in.h5")
    _set_units(path, "geometry/inclination_deg", "rad", scale=np.pi / 180)
    assert read_measurement(path).geometry["inclination_deg"] == pytest.approx(60.0, rel=1e-12)


@pytest.mark.parametrize("key,units", [("geometry/angles", "furlong"), ("geometry/image_shape", "mm"),
                                       ("geometry/channels", "rad")])
def test_unknown_units_are_refused(tmp_path, capsys, key, units):
    path = _copy("radon", tmp_path / "in.h5")
    _set_units(path, key, units)
    rc, err = _run_cli(["info", path], capsys)
    _one_line_exit2(rc, err, path, key.split("/")[1], repr(units))


def test_a_models_own_unit_is_accepted_as_written(monkeypatch):
    """A user's forward model may declare a unit outside the alias table ('index'); the same string in the
    file is accepted, another one is still refused."""
    import recon.io.geometry as geometry
    from recon.io import MeasurementFileError

    monkeypatch.setattr(geometry, "expected_geometry", lambda name: {"rows": ("index", True)})
    g, u = geometry.normalise_geometry("user-model", {"rows": np.arange(4)}, {"rows": "index"}, "f.h5")
    assert u["rows"] == "index" and np.array_equal(g["rows"], np.arange(4))
    with pytest.raises(MeasurementFileError, match="'rows' has units 'furlong'"):
        geometry.normalise_geometry("user-model", {"rows": np.arange(4)}, {"rows": "furlong"}, "f.h5")
    with pytest.raises(MeasurementFileError, match="must hold integers"):
        geometry.normalise_geometry("user-model", {"rows": np.array([0.5])}, {"rows": "index"}, "f.h5")


# ============================================================================ 12. values that give wrong answers
@pytest.mark.parametrize("kernel,why", [(np.zeros((3, 3)), "sum"), (np.array([[1.0, -1.0]]), "sum"),
                                        (-np.ones((3, 3)), "sum"), (np.array([[1.0, np.inf]]), "NaN or Inf")])
def test_degenerate_blur_kernels_are_refused(tmp_path, capsys, kernel, why):
    import forward_models as fm

    with pytest.raises(ValueError, match=why):
        fm.Blur(kernel, (8, 8))
    path = _copy("blur", tmp_path / "in.h5")
    _replace(path, "geometry/kernel", data=kernel)
    rc, err = _run_cli(["info", path], capsys)
    _one_line_exit2(rc, err, path, "kernel")


def test_non_integer_image_shape_is_refused(tmp_path, capsys):
    path = _copy("blur", tmp_path / "in.h5")
    _replace(path, "geometry/image_shape", data=np.array([64.7, 64.0]))
    rc, err = _run_cli(["info", path], capsys)
    _one_line_exit2(rc, err, path, "image_shape", "integer")


# ============================================================================ 13. tampered checkpoints
def _interrupted_checkpoint(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A checkpoint after iteration 1 of a 4-iteration CG run (the run is stopped by its callback)."""
    from recon.checkpoint import Checkpointer

    src = _copy("blur", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    ck = Path(str(out) + ".ckpt")

    class Stop(Exception):
        pass

    def stop(k, x, *a):
        if k == 1:
            raise Stop

    m = read_measurement(src)
    with pytest.raises(Stop):
        Checkpointer(ck, every=1).run(m, solver="cg", prior="none", iterations=4, callback=stop)
    assert ck.exists()
    return src, out, ck


def _tamper(ck: Path, fn) -> None:
    with h5py.File(ck, "r+") as f:
        fn(f)


def _set_iteration(value):
    def fn(f):
        f.attrs["iteration"] = value
        meta = json.loads(f.attrs["meta"])
        meta["items"]["iteration"] = {"kind": "json", "value": value}
        f.attrs["meta"] = json.dumps(meta)
    return fn


def _array(key):
    def find(f):
        return next(ds for ds in f["arrays"].values() if ds.attrs["key"] == key)
    return find


def _reshape_x(f):
    ds = _array("x")(f)
    name, attrs = ds.name, dict(ds.attrs)
    del f[name]
    f.create_dataset(name, data=np.zeros((1, 1, 8, 8))).attrs.update(attrs)


def _nan_x(f):
    ds = _array("x")(f)
    a = ds[()]
    a.flat[0] = np.nan
    ds[...] = a


TAMPERED = {"iteration-1e9": _set_iteration(10 ** 9), "iteration-negative": _set_iteration(-7),
            "iteration-float": _set_iteration(1.5), "x-wrong-shape": _reshape_x, "x-nan": _nan_x}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_checkpoint_is_refused(tmp_path, capsys, case):
    src, out, ck = _interrupted_checkpoint(tmp_path)
    _tamper(ck, TAMPERED[case])
    rc, err = _run_cli(["run", src, "--solver", "cg", "--prior", "none", "--iterations", "4", "--checkpoint-every",
                        "1", "--resume", "-o", out], capsys)
    _one_line_exit2(rc, err, ck)
    assert not out.exists()


# ============================================================================ 14. compare exit codes
def test_compare_unknown_prior_or_solver_is_bad_input(tmp_path, capsys):
    src = _copy("denoise", tmp_path / "in.h5")
    rc, err = _run_cli(["compare", src, "--priors", "none,telepathy", "-o", tmp_path / "rep"], capsys)
    _one_line_exit2(rc, err, "telepathy", "--priors")
    rc, err = _run_cli(["compare", src, "--priors", "tv", "--solver", "banana", "-o", tmp_path / "rep"], capsys)
    _one_line_exit2(rc, err, "banana", "--solver")
    assert not (tmp_path / "rep").exists()


def test_compare_failing_pair_is_reported_and_fails_the_run(tmp_path, capsys, monkeypatch):
    import recon.workflow

    a, b = _copy("denoise", tmp_path / "a.h5"), _copy("blur", tmp_path / "b.h5")
    real = recon.workflow.reconstruct

    def flaky(m, *args, **kw):
        if str(m.path).endswith("b.h5"):
            raise RuntimeError("solver diverged")
        return real(m, *args, **kw)

    monkeypatch.setattr(recon.workflow, "reconstruct", flaky)
    rc, err = _run_cli(["compare", a, b, "--priors", "none", "--iterations", "1", "-o", tmp_path / "rep"], capsys)
    assert rc == 1, err
    assert "1 of 2" in err.splitlines()[-1], err
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "failed" in report and "solver diverged" in report


# ============================================================================ 15. messages
def _set_prov_attr(key, value):
    def fn(path):
        with h5py.File(path, "r+") as f:
            f["provenance"].attrs[key] = value
    return fn


MALFORMED_ATTRS = {
    "parents-object": (_set_prov_attr("parents", json.dumps({"path": "a"})), "parents"),
    "parents-list-of-numbers": (_set_prov_attr("parents", json.dumps([1, 2])), "parents"),
    "config-list": (_set_prov_attr("config", json.dumps([1])), "config"),
    "seed-abc": (_set_prov_attr("seed", "abc"), "seed"),
    "seed-array": (_set_prov_attr("seed", np.arange(3)), "seed"),
    "dims-object": (lambda p: _edit_attr(p, "measurement/y", "dims", json.dumps({"a": 1})), "dims"),
    "units-array": (lambda p: _edit_attr(p, "measurement/y", "units", np.arange(2)), "units"),
}


def _edit_attr(path, obj, key, value):
    with h5py.File(path, "r+") as f:
        f[obj].attrs[key] = value


@pytest.mark.parametrize("case", sorted(MALFORMED_ATTRS))
@pytest.mark.parametrize("command", ["run", "info"])
def test_malformed_attributes_name_the_file(tmp_path, capsys, case, command):
    make, word = MALFORMED_ATTRS[case]
    path = _copy("blur", tmp_path / "in.h5")
    make(path)
    argv = _run_ok(path, tmp_path / "o.h5") if command == "run" else ["info", path]
    rc, err = _run_cli(argv, capsys)
    _one_line_exit2(rc, err, path, word)


def test_memory_error_while_reading_names_the_file(tmp_path, capsys, monkeypatch):
    path = _copy("blur", tmp_path / "in.h5")
    original = h5py.Dataset.__getitem__

    def starved(self, key):
        if self.name == "/measurement/y":
            raise MemoryError()
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", starved)
    rc, err = _run_cli(_run_ok(path, tmp_path / "o.h5"), capsys)
    _one_line_exit2(rc, err, path, "/measurement/y", "memory")


@pytest.mark.parametrize("device", ["banana", "cuda:99", "cuda:x"])
def test_bad_device_is_bad_input(tmp_path, capsys, device):
    path = _copy("blur", tmp_path / "in.h5")
    rc, err = _run_cli(_run_ok(path, tmp_path / "o.h5", "--device", device), capsys)
    _one_line_exit2(rc, err, "--device", device)


def test_a_bug_is_not_reported_as_bad_input(tmp_path, capsys, monkeypatch):
    import recon.workflow

    def buggy(*a, **kw):
        return None + 1  # a TypeError inside recon: a failure (exit 1), not the user's fault

    monkeypatch.setattr(recon.workflow, "reconstruct", buggy)
    path = _copy("blur", tmp_path / "in.h5")
    rc, err = _run_cli(_run_ok(path, tmp_path / "o.h5"), capsys)
    assert rc == 1 and "failed: TypeError" in err and len(err.splitlines()) == 1, err


# ============================================================================ 16. provenance of the bytes read
def test_provenance_hashes_the_bytes_that_were_read(tmp_path, capsys, monkeypatch):
    import recon.workflow

    path = _copy("blur", tmp_path / "in.h5")
    read_sha = _sha(path)
    real = recon.workflow.reconstruct

    def rewrite_then_run(m, *a, **kw):  # the file changes on disk while the run computes
        with h5py.File(path, "r+") as f:
            f["provenance"].attrs["generator"] = "someone else"
        return real(m, *a, **kw)

    monkeypatch.setattr(recon.workflow, "reconstruct", rewrite_then_run)
    out = tmp_path / "o.h5"
    assert main([str(a) for a in _run_ok(path, out)]) == 0
    assert _sha(path) != read_sha
    parents = read_reconstruction(out).provenance["parents"]
    assert parents[0]["sha256"] == read_sha


def test_file_changed_while_reading_is_refused(tmp_path, monkeypatch):
    import recon.io.hdf5  # the module whose reader hashes the file

    path = _copy("blur", tmp_path / "in.h5")
    real = recon.io.hdf5.sha256_file

    def hash_then_change(p, **kw):
        digest = real(p, **kw)
        with open(path, "ab") as f:
            f.write(b"appended")
        return digest

    monkeypatch.setattr(recon.io.hdf5, "sha256_file", hash_then_change)
    with pytest.raises(MeasurementFileError, match="changed while"):
        read_measurement(path)


def test_start_point_hash_is_of_the_bytes_read_and_its_shape_is_checked_first(tmp_path, capsys, monkeypatch):
    import recon.workflow

    path = _copy("blur", tmp_path / "in.h5")
    x0 = tmp_path / "x0.npy"
    np.save(x0, np.full((1, 64, 64), 0.5))
    read_sha = _sha(x0)
    real = recon.workflow.reconstruct

    def rewrite_then_run(m, *a, **kw):
        np.save(x0, np.zeros((1, 64, 64)))
        return real(m, *a, **kw)

    monkeypatch.setattr(recon.workflow, "reconstruct", rewrite_then_run)
    out = tmp_path / "o.h5"
    assert main(_run_ok(path, out, "--x0", x0)) == 0
    parents = {p.get("role", "input"): p["sha256"] for p in read_reconstruction(out).provenance["parents"]}
    assert parents["x0"] == read_sha != _sha(x0)
    # a tiny .npy declaring 10^10 values: refused from its header, nothing allocated
    bomb = tmp_path / "bomb.npy"
    with open(bomb, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    rc, err = _run_cli(_run_ok(path, tmp_path / "o2.h5", "--x0", bomb), capsys)
    _one_line_exit2(rc, err, bomb)


def test_compare_provenance_hashes_the_bytes_that_were_read(tmp_path, monkeypatch):
    import recon.workflow

    path = _copy("denoise", tmp_path / "in.h5")
    read_sha = _sha(path)
    real = recon.workflow.reconstruct

    def rewrite_then_run(m, *a, **kw):
        with h5py.File(path, "r+") as f:
            f["provenance"].attrs["generator"] = "someone else"
        return real(m, *a, **kw)

    monkeypatch.setattr(recon.workflow, "reconstruct", rewrite_then_run)
    assert main(["compare", path, "--priors", "none", "--iterations", "1", "-o", tmp_path / "rep"]) == 0
    with h5py.File(tmp_path / "rep" / "results.h5", "r") as f:
        parents = json.loads(f["provenance"].attrs["parents"])
    assert _sha(path) != read_sha and parents[0]["sha256"] == read_sha


def test_fits_is_all_or_nothing_with_the_reconstruction(tmp_path, capsys, monkeypatch):
    src = _copy("blackhole", tmp_path / "in.h5")
    out, sky = tmp_path / "out.h5", tmp_path / "sky.fits"
    argv = ["run", src, "--solver", "cg", "--iterations", "1", "--fits", sky, "-o", out]
    assert main(argv) == 0
    old = {p.name: _sha(p) for p in (out, out.with_suffix(".png"), sky)}
    real = os.replace

    def failing(a, b, *args, **kw):
        if str(b).endswith(".fits"):
            raise OSError(28, "No space left on device")
        return real(a, b, *args, **kw)

    monkeypatch.setattr(os, "replace", failing)
    rc, err = _run_cli([*argv[:5], "2", *argv[6:]], capsys)
    monkeypatch.setattr(os, "replace", real)
    assert rc == 1 and "No space left" in err, err
    assert {p.name: _sha(p) for p in (out, out.with_suffix(".png"), sky)} == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
