"""Operator-adapted denoisers: fine-tune a learned denoiser on the inputs it meets inside a solver.

A Gaussian denoiser used as a plug-and-play prior is called, at iteration ``k``, on an iterate
``z_k`` (``x_k + u_k`` in PnP-ADMM) whose error is not white Gaussian noise of level ``σ_k``: in
sparse-view CT it is streaks along the missing view angles, content of the operator's null space
that the data never correct.  A denoiser trained on Gaussian noise keeps much of it as "texture".
(On 8 Train400 CT problems, 60 views, PnP-ADMM with the Gaussian DRUNet reached 28.75 dB with 1% noise
and only 29.08 dB with noise-free data, where a weaker final denoiser made it worse, 28.43 dB: the
missing views, not the noise, limit it.)
Iterate-adapted training records the pairs ``(z_k, σ_k) → truth`` from the solver's own runs on
training images and fine-tunes the network on them.  With ``rounds > 1`` each later round records
the iterates of the denoiser adapted so far (on its own share of the training images) and trains on
all pairs recorded (DAgger-style data aggregation), so the training inputs follow what the adapted
denoiser itself produces in the loop.

The result is a prior for one forward model and noise regime (the sidecar records which); the
solver and its data-consistency step are unchanged.  Python API::

    pairs = collect_pairs(denoiser, problems, solver="pnp-admm", **params)
    fine_tune(model, pairs, steps=2000)

and the command line, for sparse-view CT on Train400::

    python -m recon.adapt --out checkpoints/drunet_ct --views 60 --noise 0.01 --rounds 3 \
        --option lam_per_sigma2=0.6 --option denoiser_sigma_end=0.1

(the recipe of the shipped ``drunet-ct``'s first phase; a second round from it at the benchmark's
256x256, ``--prior drunet-ct --size 256 --train-images 8:136 --rounds 1 --steps 1500``, followed; its
sidecar holds both commands; ``--pad-to 256`` mirror-pads the 180-pixel images to the benchmark's
size instead of upsampling them, which keeps their pixel statistics; one round of it from the shipped
weights made the held-out problems worse, ``recon/solvers/defaults.py``).  Started again with
the same ``--out``, a stopped run reads back the pairs of the rounds it recorded (refusing pairs of other
options) and resumes the fine-tuning from its checkpoints.

What it gains is measured in ``recon/solvers/defaults.py`` (entries of ``"drunet-ct"``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .options import parse_options

AUGMENTS = ("dihedral", "none")


class IterateRecorder:
    """Wrap a denoiser and keep every input it is called on (CPU, float16) with its noise level.

    Forwards ``sigma_range`` and ``name`` so solvers clamp and look up defaults as for the
    wrapped denoiser.
    """

    def __init__(self, denoiser):
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
        from priors.base import denoiser_name

        self.denoiser = denoiser
        self.name = denoiser_name(denoiser)
        if hasattr(denoiser, "sigma_range"):
            self.sigma_range = tuple(denoiser.sigma_range)
        self.inputs: list[torch.Tensor] = []
        self.sigmas: list[float] = []

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = float(sigma) if not isinstance(sigma, torch.Tensor) else float(sigma.reshape(-1)[0])
        self.inputs.append(x.detach().to("cpu", torch.float16).clone())
        self.sigmas.append(s)
        return self.denoiser(x, sigma)


@dataclass
class IteratePairs:
    """Training pairs: ``inputs`` (N, C, H, W) float16, ``sigmas`` (N,) float32 in image units,
    ``targets`` (N, C, H, W) float16.  All images of one set share a shape."""

    inputs: torch.Tensor
    sigmas: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __add__(self, other: "IteratePairs") -> "IteratePairs":
        return IteratePairs(torch.cat([self.inputs, other.inputs]), torch.cat([self.sigmas, other.sigmas]),
                            torch.cat([self.targets, other.targets]))


def save_pairs(pairs: IteratePairs, path, *, key: dict | None = None) -> None:
    """Write ``pairs`` to a safetensors file (atomically), with ``key`` (JSON-able: what produced them)."""
    from safetensors.torch import save

    from priors.weights import atomic_write_bytes

    data = save({"inputs": pairs.inputs.contiguous(), "sigmas": pairs.sigmas.contiguous(),
                 "targets": pairs.targets.contiguous()}, metadata={"key": json.dumps(key or {}, sort_keys=True)})
    atomic_write_bytes(Path(path), data)


def load_pairs(path, *, key: dict | None = None) -> IteratePairs:
    """Read pairs written by :func:`save_pairs`; ``key`` given: it must equal the stored one (else
    ``ValueError`` naming the file), so pairs of other options are never reused."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = json.loads((f.metadata() or {}).get("key", "{}"))
            t = {k: f.get_tensor(k) for k in ("inputs", "sigmas", "targets")}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: not a readable pairs file ({err}); delete it to record again") from err
    if key is not None and stored != json.loads(json.dumps(key, sort_keys=True)):
        raise ValueError(f"{path} holds pairs recorded with other options ({stored}); use another --out "
                         f"or delete it")
    return IteratePairs(t["inputs"], t["sigmas"], t["targets"])


def collect_pairs(denoiser, problems, *, solver: str = "pnp-admm", every: int = 2, **params) -> IteratePairs:
    """Run ``solver`` with ``denoiser`` on each problem and record the denoiser's inputs.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, sigma)`` (the prior being adapted).
    problems : iterable of (A, truth, y, noise_sigma)
        ``truth`` of shape (1, C, H, W) in image units, ``y = A truth + noise`` of shape
        (1, *A.out_shape), ``noise_sigma`` the measurement noise level (units of ``y``).
    solver : str
        A registered solver with a prior (:data:`recon.solvers.SOLVERS`).
    every : int
        Keep every ``every``-th call (the first and the last are always kept): successive iterates
        are alike, so fewer pairs cost little.
    **params
        The solver's hyper-parameters (its tuned defaults for the operator fill the rest).

    Returns
    -------
    IteratePairs
    """
    from .solvers import get_solver

    spec = get_solver(solver)
    if not spec.needs_prior:
        raise ValueError(f"solver {solver!r} uses no denoiser; choose one of the plug-and-play solvers")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    ins, sig, tgt = [], [], []
    for A, truth, y, noise_sigma in problems:
        if truth.ndim != 4 or truth.shape[0] != 1:
            raise ValueError(f"problems: truth must have shape (1, C, H, W), got {tuple(truth.shape)}")
        rec = IterateRecorder(denoiser)
        spec.run(A, y, prior=rec, sigma=float(noise_sigma), progress=False, **params)
        n = len(rec.inputs)
        keep = sorted(set(range(0, n, every)) | {n - 1}) if n else []
        for k in keep:
            ins.append(rec.inputs[k])
            sig.append(rec.sigmas[k])
            tgt.append(truth.detach().to("cpu", torch.float16))
    if not ins:
        raise ValueError("problems: no denoiser calls were recorded (empty problem list?)")
    return IteratePairs(torch.cat(ins), torch.tensor(sig, dtype=torch.float32), torch.cat(tgt))


def _augment(z: torch.Tensor, t: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k``-th (0-7) of the 8 flips / transposes, applied to both tensors."""
    if k & 1:
        z, t = z.flip(-1), t.flip(-1)
    if k & 2:
        z, t = z.flip(-2), t.flip(-2)
    if k & 4:
        z, t = z.transpose(-1, -2), t.transpose(-1, -2)
    return z, t


def fine_tune(model: torch.nn.Module, pairs: IteratePairs, *, steps: int, lr: float = 1e-4, lr_min: float = 1e-6,
              patch: int = 128, batch: int = 6, augment: str = "dihedral", seed: int = 0, checkpoint=None,
              ckpt_every: int = 100, stop_at: int | None = None, time_budget: float | None = None,
              amp: str = "none", log=print) -> list[dict]:
    """Fine-tune ``model`` (in place, float32) to map ``(input, sigma)`` to the target: L1 loss, Adam,
    cosine learning rate from ``lr`` to ``lr_min``, random ``patch`` crops.

    Parameters
    ----------
    model : nn.Module
        ``model(x, sigma)`` with ``sigma`` a (B,) tensor.
    pairs : IteratePairs
    steps : int
        Optimiser steps.
    augment : {"dihedral", "none"}
        Random flips/transposes of input and target together.  Only for operators whose
        artifacts keep their statistics under them (parallel-beam CT over [0, π) with a view count
        divisible by 2: the angle set maps onto itself); ``"none"`` otherwise.
    checkpoint : path, optional
        ``.pt`` file written atomically every ``ckpt_every`` steps and read at the start, so a
        killed run resumes where it stopped (same pairs and options).
    stop_at : int, optional
        Stop after this step (with a checkpoint) without changing the schedule; call again to go on.
    time_budget : float, optional
        Wall-clock seconds of training: the cosine schedule follows ``max(step / steps, elapsed /
        time_budget)`` and training ends when that reaches 1, so a run on unknown hardware finishes on
        time with a completed schedule (pass a large ``steps``).  The elapsed time is kept in the
        checkpoint, so a resumed run goes on with the schedule where it stopped (not bit-exact: the
        steps done per second differ between runs).
    amp : {"none", "bf16"}
        ``"bf16"``: forward and backward passes under bfloat16 autocast (about twice as fast on GPUs
        with bf16 tensor cores; the weights and the optimiser stay float32).
    log : callable
        Gets one progress line every 100 steps.

    Returns
    -------
    list of dict
        ``{"step", "loss"}`` every 100 steps (running mean of the loss).
    """
    from priors.train import atomic_save

    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    h, w = pairs.inputs.shape[-2:]
    if patch > min(h, w):
        raise ValueError(f"patch {patch} is larger than the pair images ({h}x{w})")
    if not (lr > 0 and lr_min >= 0):
        raise ValueError(f"lr must be > 0 and lr_min >= 0, got {lr}, {lr_min}")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget must be > 0 seconds, got {time_budget!r}")
    if amp not in ("none", "bf16"):
        raise ValueError(f"amp must be 'none' or 'bf16', got {amp!r}")
    dev = next(model.parameters()).device
    # the pairs live where the model does (one copy; crops are then cut on the device)
    src_in, src_tgt, src_sig = (pairs.inputs.to(dev), pairs.targets.to(dev), pairs.sigmas.to(dev))
    model.float().train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    step, history, running, elapsed0 = 0, [], None, 0.0
    ck_path = Path(checkpoint) if checkpoint is not None else None
    if ck_path is not None and ck_path.exists():
        ck = torch.load(ck_path, map_location=dev, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["gen"])
        step, history, running = int(ck["step"]), json.loads(ck["history"]), ck.get("running")
        elapsed0 = float(ck.get("elapsed", 0.0))
        log(f"resumed from {ck_path} at step {step}")
    t0 = time.time()
    elapsed = lambda: elapsed0 + time.time() - t0  # noqa: E731
    progress = lambda: max(step / steps, elapsed() / time_budget if time_budget else 0.0)  # noqa: E731
    end = steps if stop_at is None else min(steps, int(stop_at))
    while step < end and progress() < 1.0:
        frac = min(1.0, progress())
        for grp in opt.param_groups:
            grp["lr"] = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * frac))
        idx = torch.randint(len(pairs), (batch,), generator=gen)
        r = torch.randint(h - patch + 1, (batch,), generator=gen).tolist()
        c = torch.randint(w - patch + 1, (batch,), generator=gen).tolist()
        crops = list(zip(idx.tolist(), r, c))
        z = torch.stack([src_in[i, :, a:a + patch, b:b + patch] for i, a, b in crops])
        t = torch.stack([src_tgt[i, :, a:a + patch, b:b + patch] for i, a, b in crops])
        if augment == "dihedral":
            z, t = _augment(z, t, int(torch.randint(8, (1,), generator=gen)))
        z, t = z.float(), t.float()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(z, src_sig[idx.to(dev)])
        loss = F.l1_loss(out.float(), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        # the running loss stays a device tensor (a float() per step would make the CPU wait for the GPU)
        lv = loss.detach()
        running = lv if running is None else 0.98 * running + 0.02 * lv
        done = step == end or progress() >= 1.0
        if step % 100 == 0 or step == steps or done:
            running = float(running)
            history.append(dict(step=step, loss=running))
            log(f"step {step}/{steps}: loss {running:.5f} ({time.time() - t0:.0f} s)")
        if ck_path is not None and (step % ckpt_every == 0 or done):
            atomic_save(dict(model=model.state_dict(), optimizer=opt.state_dict(), gen=gen.get_state(), step=step,
                              history=json.dumps(history), running=float(running), elapsed=elapsed()), ck_path)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return history


# ---------------------------------------------------------------------------------- command line
def ct_problems(images, *, views: int, noise: float, seed: int, device=None):
    """Sparse-view CT problems ``(A, truth, y, sigma)``: ``views`` angles over [0, π), Gaussian noise of
    standard deviation ``noise`` times the clean sinogram's maximum (the benchmark's protocol).

    The problems are drawn on the CPU (the same noise on every device), then moved to ``device``."""
    from forward_models.radon import Radon

    ops: dict = {}
    out = []
    for i, img in enumerate(images):
        shape = tuple(img.shape)
        if shape not in ops:
            ops[shape] = Radon(shape, np.linspace(0, np.pi, views, endpoint=False))
        A = ops[shape]
        x = torch.from_numpy(np.asarray(img, dtype=np.float32))[None, None]
        y0 = A(x)
        s = noise * float(y0.max())
        g = torch.Generator().manual_seed(seed + i)
        out.append((A, x, y0 + s * torch.randn(y0.shape, generator=g), s))
    if device is not None:
        moved = {id(op): op.to(device) for op in ops.values()}
        out = [(moved[id(A)], x.to(device), y.to(device), s) for A, x, y, s in out]
    return out


def mean_psnr(denoiser, problems, *, solver: str, **params) -> float:
    """Mean PSNR (dB, clipped to [0, 1]) of ``solver`` with ``denoiser`` over ``problems``."""
    from .metrics import psnr
    from .solvers import get_solver

    vals = []
    for A, truth, y, s in problems:
        x, _ = get_solver(solver).run(A, y, prior=denoiser, sigma=float(s), progress=False, **params)
        vals.append(float(psnr(x.clamp(0, 1), truth, data_range=1.0)))
    return float(np.mean(vals))


def _index_range(text: str, n: int) -> list[int]:
    try:
        a, b = (int(v) if v else None for v in text.split(":"))
    except ValueError:
        raise ValueError(f"expected START:STOP (e.g. 8:392), got {text!r}") from None
    return list(range(n))[slice(a, b)]


def pad_or_crop(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` (H, W) mirror-padded (``numpy.pad`` mode "symmetric") or centre-cropped to ``(size, size)``.

    Padding keeps the image's own pixel statistics (unlike resizing) while making the object
    ``size`` pixels across, which is what sets the streak pattern of a sparse-view scan.
    """
    out = img
    widths = []
    for axis in (0, 1):
        n = out.shape[axis]
        if n > size:
            start = (n - size) // 2
            out = np.take(out, np.arange(start, start + size), axis=axis)
        widths.append(((size - n) // 2, size - n - (size - n) // 2) if n < size else (0, 0))
    # "symmetric" repeats the edge pixel (no new edge at the seam); numpy reflects again where a
    # pad is wider than the image
    return np.pad(out, widths, mode="symmetric")


def mosaic(images: list[np.ndarray], size: int, rng: np.random.Generator, *, first: int = 0) -> np.ndarray:
    """A ``(size, size)`` image tiled from four crops of ``images`` at their native pixel scale.

    A 2x2 mosaic split at a random point in the middle third, each tile a random crop (randomly
    flipped) of one of the images, the first tile from ``images[first]``.  The point: a training
    object ``size`` pixels across whose detail is as fine as the images' own (resizing 180-pixel
    Train400 images to 256 smooths them, and mirror padding adds mirror-symmetric content).

    Parameters
    ----------
    images : list of ndarray (H, W)
        Source images in [0, 1], each at least ``2 size / 3`` pixels on both sides.
    size : int
        Side of the mosaic in pixels.
    rng : numpy.random.Generator
        Draws the split point, the tiles' sources, positions and flips.
    first : int
        Index of the image the top-left tile comes from.

    Returns
    -------
    ndarray (size, size), float64
    """
    if size < 3:
        raise ValueError(f"size must be at least 3 pixels, got {size}")
    lo, hi = size // 3, size - size // 3
    need = size - lo
    small = [k for k, im in enumerate(images) if min(im.shape[:2]) < need]
    if small:
        raise ValueError(f"images: a {size}-pixel mosaic needs images of at least {need} pixels a side; "
                         f"image {small[0]} is {images[small[0]].shape}")
    sy, sx = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    out = np.empty((size, size), dtype=np.float64)
    for n, (rows, cols) in enumerate((((0, sy), (0, sx)), ((0, sy), (sx, size)),
                                       ((sy, size), (0, sx)), ((sy, size), (sx, size)))):
        img = images[first] if n == 0 else images[int(rng.integers(len(images)))]
        h, w = rows[1] - rows[0], cols[1] - cols[0]
        i, j = int(rng.integers(img.shape[0] - h + 1)), int(rng.integers(img.shape[1] - w + 1))
        tile = img[i:i + h, j:j + w]
        if rng.integers(2):
            tile = tile[::-1]
        if rng.integers(2):
            tile = tile[:, ::-1]
        out[rows[0]:rows[1], cols[0]:cols[1]] = tile
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True,
                   help="folder for the round checkpoints, each round's recorded pairs (pairs_roundN.safetensors, "
                        "~180 MB per 130 Train400 images; read back when a stopped run is started again) and the "
                        "exported weights")
    p.add_argument("--prior", default="drunet", help="learned denoiser to adapt (shipped weights unless --weights)")
    p.add_argument("--weights", default=None, help="start from these weights instead of the shipped ones")
    p.add_argument("--name", default="drunet-ct", help="name recorded in the exported weights' sidecar")
    p.add_argument("--views", type=int, default=60, help="CT view angles over [0, π)")
    p.add_argument("--noise", type=float, default=0.01, help="noise std relative to the sinogram maximum")
    p.add_argument("--train-folder", default="../shared/data/train400")
    p.add_argument("--train-images", default="8:392", help="START:STOP of the sorted training folder")
    p.add_argument("--size", type=int, default=None,
                   help="resize every image to SIZE x SIZE first (anti-aliased cubic, as the Set12 CT benchmark "
                        "does): the streaks of a view count depend on the image size in pixels")
    p.add_argument("--pad-to", type=int, default=None, metavar="SIZE",
                   help="instead of resizing, mirror-pad every image to SIZE x SIZE (centre-crop a larger one): an "
                        "object of SIZE pixels across with the images' own pixel statistics (upsampling 180-pixel "
                        "Train400 images to 256 makes them smoother than the benchmark's; measured worse than "
                        "--size on the held-out problems, see recon/solvers/defaults.py)")
    p.add_argument("--mosaic", type=float, default=0.0, metavar="SHARE",
                   help="with --size: make this share of the images (every k-th, training and held-out alike) "
                        "2x2 mosaics of native-scale crops of the set's images instead of resized images "
                        "(detail as fine as the benchmark's, see mosaic(); measured worse than --size alone "
                        "on the held-out problems, see recon/solvers/defaults.py)")
    p.add_argument("--eval-images", default="0:8", help="START:STOP judged after each round (not trained on)")
    p.add_argument("--solver", default="pnp-admm")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="solver hyper-parameter while recording and evaluating, as for `recon run` (repeatable; "
                        "default: the solver's CT defaults)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=1200, help="fine-tuning steps per round")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--every", type=int, default=2, help="keep every N-th denoiser call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None, help="torch device for the solver runs and the training (e.g. cuda)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                   help="minutes of fine-tuning per round: the schedule follows the clock and ends on time "
                        "(pass a large --steps); for hardware of unknown speed")
    p.add_argument("--amp", choices=["none", "bf16"], default="none", help="bf16: fine-tune under bfloat16 autocast")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Adapt a denoiser to sparse-view CT; returns a process exit code."""
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.views < 2 or a.views % 2:
        raise ValueError(f"--views must be an even number >= 2 (the dihedral augmentation needs it), got {a.views}")
    if not a.noise > 0:
        raise ValueError(f"--noise must be > 0, got {a.noise}")
    if a.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {a.rounds}")
    if a.size is not None and a.size < 8:
        raise ValueError(f"--size must be at least 8 pixels, got {a.size}")
    if a.pad_to is not None and (a.pad_to < 8 or a.size is not None):
        raise ValueError(f"--pad-to must be at least 8 pixels and not combined with --size, got {a.pad_to}")
    if not 0 <= a.mosaic <= 1:
        raise ValueError(f"--mosaic must be a share in [0, 1], got {a.mosaic}")
    if a.mosaic and a.size is None:
        raise ValueError("--mosaic needs --size (the mosaics' side in pixels)")
    if a.time_budget is not None and not a.time_budget > 0:
        raise ValueError(f"--time-budget must be > 0 minutes, got {a.time_budget}")
    if a.device is not None:
        try:
            dev = torch.device(a.device)
        except RuntimeError as err:
            raise ValueError(f"--device {a.device!r} is not a torch device ({err})") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {a.device!r} requested but CUDA is not available")
    from priors import load_denoiser
    from priors.data import list_images, read_gray, resize_square
    from priors.weights import WEIGHTS_DIR, save_weights, sha256_file

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = list_images(a.train_folder)
    train_idx, eval_idx = _index_range(a.train_images, len(files)), _index_range(a.eval_images, len(files))
    if set(train_idx) & set(eval_idx):
        raise ValueError("--train-images and --eval-images overlap")
    params = parse_options(a.option)

    def read(i):
        img = read_gray(files[i])
        if a.size is not None:
            img = resize_square(img, a.size)
        if a.pad_to is not None:
            img = pad_or_crop(img, a.pad_to)
        return img

    def read_set(indices):
        if not a.mosaic:
            return [read(i) for i in indices]
        # every k-th image a mosaic of native crops of the same set (training and held-out never mix),
        # each from its own seeded generator so that a resumed run builds the same images
        native = [read_gray(files[i]) for i in indices]
        every_k = max(1, round(1 / a.mosaic))
        return [mosaic(native, a.size, np.random.default_rng(7000 + i), first=n) if n % every_k == 0 else read(i)
                for n, i in enumerate(indices)]

    train = ct_problems(read_set(train_idx), views=a.views, noise=a.noise, seed=5000, device=a.device)
    if len(train) < a.rounds:
        raise ValueError(f"--train-images gives {len(train)} images, fewer than --rounds {a.rounds}")
    held = ct_problems(read_set(eval_idx), views=a.views, noise=a.noise, seed=200, device=a.device)
    model = load_denoiser(a.prior, weights=a.weights, device=a.device)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    start_file = Path(a.weights) if a.weights else WEIGHTS_DIR / f"{a.prior}.safetensors"
    record = dict(command="python -m recon.adapt " + " ".join(sys.argv[1:] if argv is None else argv),
                  start_sha256=sha256_file(start_file) if start_file.is_file() else None, views=a.views,
                  noise=a.noise, size=a.size, pad_to=a.pad_to, mosaic=a.mosaic, solver=a.solver, params=params,
                  train_folder=str(a.train_folder),
                  train_images=a.train_images, eval_images=a.eval_images, steps_per_round=a.steps, lr=a.lr,
                  patch=a.patch, batch=a.batch, every=a.every, start=a.weights or f"shipped {a.prior}",
                  time_budget_min=a.time_budget, amp=a.amp, device=str(a.device or "cpu"), rounds=[])
    base = mean_psnr(model, held, solver=a.solver, **params)
    log(f"round 0 (start): held-out PnP PSNR {base:.3f} dB on {len(held)} images")
    pairs = None
    # what a round's pairs depend on: the problems, the solver and the start weights, and from round 2 on
    # the training of the rounds before it; a cached pairs file of other options is refused, not reused
    key = {k: record[k] for k in ("start_sha256", "start", "views", "noise", "size", "pad_to", "mosaic", "solver",
                                  "params", "train_folder", "train_images", "every", "device")}
    key["rounds"] = a.rounds
    training = dict(steps=a.steps, lr=a.lr, patch=a.patch, batch=a.batch, time_budget_min=a.time_budget, amp=a.amp,
                    seed=a.seed)
    budget = 60.0 * a.time_budget if a.time_budget else None
    for r in range(1, a.rounds + 1):
        t0 = time.time()
        cache = out / f"pairs_round{r}.safetensors"
        round_key = dict(key, round=r, training=training if r > 1 else None)
        if cache.exists():
            # a resumed run: the finished rounds' pairs are read back, not recorded again
            new = load_pairs(cache, key=round_key)
            log(f"round {r}: {len(new)} pairs read from {cache}")
        else:
            # each round records on its own share of the images (interleaved): new problems every round
            new = collect_pairs(model, train[r - 1::a.rounds], solver=a.solver, every=a.every, **params)
            save_pairs(new, cache, key=round_key)
        pairs = new if pairs is None else pairs + new
        log(f"round {r}: {len(new)} new pairs ({len(pairs)} in all, {time.time() - t0:.0f} s)")
        hist = fine_tune(model, pairs, steps=a.steps, lr=a.lr, patch=a.patch, batch=a.batch, seed=a.seed + r,
                         checkpoint=out / f"round{r}.pt", time_budget=budget, amp=a.amp, log=log)
        v = mean_psnr(model, held, solver=a.solver, **params)
        record["rounds"].append(dict(round=r, pairs=len(pairs), steps=hist[-1]["step"], final_loss=hist[-1]["loss"],
                                     heldout_psnr=v, minutes=(time.time() - t0) / 60))
        log(f"round {r}: held-out PnP PSNR {v:.3f} dB (start {base:.3f})")
        # exported after every round (atomically), so a run stopped later still leaves the last finished round
        record["heldout_psnr_start"] = base
        dest = out / f"{a.name}.safetensors"
        save_weights(model, dest, name=a.name, training=record)
        log(f"wrote {dest} and its sidecar {dest.with_suffix('.json').name} (round {r} of {a.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
