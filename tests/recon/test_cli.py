"""The ``recon`` command: malformed inputs (one line, exit 2, nothing written, input unchanged),
simulate / run / info end to end, and a fast ``--help``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    path = d / "blur.h5"
    rc = main(["simulate", "--forward-model", "blur", "--image", "camera", "--size", "16", "--kernel",
               "gaussian:1", "--noise-sigma", "0.01", "--seed", "3", "-o", str(path)])
    assert rc == 0
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _edit(fn):
    def apply(path: Path):
        with h5py.File(path, "r+") as f:
            fn(f)
    return apply


def _replace(key, data):
    def fn(f):
        attrs = dict(f[key].attrs)
        del f[key]
        ds = f.create_dataset(key, data=data)
        for k, v in attrs.items():
            ds.attrs[k] = v
    return _edit(fn)


def _set_attr(key, value, obj="/"):
    return _edit(lambda f: f[obj].attrs.__setitem__(key, value))


def _del(key):
    return _edit(lambda f: f.__delitem__(key))


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_y(value):
    def fn(f):
        y = f["measurement/y"][()]
        y.flat[5] = value
        f["measurement/y"][...] = y
    return _edit(fn)


def _kernel_nan(f):
    k = f["geometry/kernel"][()]
    k.flat[0] = np.nan
    f["geometry/kernel"][...] = k


def _del_units(f):
    del f["geometry/image_shape"].attrs["units"]


# (case id, mutation of a valid file or None for a file written from scratch, expected words in the message)
MALFORMED = [
    ("not-hdf5", lambda p: p.write_text("y = 1, 2, 3\n"), "not an HDF5 file"),
    ("empty-file", lambda p: p.write_bytes(b""), "empty"),
    ("truncated", _truncate, "truncated"),
    ("missing-y", _del("measurement/y"), "/measurement/y"),
    ("missing-measurement-group", _del("measurement"), "/measurement/y"),
    ("unknown-format", _set_attr("format", "netcdf-thing"), "unknown format"),
    ("missing-format", _edit(lambda f: f.attrs.__delitem__("format")), "'format'"),
    ("newer-major-version", _set_attr("format_version", "2.0"), "newer than this software"),
    ("bad-version-string", _set_attr("format_version", "one"), "MAJOR.MINOR"),
    ("unknown-forward-model", _set_attr("forward_model", "telepathy"), "unknown forward model 'telepathy'"),
    ("missing-geometry", _del("geometry"), "/geometry"),
    ("missing-geometry-parameter", _del("geometry/boundary"), "boundary"),
    ("geometry-without-units", _edit(_del_units), "units"),
    ("non-finite-geometry", _edit(_kernel_nan), "NaN or Inf"),
    ("invalid-geometry-value", _replace("geometry/boundary", "sideways"), "boundary"),
    ("nan-in-data", _nan_y(np.nan), "NaN or Inf"),
    ("inf-in-data", _nan_y(np.inf), "NaN or Inf"),
    ("shape-mismatch", _replace("measurement/y", np.zeros((1, 16, 15), np.float32)), "shape"),
    ("wrong-dtype-int", _replace("measurement/y", np.zeros((1, 16, 16), np.int32)), "dtype int32"),
    ("wrong-dtype-string", _replace("measurement/y", np.array([b"abc"])), "dtype"),
    ("zero-sigma", _replace("measurement/sigma", np.float64(0.0)), "sigma"),
    ("negative-sigma", _replace("measurement/sigma", np.float64(-0.1)), "sigma"),
    ("nan-sigma", _replace("measurement/sigma", np.float64(np.nan)), "sigma"),
    ("array-sigma", _replace("measurement/sigma", np.ones(3)), "sigma"),
    ("truth-shape-mismatch", _replace("ground_truth/x", np.zeros((1, 8, 8), np.float32)), "ground truth"),
    ("truth-nan", _replace("ground_truth/x", np.full((1, 16, 16), np.nan, np.float32)), "ground truth"),
    ("negative-weights", _edit(lambda f: f.create_dataset("measurement/weights",
                                                          data=-np.ones((1, 16, 16)))), "weights"),
    ("mask-wrong-dtype", _edit(lambda f: f.create_dataset("measurement/mask",
                                                          data=np.ones((1, 16, 16), np.float32))), "mask"),
    ("provenance-not-json", _set_attr("config", "{not json", obj="provenance"), "provenance config"),
    ("folder-not-file", "folder", "folder"),
    ("missing-file", "missing", "does not exist"),
]


# Problems only the data values show: `recon run` refuses them, `recon info` (metadata only) lists the file.
VALUES_ONLY = {"nan-in-data", "inf-in-data", "truth-nan", "negative-weights"}


@pytest.mark.parametrize("case,mutate,expected", MALFORMED, ids=[c[0] for c in MALFORMED])
@pytest.mark.parametrize("command", ["run", "info"])
def test_malformed_input(tmp_path, good_file, capsys, standin, case, mutate, expected, command):
    bad = tmp_path / "input.h5"
    if mutate == "folder":
        bad.mkdir()
    elif mutate == "missing":
        pass
    else:
        _copy(good_file, bad)
        mutate(bad)
    before = _sha(bad) if bad.is_file() else None
    out = tmp_path / "out.h5"
    capsys.readouterr()
    argv = ["run", str(bad), "-o", str(out)] if command == "run" else ["info", str(bad)]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    if command == "info" and case in VALUES_ONLY:  # info reads no data array, so it cannot see these
        assert rc == 0, err
        return
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert str(bad) in err and expected in err, err
    assert "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["input.h5"] if mutate != "missing" else [])
    if before is not None:
        assert _sha(bad) == before


def test_unreadable_path(tmp_path, good_file, capsys, standin):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads files regardless of permissions")
    bad = _copy(good_file, tmp_path / "locked.h5")
    bad.chmod(0)
    try:
        rc = main(["run", str(bad), "-o", str(tmp_path / "out.h5")])
    finally:
        bad.chmod(0o644)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(bad) in err and "not readable" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.h5").exists()


def test_output_in_missing_folder(tmp_path, good_file, capsys, standin):
    out = tmp_path / "nope" / "out.h5"
    before = _sha(good_file)
    rc = main(["run", str(good_file), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(out) in err and "does not exist" in err and len(err.splitlines()) == 1
    assert not out.parent.exists() and _sha(good_file) == before


def test_output_equal_to_input(tmp_path, good_file, capsys, standin):
    inp = _copy(good_file, tmp_path / "in.h5")
    before = _sha(inp)
    for out in (inp, tmp_path / "." / "in.h5"):
        rc = main(["run", str(inp), "-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "same file as the input" in err and len(err.splitlines()) == 1
    assert _sha(inp) == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.h5"]


def test_simulate_output_in_missing_folder(tmp_path, capsys):
    out = tmp_path / "nope" / "m.h5"
    rc = main(["simulate", "--forward-model", "denoise", "--size", "8", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(out) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv,expected", [
    (["--forward-model", "telepathy"], "unknown forward model"),
    (["--forward-model", "blur", "--kernel", "gaussian:-1"], "kernel"),
    (["--forward-model", "blur", "--kernel", "square:3"], "kernel"),
    (["--forward-model", "blur", "--image", "no_such.png"], "no_such.png"),
    (["--forward-model", "denoise", "--noise-sigma", "-0.1"], "noise-sigma"),
    (["--forward-model", "denoise", "--geometry", "{bad json"], "--geometry"),
])
def test_simulate_bad_options(tmp_path, capsys, argv, expected):
    out = tmp_path / "m.h5"
    rc = main(["simulate", "--size", "8", *argv, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expected in err and len(err.splitlines()) == 1, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_simulate_png_and_run(tmp_path, capsys, standin):
    from PIL import Image

    img = (np.arange(12 * 10).reshape(12, 10) * 2).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "im.png")
    meas = tmp_path / "m.h5"
    rc = main(["simulate", "--forward-model", "denoise", "--image", str(tmp_path / "im.png"), "--noise-sigma",
               "0.05", "--seed", "1", "-o", str(meas)])
    assert rc == 0
    from recon.io import read_measurement

    m = read_measurement(meas)
    np.testing.assert_allclose(m.ground_truth[0], img / 255.0, atol=1e-6)  # values/255, size kept
    assert abs(np.std(m.y - m.ground_truth) - 0.05) < 0.02
    assert m.provenance["parents"][0]["sha256"] == _sha(tmp_path / "im.png")
    assert m.provenance["command"].startswith("recon simulate --forward-model denoise")
    out = tmp_path / "r.h5"
    rc = main(["run", str(meas), "--solver", "cg", "--iterations", "5", "--option", "lam=0.5", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    from recon.io import read_reconstruction

    r = read_reconstruction(out)
    assert r.options["lam"] == 0.5 and r.metrics["iterations"] == 5 and "psnr" in r.metrics
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.provenance["parents"][0]["sha256"] == _sha(meas)


def test_run_unknown_option_and_solver(tmp_path, good_file, capsys, standin):
    out = tmp_path / "o.h5"
    assert main(["run", str(good_file), "--solver", "cg", "--option", "frobnicate=1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "frobnicate" in err and len(err.splitlines()) == 1
    assert main(["run", str(good_file), "--solver", "nosuch", "-o", str(out)]) == 2
    assert "unknown solver 'nosuch'" in capsys.readouterr().err
    assert not out.exists()


def test_simulate_every_primary_forward_model(tmp_path):
    import forward_models as fm
    from recon.io import read_measurement

    from recon.io import forward_model_registry

    forward_model_registry()
    for name in fm.primary_names():
        if name == "blackhole":
            continue  # slower (ray tracing); simulated by the sample-data and demo runs
        out = tmp_path / f"{name}.h5"
        rc = main(["simulate", "--forward-model", name, "--image", "shepp-logan", "--size", "16", "--angles", "8",
                   "-o", str(out)])
        if name not in ("denoise", "blur", "radon"):  # models without simulation options: a clear refusal
            assert rc in (0, 2)
            continue
        assert rc == 0
        m = read_measurement(out)
        assert m.forward_model == name and m.ground_truth.shape == (1, 16, 16)


def test_cli_subprocess_help_and_error():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "recon.cli", "--help"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 0
    for sub in ("simulate", "run", "compare", "demo", "info"):
        assert sub in res.stdout
    # --help must not import torch (fast start)
    res = subprocess.run([sys.executable, "-c", "import sys; from recon.cli import build_parser; build_parser(); "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, env=env, timeout=60)
    assert res.stdout.strip() == "False"


def test_cli_subprocess_bad_file_exit_code(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "recon.cli", "info", str(bad)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and str(bad) in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "recon.cli", "info", str(bad), "--debug"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_run_with_user_weights(tmp_path, good_file, capsys):
    import shutil

    shipped = ROOT / "priors" / "weights" / "drunet.safetensors"
    if not shipped.is_file():
        pytest.skip("no shipped DRUNet weights")
    mine = tmp_path / "mine.safetensors"
    shutil.copy(shipped, mine)
    shutil.copy(shipped.with_suffix(".json"), mine.with_suffix(".json"))
    out = tmp_path / "w.h5"
    rc = main(["run", str(good_file), "--solver", "hqs", "--prior", "drunet", "--weights", str(mine),
               "--iterations", "2", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    from recon.io import read_reconstruction

    r = read_reconstruction(out)
    assert r.provenance["config"]["weights"] == str(mine)
    assert r.provenance["config"]["weights_sha256"] == _sha(mine) == r.weights_sha256
    # the same run with the shipped weights gives the same image (same file content)
    out2 = tmp_path / "s.h5"
    assert main(["run", str(good_file), "--solver", "hqs", "--prior", "drunet", "--iterations", "2",
                 "-o", str(out2)]) == 0
    np.testing.assert_array_equal(read_reconstruction(out2).x, r.x)


@pytest.mark.parametrize("case", ["missing", "classical", "corrupt"])
def test_run_bad_weights(tmp_path, good_file, capsys, case):
    w = tmp_path / "w.safetensors"
    prior = "tv" if case == "classical" else "drunet"
    if case != "missing":
        w.write_bytes(b"not a safetensors file")
    out = tmp_path / "o.h5"
    before = _sha(good_file)
    rc = main(["run", str(good_file), "--solver", "hqs", "--prior", prior, "--weights", str(w), "--iterations", "1",
               "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "weights" in err, err  # names the argument (and, for file problems, the file)
    assert not out.exists() and not out.with_suffix(".png").exists()
    assert _sha(good_file) == before


def test_run_from_x0(tmp_path, good_file, capsys):
    """``--x0`` starts the solver there: one CG step from the truth beats one from the default start,
    a ``recon run`` output is accepted as a start point, and the start file is named in the provenance."""
    from recon.io import read_measurement, read_reconstruction

    truth = read_measurement(good_file).ground_truth
    start = tmp_path / "truth.npy"
    np.save(start, truth)
    plain, warm = tmp_path / "plain.h5", tmp_path / "warm.h5"
    base = ["run", str(good_file), "--solver", "cg", "--iterations", "1"]
    assert main(base + ["-o", str(plain)]) == 0
    assert main(base + ["--x0", str(start), "-o", str(warm)]) == 0, capsys.readouterr().err
    p_plain, p_warm = read_reconstruction(plain), read_reconstruction(warm)
    assert p_warm.metrics["psnr"] > p_plain.metrics["psnr"] + 3
    parents = p_warm.provenance["parents"]
    assert {"path": str(start), "sha256": _sha(start), "role": "x0"} in parents
    # a reconstruction file as the start point: its /reconstruction/x
    again = tmp_path / "again.h5"
    assert main(["run", str(good_file), "--solver", "cg", "--iterations", "1", "--x0", str(warm),
                 "-o", str(again)]) == 0
    assert read_reconstruction(again).metrics["psnr"] > p_plain.metrics["psnr"]


@pytest.mark.parametrize("case", ["missing", "shape", "nan", "object", "suffix", "same-as-output"])
def test_run_bad_x0(tmp_path, good_file, capsys, case):
    from recon.io import read_measurement

    truth = read_measurement(good_file).ground_truth
    x0 = tmp_path / ("x0.txt" if case == "suffix" else "x0.npy")
    if case == "shape":
        np.save(x0, truth[:-1])
    elif case == "nan":
        bad = truth.copy()
        bad[0, 0] = np.nan
        np.save(x0, bad)
    elif case == "object":
        np.save(x0, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case in ("suffix", "same-as-output"):
        np.save(tmp_path / "tmp.npy", truth)
        (tmp_path / "tmp.npy").rename(x0)
    out = x0 if case == "same-as-output" else tmp_path / "o.h5"
    before = x0.read_bytes() if x0.exists() else None
    rc = main(["run", str(good_file), "--solver", "cg", "--iterations", "1", "--x0", str(x0), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert str(x0) in err, err  # names the file
    if case != "same-as-output":
        assert "--x0" in err, err
        assert not out.exists() and not out.with_suffix(".png").exists()
    if before is not None:
        assert x0.read_bytes() == before
