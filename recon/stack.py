"""Row-by-row reconstruction of a slice stack, resumable row by row (``recon run --by-row``).

A CT measurement imported with ``recon import --rows A:B`` holds ``B − A`` detector rows, one channel
of its Radon operator each; every row is an independent slice.  :func:`reconstruct_rows` solves
them one at a time (each row its own solve, with the same solver, prior and options) and writes
each finished row at once, atomically, to ``ROWS_DIR/row_NNNNN.npz`` (the row's image and a JSON
record of its solve).  A run that is killed keeps every finished row: the same command again
skips them and continues with the first unfinished row.  ``ROWS_DIR/run.json`` holds the key of
the run (input hash, solver, prior, options, seed, ...): rows of a different run are refused, not
mixed in.  A progress line per row goes to stderr (rows done / total, time of the row, ETA).

The assembled reconstruction stacks the rows in channel order; its metrics are the data misfit
of the whole stack, the summed wall time and the largest iteration count of the rows.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from forward_models.atomic import atomic_write_bytes

from .io import Measurement, Reconstruction
from .io.format import json_default
from .metrics import data_misfit

RUN_FILE = "run.json"


def row_count(m: Measurement) -> int:
    """Rows (channels) of a Radon measurement; 1 for anything else."""
    if m.forward_model != "radon":
        return 1
    return int(m.geometry.get("channels", 1))


def row_measurement(m: Measurement, row: int) -> Measurement:
    """The measurement of channel ``row`` alone (a one-channel Radon operator, the row's data)."""
    def pick(a):
        return None if a is None else np.asarray(a)[row:row + 1]

    prov = dict(m.provenance)
    prov["stack_row"] = int(row)
    return dataclasses.replace(m, y=pick(m.y), geometry={**m.geometry, "channels": 1}, weights=pick(m.weights),
                               mask=pick(m.mask), ground_truth=pick(m.ground_truth), provenance=prov)


def _row_path(rows_dir: Path, row: int) -> Path:
    return rows_dir / f"row_{row:05d}.npz"


def _check_run(rows_dir: Path, run_key: dict) -> None:
    """Create ``rows_dir`` with the run key, or check that the rows there are of this run."""
    key = json.loads(json.dumps(run_key, default=json_default))
    run_file = rows_dir / RUN_FILE
    if rows_dir.exists():
        if not rows_dir.is_dir():
            raise ValueError(f"{rows_dir}: exists and is not a folder (the per-row results go there)")
        try:
            old = json.loads(run_file.read_text())
        except (OSError, ValueError):
            old = None
        if old is not None and old != key:
            raise ValueError(f"{rows_dir}: holds the rows of a different run (input, solver, prior or options "
                             "differ); remove it or choose another output")
        if old is not None:
            return
    rows_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_file, json.dumps(key, indent=1).encode())


def _read_row(path: Path):
    with np.load(path, allow_pickle=False) as z:
        return np.array(z["x"]), json.loads(str(z["meta"]))


def _write_row(path: Path, x: np.ndarray, meta: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, x=np.asarray(x), meta=np.array(json.dumps(meta, default=json_default)))
    atomic_write_bytes(path, buf.getvalue())


def reconstruct_rows(m: Measurement, *, rows_dir, run_key: dict, solve: Callable[[Measurement], Reconstruction],
                     progress: bool = True) -> Reconstruction:
    """Reconstruct every row of ``m`` with ``solve``, keeping each finished row in ``rows_dir``.

    Parameters
    ----------
    m : Measurement
        A Radon measurement with ``channels = R`` rows (``y`` of shape ``(R, N, n_angles)``).
    rows_dir : path
        Folder of the per-row results (created; rows already there, of the same ``run_key``, are
        kept and not computed again).
    run_key : dict
        JSON-able description of the run; a folder written under another key is refused.
    solve : callable
        ``solve(row_measurement) -> Reconstruction`` of one row (``x`` of shape ``(1, H, W)``).
    progress : bool
        A line per row on stderr.

    Returns
    -------
    Reconstruction
        ``x`` of shape ``(R, H, W)`` with the measurement ``m``.
    """
    rows_dir = Path(rows_dir)
    n = row_count(m)
    _check_run(rows_dir, run_key)
    done = {r for r in range(n) if _row_path(rows_dir, r).is_file()}
    if progress and done:
        print(f"resuming: {len(done)} of {n} rows already done in {rows_dir}", file=sys.stderr)
    spent = []
    for row in range(n):
        if row in done:
            continue
        path = _row_path(rows_dir, row)
        t0 = time.perf_counter()
        r = solve(row_measurement(m, row))
        meta = {"solver": r.solver, "prior": r.prior, "options": r.options, "metrics": r.metrics,
                "weights_sha256": r.weights_sha256, "provenance": r.provenance}
        _write_row(path, np.asarray(r.x), meta)
        spent.append(time.perf_counter() - t0)
        if progress:
            left = n - len(done) - len(spent)
            eta = left * sum(spent) / len(spent)
            print(f"row {row + 1}/{n} done in {spent[-1]:.1f} s; {n - left} of {n} rows done, ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)
    xs, metas = zip(*(_read_row(_row_path(rows_dir, r)) for r in range(n)))
    x = np.concatenate(xs, axis=0)
    first = metas[0]
    metrics = {"data_misfit": data_misfit(m.operator(), x.astype(np.float64), np.asarray(m.y, dtype=np.float64)),
               "wall_time_s": float(sum(mt["metrics"].get("wall_time_s", 0.0) for mt in metas)),
               "iterations": int(max(mt["metrics"].get("iterations", 0) or 0 for mt in metas)),
               "rows": n}
    prov = dict(first["provenance"])
    prov.pop("stack_row", None)
    prov["by_row"] = True
    return Reconstruction(x=x, measurement=m, solver=first["solver"], prior=first["prior"],
                          options=first["options"], metrics=metrics, weights_sha256=first["weights_sha256"],
                          provenance=prov)


def remove_rows(rows_dir) -> None:
    """Delete the per-row results after the assembled file is written."""
    rows_dir = Path(rows_dir)
    if not rows_dir.is_dir():
        return
    for p in rows_dir.iterdir():
        if p.is_file() and (p.name == RUN_FILE or (p.name.startswith("row_") and p.suffix == ".npz")):
            p.unlink()
    try:
        rows_dir.rmdir()
    except OSError:
        pass  # something else is in there: leave it
