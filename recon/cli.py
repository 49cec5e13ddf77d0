"""The ``recon`` command: import, simulate, run, compare, demo, info.

Heavy modules (torch, h5py, matplotlib) are imported inside the subcommands so
``recon --help`` answers instantly.  Bad input (a malformed file, a missing
folder, an unknown option) prints one line naming the file and the problem and
exits with status 2; ``--debug`` shows the traceback instead.  Outputs are
written atomically, so an error or a kill never leaves a partial file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from .options import parse_options

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2



def solver_names() -> tuple[str, ...]:
    """``recon run --solver`` choices: the solver registry's names."""
    from .solvers import SOLVERS

    return tuple(SOLVERS)


def prior_names() -> tuple[str, ...]:
    """``--prior`` choices: every denoiser ``priors.load_denoiser`` knows, ``coordinate``, ``none`` and
    ``auto`` (the learned prior measured best for the file, :func:`recon.methods.auto_prior`)."""
    from priors import DENOISERS

    from .methods import AUTO_PRIOR, COORDINATE_PRIOR, NO_PRIOR

    return (*DENOISERS, COORDINATE_PRIOR, NO_PRIOR, AUTO_PRIOR)


class BadInput(ValueError):
    """A user error: printed as one line, exit status 2."""


# ============================================================================ helpers
def _command_line(argv) -> str:
    return "recon " + shlex.join(str(a) for a in argv)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def _finite_float(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


# ============================================================================ subcommands
def cmd_import(args, argv) -> int:
    from .importers import import_file, importers
    from .io import check_output_path, write_measurement

    out = check_output_path(args.output, [args.input])
    options = {}
    for imp in importers().values():
        if imp.add_arguments is None:
            continue
        probe = argparse.ArgumentParser(add_help=False)
        imp.add_arguments(probe)
        for action in probe._actions:
            value = getattr(args, action.dest, None)
            if value is not None:
                options[action.dest] = value
    prov_command = _command_line(argv)
    m = import_file(args.input, format=args.format, command=prov_command, **options)
    write_measurement(out, m)
    print(f"wrote {out}: {m.forward_model}, data {tuple(m.y.shape)}")
    summary = (m.provenance.get("config") or {}).get("summary")
    if summary:  # what the importer decided (e.g. the rotation axis it found)
        print(summary)
    return EXIT_OK


def cmd_simulate(args, argv) -> int:
    import numpy as np

    from . import inputs, workflow
    from .io import check_output_path, sha256_file, write_measurement

    out = check_output_path(args.output, [p for p in (args.image, args.kernel) if p and Path(p).is_file()])
    if args.noise_sigma is not None and args.noise_sigma < 0:
        raise BadInput(f"--noise-sigma must be >= 0, got {args.noise_sigma}")
    if args.noise_relative is not None and args.noise_relative < 0:
        raise BadInput(f"--noise-relative must be >= 0, got {args.noise_relative}")
    if args.noise_sigma is None and args.noise_relative is None:
        args.noise_sigma = 0.01  # the documented default (absolute)
    parents = []
    geometry = None
    if args.geometry:
        try:
            geometry = json.loads(args.geometry)
        except json.JSONDecodeError as e:
            raise BadInput(f"--geometry is not valid JSON: {e.msg}") from None
        if not isinstance(geometry, dict):
            raise BadInput("--geometry must be a JSON object {argument: value}")
    if args.forward_model == "blackhole":
        if args.image:
            raise BadInput("blackhole simulates from --emission (a 3-D truth), not --image")
        from .simulate_blackhole import hotspot_truth

        op = inputs.build_operator("blackhole", spin=args.spin, inclination=args.inclination, frames=args.frames,
                                   observation=args.observation, size=args.size, geometry=geometry,
                                   stokes=args.stokes, magnetic_field=args.magnetic_field,
                                   polarized_fraction=args.polarized_fraction)
        truth = hotspot_truth(op, kind=args.emission)
    else:
        image = args.image or "camera"
        if Path(image).is_file():
            parents.append({"path": str(image), "sha256": sha256_file(image)})
        truth = inputs.load_image(image, size=args.size)
        if args.kernel and str(args.kernel).endswith(".npy") and Path(args.kernel).is_file():
            parents.append({"path": str(args.kernel), "sha256": sha256_file(args.kernel)})
        op = inputs.build_operator(args.forward_model, image_shape=truth.shape[1:], kernel=args.kernel or "gaussian:2",
                                   boundary=args.boundary, angles=args.angles, geometry=geometry)
        if tuple(op.in_shape) != tuple(truth.shape):
            raise BadInput(f"the image has shape {truth.shape} but the forward model expects {op.in_shape}")
    config = {k: v for k, v in vars(args).items() if k not in ("func", "debug", "output")}
    prov = {"generator": "recon simulate", "command": _command_line(argv), "config": config, "parents": parents}
    m = workflow.simulate(op, np.asarray(truth), noise_sigma=float(args.noise_sigma or 0.0), seed=args.seed,
                          provenance=prov, noise_relative=args.noise_relative)
    write_measurement(out, m)
    print(f"wrote {out}: {m.forward_model}, data {tuple(m.y.shape)}, truth {tuple(m.ground_truth.shape)}, "
          f"sigma {m.sigma if m.sigma is not None else 0:.4g}")
    return EXIT_OK


def cmd_run(args, argv) -> int:
    from . import workflow
    from .io import check_output_path, write_fits
    from .methods import method_label

    device = _check_device(args.device)
    m = workflow.load_measurement(args.input)
    inputs = [args.input] + ([args.x0] if args.x0 else [])  # never overwritten by an output
    if args.weights:  # the weights and their sidecar are inputs too
        inputs += [args.weights, str(Path(args.weights).with_suffix(".json"))]
    out = check_output_path(args.output, inputs)
    check_output_path(out.with_suffix(".png"), inputs, what="preview")
    sky = None
    if args.fits:
        check_output_path(args.fits, [*inputs, out], what="FITS output")
        sky = _sky_fn(m)
    options = parse_options(args.option)
    x0, x0_sha = _read_start_point(args.x0, m) if args.x0 else (None, "")
    if args.iterations is not None:
        options.setdefault("iterations", args.iterations)
    if args.weights is not None:
        wpath = Path(args.weights)
        if not wpath.is_file():
            raise BadInput(f"--weights {wpath}: no such file")
        options["weights"] = str(wpath)
    solver = args.solver or "auto"
    from .threads import default_threads

    threads = args.threads or default_threads()  # physical idle cores: a stable time, see recon/threads.py
    progress = True if args.progress else (False if args.quiet else None)  # None: a bar only in a terminal
    if not args.quiet:
        _print_budget(m, solver, args.prior, options)
    from .io import sha256_file

    # what a checkpoint or the finished rows of --by-row must match to be continued
    run_key = {"input_sha256": m.sha256, "solver": solver, "prior": args.prior, "options": options,
               "seed": args.seed, "dtype": args.dtype,
               "weights_sha256": sha256_file(args.weights) if args.weights else "", "x0_sha256": x0_sha}
    ckpt = None
    if args.checkpoint_every or args.resume:
        from .checkpoint import Checkpointer, replaceable_checkpoint

        ckpt_path = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
        check_output_path(ckpt_path, [*inputs, out], what="checkpoint",
                          replace=lambda p: replaceable_checkpoint(p, run_key))
        ckpt = Checkpointer(ckpt_path, every=args.checkpoint_every or 0, resume=args.resume, run_key=run_key)
    rows_dir = None
    if getattr(args, "by_row", False):  # a slice stack, row by row, resumable per row (recon/stack.py)
        from .stack import reconstruct_rows

        if ckpt is not None or x0 is not None:
            raise BadInput("--by-row keeps every finished row itself: it takes no --checkpoint-every/--resume "
                           "or --x0")
        rows_dir = out.with_name(out.name + ".rows")
        if any(rows_dir.resolve() == Path(p).resolve() for p in inputs):
            raise BadInput(f"{rows_dir}: the per-row results folder is an input of the run")
        r = reconstruct_rows(m, rows_dir=rows_dir, run_key=run_key, progress=not args.quiet,
                             solve=lambda mr: workflow.reconstruct(mr, solver=solver, prior=args.prior, device=device,
                                                                   seed=args.seed, threads=threads, dtype=args.dtype,
                                                                   progress=progress, **options))
    elif ckpt is not None:
        r = ckpt.run(m, solver=solver, prior=args.prior, device=device, seed=args.seed, threads=threads,
                     dtype=args.dtype, x0=x0, progress=progress, **options)
    else:
        r = workflow.reconstruct(m, solver=solver, prior=args.prior, device=device, seed=args.seed,
                                 threads=threads, dtype=args.dtype, x0=x0, progress=progress, **options)
    choice = r.provenance.get("config", {}).get("prior_choice")
    if choice and not args.quiet:
        print(choice, file=sys.stderr)
    r.provenance["generator"] = "recon run"
    if args.x0:  # the start point is an input of the run: name it and its content
        r.provenance["parents"].append({"path": str(args.x0), "sha256": x0_sha, "role": "x0"})
    r.provenance["command"] = _command_line(argv)
    group: dict = {}  # the FITS is written all-or-nothing with the .h5 and its preview
    if args.fits:
        info = fits_annotations(r, _sky_image(r, sky), command=_command_line(argv), input_path=args.input)
        image = info.pop("image")
        if len(getattr(image, "shape", ())) == 3:  # polarized model: (I, Q, U) planes on a STOKES axis
            from .stokes_fits import write_stokes_fits

            write_stokes_fits(args.fits, image, overwrite_inputs=[*inputs, out], defer=group, **info)
        else:
            write_fits(args.fits, image, overwrite_inputs=[*inputs, out], defer=group, **info)
    workflow.save_reconstruction(r, out, inputs=inputs, extra=group)
    if ckpt is not None:
        ckpt.cleanup()
    if rows_dir is not None:
        from .stack import remove_rows

        remove_rows(rows_dir)
    met = r.metrics
    parts = [f"wrote {out}", method_label(r.solver, r.prior)]
    if met.get("psnr") is not None:
        parts.append(f"PSNR {met['psnr']:.2f} dB")
    if met.get("pearson_support") is not None:
        parts.append(f"Pearson over the truth's support {met['pearson_support']:.3f}")
    if met.get("ssim") is not None:
        parts.append(f"SSIM {met['ssim']:.4f}")
    parts.append(f"misfit {met['data_misfit']:.4g}")
    parts += [f"{k} {met[k]:.3g}" for k in sorted(met) if k.startswith("chi2_")]  # per data product (VLBI)
    for key, label, unit in (("ring_diameter_uas", "ring diameter", " uas"), ("ring_width_uas", "width", " uas"),
                             ("ring_position_angle_deg", "PA", " deg"), ("ring_central_depression", "f_c", "")):
        if met.get(key) is not None:
            parts.append(f"{label} {met[key]:.1f}{unit}")
    parts.append(f"{met['wall_time_s']:.2f} s")
    print(", ".join(parts))
    return EXIT_OK


def _check_device(text: str) -> str:
    """``--device`` checked before anything runs: a device torch knows and this machine has."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise BadInput(f"--device {text!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BadInput(f"--device {text}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadInput(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise BadInput(f"--device {text}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise BadInput(f"--device {text}: recon runs on cpu, cuda or mps")
    return text


def _print_budget(m, solver: str, prior: str, options: dict) -> None:
    """Say up front what a long fit will do (the coordinate network's budget and stopping rule)."""
    from .methods import default_solver

    name = default_solver(prior, m) if solver in (None, "auto") else solver
    if name != "coordinate":
        return
    from .solvers.defaults import defaults_for

    cfg = {**defaults_for(name, m.forward_model), **options}
    if "iterations" in cfg:
        cfg["n_steps"] = cfg.pop("iterations")
    parts = [f"{cfg.get('n_steps')} Adam steps", f"MLP {cfg.get('width')} wide x {cfg.get('depth')} deep "
             f"({cfg.get('encoding')} encoding)",
             f"amp {cfg.get('amp', 'none')}" + (" (bfloat16 where the CPU has it)" if cfg.get("amp") == "auto" else "")]
    if cfg.get("init_steps"):
        k = cfg["init_steps"]  # a fraction of the budget (< 1) or a number of steps
        first = (f"{round(float(k) * int(cfg.get('n_steps') or 0))} ({float(k):g})" if float(k) < 1
                 else f"{int(float(k))}")
        parts.append(f"the first {first} of them fit the start image (FBP for CT)")
    if cfg.get("misfit_stop") and m.sigma:
        parts.append(f"stops early when the data misfit reaches {cfg['misfit_stop']} x the noise sigma")
    print("coordinate budget: " + ", ".join(parts) + " (--option n_steps=2000 --option width=256 "
          "--option depth=4 for the quality setting; `recon run --solver coordinate --help-options` lists all)",
          file=sys.stderr, flush=True)


def help_options(solver: str) -> str:
    """The ``--option`` keys of ``solver`` with their defaults (signature, then per forward model)."""
    import inspect
    import re

    from .solvers import SOLVERS
    from .solvers.defaults import DEFAULTS

    if solver not in SOLVERS:
        raise BadInput(f"--solver {solver!r} is not a solver; known: {', '.join(SOLVERS)}")
    spec = SOLVERS[solver]
    sig = dict(inspect.signature(spec.algorithm).parameters)
    if spec.field is not None:  # the network's own keyword arguments (e.g. degree, width, depth)
        for k, v in inspect.signature(spec.field()).parameters.items():
            if v.kind == v.KEYWORD_ONLY:
                sig.setdefault("field_seed" if k == "seed" else k, v)
    doc = inspect.getdoc(spec.algorithm) or ""
    lines = [f"{solver}: {spec.description}", "",
             "options (recon run --solver %s --option KEY=VALUE; iterations=N is mapped onto the solver's "
             "own count):" % solver]
    for name in spec.params:
        default = sig[name].default if name in sig and sig[name].default is not inspect.Parameter.empty else None
        per_model = [f"{'/'.join(k[1:])}: {v[name]!r}" for k, v in DEFAULTS.items()
                     if k[0] == solver and name in v and k[1] != "*"]
        generic = DEFAULTS.get((solver, "*"), {}).get(name, default)
        match = re.search(rf"^{re.escape(name)}\b[^\n]*\n((?:[ \t]+\S[^\n]*\n?)+)", doc, flags=re.M)
        what = " ".join(match.group(1).split()).split(". ")[0] if match else ""
        what = what if len(what) <= 110 else what[:107] + "..."
        text = f"  {name} = {generic!r}"
        if per_model:
            text += "  (" + "; ".join(per_model) + ")"
        lines.append(text)
        if what:
            lines.append(f"      {what}")
    lines.append("")
    lines.append("Defaults per forward model come from recon/solvers/defaults.py (each with the measurement "
                 "that chose it).")
    return "\n".join(lines)


def _read_start_point(path: str, m):
    """The ``--x0`` start point and the sha256 of the bytes read: ``/reconstruction/x`` of a
    ``recon run`` output or a ``.npy`` array (read without pickle, its declared shape checked
    before its data is read), checked against the input grid of the measurement's operator."""
    import numpy as np

    from .io import MeasurementFileError, read_reconstruction, sha256_file

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"--x0 {p}: no such file")
    shape = tuple(m.operator().in_shape)
    if p.suffix.lower() == ".npy":
        before = p.stat()
        sha = sha256_file(p)
        try:
            x0 = np.load(p, allow_pickle=False, mmap_mode="r")  # the header only, until it is copied
        except (ValueError, OSError) as e:  # corrupt, truncated or an object array
            raise BadInput(f"--x0 {p}: not a readable .npy array ({' '.join(str(e).split())})") from None
        if tuple(x0.shape) == shape:
            x0 = np.array(x0)
        after = p.stat()
        if (before.st_ino, before.st_size, before.st_mtime_ns) != (after.st_ino, after.st_size, after.st_mtime_ns):
            raise BadInput(f"--x0 {p}: the file changed while it was being read")
    elif p.suffix.lower() in (".h5", ".hdf5"):
        try:
            r = read_reconstruction(p)
        except MeasurementFileError as e:
            raise BadInput(f"--x0 {e.path}: {e.problem}") from None
        x0, sha = r.x, r.measurement.sha256
    else:
        raise BadInput(f"--x0 {p}: expected a reconstruction file (.h5) or a NumPy array (.npy)")
    if tuple(x0.shape) != shape:
        raise BadInput(f"--x0 {p}: shape {tuple(x0.shape)} does not match the operator's input {shape}")
    if np.iscomplexobj(x0) or not np.issubdtype(x0.dtype, np.number):
        raise BadInput(f"--x0 {p}: expected real numbers, got dtype {x0.dtype}")
    if not np.all(np.isfinite(x0)):
        raise BadInput(f"--x0 {p}: contains NaN or Inf")
    return np.asarray(x0, dtype=np.float64), sha


def _sky_fn(m):
    """A function returning FITS WCS arguments for ``m``'s operator, or ``BadInput`` if it has no sky."""
    from .vlbi.data import is_vlbi_measurement

    if is_vlbi_measurement(m):  # imported interferometer data: the source's position, date, frequency
        from .vlbi.fits import sky_info

        return lambda: sky_info(m)
    op = m.operator()
    sky = getattr(op, "sky_geometry", None)
    if callable(sky):
        return sky
    if hasattr(op, "alpha") and hasattr(op, "beta"):  # screen coordinates in M (black-hole models)
        from .simulate_blackhole import sky_geometry

        return lambda: sky_geometry(op)
    raise BadInput(f"--fits needs a sky-image forward model; {m.forward_model} has no sky geometry")


#: Data units that are not a calibrated brightness (FITS gets no physical BUNIT for them).
UNCALIBRATED_UNITS = ("", "1", "arbitrary", "a.u.", "counts")


def fits_annotations(r, info: dict, *, command: str, input_path: str) -> dict:
    """Add what an astronomer needs to trust a FITS sky image to ``write_fits`` arguments ``info``.

    * ``BUNIT`` only when the data are calibrated (measurement units not in
      :data:`UNCALIBRATED_UNITS`); otherwise an empty (dimensionless) unit whose comment says so;
    * ``HISTORY``: recon version, the command, the input file's sha256, the method;
    * what the image is (``IMTYPE``: the reconstruction itself, or the model image ``A x``
      averaged over N frames of a movie);
    * the physical assumptions of black-hole models as keywords: ``BH_MASS`` (solar masses),
      ``BH_DIST`` (kpc), ``UASPERM``, ``BH_SPIN``, ``INCL``; ``FREQ`` when the geometry has one.
    """
    import numpy as np

    from .methods import method_label
    from .io import sha256_file, software_version

    m = r.measurement
    out = dict(info)
    units = str(m.units or "").strip()
    if units in UNCALIBRATED_UNITS:
        out["bunit"] = ("", f"uncalibrated: data units {units or 'none'!r}, relative brightness")
    else:  # calibrated: the importer's unit, else the data's (a flux per pixel for Jy)
        out["bunit"] = out.get("bunit") or ("Jy/pixel" if units == "Jy" else units)
    frames = int(np.prod(m.y.shape[:-2])) if getattr(m.y, "ndim", 0) > 2 else 1
    what = out.pop("image_description", None) or (
        f"model image A x averaged over {frames} frames" if frames > 1 else "model image A x")
    extra = dict(out.get("extra_header") or {})
    extra.setdefault("IMTYPE", (what[:68], "what this image is"))
    g = m.geometry
    if "spin" in g and "inclination_deg" in g:  # a Kerr black-hole model: say what it assumes
        from .simulate_blackhole import SGRA_DISTANCE_KPC, SGRA_MASS_MSUN, uas_per_M

        extra.setdefault("BH_MASS", (SGRA_MASS_MSUN, "assumed black-hole mass [solar masses]"))
        extra.setdefault("BH_DIST", (SGRA_DISTANCE_KPC, "assumed distance [kpc]"))
        extra.setdefault("UASPERM", (round(uas_per_M(), 6), "angular size of GM/c^2 [micro-arcsec]"))
        extra.setdefault("BH_SPIN", (float(g["spin"]), "dimensionless spin a/M"))
        extra.setdefault("INCL", (float(g["inclination_deg"]), "observer inclination [deg]"))
    freq = g.get("freq_hz", g.get("frequency_hz"))
    if freq is not None and out.get("frequency_hz") is None:
        out["frequency_hz"] = float(freq)
    elif out.get("frequency_hz") is None:
        extra.setdefault("COMMENT", "no observing frequency: the model is frequency-independent")
    out["extra_header"] = extra
    history = list(out.get("history") or [])
    history += [f"recon {software_version()}: {method_label(r.solver, r.prior)}",
                f"command: {command}",
                f"input: {Path(input_path).name} sha256 {r.measurement.sha256 or sha256_file(input_path)}",
                f"image: {what}"]
    out["history"] = history
    return out


def _sky_image(r, sky) -> dict:
    """The 2-D sky image of a reconstruction for FITS: the model image ``A x`` averaged over frames."""
    import numpy as np
    import torch

    info = dict(sky())
    if info.pop("image_is_x", False):  # the unknown is the sky image itself (VLBI)
        info["image"] = np.asarray(r.x).reshape(r.x.shape[-2:])
        return info
    op = r.measurement.operator()
    with torch.no_grad():
        img = op.forward(torch.as_tensor(r.x, dtype=torch.float64)[None])[0].numpy()
    keep = 3 if getattr(op, "n_stokes", 1) > 1 else 2  # a polarized movie keeps its Stokes axis
    while img.ndim > keep:
        img = img.mean(axis=0)
    info = dict(sky())
    info["image"] = np.asarray(img)
    return info


def cmd_compare(args, argv) -> int:
    from .comparison import compare_files, known_priors

    priors = [p.strip() for p in args.priors.split(",") if p.strip()]
    if not priors:
        raise BadInput("--priors is empty")
    unknown = [p for p in priors if p not in known_priors()]
    if unknown:
        raise BadInput(f"--priors: unknown prior(s) {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(known_priors())}")
    if args.solver not in ("auto", *solver_names()):
        raise BadInput(f"--solver: unknown solver {args.solver!r}; known: auto, {', '.join(solver_names())}")
    if args.workers and args.scheduler:
        raise BadInput("use either --workers or --scheduler, not both")
    options = parse_options(args.option)
    result = compare_files(args.inputs, priors=priors, out=args.output, solver=args.solver,
                           iterations=args.iterations, workers=args.workers, scheduler=args.scheduler,
                           seed=args.seed, options=options, command=_command_line(argv), progress=True,
                           run=not args.report_only)
    print(result.markdown)
    print(f"report written to {args.output}")
    failed = [r for r in result.rows if r.get("status") == "failed"]
    if failed:  # reported in the table; the run as a whole did not succeed
        print(f"recon compare: failed: {len(failed)} of {len(result.rows)} jobs failed "
              f"({', '.join(sorted({Path(r['file']).name + '/' + r['prior'] for r in failed}))}; notes in "
              f"{Path(args.output) / 'report.md'})", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_demo(args, argv) -> int:
    from .demo import run_demo

    report = run_demo(out=args.output, size=args.size, workers=args.workers, quick=args.quick,
                      command=_command_line(argv))
    print(report.markdown)
    print(f"report written to {args.output}")
    return EXIT_OK


def cmd_info(args, argv) -> int:
    from .io import Reconstruction, read_header

    for i, path in enumerate(args.files):
        h = read_header(path)  # metadata only: no data array is read
        if isinstance(h, Reconstruction):
            r = h
            text = _describe_measurement(r.measurement, header=f"{path}: reconstruction")
            text += [f"  reconstruction x: shape {tuple(r.x.shape)}, solver {r.solver}, prior {r.prior}"]
            if r.weights_sha256:
                text.append(f"  prior weights sha256: {r.weights_sha256}")
            if r.options:
                text.append(f"  options: {json.dumps(r.options, sort_keys=True)}")
            for k, v in sorted(r.metrics.items()):
                text.append(f"  {k}: {v:.6g}")
            if r.history:
                text.append("  history: " + ", ".join(f"{k}[{len(v)}]" for k, v in sorted(r.history.items())))
        else:
            text = _describe_measurement(h, header=f"{path}: measurement")
        if i:
            print()
        print("\n".join(text))
    return EXIT_OK


def _describe_measurement(m, *, header: str) -> list[str]:
    import numpy as np

    entry = m.entry
    lines = [f"{header} (format {m.format_version}, written by recon {m.software_version}, {m.created})",
             f"  forward model: {m.forward_model} -- {entry.description}"]
    lines.append("  geometry:")
    for k in sorted(m.geometry):
        v = m.geometry[k]
        arr = np.asarray(v)
        shown = repr(v) if isinstance(v, str) else (
            np.array2string(arr, precision=4, threshold=6) if arr.size <= 6 else
            f"array {arr.shape} {arr.dtype} in [{arr.min():.4g}, {arr.max():.4g}]")
        lines.append(f"    {k} = {shown} [{m.geometry_units.get(k, '')}]")
    y = m.y
    if m.header_only:  # recon info reads no data array: shapes and dtypes only
        lines.append(f"  data y: shape {tuple(y.shape)} {y.dtype}, units {m.units!r}")
    else:
        lines.append(f"  data y: shape {tuple(y.shape)} {y.dtype}, units {m.units!r}, "
                     f"range [{np.abs(y).min() if np.iscomplexobj(y) else y.min():.4g}, "
                     f"{np.abs(y).max() if np.iscomplexobj(y) else y.max():.4g}]")
    lines.append(f"  noise sigma: {m.sigma if m.sigma is not None else 'not given'}")
    if m.weights is not None:
        lines.append(f"  weights: shape {tuple(m.weights.shape)}")
    if m.mask is not None:
        lines.append(f"  mask: shape {tuple(m.mask.shape)}" if m.header_only else
                     f"  mask: {int(np.asarray(m.mask).sum())} of {np.asarray(m.mask).size} used")
    if m.ground_truth is not None:
        gt = m.ground_truth
        lines.append(f"  ground truth x: shape {tuple(gt.shape)} {gt.dtype}" if m.header_only else
                     f"  ground truth x: shape {tuple(gt.shape)} in [{gt.min():.4g}, {gt.max():.4g}]")
    else:
        lines.append("  ground truth: none")
    p = m.provenance
    if p:
        lines.append(f"  provenance: generator {p.get('generator', '')!r}, seed {p.get('seed')}")
        if p.get("command"):
            lines.append(f"    command: {p['command']}")
        for par in p.get("parents", []):
            lines.append(f"    parent: {par.get('path')} sha256 {par.get('sha256', '')[:16]}...")
    return lines


# ============================================================================ parser
def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``recon`` argument parser.

    ``command`` (the subcommand about to run) lets ``run``/``compare`` list the solver and
    prior registries in their help; without it nothing imports torch, so ``recon --help`` is instant.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show full tracebacks on errors")

    p = argparse.ArgumentParser(
        prog="recon", parents=[common],
        description="Inverse problems from HDF5 measurement files: simulate, reconstruct, compare priors.",
        epilog="Start with `recon demo`. `recon SUBCOMMAND --help` describes each subcommand.")
    sub = p.add_subparsers(dest="command", metavar="{import,simulate,run,compare,demo,info}")

    from .importers import importers

    table = importers()
    im = sub.add_parser("import", parents=[common], help="turn an instrument file into a measurement file",
                        description="Read what an instrument wrote (" + ", ".join(
                            f"{n}: {imp.description}" for n, imp in sorted(table.items()))
                        + ") and write a standard recon measurement file with provenance.")
    im.add_argument("input", help="instrument file")
    im.add_argument("--format", default="auto", choices=["auto", *sorted(table)],
                    help="file format (default: detected from the content)")
    im.add_argument("-o", "--output", required=True, help="measurement file to write (.h5)")
    for name, imp in sorted(table.items()):
        if imp.add_arguments is not None:
            imp.add_arguments(im.add_argument_group(f"{name} options"))
    im.set_defaults(func=cmd_import)

    s = sub.add_parser("simulate", parents=[common], help="simulate a measurement file from a test image",
                       description="Simulate y = A x + noise from a test image and write a measurement file "
                                   "that keeps the truth and the exact command.")
    s.add_argument("--forward-model", required=True, metavar="NAME",
                   help="registered forward model: denoise, blur, radon, blackhole, ...")
    s.add_argument("--image", help="camera, shepp-logan (bundled with scikit-image) or a PNG file "
                                   "(values/255 in [0, 1]); default camera")
    s.add_argument("--emission", default="hotspot", choices=["hotspot"],
                   help="3-D emission truth for blackhole (default hotspot)")
    s.add_argument("--size", type=_positive_int, help="image side in pixels (default 128 for bundled images; "
                                                       "PNG files keep their size unless given)")
    s.add_argument("--kernel", help="blur: gaussian:STD, motion:LENGTH:ANGLE, disk:RADIUS or a .npy file "
                                    "(default gaussian:2)")
    s.add_argument("--boundary", default="circular", choices=["circular", "zero", "reflect", "symmetric"],
                   help="blur boundary (default circular)")
    s.add_argument("--angles", type=_positive_int, default=60, help="radon: number of views over 180 degrees "
                                                                     "(default 60)")
    s.add_argument("--spin", type=_finite_float, default=0.5, help="blackhole: spin a/M in [0, 1) (default 0.5)")
    s.add_argument("--inclination", type=_finite_float, default=60.0,
                   help="blackhole: observer inclination in degrees (default 60)")
    s.add_argument("--frames", type=_positive_int, default=8, help="blackhole: movie frames (default 8)")
    s.add_argument("--observation", default="movie", choices=["movie", "lightcurve", "visibilities"],
                   help="blackhole: what is observed (default movie)")
    s.add_argument("--stokes", default="I", choices=["I", "IQU"],
                   help="blackhole: total intensity, or polarized synchrotron emission with a Stokes axis (I, Q, U)")
    s.add_argument("--magnetic-field", default="vertical",
                   help="blackhole --stokes IQU: vertical, radial, toroidal or 'b_r,b_z,b_phi' "
                        "(lab frame, cylindrical)")
    s.add_argument("--polarized-fraction", type=_finite_float, default=0.85,
                   help="blackhole --stokes IQU: local linear polarization fraction in [0, 1] (default 0.85)")
    s.add_argument("--geometry", help="any forward model: its constructor arguments as a JSON object")
    noise = s.add_mutually_exclusive_group()
    noise.add_argument("--noise-sigma", type=_finite_float, default=None,
                       help="Gaussian noise standard deviation in the units of the measurement A x: the image's "
                            "[0, 1] for denoise/blur, the sinogram's for radon (whose peak grows with --size; "
                            "use --noise-relative there); default 0.01")
    noise.add_argument("--noise-relative", type=_finite_float, default=None, metavar="FRACTION",
                       help="noise standard deviation as a fraction of the noise-free measurement's peak "
                            "max|A x| (0.01 = 1%% noise, as CT papers state it)")
    s.add_argument("--seed", type=_nonneg_int, default=0, help="noise seed (default 0)")
    s.add_argument("-o", "--output", required=True, help="measurement file to write (.h5)")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", parents=[common], help="reconstruct a measurement file",
                       description="Reconstruct a measurement file; writes /reconstruction/x, its history, "
                                   "PSNR/SSIM when the file has a truth, and a PNG preview beside the output.")
    r.add_argument("input", help="measurement file (.h5)")
    # the names come from the registries, which import torch: only when this subcommand runs
    solvers = ", ".join(solver_names()) if command in ("run", "compare") else "see `recon run --help`"
    prior_list = ", ".join(prior_names()) if command in ("run", "compare") else "see `recon run --help`"
    r.add_argument("--solver", default="auto", metavar="NAME", help=f"{solvers} (default: chosen from the prior)")
    r.add_argument("--prior", default="none", metavar="NAME", help=f"{prior_list} (default none)")
    r.add_argument("--weights", metavar="PATH", help="weights for a learned prior instead of the shipped ones "
                   "(.safetensors with its .json sidecar, or a published .pth state dict)")
    r.add_argument("--iterations", type=_positive_int, help="solver iterations (default: the solver's)")
    r.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="solver option, repeatable (e.g. --option lam=0.01 --option rho=1)")
    r.add_argument("--x0", metavar="PATH", help="start point: a reconstruction file (.h5) of the same grid or a "
                   ".npy array of the operator's input shape (default: the solver's, e.g. FBP for CT)")
    r.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    r.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    r.add_argument("--threads", type=_positive_int, help="torch threads (default: the idle physical cores, or "
                   "OMP_NUM_THREADS when set)")
    shown = r.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="always show the progress bar (default: only when stderr is a terminal)")
    shown.add_argument("--quiet", action="store_true", help="no progress bar and no budget line")
    r.add_argument("--help-options", action="store_true",
                   help="list the --option keys of --solver NAME with their defaults, and exit")
    r.add_argument("--seed", type=_nonneg_int, default=0, help="seed for stochastic solvers (default 0)")
    r.add_argument("--checkpoint-every", type=_nonneg_int, default=0, metavar="N",
                   help="write a checkpoint of the solver state every N iterations")
    r.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default OUTPUT.ckpt)")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint if there is one")
    r.add_argument("--by-row", action="store_true",
                   help="a slice stack (recon import --rows A:B): solve row by row, keeping each finished row "
                        "in OUTPUT.rows/ so the same command continues a killed run at the next unfinished row")
    r.add_argument("--fits", metavar="PATH", help="also write the model sky image as FITS (astronomy models)")
    r.add_argument("-o", "--output", required=True, help="reconstruction file to write (.h5)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compare", parents=[common], help="every prior on every measurement file: a report",
                       description="Run every prior on every measurement file and write a Markdown/CSV table, "
                                   "a figure grid and an HDF5 file with all results into the output folder.")
    c.add_argument("inputs", nargs="+", help="measurement files (.h5)")
    c.add_argument("--priors", default="tv,none", help="comma-separated priors, and fbp for tomography "
                   f"(default tv,none; known: {prior_list}, fbp)")
    c.add_argument("--solver", default="auto", metavar="NAME",
                   help=f"solver for denoiser priors: {solvers} (default: per prior)")
    c.add_argument("--iterations", type=_positive_int, help="iterations for every solver")
    c.add_argument("--option", action="append", metavar="KEY=VALUE", help="option passed to every solver")
    c.add_argument("--workers", type=_nonneg_int, default=0, help="run jobs on a local Dask cluster of N workers")
    c.add_argument("--scheduler", metavar="ADDRESS", help="run jobs on an existing Dask cluster")
    c.add_argument("--seed", type=_nonneg_int, default=0)
    c.add_argument("-o", "--output", required=True, help="report folder (created if its parent exists); each "
                   "finished job is kept in OUTPUT/jobs/, so the same command again skips finished jobs")
    c.add_argument("--report-only", action="store_true",
                   help="run nothing: rebuild the report from the jobs already finished in OUTPUT")
    c.set_defaults(func=cmd_compare)

    d = sub.add_parser("demo", parents=[common], help="simulate, reconstruct and compare on bundled images",
                       description="The main job on embedded defaults: one measurement per forward model, every "
                                   "shipped prior, a report with a table and a figure.")
    d.add_argument("-o", "--output", "--out", default="recon-demo", help="report folder (default ./recon-demo)")
    d.add_argument("--size", type=_positive_int, default=128, help="image side (default 128)")
    d.add_argument("--workers", type=_nonneg_int, default=0, help="local Dask workers (default: sequential)")
    d.add_argument("--quick", action="store_true", help="tiny sizes and few iterations (a smoke test)")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("info", parents=[common], help="summarise measurement or reconstruction files")
    i.add_argument("files", nargs="+")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    """Entry point of the ``recon`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    from .plugins import PluginError, load_plugins

    try:  # before the parser: a plugin's forward models and solvers are among the choices
        load_plugins()
    except PluginError as e:
        print(f"recon: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if command == "run" and "--help-options" in argv:  # before the required arguments are checked
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--solver", default=None)
        known, _ = pre.parse_known_args(argv)
        if not known.solver or known.solver == "auto":
            print("recon run: error: --help-options needs --solver NAME", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            print(help_options(known.solver))
        except BadInput as e:
            print(f"recon run: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return EXIT_OK
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    debug = args.debug or os.environ.get("RECON_DEBUG") == "1"
    try:
        return int(args.func(args, argv) or 0)
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every error becomes one line unless --debug
        if debug:
            raise
        return _report_error(args.command, e)


# Errors a full disk or a file-size limit gives a write: the run failed (exit 1), nothing changed.
_WRITE_ERRNOS = ("ENOSPC", "EFBIG", "EDQUOT", "EROFS", "EIO")


def _report_error(command: str, e: Exception) -> int:
    """One line on stderr and the exit status: 2 for bad input (the user's to fix), 1 for a failure.

    Bad input is a ``ValueError`` (``MeasurementFileError``, ``BadInput``, a refused option) or a
    missing/unreadable path; a ``TypeError`` or anything else inside recon is a failure (a bug),
    not the user's input.
    """
    import errno

    from .io import MeasurementFileError

    msg = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.errno in {getattr(errno, n, -1) for n in _WRITE_ERRNOS}:
        where = f"cannot write {e.filename}: " if e.filename else "cannot write: "
        print(f"recon {command}: failed: {where}{e.strerror or msg}; earlier outputs are unchanged",
              file=sys.stderr)
        return EXIT_FAILURE
    if isinstance(e, MemoryError):
        print(f"recon {command}: failed: out of memory (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
    if isinstance(e, (MeasurementFileError, BadInput, ValueError, FileNotFoundError, PermissionError,
                      IsADirectoryError, NotADirectoryError)):
        print(f"recon {command}: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"recon {command}: failed: {type(e).__name__}: {msg} (rerun with --debug for the traceback)",
          file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
