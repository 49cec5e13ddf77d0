"""Compare priors across measurement files: a table, a figure grid and an HDF5 file of every result.

Every (measurement file, prior) pair is one job.  Pairs that do not make sense (a 2-D
denoiser on a 3-D emission volume, decided by the forward model's registry entry) are
reported as ``n/a``; a learned prior whose weights are not installed is reported as
``skipped`` with a note.  Jobs run sequentially, on a local Dask cluster
(``workers=N``: processes with one thread each) or on an existing Dask cluster
(``scheduler="tcp://..."``).  Each job seeds torch and numpy and fixes torch's thread
count, so the numbers are identical whichever way the jobs ran.

Outputs in the report folder: ``report.md`` (Markdown table), ``results.csv``,
``figure.png`` (rows: forward models; columns: truth, measurement, each prior) and
``results.h5`` (every reconstruction with its metrics and provenance).  Each is written
atomically.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math

import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("forward_model", "file", "prior", "solver", "status", "psnr", "ssim", "data_misfit", "wall_time_s",
           "iterations", "note")
#: Columns that depend on the machine's speed, not on the computation (ignored when comparing runs).
TIMING_COLUMNS = ("wall_time_s",)


@dataclass
class JobSpec:
    """One (measurement, prior) job; plain data so it pickles to Dask workers."""

    index: int
    path: str
    prior: str
    solver: str
    options: dict = field(default_factory=dict)
    seed: int = 0
    threads: int = 1
    device: str = "cpu"


@dataclass
class CompareResult:
    """What :func:`compare_files` produced."""

    rows: list[dict]
    markdown: str
    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    reconstructions: dict[int, np.ndarray] = field(default_factory=dict)


# ============================================================================ one job
def solver_options(*, iterations: int | None, options: dict) -> dict:
    """Options of one job: the user's, plus ``iterations`` (mapped by :func:`recon.api.reconstruct`
    onto the solver's own iteration argument; the solver package supplies tuned defaults for the rest)."""
    opts = dict(options)
    if iterations is not None:
        opts["iterations"] = int(iterations)
    return opts


def run_job(spec: JobSpec) -> dict:
    """Run one job and return its table row plus the estimate (``row["x"]``).

    Runs in the calling process or on a Dask worker; deterministic for a given spec.
    """
    from . import api

    row: dict[str, Any] = {"index": spec.index, "file": spec.path, "prior": spec.prior, "solver": spec.solver,
                           "status": "ok", "note": "", "x": None}
    try:
        m = api.load_measurement(spec.path)
        row["forward_model"] = m.forward_model
        r = api.reconstruct(m, solver=spec.solver, prior=spec.prior, device=spec.device, seed=spec.seed,
                            threads=spec.threads, **spec.options)
    except FileNotFoundError as e:  # learned weights not installed
        first = " ".join(str(e).split()).split(". ")[0][:200]
        row.update(status="skipped", note=f"prior {spec.prior} skipped, weights not installed: {first}")
        return row
    except Exception as e:  # noqa: BLE001 - one failing job must not sink the comparison
        row.update(status="failed", note=f"{type(e).__name__}: {' '.join(str(e).split())[:160]}")
        return row
    for k in ("psnr", "ssim", "data_misfit", "wall_time_s", "iterations"):
        row[k] = r.metrics.get(k)
    row["x"] = r.x
    row["weights_sha256"] = r.weights_sha256
    row["options"] = r.options
    return row


# ============================================================================ execution backends
def _run_sequential(specs, progress: bool) -> list[dict]:
    out = []
    for i, spec in enumerate(specs):
        if progress:
            print(f"[{i + 1}/{len(specs)}] {Path(spec.path).name}: {spec.prior} ({spec.solver})", file=sys.stderr,
                  flush=True)
        out.append(run_job(spec))
    return out


def _run_dask(specs, *, workers: int = 0, scheduler: str | None = None, progress: bool = False) -> list[dict]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--workers/--scheduler need dask[distributed]: pip install 'recon[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ValueError(f"cannot reach the Dask scheduler {scheduler!r}: {e}") from None
    else:
        # processes with one thread each: jobs never share a torch thread pool, so they
        # compute exactly what the sequential run computes (run_job also pins threads).
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        _ensure_importable(client)
        futures = client.map(run_job, specs, pure=False)
        if progress:
            print(f"submitted {len(specs)} jobs to {client.scheduler.address if client.scheduler else scheduler}",
                  file=sys.stderr, flush=True)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _ensure_importable(client) -> None:
    """Make the workers able to import this checkout (a source tree not installed with pip)."""
    root = str(Path(__file__).resolve().parents[1])

    def add_path(path=root):
        import sys as _sys

        if path not in _sys.path:
            _sys.path.insert(0, path)

    client.run(add_path)


# ============================================================================ reports
def _fmt(v, kind: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if kind == "psnr":
        return "inf" if math.isinf(v) else f"{v:.2f}"
    if kind == "ssim":
        return f"{v:.4f}"
    if kind == "data_misfit":
        return f"{v:.3e}"
    if kind == "wall_time_s":
        return f"{v:.2f}"
    if kind == "iterations":
        return str(int(v))
    return str(v)


def table_rows(rows: list[dict]) -> list[dict]:
    """Rows as displayed strings (``n/a`` where a pair does not apply)."""
    out = []
    for r in rows:
        d = {"forward_model": r.get("forward_model", ""), "file": Path(r["file"]).name, "prior": r["prior"],
             "solver": r["solver"] or "-", "status": r["status"], "note": r.get("note", "")}
        for k in ("psnr", "ssim", "data_misfit", "wall_time_s", "iterations"):
            d[k] = _fmt(r.get(k), k) if r["status"] == "ok" else ("n/a" if r["status"] == "n/a" else "-")
        out.append(d)
    return out


def markdown_table(rows: list[dict], *, title: str = "Prior comparison") -> str:
    """The Markdown report: one row per (file, prior), notes under the table."""
    disp = table_rows(rows)
    head = ["forward model", "file", "prior", "solver", "PSNR (dB)", "SSIM", "data misfit", "time (s)",
            "iterations"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for d in disp:
        status = "" if d["status"] == "ok" else f" ({d['status']})"
        lines.append("| " + " | ".join([d["forward_model"], d["file"], d["prior"] + status, d["solver"], d["psnr"],
                                        d["ssim"], d["data_misfit"], d["wall_time_s"], d["iterations"]]) + " |")
        if d["note"]:
            notes.append(f"- {d['file']} / {d['prior']}: {d['note']}")
    lines += ["", "PSNR/SSIM against the ground truth stored in each file (images: data range 1, estimate "
                  "clipped to [0, 1]); data misfit = ‖A x − y‖ / ‖y‖; n/a = the prior does not apply to "
                  "that forward model."]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    """CSV with full-precision numbers (``n/a`` for pairs that do not apply)."""
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        vals = []
        for c in COLUMNS:
            v = r.get(c)
            if c == "file":
                v = Path(v).name
            if c in ("psnr", "ssim", "data_misfit", "wall_time_s", "iterations") and r["status"] != "ok":
                v = "n/a" if r["status"] == "n/a" else ""
            vals.append("" if v is None else (repr(v) if isinstance(v, float) else v))
        w.writerow(vals)
    return buf.getvalue()


def figure_png(rows: list[dict], measurements: dict[str, Any], priors: list[str]) -> bytes:
    """Figure grid: a row per measurement file, columns truth, measurement, each prior."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from .api import display_image

    files = list(measurements)
    ncol = 2 + len(priors)
    fig = Figure(figsize=(2.2 * ncol, 2.3 * len(files) + 0.3))
    axes = fig.subplots(len(files), ncol, squeeze=False)
    by_key = {(r["file"], r["prior"]): r for r in rows}
    for i, f in enumerate(files):
        m = measurements[f]
        image = m.entry.image_input
        cmap = "gray" if image else "afmhot"
        gt = display_image(m.ground_truth) if m.ground_truth is not None else None
        lims = {"vmin": 0.0, "vmax": 1.0} if image else (
            {"vmin": 0.0, "vmax": float(gt.max()) or 1.0} if gt is not None else {})
        panels = [("truth", gt, lims), ("measurement", display_image(m.y), {})]
        for p in priors:
            r = by_key.get((f, p))
            if r is None or r.get("x") is None:
                panels.append((p, None, {"status": (r or {}).get("status", "n/a")}))
            else:
                t = p if r.get("psnr") is None else f"{p} {r['psnr']:.1f} dB"
                panels.append((t, display_image(r["x"]), lims))
        for j, (name, arr, kw) in enumerate(panels):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if arr is None:
                ax.text(0.5, 0.5, kw.get("status", "n/a") if isinstance(kw, dict) else "n/a", ha="center",
                        va="center", fontsize=10, transform=ax.transAxes)
            else:
                ax.imshow(arr, cmap=cmap if name != "measurement" else "gray", **kw)
            ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{m.forward_model}\n{Path(f).name}", fontsize=8)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=70)
    return buf.getvalue()


def _write_results_h5(path: Path, rows: list[dict], provenance: dict) -> None:
    import h5py

    from .io import json_default, atomic_path, software_version

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "recon-comparison"
            f.attrs["format_version"] = "1.0"
            f.attrs["software_version"] = software_version()
            f.attrs["table_csv"] = csv_text(rows)
            prov = f.create_group("provenance")
            for k, v in provenance.items():
                prov.attrs[k] = v if isinstance(v, str) else json.dumps(v, default=json_default)
            g = f.create_group("results")
            for r in rows:
                sub = g.create_group(f"{r['index']:04d}")
                for k in COLUMNS:
                    v = r.get(k)
                    if v is not None:
                        sub.attrs[k] = v if isinstance(v, (int, float, str)) else str(v)
                if r.get("options"):
                    sub.attrs["options"] = json.dumps(r["options"], sort_keys=True, default=json_default)
                if r.get("weights_sha256"):
                    sub.attrs["weights_sha256"] = r["weights_sha256"]
                if r.get("x") is not None:
                    sub.create_dataset("x", data=np.asarray(r["x"]))


# ============================================================================ the comparison
def plan_jobs(paths, priors, *, solver: str = "auto", iterations=None, options=None, seed: int = 0,
              threads: int = 1, device: str = "cpu", prior_options: dict | None = None):
    """Read the files (validating them) and list jobs; pairs that do not apply become ``n/a`` rows."""
    from . import api

    measurements = {}
    for p in paths:
        measurements[str(p)] = api.load_measurement(p)
    specs, na_rows = [], []
    idx = 0
    for p, m in measurements.items():
        for prior in priors:
            sol = api.default_solver(prior, m) if solver in (None, "auto") or not api.prior_is_denoiser(prior) \
                else solver
            ok, why = api.pair_applies(m, sol, prior)
            if not ok:
                na_rows.append({"index": idx, "file": p, "forward_model": m.forward_model, "prior": prior,
                                "solver": sol, "status": "n/a", "note": why, "x": None})
            else:
                opts = solver_options(iterations=iterations, options={**(options or {}),
                                                                      **(prior_options or {}).get(prior, {})})
                specs.append(JobSpec(index=idx, path=p, prior=prior, solver=sol, options=opts, seed=seed,
                                     threads=threads, device=device))
            idx += 1
    return measurements, specs, na_rows


def compare_files(paths, *, priors=("tv", "none"), out=None, solver: str = "auto", iterations: int | None = None,
                  workers: int = 0, scheduler: str | None = None, seed: int = 0, options: dict | None = None,
                  threads: int = 1, device: str = "cpu", command: str = "", progress: bool = False,
                  title: str = "Prior comparison", extra_notes=(), prior_options: dict | None = None) -> CompareResult:
    """Run every prior on every measurement file and write the report into ``out`` (a folder).

    Parameters
    ----------
    paths : list of paths
        Measurement files (validated before any job runs).
    priors : list of str
        Prior names (``"none"``, ``"coordinate"``, or denoisers such as ``"drunet"``, ``"tv"``, ``"bm3d"``).
    out : path, optional
        Report folder (created if its parent exists); ``None`` writes nothing.
    solver : str
        Solver for denoiser priors (``"auto"``: per prior, see :func:`recon.api.default_solver`).
    iterations : int, optional
        Iteration budget for every solver.
    workers : int
        ``> 0``: run on a local Dask cluster of that many single-threaded worker processes.
    scheduler : str, optional
        Address of an existing Dask scheduler.
    seed, threads : int
        Per-job seed and torch thread count (identical results sequentially or distributed).
    prior_options : dict, optional
        ``{prior: {option: value}}`` applied to that prior's jobs only (after ``options``).
    """
    from .io import MeasurementFileError, atomic_path, sha256_file

    priors = [str(p) for p in priors]
    if len(set(priors)) != len(priors):
        raise ValueError(f"priors contains duplicates: {priors}")
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("no measurement files given")
    folder = None
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise MeasurementFileError(folder, "report folder path is an existing file")
        parent = folder.parent if str(folder.parent) else Path(".")
        if not parent.is_dir():
            raise MeasurementFileError(folder, f"parent folder {parent} does not exist")
        for p in paths:
            if Path(p).resolve() == folder.resolve():
                raise MeasurementFileError(folder, "report folder is one of the input files")
    measurements, specs, na_rows = plan_jobs(paths, priors, solver=solver, iterations=iterations, options=options,
                                             seed=seed, threads=threads, device=device,
                                             prior_options=prior_options)
    t0 = time.perf_counter()
    if workers or scheduler:
        done = _run_dask(specs, workers=workers, scheduler=scheduler, progress=progress)
    else:
        done = _run_sequential(specs, progress)
    wall = time.perf_counter() - t0
    rows = sorted(done + na_rows, key=lambda r: r["index"])
    md = markdown_table(rows, title=title)
    if extra_notes:
        md += "\n" + "\n".join(f"- {n}" for n in extra_notes) + "\n"
    md += f"\nTotal wall time {wall:.1f} s ({'Dask' if workers or scheduler else 'sequential'}).\n"
    result = CompareResult(rows=[{k: v for k, v in r.items() if k != "x"} for r in rows], markdown=md,
                           folder=folder, reconstructions={r["index"]: r["x"] for r in rows if r.get("x") is not None})
    if folder is None:
        return result
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        png = figure_png(rows, measurements, priors)
        provenance = {"generator": "recon compare", "command": command, "seed": seed,
                      "config": {"priors": priors, "solver": solver, "iterations": iterations,
                                 "options": options or {}, "workers": workers, "scheduler": scheduler or ""},
                      "parents": [{"path": p, "sha256": sha256_file(p)} for p in paths]}
        files = {"markdown": folder / "report.md", "csv": folder / "results.csv", "figure": folder / "figure.png",
                 "hdf5": folder / "results.h5"}
        _write_results_h5(files["hdf5"], rows, provenance)
        with atomic_path(files["figure"]) as tmp:
            tmp.write_bytes(png)
        with atomic_path(files["csv"]) as tmp:
            tmp.write_text(csv_text(rows))
        with atomic_path(files["markdown"]) as tmp:
            tmp.write_text(md + "\n![figure](figure.png)\n")
    except BaseException:
        if created:
            for p in folder.iterdir():
                if p.name in ("report.md", "results.csv", "figure.png", "results.h5"):
                    p.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
        raise
    result.files = files
    return result


class _CallableModule(types.ModuleType):
    """``recon.compare`` is both this module and the API function (importing the submodule
    rebinds the package attribute, so the module itself answers calls)."""

    def __call__(self, *args, **kwargs):
        return compare_files(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["COLUMNS", "CompareResult", "JobSpec", "TIMING_COLUMNS", "compare_files", "csv_text", "markdown_table",
           "plan_jobs", "run_job", "table_rows"]

