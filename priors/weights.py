"""Denoiser weights on disk: safetensors plus a JSON sidecar, and loading of published layouts.

A weights file ``NAME.safetensors`` holds the state dict (float16 or float32)
and, in its header metadata, the architecture and configuration, so the file
alone is enough to rebuild the network.  Next to it, ``NAME.json`` records::

    format, format_version, name, architecture, config, sigma_range (image units),
    sigma_range_255, training (data, steps, checkpoint, held-out PSNR),
    set12_psnr ({"15": dB, "25": dB, "50": dB}, shared protocol), dtype,
    n_parameters, file, sha256 (of the safetensors file)

Loading verifies the sha256 when the sidecar is present and never unpickles:
safetensors, or ``torch.load(weights_only=True)`` for published ``.pth``
files (KAIR's DnCNN ``model.{0,2,...}`` and DRUNet ``m_head/m_down/...``
layouts are recognised from their keys).

Export a training run with::

    python -m priors.weights checkpoints/drunet/best.pt --name drunet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from forward_models.atomic import atomic_write_bytes, sha256_file  # the one writer and hash (re-exported)

from .models import ARCHITECTURES, build_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FORMAT = "recon-denoiser-weights"
FORMAT_VERSION = 1
_META_KEY = "recon"  # safetensors header metadata entry holding the JSON description


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar next to a weights file (same stem, ``.json``)."""
    return Path(path).with_suffix(".json")


def _model_description(model: torch.nn.Module, arch: str | None, config: dict | None) -> tuple[str, dict]:
    if arch is None:
        for name, target in ARCHITECTURES.items():
            if type(model).__name__ == target.split(":")[1]:
                arch = name
                break
        else:
            raise ValueError(f"arch: cannot tell the architecture of {type(model).__name__}; pass arch=")
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    cfg = dict(config if config is not None else getattr(model, "config", {}))
    cfg.pop("sigma_range", None)
    return arch, json.loads(json.dumps(cfg))  # tuples -> lists, and checks it is JSON-able


def save_weights(
    model: torch.nn.Module,
    path: str | Path,
    *,
    arch: str | None = None,
    config: dict | None = None,
    sigma_range: tuple[float, float] | None = None,
    training: dict | None = None,
    set12_psnr: dict | None = None,
    dtype: str = "float16",
    name: str | None = None,
) -> Path:
    """Write ``model``'s weights to ``path`` (safetensors) and its JSON sidecar.

    Parameters
    ----------
    model : nn.Module
        A registered architecture (``priors.models.ARCHITECTURES``) with a ``config`` attribute.
    path : path
        Destination ``.safetensors`` file; the sidecar goes to the same stem with ``.json``.
    arch, config : optional
        Override the architecture name / keyword configuration (default: from the model).
    sigma_range : (float, float), optional
        Training noise range in image units (default: ``model.sigma_range``).
    training : dict, optional
        Free-form training record (data, steps, ...), stored in the sidecar.
    set12_psnr : dict, optional
        ``{sigma255: dB}`` on Set12 with the shared protocol.
    dtype : {"float16", "float32"}
        Storage precision of floating-point tensors (float16 halves the size; the
        loaded network computes in float32).
    name : str, optional
        Name recorded in the sidecar (default: the file stem).

    Returns
    -------
    Path of the sidecar.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end with .safetensors, got {path}")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    arch, cfg = _model_description(model, arch, config)
    sr = sigma_range if sigma_range is not None else getattr(model, "sigma_range", None)
    sr = [float(s) for s in sr] if sr is not None else None
    tdtype = torch.float16 if dtype == "float16" else torch.float32
    sd = {
        k: (v.detach().to("cpu", tdtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    header = dict(format=FORMAT, format_version=FORMAT_VERSION, architecture=arch, config=cfg, sigma_range=sr)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, st_save(sd, metadata={_META_KEY: json.dumps(header)}))
    meta = dict(
        header,
        name=name or path.stem,
        sigma_range_255=[s * 255.0 for s in sr] if sr is not None else None,
        training=training or {},
        set12_psnr={str(int(k) if float(k).is_integer() else k): float(v) for k, v in (set12_psnr or {}).items()},
        dtype=dtype,
        n_parameters=int(sum(p.numel() for p in model.parameters())),
        file=path.name,
        sha256=sha256_file(path),
    )
    side = sidecar_path(path)
    atomic_write_bytes(side, (json.dumps(meta, indent=2) + "\n").encode())
    return side


def read_metadata(path: str | Path) -> dict | None:
    """The sidecar of weights file ``path`` as a dict, or ``None`` when there is none."""
    side = sidecar_path(path)
    if not side.exists():
        return None
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"weights sidecar {side} is not valid JSON ({err}); re-export the weights") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"weights sidecar {side} is not a {FORMAT} file")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"weights sidecar {side} has format_version {meta['format_version']}, newer than "
                         f"this code ({FORMAT_VERSION}); update recon")
    return meta


def _strip_prefix(sd: dict) -> dict:
    # DataParallel / DDP checkpoints prefix every key with "module.".
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_state_dict(path: str | Path, *, verify: bool = True) -> tuple[dict, dict]:
    """Read a weights file without building the network.

    Parameters
    ----------
    path : path
        ``.safetensors`` (with or without sidecar) or a published ``.pth``/``.pt``
        state dict (``torch.load(weights_only=True)``; a ``{"params": ...}`` or
        ``{"state_dict": ...}`` wrapper, a ``module.`` prefix, and a
        ``priors.train`` checkpoint are accepted).
    verify : bool
        Check the sha256 recorded in the sidecar.

    Returns
    -------
    (state_dict, info) where ``info`` holds what is known of the architecture
    (``architecture``, ``config``, ``sigma_range`` -- possibly absent) and
    ``source`` ("sidecar", "header", "checkpoint" or "keys").
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"weights path {path} is not a file")
    if path.suffix == ".safetensors":
        meta = read_metadata(path)
        if meta is not None and verify and meta.get("sha256"):
            digest = sha256_file(path)
            if digest != meta["sha256"]:
                raise ValueError(
                    f"weights file {path} is corrupt or was modified: sha256 {digest[:12]}... differs from "
                    f"{meta['sha256'][:12]}... recorded in {sidecar_path(path).name}"
                )
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                header = (f.metadata() or {}).get(_META_KEY)
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"weights file {path} is not a readable safetensors file ({err})") from err
        sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
        if meta is not None:
            return sd, dict(meta, source="sidecar")
        if header:
            return sd, dict(json.loads(header), source="header")
        return _strip_prefix(sd), {"source": "keys"}
    if path.suffix not in (".pth", ".pt"):
        raise ValueError(f"weights must be a .safetensors, .pth or .pt file, got {path.name}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated / non-torch files
        raise ValueError(f"weights file {path} could not be read as a PyTorch state dict ({err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"weights file {path} does not hold a state dict (got {type(obj).__name__})")
    if "model" in obj and "arch" in obj and isinstance(obj["model"], dict):  # a priors.train checkpoint
        cfg = json.loads(obj["config"]) if isinstance(obj["config"], str) else dict(obj["config"])
        sr = cfg.pop("sigma_range", None)
        return obj["model"], dict(architecture=obj["arch"], config=cfg, sigma_range=sr, source="checkpoint")
    for wrapper in ("params_ema", "params", "state_dict", "model"):
        if wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights file {path} is not a flat state dict of tensors")
    return _strip_prefix(dict(obj)), {"source": "keys"}


def _drunet_config(sd: dict) -> dict:
    head, tail = sd["m_head.weight"], sd["m_tail.weight"]
    in_ch = int(tail.shape[0])
    n_down = len({k.split(".")[0] for k in sd if k.startswith("m_down")})
    n_blocks = len({int(k.split(".")[1]) for k in sd if k.startswith("m_body.")})
    channels = [int(head.shape[0])] + [int(sd[f"m_down{i}.{n_blocks}.weight"].shape[0]) for i in range(1, n_down + 1)]
    has_emb = "sigma_embedding.mlp.0.weight" in sd
    has_chan = head.shape[1] == in_ch + 1
    cfg = dict(in_channels=in_ch, channels=channels, n_blocks=n_blocks, bias="m_head.bias" in sd,
               conditioning="both" if (has_emb and has_chan) else ("embedding" if has_emb else "channel"),
               merge="concat" if "merges.0.proj.weight" in sd else "add")
    if has_emb:
        cfg["emb_dim"] = int(sd["sigma_embedding.mlp.0.weight"].shape[0])
    if "m_body.0.res.3.weight" in sd:  # conv, norm, act, conv, norm
        if "m_body.0.res.1.running_mean" in sd:
            cfg["norm"] = "batch"
        else:
            cfg["norm"] = "layer" if "m_body.0.res.1.bias" in sd else "rms"
    return cfg


def infer_architecture(state_dict: dict) -> tuple[str, dict]:
    """Recognise a DRUNet, DnCNN or DN-ResNet state dict from its keys and return ``(arch, config)``.

    The published DRUNet predicts the clean image, so a DRUNet recognised from
    keys alone gets ``residual=False``; weights trained here with residual
    learning carry ``residual=True`` in their header/sidecar.
    """
    from .dncnn import DnCNN
    from .dnresnet import DNResNet

    if "m_head.weight" in state_dict and "m_tail.weight" in state_dict:
        return "drunet", _drunet_config(state_dict)
    if "model.0.weight" in state_dict:
        return "dncnn", DnCNN.config_from_state_dict(state_dict)
    if "head.0.weight" in state_dict:
        return "dnresnet", DNResNet.config_from_state_dict(state_dict)
    some = ", ".join(list(state_dict)[:4])
    raise ValueError(f"unrecognised weights layout (first keys: {some}); expected DRUNet (m_head...), "
                     "DnCNN (model.0...) or DN-ResNet (head.0...)")


#: Largest value a weights header may give each size setting of an architecture: checked before any
#: network is built (a 200-byte header declaring depth 10^6 would otherwise allocate gigabytes).
CONFIG_LIMITS = {"depth": 1000, "n_blocks": 1000, "width": 4096, "channels": 4096, "in_channels": 64,
                 "emb_dim": 4096}
_MAX_CHANNEL_LEVELS = 16


def check_config(path, name: str, cfg: dict, state_dict: dict) -> None:
    """Refuse a header/sidecar configuration before the network is built.

    Every size setting must be a whole number within :data:`CONFIG_LIMITS`; then the network is
    built on the ``meta`` device (no memory) and its state must have exactly as many values as
    the file's tensors, so a header cannot make recon allocate more than the file holds.

    Raises
    ------
    ValueError
        One line naming the file, the setting and the limit.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"weights file {path}: unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    for key, limit in CONFIG_LIMITS.items():
        if key not in cfg:
            continue
        values = cfg[key] if key == "channels" and isinstance(cfg[key], (list, tuple)) else [cfg[key]]
        if key == "channels" and len(values) > _MAX_CHANNEL_LEVELS:
            raise ValueError(f"weights file {path}: config channels has {len(values)} levels, over the limit of "
                             f"{_MAX_CHANNEL_LEVELS}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= limit:
                raise ValueError(f"weights file {path}: config {key}={cfg[key]!r} is not a whole number in "
                                 f"[1, {limit}] (the architecture limit)")
    try:
        with torch.device("meta"):
            ghost = build_model(name, **cfg)
    except (TypeError, ValueError) as err:
        raise ValueError(f"weights file {path}: invalid {name} configuration {cfg} ({err})") from None
    declared = sum(t.numel() for t in ghost.state_dict().values())
    held = sum(t.numel() for t in state_dict.values() if isinstance(t, torch.Tensor))
    if declared != held:
        raise ValueError(f"weights file {path} does not match the {name} configuration of its header: it declares "
                         f"{declared} values, the file holds {held}")


def build_from_weights(path: str | Path, *, arch: str | None = None, device=None, verify: bool = True):
    """Rebuild the network stored in ``path`` and load its weights (eval mode, no parameter gradients).

    Parameters
    ----------
    path : path
        See :func:`load_state_dict`.
    arch : str, optional
        Expected architecture; a file holding another one raises ``ValueError``.
    device : str or torch.device, optional
        Where to put the network (default CPU).
    verify : bool
        Check the sidecar sha256.
    """
    sd, info = load_state_dict(path, verify=verify)
    if info.get("architecture"):
        name, cfg = info["architecture"], dict(info.get("config") or {})
    else:
        name, cfg = infer_architecture(sd)
    if arch is not None and name != arch:
        raise ValueError(f"weights file {path} holds a {name!r} network, not {arch!r}")
    if info.get("sigma_range") is not None:
        cfg["sigma_range"] = info["sigma_range"]
    check_config(path, name, cfg, sd)
    model = build_model(name, **cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise ValueError(f"weights file {path} does not match the {name} configuration {cfg}: {err}") from err
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.weights_path = str(path)
    model.weights_info = {k: v for k, v in info.items() if k != "source"}
    return model.to(device) if device is not None else model


def export_checkpoint(
    checkpoint_path: str | Path,
    name: str,
    *,
    out_dir: str | Path = WEIGHTS_DIR,
    dtype: str = "float16",
    test_folder: str | Path | None = "../shared/data/set12",
    sigmas: tuple[float, ...] = (15, 25, 50),
    training_data: str = "Train400 (../shared/data/train400)",
    fold_batchnorm: bool = True,
    device: str | None = None,
) -> Path:
    """Export a ``priors.train`` checkpoint (``best.pt`` or ``last.pt``) as shipped weights.

    Writes ``out_dir/NAME.safetensors`` and ``out_dir/NAME.json``.  DnCNNs
    trained with BatchNorm are folded into the BN-free inference layout first.
    With ``test_folder`` the exported network (after the float16 round trip,
    so the numbers describe the file) is evaluated with the shared protocol at
    ``sigmas`` and the PSNRs go into the sidecar; ``None`` skips that.

    Returns
    -------
    Path of the safetensors file.
    """
    from .evaluate import evaluate_denoiser

    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint_path} does not exist")
    ck = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or not {"arch", "config", "model"} <= set(ck):
        raise ValueError(f"{checkpoint_path} is not a priors.train checkpoint (needs arch, config, model)")
    cfg = json.loads(ck["config"]) if isinstance(ck["config"], str) else dict(ck["config"])
    model = build_model(ck["arch"], **cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    if fold_batchnorm and hasattr(model, "fold_batchnorm") and getattr(model, "norm", "none") == "batch":
        model = model.fold_batchnorm().eval()
    out = Path(out_dir) / f"{name}.safetensors"
    training = dict(data=training_data, steps=int(ck.get("step", 0)), checkpoint=str(checkpoint_path))
    if "val_psnr25" in ck:
        training["heldout_psnr25"] = float(ck["val_psnr25"])
    save_weights(model, out, arch=ck["arch"], training=training, dtype=dtype, name=name)
    if test_folder is not None:
        reloaded = build_from_weights(out, device=device)
        scores = {s: evaluate_denoiser(reloaded, test_folder, s, device=device)["mean_psnr"] for s in sigmas}
        save_weights(model, out, arch=ck["arch"], training=training, dtype=dtype, name=name, set12_psnr=scores)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: export a training checkpoint as shipped weights."""
    p = argparse.ArgumentParser(description="Export a priors.train checkpoint as safetensors + JSON sidecar.")
    p.add_argument("checkpoint", help="checkpoints/NAME/best.pt")
    p.add_argument("--name", required=True, help="weights name (drunet, dncnn, ...)")
    p.add_argument("--out-dir", default=str(WEIGHTS_DIR))
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    p.add_argument("--test-folder", default="../shared/data/set12", help="'' to skip the Set12 evaluation")
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    out = export_checkpoint(a.checkpoint, a.name, out_dir=a.out_dir, dtype=a.dtype,
                            test_folder=a.test_folder or None, device=a.device)
    print(json.dumps(read_metadata(out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
