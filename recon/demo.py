"""``recon demo``: the main job on embedded defaults.

Simulates one measurement per forward model (``forward_models.primary_names()``) from
images bundled with scikit-image (camera for denoising and deblurring, the Shepp-Logan
phantom for CT) and, for the black hole, a hotspot emission volume; then compares every
shipped prior on every measurement and writes the report (Markdown + CSV table, figure
grid, HDF5 of all results) into ``./recon-demo/``.  Learned priors whose weights are not
installed are skipped with a note.  Sized to finish in about ten minutes on 2 CPU cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

#: Priors the demo tries, in table order (missing learned weights are skipped with a note).
DEMO_PRIORS = ("drunet", "drunet-ct", "dncnn", "dnresnet", "bm3d", "wavelet", "tv", "coordinate", "fbp", "none")


def _recipes(size: int, quick: bool) -> dict:
    """Per forward model: image, model options and noise (the demo's embedded defaults)."""
    return {
        "denoise": {"image": "camera", "noise": 25.0 / 255.0, "opts": {}},
        "blur": {"image": "camera", "noise": 2.55 / 255.0, "opts": {"kernel": "motion:9:30", "boundary": "circular"}},
        # 60 views over 180 degrees; noise 1% of the sinogram's maximum
        "radon": {"image": "shepp-logan", "noise_rel": 0.01, "opts": {"angles": 60 if not quick else 16}},
        "blackhole": {"emission": "hotspot", "noise_rel": 0.01,
                      "opts": {"size": 16 if quick else 24, "frames": 4 if quick else 8,
                               "n_samples": 32 if quick else 64}},
    }


def simulate_demo_measurements(folder: Path, *, size: int = 128, quick: bool = False, seed: int = 0,
                               log=print) -> tuple[list[Path], list[str]]:
    """Write one measurement file per primary forward model into ``folder``; ``(paths, notes)``."""
    import torch

    import forward_models as fm

    from .inputs import build_operator, load_image
    from .io import write_measurement
    from .workflow import simulate

    from .io import forward_model_registry

    forward_model_registry()  # optional sub-packages (black hole) register on import
    recipes = _recipes(size, quick)
    paths, notes = [], []
    for name in fm.primary_names():
        r = recipes.get(name)
        t0 = time.perf_counter()
        try:
            if r is None:  # a forward model added later: simulate it on the camera image if it takes images
                entry = fm.get_entry(name)
                if not entry.image_input:
                    notes.append(f"{name}: no demo recipe for a non-image unknown; skipped")
                    continue
                op = entry.example()
                truth = load_image("camera", size=tuple(op.in_shape[1:]))
                if tuple(op.in_shape) != truth.shape:
                    notes.append(f"{name}: example operator does not take a grey image; skipped")
                    continue
                r, cmd_opts = {"noise_rel": 0.01}, ""
            elif name == "blackhole":
                from .simulate_blackhole import blackhole_operator, hotspot_truth

                op = blackhole_operator(**r["opts"])
                truth = hotspot_truth(op)
                cmd_opts = f"--emission hotspot --size {r['opts']['size']} --frames {r['opts']['frames']}"
            else:
                truth = load_image(r["image"], size=size)
                op = build_operator(name, image_shape=truth.shape[1:], **r["opts"])
                cmd_opts = f"--image {r['image']} --size {size} " + " ".join(
                    f"--{k} {v}" for k, v in r["opts"].items())
            sigma = r.get("noise")
            if sigma is None:
                with torch.no_grad():
                    ax = op(torch.as_tensor(truth, dtype=torch.float64)[None])
                sigma = float(r["noise_rel"] * ax.abs().max())
            noise_opt = f"--noise-relative {r['noise_rel']:g}" if "noise_rel" in r else f"--noise-sigma {sigma:.6g}"
            prov = {"generator": "recon demo",
                    "command": f"recon simulate --forward-model {name} {cmd_opts} {noise_opt} --seed {seed}",
                    "config": {"forward_model": name, "recipe": r, "size": size, "quick": quick}}
            m = simulate(op, np.asarray(truth), noise_sigma=sigma, seed=seed, provenance=prov)
            path = folder / f"{name}.h5"
            write_measurement(path, m)
            paths.append(path)
            log(f"simulated {name}: data {tuple(m.y.shape)}, sigma {sigma:.4g} ({time.perf_counter() - t0:.1f} s)")
        except Exception as e:  # noqa: BLE001 - one model failing must not stop the demo
            notes.append(f"{name}: simulation failed ({type(e).__name__}: {' '.join(str(e).split())[:160]})")
    return paths, notes


def run_demo(out="recon-demo", *, size: int = 128, workers: int = 0, quick: bool = False, command: str = "",
             priors=DEMO_PRIORS, seed: int = 0):
    """Simulate the demo measurements and compare the priors; returns the :class:`CompareResult`."""
    from .comparison import compare_files
    from .io import MeasurementFileError

    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MeasurementFileError(out, f"parent folder {parent} does not exist")
    if out.exists() and not out.is_dir():
        raise MeasurementFileError(out, "demo output path is an existing file")
    if quick:
        size = min(size, 32)
    out.mkdir(exist_ok=True)
    meas = out / "measurements"
    meas.mkdir(exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    paths, notes = simulate_demo_measurements(meas, size=size, quick=quick, seed=seed, log=log)
    if not paths:
        raise RuntimeError("no forward model could be simulated: " + "; ".join(notes))
    iterations = 5 if quick else None  # None: the solvers' tuned defaults
    # the coordinate network runs with the CPU-sized defaults of recon/solvers/defaults.py
    prior_options = {"coordinate": {"n_steps": 20}} if quick else {}
    notes.append("coordinate network: the CPU-sized defaults (128x3 MLP, 300 steps, bf16 where native; "
                 "`recon run --solver coordinate --help-options` lists the quality setting)")
    notes.append(f"measurements are in {meas}/ (each file records the equivalent `recon simulate` command)")
    res = compare_files(paths, priors=list(priors), out=out, iterations=iterations, workers=workers, seed=seed,
                        command=command, progress=True, title="recon demo: every prior on every forward model",
                        extra_notes=notes, prior_options=prior_options)
    log(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return res


__all__ = ["DEMO_PRIORS", "run_demo", "simulate_demo_measurements"]
