"""recon.adapt: recording a solver's denoiser inputs, fine-tuning on them, resume, the CT command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data, io

from priors import load_denoiser
from recon import adapt
from priors.drunet import DRUNet
from priors.weights import save_weights


def _tiny_drunet(seed=0):
    torch.manual_seed(seed)
    return DRUNet(channels=(4, 8), n_blocks=1, residual=True).eval()


def _camera(size=32):
    img = data.camera()[::8, ::8][:size, :size].astype(np.float32) / 255.0
    return img


def test_recorder_passes_through_and_keeps_inputs():
    den = lambda x, s: 0.5 * x  # noqa: E731
    rec = adapt.IterateRecorder(den)
    x = torch.rand(1, 1, 8, 8)
    out = rec(x, torch.tensor([0.1]))
    assert torch.equal(out, 0.5 * x)
    assert rec.sigmas == [pytest.approx(0.1)]
    assert rec.inputs[0].dtype == torch.float16 and torch.allclose(rec.inputs[0].float(), x, atol=1e-3)


def test_collect_pairs_records_every_call_of_pnp_admm():
    img = _camera(16)
    probs = adapt.ct_problems([img], views=8, noise=0.01, seed=1)
    calls = []

    def den(x, s):
        calls.append(float(s))
        return x

    pairs = adapt.collect_pairs(den, probs, solver="pnp-admm", every=2, n_iter=5, lam=1.0, rho=1.0, tol=0.0)
    assert len(calls) == 5
    assert len(pairs) == 3  # calls 0, 2 and 4 (the last)
    assert pairs.sigmas.tolist() == pytest.approx([calls[0], calls[2], calls[4]])
    for k in range(3):
        assert torch.allclose(pairs.targets[k].float(), probs[0][1][0], atol=1e-3)
    with pytest.raises(ValueError, match="uses no denoiser"):
        adapt.collect_pairs(den, probs, solver="cg")
    with pytest.raises(ValueError, match="every"):
        adapt.collect_pairs(den, probs, every=0)


def _toy_pairs(n=6, size=24):
    """Inputs = truth + a fixed stripe pattern: an 'artifact' a Gaussian denoiser would keep."""
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(n, 1, size, size, generator=g) * 0.2 + 0.4
    stripes = 0.2 * torch.sin(torch.arange(size) * 2.0)[None, None, None, :]
    return adapt.IteratePairs((truth + stripes).half(), torch.full((n,), 0.05), truth.half())


def _pair_error(model, pairs):
    with torch.no_grad():
        return float((model(pairs.inputs.float(), pairs.sigmas) - pairs.targets.float()).abs().mean())


def test_fine_tune_learns_the_artifact_and_resumes_exactly(tmp_path):
    pairs = _toy_pairs()
    model = _tiny_drunet()
    before = _pair_error(model, pairs)
    adapt.fine_tune(model, pairs, steps=60, lr=3e-3, patch=16, batch=4, log=lambda m: None)
    assert _pair_error(model, pairs) < 0.5 * before
    assert not any(p.requires_grad for p in model.parameters())

    # a 4-step run against the same schedule stopped after step 2 and resumed from its checkpoint
    a, d = _tiny_drunet(1), _tiny_drunet(1)
    quiet = dict(patch=16, batch=2, log=lambda m: None)
    adapt.fine_tune(a, pairs, steps=4, checkpoint=tmp_path / "a.pt", **quiet)
    adapt.fine_tune(d, pairs, steps=4, checkpoint=tmp_path / "d.pt", stop_at=2, **quiet)
    assert torch.load(tmp_path / "d.pt", weights_only=True)["step"] == 2
    adapt.fine_tune(d, pairs, steps=4, checkpoint=tmp_path / "d.pt", **quiet)
    assert torch.load(tmp_path / "d.pt", weights_only=True)["step"] == 4
    for k, v in a.state_dict().items():
        assert torch.equal(v, d.state_dict()[k]), k


def test_fine_tune_rejects_bad_options():
    pairs = _toy_pairs(2, 16)
    model = _tiny_drunet()
    with pytest.raises(ValueError, match="augment"):
        adapt.fine_tune(model, pairs, steps=1, patch=8, augment="rot45")
    with pytest.raises(ValueError, match="patch 32"):
        adapt.fine_tune(model, pairs, steps=1, patch=32)
    with pytest.raises(ValueError, match="steps"):
        adapt.fine_tune(model, pairs, steps=0, patch=8)
    with pytest.raises(ValueError, match="time_budget"):
        adapt.fine_tune(model, pairs, steps=1, patch=8, time_budget=0)
    with pytest.raises(ValueError, match="amp"):
        adapt.fine_tune(model, pairs, steps=1, patch=8, amp="fp8")


def test_fine_tune_time_budget_ends_the_schedule_on_time(tmp_path):
    # a step count no run reaches: the clock ends it, with the step and the elapsed time checkpointed
    pairs = _toy_pairs()
    model = _tiny_drunet()
    before = [p.clone() for p in model.parameters()]
    hist = adapt.fine_tune(model, pairs, steps=10**9, time_budget=1.0, patch=16, batch=2, amp="bf16",
                           checkpoint=tmp_path / "t.pt", log=lambda m: None)
    ck = torch.load(tmp_path / "t.pt", weights_only=True)
    assert 0 < ck["step"] == hist[-1]["step"] < 10**9
    assert 1.0 <= ck["elapsed"] < 30.0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # bf16 autocast trained it
    # resuming a finished budget does no further step
    adapt.fine_tune(model, pairs, steps=10**9, time_budget=1.0, patch=16, batch=2, checkpoint=tmp_path / "t.pt",
                    log=lambda m: None)
    assert torch.load(tmp_path / "t.pt", weights_only=True)["step"] == ck["step"]


def _tiny_run_args(tmp_path: Path, *extra: str) -> list[str]:
    """The command line of a 2-round adaptation on a folder of three 24x24 camera crops (0-1 trained on,
    2 held out) from tiny start weights, output in ``tmp_path / "out"``; the solver options come last."""
    folder = tmp_path / "train"
    folder.mkdir()
    cam = data.camera()
    for i, (r, c) in enumerate([(0, 0), (100, 200), (300, 60)]):
        io.imsave(folder / f"{i:02d}.png", cam[r:r + 24, c:c + 24], check_contrast=False)
    start = tmp_path / "tiny.safetensors"
    save_weights(_tiny_drunet(), start, dtype="float32")
    return ["--out", str(tmp_path / "out"), "--weights", str(start), "--views", "8", "--train-folder", str(folder),
            "--train-images", "0:2", "--eval-images", "2:3", "--rounds", "2", "--steps", "2", "--patch", "16",
            "--batch", "2", *extra, "--option", "n_iter=3", "--option", "cg_max_iter=2"]


def test_command_line_exports_weights_with_a_record(tmp_path):
    args = _tiny_run_args(tmp_path, "--name", "tiny-ct")
    out = tmp_path / "out"
    assert adapt.main(args) == 0
    with pytest.raises(ValueError, match="overlap"):
        adapt.main(["--out", str(tmp_path / "o2"), "--train-images", "0:2", "--eval-images", "1:3",
                    "--train-folder", str(tmp_path / "train")])
    side = json.loads((out / "tiny-ct.json").read_text())
    assert side["name"] == "tiny-ct"
    rounds = side["training"]["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    # one image per round (interleaved shares of 2), calls 0 and 2 of 3 each, aggregated over the rounds
    assert rounds[1]["pairs"] == 2 * rounds[0]["pairs"] == 2 * 2
    den = load_denoiser("drunet", weights=out / "tiny-ct.safetensors")
    assert den(torch.rand(1, 1, 16, 16), 0.1).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="--views"):
        adapt.main(["--out", str(tmp_path / "o3"), "--views", "7"])
    with pytest.raises(ValueError, match="--time-budget"):
        adapt.main(["--out", str(tmp_path / "o4"), "--time-budget", "-1"])
    with pytest.raises(ValueError, match="--size"):
        adapt.main(["--out", str(tmp_path / "o5"), "--size", "4"])
    with pytest.raises(ValueError, match="--pad-to"):
        adapt.main(["--out", str(tmp_path / "o8"), "--pad-to", "32", "--size", "32"])
    with pytest.raises(ValueError, match="--device 'gpu0' is not a torch device"):
        adapt.main(["--out", str(tmp_path / "o6"), "--device", "gpu0"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device 'cuda'.*CUDA is not available"):
            adapt.main(["--out", str(tmp_path / "o7"), "--device", "cuda"])
    # each round's pairs were kept; they are what the round trained on
    cached = adapt.load_pairs(out / "pairs_round1.safetensors")
    assert len(cached) == rounds[0]["pairs"] and cached.inputs.dtype == torch.float16


def test_pad_or_crop_matches_numpy_symmetric_padding_and_centre_crops():
    rng = np.random.default_rng(0)
    img = rng.random((5, 7))
    # one reflection: numpy's own symmetric padding, centred (the odd extra pixel after)
    np.testing.assert_array_equal(adapt.pad_or_crop(img, 9), np.pad(img, ((2, 2), (1, 1)), mode="symmetric"))
    # pads wider than the image reflect again, as numpy does in one call
    np.testing.assert_array_equal(adapt.pad_or_crop(img, 16), np.pad(img, ((5, 6), (4, 5)), mode="symmetric"))
    np.testing.assert_array_equal(adapt.pad_or_crop(img, 3), img[1:4, 2:5])  # centre crop
    mixed = adapt.pad_or_crop(img, 6)  # rows padded, columns cropped
    np.testing.assert_array_equal(mixed, np.pad(img, ((0, 1), (0, 0)), mode="symmetric")[:, 0:6])


def test_mosaic_tiles_native_crops_of_the_images():
    rng = np.random.default_rng(0)
    images = [rng.random((20, 22)) for _ in range(3)]
    m = adapt.mosaic(images, 24, np.random.default_rng(5), first=1)
    assert m.shape == (24, 24) and m.dtype == np.float64
    # every pixel is one of a source's pixels (crops at native scale, no resampling) ...
    pool = np.concatenate([im.ravel() for im in images])
    assert np.isin(m, pool).all()
    # ... the top-left tile is a (possibly flipped) crop of images[first]: its corner pixel is there
    assert np.isin(m[0, 0], images[1])
    # the same generator state gives the same mosaic; another seed another split or other tiles
    np.testing.assert_array_equal(m, adapt.mosaic(images, 24, np.random.default_rng(5), first=1))
    assert not np.array_equal(m, adapt.mosaic(images, 24, np.random.default_rng(6), first=1))
    # a tile as large as two thirds of the mosaic must fit inside every source
    with pytest.raises(ValueError, match="image 0 is"):
        adapt.mosaic([rng.random((10, 10))], 24, rng)


def test_command_line_mosaic_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="--mosaic needs --size"):
        adapt.main(["--out", str(tmp_path / "o1"), "--mosaic", "0.5"])
    with pytest.raises(ValueError, match="--mosaic must be a share"):
        adapt.main(["--out", str(tmp_path / "o2"), "--mosaic", "2", "--size", "32"])
    # a run with every image a mosaic records pairs of the mosaics' size and notes the share
    assert adapt.main(_tiny_run_args(tmp_path, "--size", "20", "--mosaic", "1")) == 0
    assert adapt.load_pairs(tmp_path / "out" / "pairs_round1.safetensors").inputs.shape[-2:] == (20, 20)
    assert json.loads((tmp_path / "out" / "drunet-ct.json").read_text())["training"]["mosaic"] == 1.0


def test_command_line_resume_reads_the_recorded_pairs(tmp_path, monkeypatch):
    args = _tiny_run_args(tmp_path, "--size", "20", "--device", "cpu")  # problems moved to the device
    out = tmp_path / "out"
    assert adapt.main(args) == 0
    assert adapt.load_pairs(out / "pairs_round1.safetensors").inputs.shape[-2:] == (20, 20)  # --size
    first = (out / "drunet-ct.safetensors").read_bytes()
    # a rerun in the same folder (a resume after the end) records nothing and gives the same weights
    monkeypatch.setattr(adapt, "collect_pairs", lambda *a, **k: pytest.fail("recorded again"))
    assert adapt.main(args) == 0
    assert (out / "drunet-ct.safetensors").read_bytes() == first
    # pairs of other options are refused, not reused: the solver's options for every round, the
    # training options from round 2 on (round 1 records with the start weights, before any training)
    with pytest.raises(ValueError, match="pairs_round1.safetensors.*other options"):
        adapt.main(args[:-1] + ["cg_max_iter=3"])
    more_steps = list(args)
    more_steps[args.index("--steps") + 1] = "3"
    with pytest.raises(ValueError, match="pairs_round2.safetensors.*other options"):
        adapt.main(more_steps)
    (out / "pairs_round1.safetensors").write_bytes(b"damaged")
    with pytest.raises(ValueError, match="not a readable pairs file"):
        adapt.load_pairs(out / "pairs_round1.safetensors")


def test_shipped_drunet_ct_beats_the_gaussian_drunet_on_held_out_ct():
    """The shipped CT-adapted DRUNet: its sidecar records the adaptation, and PnP-ADMM with it (its own
    defaults) beats PnP-ADMM with the Gaussian DRUNet (its defaults) on sparse-view CT of two Train400
    images it was not trained on (indices 0-1: the adaptation phases train on images from 8 on).  The reference is the
    same solver with the shipped Gaussian denoiser, run in the same test."""
    from priors.weights import WEIGHTS_DIR, read_metadata
    from recon.metrics import psnr
    from recon.solvers import run_solver

    from ..conftest import shared_path

    path = WEIGHTS_DIR / "drunet-ct.safetensors"
    if not path.exists():
        pytest.skip("no shipped drunet-ct weights")
    meta = read_metadata(path)
    assert meta["architecture"] == "drunet" and meta["training"]["views"] == 60
    # every adaptation phase trained on images from 8 on (0-7 are the held-out ones used here)
    phase, starts = meta["training"], []
    while phase:
        starts.append(int(phase["train_images"].split(":")[0]))
        phase = phase.get("previous_phase")
    assert starts and min(starts) >= 8, starts
    ct = load_denoiser("drunet-ct")
    assert ct.name == "drunet-ct"
    base = load_denoiser("drunet")
    from priors.data import list_images, read_gray

    imgs = [read_gray(f) for f in list_images(shared_path("data", "train400"))[:2]]
    gains = []
    for A, x, y, s in adapt.ct_problems(imgs, views=60, noise=0.01, seed=200):
        ours, _ = run_solver("pnp-admm", A, y, prior=ct, sigma=s)
        ref, _ = run_solver("pnp-admm", A, y, prior=base, sigma=s)
        gains.append(float(psnr(ours.clamp(0, 1), x)) - float(psnr(ref.clamp(0, 1), x)))
    assert np.mean(gains) > 0.1, gains
