"""priors.train: exact resume, BatchNorm freezing, 2-process data-parallel step, schedule and patches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data, io

from priors import train
from priors.data import PatchSampler

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "dncnn": ["--arch", "dncnn", "--depth", "4", "--width", "8", "--freeze-bn-at", "0.5"],
    "drunet": ["--arch", "drunet", "--channels", "4,8", "--blocks", "1", "--residual"],
    "dnresnet": ["--arch", "dnresnet", "--blocks", "1", "--width", "8"],
}


@pytest.fixture(scope="module")
def image_folder():
    """Four 48x48 crops of the camera image: 3 for training, 1 held out.

    A private temporary directory rather than pytest's numbered basetemp, which concurrent
    pytest sessions of the same user may rotate away while the subprocess test runs.
    """
    with tempfile.TemporaryDirectory(prefix="priors-train-") as d:
        folder = Path(d)
        cam = data.camera()
        for i, (r, c) in enumerate([(0, 0), (100, 200), (300, 60), (200, 300)]):
            io.imsave(folder / f"{i:02d}.png", cam[r : r + 48, c : c + 48], check_contrast=False)
        yield folder


def _args(folder, out, arch, *extra):
    return [*TINY[arch], "--train-folder", str(folder), "--holdout", "1", "--patch", "16", "--batch", "4",
            "--steps", "4", "--warmup", "1", "--eval-every", "2", "--ckpt-every", "100", "--affine-prob", "0.5",
            "--out", str(out), "--no-progress", *extra]


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_resume_equals_uninterrupted(image_folder, tmp_path, arch):
    assert train.main(_args(image_folder, tmp_path / "a", arch)) == 0
    assert train.main(_args(image_folder, tmp_path / "b", arch, "--stop-at", "2")) == 0
    assert _load(tmp_path / "b" / "last.pt")["step"] == 2
    assert train.main(_args(image_folder, tmp_path / "b", arch)) == 0
    a, b = _load(tmp_path / "a" / "last.pt"), _load(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for i in sa:
        assert torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"])
    # Held-out selection wrote best.pt at the best of the two validations (steps 2 and 4).
    best = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    history = json.loads(a["history"])
    assert [h["step"] for h in history] == [2, 4]
    assert best["val_psnr25"] == pytest.approx(max(h["val_psnr25"] for h in history)) == a["best"]


def test_batchnorm_frozen_in_final_phase(image_folder, tmp_path):
    # freeze at 0.5 of 4 steps: the last two steps must leave the running statistics untouched.
    train.main(_args(image_folder, tmp_path / "s2", "dncnn", "--stop-at", "2", "--eval-every", "1"))
    mid = _load(tmp_path / "s2" / "last.pt")["model"]
    train.main(_args(image_folder, tmp_path / "s2", "dncnn", "--eval-every", "1"))
    end = _load(tmp_path / "s2" / "last.pt")["model"]
    bn = [k for k in mid if k.endswith("running_mean") or k.endswith("running_var")]
    assert bn
    for k in bn:
        assert torch.equal(mid[k], end[k]), k
    convs = [k for k in mid if k.endswith(".weight") and mid[k].ndim == 4]
    assert any(not torch.equal(mid[k], end[k]) for k in convs)


def test_resume_rejects_other_config(image_folder, tmp_path):
    train.main(_args(image_folder, tmp_path / "c", "dnresnet", "--stop-at", "1", "--eval-every", "0"))
    with pytest.raises(ValueError, match="another architecture"):
        train.main(_args(image_folder, tmp_path / "c", "dnresnet", "--width", "4"))


def test_init_from_starts_a_new_schedule_from_the_weights(image_folder, tmp_path):
    train.main(_args(image_folder, tmp_path / "src", "dnresnet", "--stop-at", "2", "--eval-every", "0"))
    src = _load(tmp_path / "src" / "last.pt")
    # One step at lr 0 (warm-up of 1 step from lr 0) must leave the initial weights exactly as loaded.
    train.main(_args(image_folder, tmp_path / "ft", "dnresnet", "--steps", "1", "--lr", "0", "--lr-min", "0",
                     "--eval-every", "0", "--init-from", str(tmp_path / "src" / "last.pt")))
    ft = _load(tmp_path / "ft" / "last.pt")
    assert ft["step"] == 1
    for k, v in src["model"].items():
        assert torch.equal(v, ft["model"][k]), k
    with pytest.raises(ValueError, match="init-from"):
        train.main(_args(image_folder, tmp_path / "bad", "dnresnet", "--width", "4",
                         "--init-from", str(tmp_path / "src" / "last.pt")))
    with pytest.raises(ValueError, match="no such checkpoint"):
        train.main(_args(image_folder, tmp_path / "bad2", "dnresnet", "--init-from", str(tmp_path / "nope.pt")))


def test_lr_schedule_warmup_and_cosine():
    a = train.parse_args(["--out", "x", "--lr", "1e-3", "--lr-min", "1e-5", "--warmup", "10", "--steps", "110"])
    assert train.lr_at(0, a) == pytest.approx(1e-4)
    assert train.lr_at(9, a) == pytest.approx(1e-3)
    assert train.lr_at(60, a) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert train.lr_at(110, a) == pytest.approx(1e-5)


def test_time_budget_schedule_follows_the_clock():
    """With --time-budget the cosine runs on the larger of the step and the time fraction."""
    a = train.parse_args(["--out", "x", "--lr", "1e-3", "--lr-min", "1e-5", "--warmup", "10", "--steps", "1000000",
                          "--time-budget", "2"])
    assert train.lr_at(50, a, elapsed_s=60.0) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half the time
    assert train.lr_at(50, a, elapsed_s=120.0) == pytest.approx(1e-5)
    assert train.progress(50, a, elapsed_s=30.0) == pytest.approx(0.25)
    a.time_budget = None
    assert train.lr_at(50, a, elapsed_s=120.0) == pytest.approx(1e-3, rel=1e-3)  # the clock is ignored


def test_time_budget_stops_and_bf16_channels_last_train(image_folder, tmp_path):
    """A tiny budget ends the run after a few steps with a checkpoint; bf16 autocast and NHWC run on the CPU."""
    args = _args(image_folder, tmp_path / "t", "drunet", "--steps", "1000000", "--time-budget", "0.002",
                 "--amp", "bf16", "--channels-last")
    assert train.main(args) == 0
    ck = _load(tmp_path / "t" / "last.pt")
    assert 1 <= ck["step"] < 1000000 and ck["elapsed_s"] >= 0.12
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    with pytest.raises(ValueError, match="time-budget"):
        train.main(_args(image_folder, tmp_path / "u", "drunet", "--time-budget", "0"))


def test_patch_sampler_shapes_range_and_seed():
    rng = np.random.default_rng(0)
    imgs = [rng.random((60, 70)) for _ in range(3)]
    s1 = PatchSampler(imgs, 20, affine_prob=0.5, generator=torch.Generator().manual_seed(3)).sample(8)
    s2 = PatchSampler(imgs, 20, affine_prob=0.5, generator=torch.Generator().manual_seed(3)).sample(8)
    assert s1.shape == (8, 1, 20, 20) and s1.dtype == torch.float32
    assert torch.equal(s1, s2)
    assert float(s1.min()) >= -1e-6 and float(s1.max()) <= 1 + 1e-6
    with pytest.raises(ValueError, match="smaller than the patch"):
        PatchSampler(imgs, 64, generator=torch.Generator())
    # Without affine warps no margin is needed: a patch may be the whole image, and is then one of
    # the image's 8 flips/rotations.
    img = rng.random((40, 40))
    full = PatchSampler([img], 40, affine_prob=0.0, generator=torch.Generator().manual_seed(1)).sample(4)
    views = [np.rot90(v, k) for v in (img, img.T) for k in range(4)]
    for p in full[:, 0].numpy():
        assert min(np.abs(p - v).max() for v in views) < 1e-6
    with pytest.raises(ValueError, match="smaller than the patch"):
        PatchSampler([img], 40, affine_prob=0.1, generator=torch.Generator())


def test_ddp_two_cpu_processes(image_folder):
    """torchrun with 2 gloo processes trains, checkpoints both ranks' RNG streams, and resumes."""
    with tempfile.TemporaryDirectory(prefix="priors-ddp-") as d:
        _ddp_run(image_folder, Path(d))


def _ddp_run(image_folder, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "priors.train",
           *_args(image_folder, tmp_path / "ddp", "dncnn", "--steps", "3", "--freeze-bn-at", "0.3",
                  "--eval-every", "1")]
    # Repeated options: argparse keeps the last ones, so BatchNorm freezes at step 1 and two steps run frozen.
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ck = _load(tmp_path / "ddp" / "last.pt")
    assert ck["step"] == 3
    assert len(ck["gen"]) == 2 and not torch.equal(ck["gen"][0], ck["gen"][1])
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    # Resuming with another number of processes is refused with a clear message.
    with pytest.raises(ValueError, match="same number"):
        train.main(_args(image_folder, tmp_path / "ddp", "dncnn", "--steps", "5", "--freeze-bn-at", "0.3"))


def test_weight_ema_follows_the_recursion_and_copies_integer_buffers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    ema = train.WeightEMA(model, 0.75)
    expected = {k: v.clone().double() for k, v in model.state_dict().items()}
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].num_batches_tracked += 5
        ema.update(model)
        for k, v in model.state_dict().items():
            expected[k] = 0.75 * expected[k] + 0.25 * v.double() if v.is_floating_point() else v.clone()
    for k, v in ema.shadow.items():
        if v.is_floating_point():
            torch.testing.assert_close(v.double(), expected[k], rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(v, expected[k]), k
    # applied() swaps the average in and restores the trained weights afterwards.
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied(model):
        assert torch.equal(model[0].weight, ema.shadow["0.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="--ema"):
        train.WeightEMA(model, 1.0)


def test_ema_resume_is_exact_and_best_holds_the_average(image_folder, tmp_path):
    extra = ("--ema", "0.5", "--eval-every", "4")
    assert train.main(_args(image_folder, tmp_path / "a", "drunet", *extra)) == 0
    assert train.main(_args(image_folder, tmp_path / "b", "drunet", *extra, "--stop-at", "2")) == 0
    assert train.main(_args(image_folder, tmp_path / "b", "drunet", *extra)) == 0
    a, b = _load(tmp_path / "a" / "last.pt"), _load(tmp_path / "b" / "last.pt")
    for k, v in a["ema"].items():
        assert torch.equal(v, b["ema"][k]), k
    # The only validation (step 4) judged, and best.pt saved, the averaged weights, not the last iterate.
    best = _load(tmp_path / "a" / "best.pt")
    assert best["ema_decay"] == 0.5
    for k, v in a["ema"].items():
        assert torch.equal(v, best["model"][k]), k
    assert any(not torch.equal(v, best["model"][k]) for k, v in a["model"].items() if v.is_floating_point())
    # A run written without the average cannot silently resume with one.
    train.main(_args(image_folder, tmp_path / "c", "drunet", "--stop-at", "1", "--eval-every", "0"))
    with pytest.raises(ValueError, match="without --ema"):
        train.main(_args(image_folder, tmp_path / "c", "drunet", "--ema", "0.5"))
