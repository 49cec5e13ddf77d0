"""Train a denoiser on a folder of images: ``python -m priors.train --arch drunet --out checkpoints/drunet``.

Patches are drawn from the training folder with flips/rotations and small
random affine warps; noise levels are sampled uniformly in
``[sigma_min, sigma_max]`` (blind or noise-conditioned training) or fixed.
Adam with linear warm-up and cosine decay; checkpoints (``last.pt``, written
atomically, holding model, optimiser, schedule and RNG states) allow exact
resume; the checkpoint with the best PSNR on a few held-out *training*
images is kept as ``best.pt`` (with ``--ema``, the exponential moving average
of the weights is what is judged and kept).  Data-parallel over processes with
``torchrun --nproc-per-node N -m priors.train ...`` (gloo on CPU, NCCL on
CUDA).  ``--test-folder`` runs the shared evaluation protocol at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .data import PatchSampler, list_images, read_gray
from .evaluate import evaluate_denoiser, psnr
from .models import build_model
from .nn import freeze_batchnorm


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` of ``obj`` to ``path`` through the one atomic writer (``forward_models.atomic``)."""
    import io

    from forward_models.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class WeightEMA:
    """Exponential moving average of a model's weights (Polyak-Ruppert averaging).

    After every optimiser step ``shadow = decay * shadow + (1 - decay) * weights`` for every
    floating-point tensor of the state dict (parameters and BatchNorm statistics); integer
    buffers (BatchNorm's batch counter) are copied.  The average of the last ~1/(1 - decay)
    steps is smoother than the last iterate, which a noisy low-learning-rate phase of
    training otherwise ends on.  The shadow is float32 whatever the training precision.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained; the shadow starts as a copy of its weights.
    decay : float
        In (0, 1); 0.999 averages over roughly the last thousand steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: (v.detach().float().clone() if v.is_floating_point() else v.detach().clone())
                       for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average."""
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if s.is_floating_point():
                s.lerp_(v.detach().float(), 1.0 - self.decay)
            else:
                s.copy_(v)

    def load(self, shadow: dict) -> None:
        """Restore a shadow saved in a checkpoint (exact resume)."""
        if set(shadow) != set(self.shadow):
            raise ValueError("the checkpoint's weight average does not match the model's state dict")
        for k, v in shadow.items():
            self.shadow[k].copy_(v)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """Temporarily load the averaged weights into ``model`` (evaluation, ``best.pt``)."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="drunet", help="drunet, dncnn or dnresnet")
    p.add_argument("--channels", default="32,64,128,256", help="DRUNet channels per scale")
    p.add_argument("--blocks", type=int, default=2, help="DRUNet residual blocks per scale / DN-ResNet blocks")
    p.add_argument("--depth", type=int, default=17, help="DnCNN depth")
    p.add_argument("--width", type=int, default=64, help="DnCNN / DN-ResNet feature channels")
    p.add_argument("--activation", default="relu")
    p.add_argument("--norm", default=None, help="normalisation (default: the architecture's own)")
    p.add_argument("--merge", default="add")
    p.add_argument("--conditioning", default="channel", help="DRUNet: channel, embedding or both")
    p.add_argument("--residual", action="store_true", help="DRUNet: predict the noise (x - net(x))")
    p.add_argument("--blind", action="store_true", help="DnCNN/DN-ResNet: no noise-level input")
    p.add_argument("--train-folder", default="../shared/data/train400")
    p.add_argument("--holdout", type=int, default=8, help="last N training images kept for checkpoint selection")
    p.add_argument("--test-folder", default=None, help="final evaluation folder (shared protocol)")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch", type=int, default=16, help="patches per step and process")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--lr-min", type=float, default=1e-5)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--loss", choices=("l1", "l2"), default="l1")
    p.add_argument("--sigma-min", type=float, default=0.0, help="in 1/255 units")
    p.add_argument("--sigma-max", type=float, default=50.0, help="in 1/255 units")
    p.add_argument("--affine-prob", type=float, default=0.2)
    p.add_argument("--ema", type=float, default=0.0,
                   help="decay of an exponential moving average of the weights (e.g. 0.999); when set, the "
                        "held-out evaluation and best.pt use the averaged weights (0: off)")
    p.add_argument("--freeze-bn-at", type=float, default=0.9, help="fraction of steps after which BN is frozen")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of training: the cosine schedule (and the BatchNorm freeze) follow the larger "
                        "of the step and the elapsed-time fraction, and training stops when the time is up; "
                        "for fixed-length runs on borrowed hardware (the step count it reaches depends on the "
                        "machine, so such a run is not step-for-step reproducible)")
    p.add_argument("--amp", choices=("none", "bf16"), default="none",
                   help="bf16: autocast the forward pass to bfloat16 (weights and optimiser stay float32)")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout (faster convolutions on recent GPUs)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop (with a checkpoint) at this step without changing the schedule; resume later")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="checkpoint folder (resumes from last.pt when present)")
    p.add_argument("--init-from", default=None,
                   help="fine-tune: start a new run (fresh optimizer and schedule) from the model weights of "
                        "another run's checkpoint (same architecture and config); ignored when --out has last.pt")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def model_config(a: argparse.Namespace) -> dict:
    """Architecture keyword arguments from the options."""
    smax = a.sigma_max / 255.0
    if a.arch == "drunet":
        cfg = dict(channels=[int(c) for c in a.channels.split(",")], n_blocks=a.blocks, activation=a.activation,
                   merge=a.merge, conditioning=a.conditioning, norm=a.norm or "none", residual=a.residual)
    elif a.arch == "dncnn":
        cfg = dict(depth=a.depth, width=a.width, activation=a.activation, norm=a.norm or "batch",
                   noise_input=not a.blind)
    elif a.arch == "dnresnet":
        cfg = dict(n_blocks=a.blocks, width=a.width, activation=a.activation, norm=a.norm or "none",
                   noise_input=not a.blind)
    else:
        raise ValueError(f"--arch must be drunet, dncnn or dnresnet, got {a.arch!r}")
    cfg["sigma_range"] = [a.sigma_min / 255.0, smax]
    return cfg


def _same_model(ck: dict, arch: str, cfg: dict) -> bool:
    """Whether checkpoint ``ck`` holds a model of architecture ``arch`` built with ``cfg``."""
    return ck.get("arch") == arch and json.loads(ck["config"]) == json.loads(json.dumps(cfg))


def _time_fraction(a: argparse.Namespace, elapsed_s: float) -> float:
    """Fraction of ``--time-budget`` used, in [0, 1] (0 without a budget)."""
    budget = getattr(a, "time_budget", None)
    return min(1.0, elapsed_s / (60.0 * budget)) if budget else 0.0


def progress(step: int, a: argparse.Namespace, elapsed_s: float = 0.0) -> float:
    """Fraction of the run done, in [0, 1]: of ``steps``, or of ``time_budget`` if that is further along."""
    return max(min(1.0, step / max(1, a.steps)), _time_fraction(a, elapsed_s))


def lr_at(step: int, a: argparse.Namespace, elapsed_s: float = 0.0) -> float:
    """Linear warm-up then cosine decay from ``lr`` to ``lr_min`` at ``steps`` (or at the time budget)."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = max(min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup)), _time_fraction(a, elapsed_s))
    return a.lr_min + 0.5 * (a.lr - a.lr_min) * (1 + math.cos(math.pi * t))


@torch.no_grad()
def validate(model, images: list[np.ndarray], device, sigma255: float = 25.0) -> float:
    """Mean PSNR on held-out training images at a fixed noise level with fixed seeds."""
    model.eval()
    vals = []
    for i, x in enumerate(images):
        rng = np.random.default_rng(10_000 + i)
        y = x + sigma255 / 255.0 * rng.standard_normal(x.shape)
        est = model(torch.from_numpy(y.astype(np.float32))[None, None].to(device), sigma255 / 255.0)
        vals.append(psnr(np.clip(est[0, 0].double().cpu().numpy(), 0, 1), x))
    model.train()
    return float(np.mean(vals))


def main(argv=None) -> int:  # noqa: C901 - a training loop reads best in one place
    """Train; returns a process exit code."""
    a = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.ckpt_every < 1:
        raise ValueError(f"--ckpt-every must be >= 1, got {a.ckpt_every}")
    if a.time_budget is not None and a.time_budget <= 0:
        raise ValueError(f"--time-budget must be > 0 minutes, got {a.time_budget}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    files = list_images(a.train_folder)
    if a.holdout >= len(files):
        raise ValueError(f"--holdout {a.holdout} leaves no training images in {a.train_folder}")
    train_files, held = (files[: len(files) - a.holdout], files[len(files) - a.holdout :]) if a.holdout else (files, [])
    train_imgs = [read_gray(f) for f in train_files]
    held_imgs = [read_gray(f) for f in held]

    torch.manual_seed(a.seed)
    cfg = model_config(a)
    model = build_model(a.arch, **cfg).to(device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    ema = None  # created once the starting weights are known (fresh, resumed or --init-from)
    gen = torch.Generator().manual_seed(a.seed * 1000 + rank)
    noise_gen = torch.Generator(device=device).manual_seed(a.seed * 1000 + 500 + rank)
    step, best, history, elapsed0 = 0, -float("inf"), [], 0.0
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=True)
        if not _same_model(ck, a.arch, cfg):
            raise ValueError(f"{last} was trained with another architecture/config; use a new --out")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best = int(ck["step"]), float(ck["best"])
        history = json.loads(ck["history"])
        elapsed0 = float(ck.get("elapsed_s", 0.0))
        if len(ck["gen"]) != world:
            raise ValueError(f"{last} was written by {len(ck['gen'])} process(es); resume with the same number "
                             f"(now {world}) so the random streams continue exactly")
        gen.set_state(ck["gen"][rank] if world > 1 else ck["gen"][0])
        noise_gen.set_state(ck["noise_gen"][rank] if world > 1 else ck["noise_gen"][0])
        if a.ema:
            if "ema" not in ck:
                raise ValueError(f"{last} was trained without --ema; resume without it or use a new --out")
            ema = WeightEMA(model, a.ema)
            ema.load(ck["ema"])
        if rank == 0:
            print(f"resumed from {last} at step {step} (best held-out PSNR {best:.2f} dB)", flush=True)
    elif a.init_from:
        src = Path(a.init_from)
        if not src.is_file():
            raise ValueError(f"--init-from {src}: no such checkpoint file")
        ck = torch.load(src, map_location=device, weights_only=True)
        if not _same_model(ck, a.arch, cfg):
            raise ValueError(f"--init-from {src}: trained with another architecture/config than the options given")
        model.load_state_dict(ck["model"])
        if rank == 0:
            print(f"initialised from {src} (its step {int(ck.get('step', 0))}); new schedule of {a.steps} steps",
                  flush=True)
    if a.ema and ema is None:
        ema = WeightEMA(model, a.ema)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    sampler = PatchSampler(train_imgs, a.patch, affine_prob=a.affine_prob, generator=gen, device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if a.amp == "bf16" else contextlib.nullcontext()

    stop = {"now": False}

    def _handle(signum, frame):  # finish the step, checkpoint, exit
        stop["now"] = True

    old_handlers = {}
    for sig_num in (signal.SIGTERM, signal.SIGINT):
        try:  # only the main thread may install handlers; restored at the end for in-process callers
            old_handlers[sig_num] = signal.signal(sig_num, _handle)
        except ValueError:
            pass

    def checkpoint():
        gens = [gen.get_state()]
        ngens = [noise_gen.get_state().cpu()]
        if world > 1:
            gens_all = [None] * world
            ngens_all = [None] * world
            dist.all_gather_object(gens_all, gens[0])
            dist.all_gather_object(ngens_all, ngens[0])
            gens, ngens = gens_all, ngens_all
        if rank == 0:
            atomic_save(dict(arch=a.arch, config=json.dumps(cfg), model=model.state_dict(),
                              optimizer=opt.state_dict(), step=step, best=best, history=json.dumps(history),
                              gen=gens, noise_gen=ngens, elapsed_s=elapsed(),
                              **({"ema": ema.shadow} if ema is not None else {})), last)

    use_bar = rank == 0 and not a.no_progress and sys.stderr.isatty()
    bar = None
    if use_bar:
        from tqdm import tqdm

        bar = tqdm(total=a.steps, initial=step, desc=f"train {a.arch}")
    def validate_and_keep_best(best: float) -> float:
        """Held-out PSNR now; ``best.pt`` if it is the best so far.  Returns the new best."""
        with ema.applied(model) if ema is not None else contextlib.nullcontext():
            v = validate(model, held_imgs, device)
            improved = v > best
            if improved:
                atomic_save(dict(arch=a.arch, config=json.dumps(cfg), model=model.state_dict(), step=step,
                                  val_psnr25=v, **({"ema_decay": a.ema} if ema is not None else {})),
                             out / "best.pt")
        if frozen:  # validate() ends with model.train(), which unfreezes BatchNorm statistics
            freeze_batchnorm(model)
        history.append(dict(step=step, loss=float(running), val_psnr25=v, minutes=now / 60,
                            lr=lr_at(step, a, now)))
        msg = f"step {step}: loss {float(running):.5f} held-out PSNR(25) {v:.2f} dB ({now / 60:.1f} min)"
        if improved:
            best = v
            msg += " (best)"
        print(msg, flush=True)
        return best

    t_start = time.time()

    def elapsed() -> float:  # seconds of training in this and earlier (resumed) runs
        return elapsed0 + time.time() - t_start

    running = torch.zeros((), device=device)  # kept on the device: no synchronisation per step
    now = elapsed()
    model.train()
    frozen = False
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    while step < a.steps and not stop["now"]:
        if has_bn and not frozen and progress(step, a, now) >= a.freeze_bn_at:
            freeze_batchnorm(model)
            frozen = True
            if world > 1:
                # DDP's reducer expects a gradient for every parameter it was built with; rebuild it
                # now that the BatchNorm parameters no longer require one.
                ddp = torch.nn.parallel.DistributedDataParallel(model)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, a, now)
        x = sampler.sample(a.batch).to(device)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        sig = (a.sigma_min + (a.sigma_max - a.sigma_min) * torch.rand(a.batch, device=device, generator=noise_gen)) / 255
        noise = torch.randn(x.shape, device=device, generator=noise_gen) * sig[:, None, None, None]
        with amp:
            est = ddp(x + noise, sig)
        est = est.float()
        loss = F.l1_loss(est, x) if a.loss == "l1" else F.mse_loss(est, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model)
        step += 1
        running = 0.98 * running + 0.02 * loss.detach() if step > 1 else loss.detach().clone()
        now = elapsed()
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{float(running):.4f}", lr=f"{lr_at(step, a, now):.1e}")
        if a.eval_every and step % a.eval_every == 0 and rank == 0 and held_imgs:
            best = validate_and_keep_best(best)
        if world > 1 and a.eval_every and step % a.eval_every == 0:
            dist.barrier()
        if step % a.ckpt_every == 0:
            checkpoint()
        if a.max_minutes and (time.time() - t_start) / 60 > a.max_minutes:
            stop["now"] = True
        if _time_fraction(a, now) >= 1.0:
            stop["now"] = True
        if a.stop_at is not None and step >= a.stop_at:
            stop["now"] = True
        if world > 1:
            # One stop decision and one clock for all ranks: a time-based schedule must give every
            # rank the same learning rate or the replicas drift apart.
            flag = torch.tensor([1.0 if stop["now"] else 0.0, now], dtype=torch.float64)
            if device.type == "cuda":
                flag = flag.to(device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop["now"], now = bool(flag[0].item() > 0), float(flag[1].item())
    finished = step >= a.steps or _time_fraction(a, now) >= 1.0
    if finished and rank == 0 and held_imgs and a.eval_every and step % a.eval_every:
        best = validate_and_keep_best(best)  # a time budget ends between evaluations: judge the final weights
    checkpoint()
    if bar is not None:
        bar.close()
    if rank == 0 and a.test_folder and finished:
        best_path = out / "best.pt"
        if best_path.exists():
            model.load_state_dict(torch.load(best_path, map_location=device, weights_only=True)["model"])
        for s in (15, 25, 50):
            r = evaluate_denoiser(model, a.test_folder, s, device=str(device))
            print(f"test sigma={s}: mean PSNR {r['mean_psnr']:.2f} dB", flush=True)
    if world > 1:
        # Every rank must be past its last collective before any tears the group down: a rank that
        # destroys its gloo context while the other still talks to it aborted ("terminate called
        # without an active exception") once in a loaded CI run.
        dist.barrier()
        dist.destroy_process_group()
    for sig_num, handler in old_handlers.items():
        signal.signal(sig_num, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
