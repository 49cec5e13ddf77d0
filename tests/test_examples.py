"""Every example runs (issue 22, point 6): ``examples/*.py --smoke`` end to end, so examples cannot rot.

Each script in ``examples/`` (found by glob: a new example is covered without touching this file) runs
in a subprocess with ``--smoke --out DIR`` -- every stage at toy sizes, seconds on one core, bundled or
generated data only -- and must exit 0 and write the files it lists in its module-level ``OUTPUTS``
tuple (read from the source, not imported), each non-empty and readable: PNG figures decode to a
non-constant image, JSON/HDF5 numbers are finite.  A script without ``--smoke`` or ``OUTPUTS`` fails.
A script that sets ``NEEDS_SHARED = True`` (its input lives in ``../shared``, e.g. the EHT M87 file)
is skipped on a checkout without ``../shared`` beside it, as in ``tests/test_readme.py``.

``examples/custom_operator.py`` defines and registers a forward model of its own;
:func:`test_custom_operator_gets_the_registry_tests` proves the registration path: run after the
example's import, ``tests/forward_models/test_registry.py`` collects and passes its property tests for
the new operator.  (The example is never imported into this process: its registration would change
the registry the rest of the suite sees.)
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
SIBLING = ROOT.parent / "shared"  # the data kept beside the repository (Set12, the EHT release, ...)
TIMEOUT_S = 600  # a smoke run takes seconds (a cold numba cache adds minutes to the Radon ones); stops a hung one


def _constant(path: Path, name: str):
    """The literal value of module-level ``name = ...`` in ``path`` (``None`` if absent)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return ast.literal_eval(node.value)
    return None


def _env() -> dict:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _child_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _numbers(obj):
    """Every number in a JSON document."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


def check_output(path: Path) -> None:
    """``path`` exists, is non-empty and reads back as its kind; its numbers are finite."""
    assert path.is_file(), f"{path.name} was not written"
    assert path.stat().st_size > 0, f"{path.name} is empty"
    suffix = path.suffix.lower()
    if suffix == ".png":
        from matplotlib.image import imread

        img = imread(path)
        assert img.ndim in (2, 3) and min(img.shape[:2]) > 10, f"{path.name}: image of shape {img.shape}"
        pixels = img.reshape(-1, img.shape[2] if img.ndim == 3 else 1)
        assert np.isfinite(img).all() and float(np.ptp(pixels, axis=0).max()) > 0, f"{path.name} is a blank image"
    elif suffix == ".json":
        bad = [v for v in _numbers(json.loads(path.read_text())) if not math.isfinite(v)]
        assert not bad, f"{path.name} holds non-finite numbers {bad[:5]}"
    elif suffix in (".h5", ".hdf5"):
        import h5py

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fc" and obj.size:
                assert np.isfinite(obj[()]).all(), f"{path.name}:{name} holds NaN/Inf"

        with h5py.File(path, "r") as f:
            f.visititems(visit)
    elif suffix in (".md", ".csv", ".txt"):
        assert path.read_text().strip(), f"{path.name} has no text"


def test_examples_are_found():
    """The glob sees the examples (an empty list would make the parametrised test vacuous)."""
    names = {p.name for p in EXAMPLES}
    assert {"denoise.py", "custom_operator.py", "eht_m87.py"} <= names, names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_smoke_run(script, tmp_path):
    source = script.read_text()
    assert re.search(r"""["']--smoke["']""", source), f"{script.name} has no --smoke option"
    outputs = _constant(script, "OUTPUTS")
    assert outputs and all(isinstance(o, str) for o in outputs), \
        f"{script.name} must list the files it writes in a module-level OUTPUTS tuple"
    if _constant(script, "NEEDS_SHARED") and not SIBLING.is_dir():
        pytest.skip(f"{script.name} reads ../shared, which is not beside this checkout")
    out = tmp_path / "out"
    out.mkdir()
    t0, cpu0 = time.perf_counter(), _child_cpu()
    res = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    # (pytest -s) CPU time is what the run costs on an idle core; wall time depends on the machine's load
    print(f"{script.name}: {time.perf_counter() - t0:.1f} s wall, {_child_cpu() - cpu0:.1f} s CPU")
    assert res.returncode == 0, (f"{script.name} --smoke exited {res.returncode}\nstdout: {res.stdout[-2000:]}\n"
                                 f"stderr: {res.stderr[-3000:]}")
    for name in outputs:
        check_output(out / name)


def test_custom_operator_gets_the_registry_tests(tmp_path):
    """Registered in its own file, the example's operator is collected by the registry's property tests."""
    script = ROOT / "examples" / "custom_operator.py"
    res = subprocess.run([sys.executable, str(script), "--registry-tests"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-2000:]}"
    passed = re.search(r"(\d+) passed", res.stdout)
    # (the example selects the tests parametrised by its operator: adjoint in 2 dtypes, dense transpose, norm,
    # autograd, prox, HDF5 round trip, dtype conversions, torch.func, bad input, ...; none exist before it registers)
    assert passed and int(passed.group(1)) >= 20, res.stdout[-2000:]


def test_check_output_can_fail(tmp_path):
    """The output checks reject what a broken example would leave: empty, blank or non-finite files."""
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(AssertionError, match="empty"):
        check_output(tmp_path / "empty.png")
    from matplotlib.image import imsave

    imsave(tmp_path / "blank.png", np.zeros((20, 20)))
    with pytest.raises(AssertionError, match="blank"):
        check_output(tmp_path / "blank.png")
    (tmp_path / "s.json").write_text('{"a": [1.0, NaN]}')
    with pytest.raises(AssertionError, match="non-finite"):
        check_output(tmp_path / "s.json")
    with pytest.raises(AssertionError, match="not written"):
        check_output(tmp_path / "missing.md")
