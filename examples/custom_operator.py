"""Your own forward model in one file: undersampled Cartesian MRI, with the project's solvers, comparison and tests.

The operator below is not part of ``forward_models``: it is written here, as a user would write
theirs, and registered with :func:`forward_models.register`.  With no other file changed it gets

* the **adjoint test** (:func:`forward_models.testing.check_adjoint`), and with ``--registry-tests``
  every property test of ``tests/forward_models/test_registry.py`` (adjoint, dense transpose, norm,
  autograd, prox, HDF5 geometry round trip, dtype conversions, ``torch.func``, bad input, ...), which
  iterate over the registry;
* **measurement files**: ``recon.simulate`` builds a :class:`recon.Measurement` of it and
  ``recon.write_measurement`` / ``recon.load_measurement`` round-trip it (the geometry is rebuilt with
  ``from_geometry`` through the registry);
* **every solver** of ``recon.solvers.SOLVERS`` (CG, TV, PnP-ADMM and HQS with a denoiser, a coordinate
  network, ...) through ``run_solver(name, A, y, ...)``;
* **comparisons**: ``recon.compare`` runs priors on the measurement and writes the report, table,
  figure and HDF5 of results, as ``recon compare`` does.

The model: ``y = M F x`` where ``F`` is the orthonormal 2-D DFT of a real image ``x`` and ``M`` keeps a
set of k-space rows (phase-encoding lines): every line near the centre of k-space and a random
fraction of the others, as in accelerated MRI.  ``y`` is complex.

    python examples/custom_operator.py --out results/custom_operator             # 128x128, 4x, ~a minute
    python examples/custom_operator.py --smoke --out /tmp/custom                  # 32x32, seconds
    python examples/custom_operator.py --registry-tests                           # the registry's tests on it

Outputs in ``--out``: ``mri.h5`` (the measurement), ``custom_operator.png`` (truth, zero-filled and each
solver) and ``compare/`` (``report.md``, ``results.csv``, ``figure.png``, ``results.h5``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import forward_models as fm  # noqa: E402
from forward_models.testing import check_adjoint  # noqa: E402

OUTPUTS = ("mri.h5", "custom_operator.png", "compare/report.md", "compare/results.csv", "compare/figure.png",
           "compare/results.h5")
#: Registry key of the operator (and the ``forward_model`` attribute of its measurement files).
NAME = "mri-cartesian"


# =============================================================================== the forward model
def cartesian_lines(height: int, *, acceleration: float = 4.0, center_fraction: float = 0.08,
                    seed: int = 0) -> list[int]:
    """k-space rows to keep (unshifted DFT indices): the central ``center_fraction`` and random others.

    Parameters
    ----------
    height : int
        Image height (rows of k-space).
    acceleration : float
        ``height / (kept rows)``, approximately (>= 1).
    center_fraction : float
        Fraction of the rows around the zero frequency always kept (the low frequencies carry most
        of the energy).
    seed : int
        Seed of the random rows.
    """
    if height < 2 or not acceleration >= 1 or not 0 < center_fraction <= 1:
        raise ValueError(f"need height >= 2, acceleration >= 1, 0 < center_fraction <= 1; got {height}, "
                         f"{acceleration}, {center_fraction}")
    freqs = np.fft.fftfreq(height) * height  # row k of the unshifted DFT has frequency freqs[k]
    n_center = max(1, int(round(center_fraction * height)))
    center = set(np.argsort(np.abs(freqs), kind="stable")[:n_center].tolist())
    n_keep = max(len(center), int(round(height / acceleration)))
    others = [k for k in range(height) if k not in center]
    rng = np.random.default_rng(seed)
    extra = rng.choice(others, size=min(len(others), n_keep - len(center)), replace=False).tolist()
    return sorted(center | set(extra))


class CartesianMRI(fm.LinearOperator):
    """``A x = M F x``: orthonormal 2-D DFT of a real image, then the kept k-space rows.

    Parameters
    ----------
    image_shape : (int, int)
        Image height and width (pixels).
    lines : sequence of int
        Kept rows of the (unshifted) DFT, each in ``[0, height)``, no repeats.

    Notes
    -----
    Shapes: ``x`` is ``(B, 1, H, W)`` real, ``y`` is ``(B, 1, len(lines), W)`` complex.  The adjoint
    under ``⟨a, b⟩ = Re Σ conj(a) b`` puts ``y`` back on its rows of a zero k-space and applies the
    inverse DFT (the zero-filled reconstruction) and keeps its real part (the unknown is real).  ``F`` is unitary, so ``‖A‖ = 1`` when the zero-frequency row is kept.
    """

    output_complex = True

    def __init__(self, image_shape, lines):
        super().__init__()
        h, w = (int(s) for s in image_shape)
        rows = [int(k) for k in lines]
        if h < 1 or w < 1:
            raise ValueError(f"image_shape must be two positive sizes, got {image_shape!r}")
        if not rows or len(set(rows)) != len(rows) or min(rows) < 0 or max(rows) >= h:
            raise ValueError(f"lines must be distinct rows in [0, {h}), got {lines!r}")
        self.image_shape = (h, w)
        self.in_shape = (1, h, w)
        self.out_shape = (1, len(rows), w)
        # a buffer, so .to(device) moves it with the operator (and state_dict round-trips it)
        self.register_buffer("lines", torch.tensor(rows, dtype=torch.long))

    def _forward(self, x):
        k = torch.fft.fft2(x, norm="ortho")
        return k.index_select(-2, self.buffer_as("lines", x))

    def _adjoint(self, y):
        dtype = torch.complex128 if y.real.dtype == torch.float64 else torch.complex64
        full = torch.zeros((*y.shape[:-2], *self.image_shape), dtype=dtype, device=y.device)
        full = full.index_copy(-2, self.buffer_as("lines", y), y.to(dtype))
        return torch.fft.ifft2(full, norm="ortho").real  # the unknown is real: Re is the adjoint onto it

    def geometry(self):
        # units are strings the files carry; a model's own ("index") is read back as written
        return {"image_shape": (list(self.image_shape), "pixel"), "lines": (self.lines.tolist(), "index")}

    @classmethod
    def from_geometry(cls, g):
        return cls(tuple(int(s) for s in g["image_shape"]), [int(k) for k in np.ravel(g["lines"])])


def _example(dtype=torch.float64):
    """A small instance for the registry's tests (dense checks need a few hundred entries at most)."""
    return CartesianMRI((6, 5), cartesian_lines(6, acceleration=2.0, seed=1))


# One call, at import: the operator now appears wherever the registry is iterated (tests, files, compare).
fm.register(NAME, CartesianMRI, example=_example, tags=("image", "mri"),
            description="undersampled Cartesian MRI (2-D DFT, kept k-space rows)")


# =============================================================================== the demonstration
def run_registry_tests() -> int:
    """The project's registry-driven property tests, collected after this module registered its operator."""
    import pytest

    tests = ROOT / "tests" / "forward_models" / "test_registry.py"
    if not tests.is_file():
        print(f"{tests}: not found (the registry tests live in a checkout of the project)", file=sys.stderr)
        return 2
    # -k mri-cartesian: the tests parametrised by this operator (the others ran in the project's own suite)
    return int(pytest.main(["-q", "-p", "no:cacheprovider", str(tests), "-k", NAME]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="32x32 image, short solver runs (seconds)")
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 128; --smoke 32)")
    p.add_argument("--acceleration", type=float, default=4.0)
    p.add_argument("--noise", type=float, default=0.01, help="noise standard deviation (image values in [0, 1])")
    p.add_argument("--out", default="results/custom_operator", help="output folder")
    p.add_argument("--registry-tests", action="store_true",
                   help="run tests/forward_models/test_registry.py on this operator and exit")
    a = p.parse_args(argv)
    if a.registry_tests:
        return run_registry_tests()
    torch.set_num_threads(1)
    import recon
    from recon.metrics import psnr
    from recon.solvers import run_solver

    sys.path.insert(0, str(ROOT / "examples"))
    from _common import save_figure, smoke_image

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    size = a.size or (32 if a.smoke else 128)
    img = smoke_image(size)
    op = CartesianMRI(img.shape, cartesian_lines(size, acceleration=a.acceleration, seed=0))

    # 1. the adjoint test, the same function the registry's test suite runs on every operator
    err = check_adjoint(op)
    print(f"{NAME}: {op.out_shape[1]} of {size} k-space rows; adjoint test relative error {err:.1e}")

    # 2. a measurement file: simulated, written and read back (the geometry goes through the registry)
    m = recon.simulate(op, img, noise_sigma=a.noise, seed=0)
    recon.write_measurement(out / "mri.h5", m)
    m = recon.load_measurement(out / "mri.h5")
    A = m.operator()
    y = torch.as_tensor(m.y)[None]
    x = torch.as_tensor(m.ground_truth)[None].double()
    print(f"wrote {out / 'mri.h5'}: forward model {m.forward_model!r}, y {tuple(m.y.shape)} {m.y.dtype}")

    # 3. the solvers, called by name
    zero_filled = A.adjoint(y)  # A^H y: the inverse DFT of the zero-filled k-space
    print(f"{'zero-filled':20s} {psnr(zero_filled, x):6.2f} dB")
    panels = [("truth", img), (f"zero-filled {psnr(zero_filled, x):.2f} dB", zero_filled[0, 0].numpy())]
    iters = dict(n_iter=10) if a.smoke else {}
    runs = [("cg", None, {}), ("tv", None, iters), ("pnp-admm", "drunet", iters), ("hqs", "drunet", {})]
    for solver, prior, kw in runs:
        t0 = time.perf_counter()
        est, _ = run_solver(solver, A, y.to(torch.complex64), prior=prior, sigma=a.noise, **kw)
        label = f"{solver} {prior}" if prior else solver
        print(f"{label:20s} {psnr(est.double(), x):6.2f} dB  {time.perf_counter() - t0:5.1f} s")
        panels.append((f"{label} {psnr(est.double(), x):.2f} dB", est[0, 0].clamp(0, 1).numpy()))
    save_figure(panels, out / "custom_operator.png",
                title=f"{NAME}: {size}x{size}, {a.acceleration:g}x undersampled, noise {a.noise:g}")

    # 4. a comparison of priors, as `recon compare` writes it (report.md, results.csv, figure.png, results.h5)
    res = recon.compare([m], priors=["none", "tv", "drunet"], out=out / "compare",
                        iterations=10 if a.smoke else None)
    print(res.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
