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

Streaming and resuming: with a report folder, every job's result is written to
``jobs/`` (``KEY.npy`` estimate, then ``KEY.json`` row: the JSON marks it finished) as soon as
the job ends -- sequentially or as Dask futures complete -- and ``report.md``/``results.csv``
are rewritten with what is done so far.  ``KEY`` hashes what decides the result (the input's
sha256, prior, solver, options, seed, threads, device, recon version), so a re-run with the
same arguments skips finished jobs, a killed comparison keeps them, and ``run=False``
(``recon compare --report-only``) rebuilds the report from what exists.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io as _io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("forward_model", "file", "prior", "solver", "status", "psnr", "ssim", "data_misfit", "wall_time_s",
           "iterations", "note")
#: Columns that depend on the machine's speed, not on the computation (ignored when comparing runs).
TIMING_COLUMNS = ("wall_time_s", "job_s")


def solver_priors() -> tuple[str, ...]:
    """Solvers that may be named among the priors (``--priors drunet,tv,fbp``): the registered ones that
    use no prior and are specific to some forward models (``applies_to``: fbp, the black-hole fits)."""
    from .solvers import SOLVERS

    return tuple(n for n, s in SOLVERS.items() if s.needs_prior is False and s.applies_to is not None)


#: Sub-folder of the report folder holding one finished job per ``KEY.json`` / ``KEY.npy`` pair.
JOBS_DIR = "jobs"


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
    #: the measurement itself when it was given as an object rather than a path (pickled to workers)
    measurement: Any = None
    #: content hash of the job's inputs and settings (see :func:`job_key`); "" when not streamed
    key: str = ""


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
    """Options of one job: the user's, plus ``iterations`` (mapped by :func:`recon.workflow.reconstruct`
    onto the solver's own iteration argument; the solver package supplies tuned defaults for the rest)."""
    opts = dict(options)
    if iterations is not None:
        opts["iterations"] = int(iterations)
    return opts


def run_job(spec: JobSpec) -> dict:
    """Run one job and return its table row plus the estimate (``row["x"]``).

    Runs in the calling process or on a Dask worker; deterministic for a given spec.
    """
    from . import workflow
    from .methods import NO_PRIOR

    t0 = time.perf_counter()
    row: dict[str, Any] = {"index": spec.index, "file": spec.path, "prior": spec.prior, "solver": spec.solver,
                           "status": "ok", "note": "", "x": None, "key": spec.key}
    try:
        m = spec.measurement if spec.measurement is not None else workflow.load_measurement(spec.path)
        row["forward_model"] = m.forward_model
        prior = NO_PRIOR if spec.prior in solver_priors() else spec.prior  # fbp: a solver, no prior
        r = workflow.reconstruct(m, solver=spec.solver, prior=prior, device=spec.device, seed=spec.seed,
                                 threads=spec.threads, **spec.options)
    except FileNotFoundError as e:  # learned weights not installed
        first = " ".join(str(e).split()).split(". ")[0][:200]
        row.update(status="skipped", note=f"prior {spec.prior} skipped, weights not installed: {first}",
                   job_s=time.perf_counter() - t0)
        return row
    except Exception as e:  # noqa: BLE001 - one failing job must not sink the comparison
        row.update(status="failed", note=f"{type(e).__name__}: {' '.join(str(e).split())[:160]}",
                   job_s=time.perf_counter() - t0)
        return row
    for k in ("psnr", "ssim", "data_misfit", "wall_time_s", "iterations"):
        row[k] = r.metrics.get(k)
    # per-product reduced chi^2 and ring measurements (VLBI: no ground truth needed)
    row["extra"] = {k: float(v) for k, v in r.metrics.items() if k.startswith(("chi2_", "ring_")) and v is not None}
    if r.metrics.get("pearson_support") is not None:
        row["pearson_support"] = r.metrics["pearson_support"]
    row["x"] = r.x
    row["weights_sha256"] = r.weights_sha256
    row["options"] = r.options
    row["job_s"] = time.perf_counter() - t0  # load + solve + metrics, what the user waits for
    return row


# ============================================================================ finished jobs on disk
def measurement_sha256(m) -> str:
    """Content hash of a measurement: the sha256 of the file bytes it was read from, or of its arrays
    and geometry when in memory."""
    from .io import json_default, sha256_file

    if getattr(m, "sha256", None):  # hashed as it was read: later changes to the file do not count
        return m.sha256
    if getattr(m, "path", None) and Path(m.path).is_file():
        return sha256_file(m.path)
    h = hashlib.sha256()
    h.update(str(m.forward_model).encode())
    h.update(json.dumps(m.geometry, sort_keys=True, default=json_default).encode())
    for arr in (m.y, m.ground_truth, m.weights, m.mask):
        if arr is not None:
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    h.update(repr(m.sigma).encode())
    return h.hexdigest()


def job_key(spec: JobSpec, input_sha256: str) -> str:
    """A 20-hex-digit hash of everything that decides a job's result (not its position in the table)."""
    from .io import json_default, software_version

    payload = dict(input=input_sha256, prior=spec.prior, solver=spec.solver, options=spec.options, seed=spec.seed,
                   threads=spec.threads, device=spec.device, version=software_version())
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=json_default).encode()).hexdigest()[:20]


def save_job(folder: Path, row: dict) -> None:
    """Write one finished job into ``folder/jobs/``: the estimate (``.npy``) first, then the row
    (``.json``), each atomically, so a ``.json`` always has its estimate beside it."""
    from .io import atomic_path, json_default

    jobs = Path(folder) / JOBS_DIR
    jobs.mkdir(exist_ok=True)
    key = row["key"]
    meta = {k: v for k, v in row.items() if k != "x"}
    if row.get("x") is not None:
        with atomic_path(jobs / f"{key}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(row["x"]), allow_pickle=False)
        meta["x_file"] = f"{key}.npy"
    with atomic_path(jobs / f"{key}.json") as tmp:
        tmp.write_text(json.dumps(meta, default=json_default, sort_keys=True))


def load_job(folder: Path, key: str) -> dict | None:
    """The finished job ``key`` from ``folder/jobs/`` (its estimate loaded), or ``None`` when absent or
    unreadable (it is then run again)."""
    jobs = Path(folder) / JOBS_DIR
    try:
        row = json.loads((jobs / f"{key}.json").read_text())
        if not isinstance(row, dict) or row.get("key") != key:
            return None
        x_file = row.pop("x_file", None)
        row["x"] = np.load(jobs / x_file, allow_pickle=False) if x_file else None
    except (OSError, ValueError, KeyError):  # absent, corrupt or an estimate without its row
        return None
    return row


class JobProgress:
    """Progress lines on stderr: jobs done/total, elapsed, ETA, and each job's time as it finishes."""

    def __init__(self, total: int, already: int = 0, *, enabled: bool = True, parallel: str = ""):
        self.total, self.done, self.enabled = total, already, enabled
        self.t0 = time.perf_counter()
        self.run_here = 0
        if enabled and already:
            print(f"resuming: {already} of {total} jobs already finished (skipped)", file=sys.stderr, flush=True)
        if enabled and parallel:
            print(parallel, file=sys.stderr, flush=True)

    @staticmethod
    def _clock(s: float) -> str:
        s = int(round(s))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"

    def start(self, spec: JobSpec) -> None:
        """Say which job starts (sequential runs: the user sees what the wait is for)."""
        if self.enabled:
            print(f"[{self.done + 1}/{self.total}] {Path(spec.path).name}: {spec.prior} ({spec.solver}) ...",
                  file=sys.stderr, flush=True)

    def finish(self, row: dict) -> None:
        """One job ended: its time and result, then done/total, elapsed and the ETA."""
        self.done += 1
        self.run_here += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        left = self.total - self.done
        eta = elapsed / self.run_here * left
        what = f"PSNR {row['psnr']:.2f} dB" if row.get("psnr") is not None else row.get("status", "")
        print(f"[{self.done}/{self.total}] {Path(row['file']).name}: {row['prior']} ({row['solver']}) "
              f"{row.get('job_s', 0.0):.1f} s, {what} | elapsed {self._clock(elapsed)}, "
              f"ETA {self._clock(eta) if left else '0:00'}", file=sys.stderr, flush=True)


# ============================================================================ execution backends
def _run_sequential(specs, tracker: JobProgress, on_done) -> list[dict]:
    out = []
    for spec in specs:
        tracker.start(spec)
        row = run_job(spec)
        on_done(row)
        out.append(row)
    return out


def _run_dask(specs, *, workers: int = 0, scheduler: str | None = None, tracker: JobProgress,
              on_done) -> list[dict]:
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
        from dask.distributed import as_completed

        _ensure_importable(client)
        if cluster is not None:  # Ctrl-C reaches the whole process group: only this process reacts
            client.run(ignore_interrupt)
        futures = client.map(run_job, specs, pure=False)
        if tracker.enabled:
            n = len(client.scheduler_info().get("workers", {}))
            print(f"submitted {len(specs)} jobs to {n} Dask worker(s) at "
                  f"{client.scheduler.address if client.scheduler else scheduler}; results stream in as they finish",
                  file=sys.stderr, flush=True)
        out = []
        with terminate_as_interrupt():
            for fut in as_completed(futures):  # written and reported as each job ends, in any order
                row = fut.result()
                on_done(row)
                out.append(row)
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def ignore_interrupt() -> None:
    """Run on each local worker: SIGINT is ignored there (the parent shuts the cluster down)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (``kill``, ``timeout``, a batch system's time limit) raises KeyboardInterrupt here, so the
    caller's ``finally`` closes the Dask cluster; killed outright, its worker processes are orphaned and
    Python warns of leaked semaphores at exit.  Jobs already finished are on disk either way."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def extra_table(rows: list[dict]) -> list[str]:
    """Markdown lines of the per-product χ² and ring measurements of the rows that have them (VLBI)."""
    keys = [("chi2_cphase", "χ² cphase", "{:.2f}"), ("chi2_logcamp", "χ² logcamp", "{:.2f}"),
            ("chi2_amp", "χ² amp", "{:.2f}"), ("ring_diameter_uas", "ring d (µas)", "{:.1f}"),
            ("ring_width_uas", "width (µas)", "{:.1f}"), ("ring_position_angle_deg", "PA (°E of N)", "{:.0f}"),
            ("ring_central_depression", "f_c", "{:.2f}")]
    have = [r for r in rows if r.get("status") == "ok" and r.get("extra")]
    if not have:
        return []
    lines = ["", "| file | prior | " + " | ".join(k[1] for k in keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for r in have:
        ex = r["extra"]
        lines.append(f"| {Path(r['file']).name} | {r['prior']} | " + " | ".join(
            fmt.format(ex[k]) if ex.get(k) is not None else "-" for k, _, fmt in keys) + " |")
    lines += ["", "Reduced χ² per data product (closure phases, log closure amplitudes, amplitudes after "
                  "self-calibration) and REx-like ring measurements of each image (recon.vlbi.ring)."]
    return lines


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
    corr = [r for r in rows if r.get("pearson_support") is not None]
    if corr:  # emission volumes: PSNR over a mostly empty volume says little about the emission's shape
        lines += ["", "Volumes (not images): PSNR uses the truth's range over the whole volume, most of it empty, "
                      "so it mostly rewards zeros; ρ is the Pearson correlation with the truth over its support "
                      "(voxels above 1% of its maximum): 1 = the shape recovered up to scale, 0 = unrelated.", "",
                  "| file | prior | ρ over the support |", "|---|---|---|",
                  *[f"| {Path(r['file']).name} | {r['prior']} | {r['pearson_support']:.3f} |" for r in corr]]
    lines += extra_table(rows)
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


def _results_h5_bytes(rows: list[dict], provenance: dict) -> bytes:
    from .io import h5_bytes, json_default, software_version

    def fill(f):
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

    return h5_bytes(fill)


# ============================================================================ the comparison
def _as_measurements(items) -> tuple[dict[str, Any], set[str]]:
    """``({label: Measurement}, labels given as objects)`` from paths or :class:`recon.io.Measurement`
    objects (files are read and validated)."""
    from . import workflow
    from .io import Measurement

    out: dict[str, Any] = {}
    objects = set()
    for i, item in enumerate(items):
        if isinstance(item, Measurement):
            label = str(item.path) if getattr(item, "path", None) else f"measurement-{i}"
            m = item
            objects.add(label)
        else:
            label, m = str(item), workflow.load_measurement(item)
        if label in out:
            raise ValueError(f"measurement {label} is given twice")
        out[label] = m
    return out, objects


def plan_jobs(paths, priors, *, solver: str = "auto", iterations=None, options=None, seed: int = 0,
              threads: int = 1, device: str = "cpu", prior_options: dict | None = None):
    """Read the files (validating them) and list jobs; pairs that do not apply become ``n/a`` rows.

    ``paths`` may hold measurement file paths or :class:`recon.io.Measurement` objects (those are
    passed to the jobs as they are).  A prior named like a solver that needs none (``fbp``) runs
    that solver with no prior.
    """
    from .methods import NO_PRIOR, default_solver, pair_applies, prior_is_denoiser

    measurements, objects = _as_measurements(paths)
    specs, na_rows = [], []
    idx = 0
    for p, m in measurements.items():
        for prior in priors:
            if prior in solver_priors():
                sol, check_prior = prior, NO_PRIOR
            else:
                sol = default_solver(prior, m) if solver in (None, "auto") or not prior_is_denoiser(prior) \
                    else solver
                check_prior = prior
            ok, why = pair_applies(m, sol, check_prior)
            if not ok:
                na_rows.append({"index": idx, "file": p, "forward_model": m.forward_model, "prior": prior,
                                "solver": sol, "status": "n/a", "note": why, "x": None})
            else:
                opts = solver_options(iterations=iterations, options={**(options or {}),
                                                                      **(prior_options or {}).get(prior, {})})
                specs.append(JobSpec(index=idx, path=p, prior=prior, solver=sol, options=opts, seed=seed,
                                     threads=threads, device=device,
                                     measurement=m if p in objects else None))
            idx += 1
    return measurements, specs, na_rows


def compare_files(paths, *, priors=("tv", "none"), out=None, solver: str = "auto", iterations: int | None = None,
                  workers: int = 0, scheduler: str | None = None, seed: int = 0, options: dict | None = None,
                  threads: int = 1, device: str = "cpu", command: str = "", progress: bool = False,
                  title: str = "Prior comparison", extra_notes=(), prior_options: dict | None = None,
                  run: bool = True) -> CompareResult:
    """Run every prior on every measurement and write the report into ``out`` (a folder).

    Parameters
    ----------
    paths : list of paths or Measurement
        Measurement files, or :class:`recon.io.Measurement` objects (e.g. from
        :func:`recon.simulate` or :func:`recon.load_measurement`); all are validated before any
        job runs.
    priors : list of str
        Prior names: ``"none"`` (least squares, ``cg``), ``"coordinate"`` (a coordinate network),
        any denoiser ``priors.load_denoiser`` knows (``"drunet"``, ``"drunet-ct"``, ``"dncnn"``,
        ``"dnresnet"``, ``"tv"``, ``"wavelet"``, ``"bm3d"``), or ``"fbp"`` (filtered
        back-projection, tomography only).
    out : path, optional
        Report folder (created if its parent exists); ``None`` writes nothing (results are
        returned only).  Finished jobs are kept in ``out/jobs/`` as they end.
    solver : str
        Solver for denoiser priors (``"auto"``: per prior, see :func:`recon.methods.default_solver`).
    iterations : int, optional
        Iteration budget for every solver.
    workers : int
        ``> 0``: run on a local Dask cluster of that many single-threaded worker processes.
    scheduler : str, optional
        Address of an existing Dask scheduler.
    seed, threads : int
        Per-job seed and torch thread count (identical results sequentially or distributed).
    options : dict, optional
        Solver options applied to every job (as ``recon run --option``).
    device : str
        Torch device of every job.
    command : str
        The command line, recorded in the provenance.
    progress : bool
        Print jobs done/total, elapsed time, ETA and each job's time on stderr.
    title, extra_notes
        Report title and notes appended under the table.
    prior_options : dict, optional
        ``{prior: {option: value}}`` applied to that prior's jobs only (after ``options``).
    run : bool
        ``False``: run nothing; build the report from the jobs already finished in ``out``
        (the others are listed as ``not run``).

    Returns
    -------
    CompareResult
        ``rows`` (one dict per job: file, prior, solver, status, psnr, ssim, data_misfit,
        wall_time_s, iterations, note), the Markdown ``markdown``, the written ``files``
        and the estimates ``reconstructions`` by row index.
    """
    from .io import MeasurementFileError

    priors = [str(p) for p in priors]
    if len(set(priors)) != len(priors):
        raise ValueError(f"priors contains duplicates: {priors}")
    unknown = [p for p in priors if p not in known_priors()]
    if unknown:
        raise ValueError(f"priors: unknown prior(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(known_priors())}")
    paths = list(paths) if not isinstance(paths, (str, Path)) else [paths]
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
            if isinstance(p, (str, Path)) and Path(p).resolve() == folder.resolve():
                raise MeasurementFileError(folder, "report folder is one of the input files")
        check_report_folder(folder, [p for p in paths if isinstance(p, (str, Path))])
    elif not run:
        raise ValueError("run=False rebuilds a report from a folder's finished jobs: give out=")
    measurements, specs, na_rows = plan_jobs(paths, priors, solver=solver, iterations=iterations, options=options,
                                             seed=seed, threads=threads, device=device,
                                             prior_options=prior_options)
    finished: list[dict] = []
    todo = specs
    created = folder is not None and not folder.exists()
    if folder is not None:
        folder.mkdir(exist_ok=True)
        shas = {label: measurement_sha256(m) for label, m in measurements.items()}
        todo = []
        for spec in specs:
            spec.key = job_key(spec, shas[spec.path])
            row = load_job(folder, spec.key)
            if row is None:
                todo.append(spec)
            else:  # finished by an earlier (possibly killed) run with the same arguments
                row.update(index=spec.index, file=spec.path)
                finished.append(row)
    parallel = f"{workers} local Dask worker(s)" if workers else (f"Dask scheduler {scheduler}" if scheduler else "")
    tracker = JobProgress(len(specs), len(finished), enabled=progress and run,
                          parallel=f"{len(todo)} jobs to run on {parallel}" if parallel and todo and run else "")
    streamed: list[dict] = []

    def on_done(row: dict) -> None:
        if folder is not None:
            save_job(folder, row)
            streamed.append(row)
            _write_tables(folder, sorted(finished + streamed + na_rows, key=lambda r: r["index"]), title)
        tracker.finish(row)

    t0 = time.perf_counter()
    if not run:
        done = [{"index": s.index, "file": s.path, "prior": s.prior, "solver": s.solver, "status": "not run",
                 "note": "not finished yet (rerun the same command to run it)", "x": None,
                 "forward_model": measurements[s.path].forward_model} for s in todo]
    elif todo and (workers or scheduler):
        done = _run_dask(todo, workers=workers, scheduler=scheduler, tracker=tracker, on_done=on_done)
    else:
        done = _run_sequential(todo, tracker, on_done)
    wall = time.perf_counter() - t0
    rows = sorted(finished + done + na_rows, key=lambda r: r["index"])
    md = markdown_table(rows, title=title)
    if extra_notes:
        md += "\n" + "\n".join(f"- {n}" for n in extra_notes) + "\n"
    how = "Dask" if workers or scheduler else "sequential"
    md += (f"\nTotal wall time {wall:.1f} s ({how}" + (f"; {len(finished)} of {len(specs)} jobs were already "
                                                        f"finished in {JOBS_DIR}/" if finished else "") + ").\n")
    result = CompareResult(rows=[{k: v for k, v in r.items() if k != "x"} for r in rows], markdown=md,
                           folder=folder, reconstructions={r["index"]: r["x"] for r in rows if r.get("x") is not None})
    if folder is None:
        return result
    try:
        result.files = _write_report(folder, rows, measurements, priors, md, command=command, seed=seed,
                                     config={"priors": priors, "solver": solver, "iterations": iterations,
                                             "options": options or {}, "workers": workers,
                                             "scheduler": scheduler or ""})
    except BaseException:
        if created:  # nothing of this run's report is left half-written; finished jobs stay
            for p in folder.iterdir():
                if p.name in ("report.md", "results.csv", "figure.png", "results.h5"):
                    p.unlink()
        raise
    return result


def compare(measurements, priors=("tv", "none"), out=None, **kwargs):
    """Run every prior on every measurement and return (and, with ``out``, write) the comparison.

    >>> res = recon.compare(["meas.h5", m], priors=["drunet", "tv", "fbp"], out="report")  # doctest: +SKIP
    >>> res.rows[0]["psnr"], res.reconstructions[0].shape                                   # doctest: +SKIP

    Parameters
    ----------
    measurements : list of paths or Measurement
        Measurement files, or :class:`Measurement` objects (from :func:`simulate`,
        :func:`load_measurement`, an importer); one path alone is accepted too.
    priors : list of str
        ``"none"``, ``"coordinate"``, ``"auto"``, any denoiser ``priors.load_denoiser`` knows
        (``"drunet"``, ``"drunet-ct"``, ``"dncnn"``, ``"dnresnet"``, ``"tv"``, ``"wavelet"``,
        ``"bm3d"``) or ``"fbp"`` (tomography).  Pairs that do not apply are reported ``n/a``.
    out : path, optional
        Report folder: ``report.md``, ``results.csv``, ``figure.png``, ``results.h5`` and
        ``jobs/`` (each finished job as it ends; the same call again skips them).
    **kwargs
        ``solver``, ``iterations``, ``options`` (solver options for every job), ``prior_options``
        (``{prior: {option: value}}``), ``workers`` (local Dask processes) or ``scheduler`` (a Dask
        address), ``seed``, ``threads``, ``device``, ``progress`` (jobs done/total, ETA on
        stderr), ``run=False`` (rebuild the report from ``out``'s finished jobs).

    Returns
    -------
    CompareResult
        ``rows`` (file, prior, solver, status, psnr, ssim, data_misfit, wall_time_s, iterations,
        note), ``markdown``, ``files`` and ``reconstructions`` (estimate per row index).
    """
    return compare_files(measurements, priors=priors, out=out, **kwargs)


def _write_tables(folder: Path, rows: list[dict], title: str) -> None:
    """``report.md`` and ``results.csv`` of the jobs finished so far (rewritten after each job)."""
    from .io import atomic_path

    with atomic_path(folder / "results.csv") as tmp:
        tmp.write_text(csv_text(rows))
    with atomic_path(folder / "report.md") as tmp:
        tmp.write_text(markdown_table(rows, title=title + " (in progress)"))


def _write_report(folder: Path, rows: list[dict], measurements: dict, priors: list[str], md: str, *,
                  command: str, seed: int, config: dict) -> dict[str, Path]:
    """The final report files, written all-or-nothing (after a failure all four are as before)."""
    from .figures import figure_png
    from .io import atomic_write_files, tag_png

    png = tag_png(figure_png(rows, measurements, priors))
    parents = [{"path": p, "sha256": measurement_sha256(m)} if getattr(m, "sha256", None) or Path(p).is_file()
               else {"path": p, "sha256": measurement_sha256(m), "note": "in-memory measurement"}
               for p, m in measurements.items()]
    provenance = {"generator": "recon compare", "command": command, "seed": seed, "config": config,
                  "parents": parents}
    files = {"markdown": folder / "report.md", "csv": folder / "results.csv", "figure": folder / "figure.png",
             "hdf5": folder / "results.h5"}
    atomic_write_files({files["hdf5"]: _results_h5_bytes(rows, provenance), files["figure"]: png,
                        files["csv"]: csv_text(rows).encode(),
                        files["markdown"]: (md + "\n![figure](figure.png)\n").encode()})
    return files


REPORT_FILES = ("report.md", "results.csv", "figure.png", "results.h5")


def known_priors() -> tuple[str, ...]:
    """Prior names a comparison accepts: every denoiser, ``coordinate``, ``none``, the solver priors and
    the regularisers a solver implements itself (``own_priors``: the vlbi solver's mem, tsv, l1)."""
    from priors import DENOISERS

    from .methods import COORDINATE_PRIOR, NO_PRIOR
    from .solvers import SOLVERS

    own = [p for spec in SOLVERS.values() for p in spec.own_priors]
    names = (*DENOISERS, COORDINATE_PRIOR, NO_PRIOR, *solver_priors(), *own)
    return tuple(dict.fromkeys(names))  # each once, in order


def _is_recon_report_file(path: Path) -> bool:
    from .io import is_recon_file

    if path.suffix in (".h5", ".png"):
        return is_recon_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
            text = first + f.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        return False
    if path.name == "results.csv":
        return first.rstrip("\n") == ",".join(COLUMNS)
    return first.startswith("# ") and "| forward model | file | prior |" in text


def check_report_folder(folder: Path, inputs) -> None:
    """Refuse a report folder whose report files would replace an input or a file recon did not write."""
    from .io import MeasurementFileError

    targets = [folder / n for n in REPORT_FILES]
    jobs = (folder / JOBS_DIR).resolve()
    for inp in inputs:
        inp = Path(inp).resolve()
        if inp in [t.resolve() for t in targets] or jobs in inp.parents:
            raise MeasurementFileError(inp, f"input is inside the report folder {folder} where recon compare "
                                            "writes its report; choose another -o folder")
    for t in targets:
        if t.exists() and not (t.is_file() and _is_recon_report_file(t)):
            raise MeasurementFileError(t, "report folder holds a file of that name not written by recon; remove it "
                                          "or choose another -o folder")


__all__ = ["COLUMNS", "CompareResult", "JOBS_DIR", "JobProgress", "JobSpec", "solver_priors", "TIMING_COLUMNS",
           "compare", "compare_files", "csv_text", "job_key", "load_job", "markdown_table", "measurement_sha256", "plan_jobs",
           "run_job", "save_job", "table_rows"]

