"""Priors for inverse problems: learned and classical denoisers, building blocks, coordinate networks.

``load_denoiser(name)`` returns a ready :class:`Denoiser` ``D(x, sigma)``:

* learned: ``"drunet"``, ``"dncnn"``, ``"dnresnet"`` -- the weights shipped in
  ``priors/weights/NAME.safetensors`` (trained here on Train400), or the
  user's own / published weights with ``weights=path``;
* adapted: ``"drunet-ct"`` -- the DRUNet fine-tuned on the iterates of PnP-ADMM for sparse-view
  CT (:mod:`recon.adapt`; 60 views, 1% noise), a prior for that problem rather than a Gaussian
  denoiser;
* classical: ``"tv"``, ``"wavelet"``, ``"bm3d"`` (the last needs the optional ``bm3d`` package).
"""

from __future__ import annotations

from pathlib import Path

from .base import Denoiser

__all__ = ["Denoiser", "load_denoiser", "DENOISERS"]

#: operator-adapted weights (recon.adapt) and the architecture they are weights of
ADAPTED = {"drunet-ct": "drunet"}
LEARNED = ("drunet", "dncnn", "dnresnet", *ADAPTED)
CLASSICAL = ("tv", "wavelet", "bm3d")
DENOISERS = LEARNED + CLASSICAL


def load_denoiser(name: str, *, weights: str | Path | None = None, device=None, ensemble: bool = False) -> Denoiser:
    """Return the denoiser called ``name``, ready for inference.

    Parameters
    ----------
    name : {"drunet", "dncnn", "dnresnet", "drunet-ct", "tv", "wavelet", "bm3d"}
        Which denoiser.
    weights : path, optional
        Learned denoisers only: a ``.safetensors`` file (written by
        :func:`priors.weights.save_weights`, sha256-checked against its JSON
        sidecar) or a published ``.pth`` state dict (loaded with
        ``torch.load(weights_only=True)``; the published DnCNN ``model.{0,2,...}``
        and DRUNet layouts are recognised and the matching configuration is
        built).  Default: the weights shipped with the package.
    device : str or torch.device, optional
        Where to put a learned network (default CPU).  Classical denoisers
        follow the input's device.
    ensemble : bool
        Wrap the denoiser in :class:`priors.ensemble.SelfEnsemble`: the average over the
        eight flips / 90° rotations of the input (8x the cost; see ``python -m
        priors.evaluate --ensemble`` for what it gains).

    Returns
    -------
    Denoiser in eval mode; learned networks have ``requires_grad=False``
    parameters (gradients with respect to the input still flow).

    Raises
    ------
    ValueError
        Unknown ``name``, ``weights`` given for a classical denoiser, or a
        weights file of another architecture / corrupt file.
    FileNotFoundError
        No shipped weights for ``name`` yet, or ``weights`` does not exist.
    """
    if not isinstance(name, str) or name.lower() not in DENOISERS:
        raise ValueError(f"name must be one of {', '.join(DENOISERS)}, got {name!r}")
    if not isinstance(ensemble, bool):
        raise TypeError(f"ensemble must be True or False, got {ensemble!r}")
    den = _load(name.lower(), weights, device)
    if ensemble:
        from .ensemble import SelfEnsemble

        return SelfEnsemble(den).eval()
    return den


def _load(name: str, weights, device) -> Denoiser:
    """The denoiser ``name`` (lower case, known) with the shipped or the given weights."""
    if name in CLASSICAL:
        if weights is not None:
            raise ValueError(f"weights: the classical denoiser {name!r} has no weights")
        from . import classical

        cls = {"tv": classical.TVDenoiser, "wavelet": classical.WaveletDenoiser, "bm3d": classical.BM3DDenoiser}
        den = cls[name]()
        if name == "bm3d":
            classical.BM3DDenoiser._import()  # fail now, with the install hint, rather than at the first call
        return den.eval()
    from .weights import WEIGHTS_DIR, build_from_weights

    if weights is None:
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.exists() and name in ADAPTED:
            raise FileNotFoundError(f"no shipped weights for {name!r} ({path} is missing). Make them with "
                                    f"`python -m recon.adapt --out checkpoints/{name} --name {name}` and copy "
                                    f"checkpoints/{name}/{name}.safetensors and its .json there, or pass weights=.")
        if not path.exists():
            raise FileNotFoundError(
                f"no shipped weights for {name!r} ({path} is missing). Train them with "
                f"`python -m priors.train --arch {name} --out checkpoints/{name}` and export with "
                f"`python -m priors.weights checkpoints/{name}/best.pt --name {name}`, "
                "or pass weights= the path of your own or published weights."
            )
    else:
        path = Path(weights)
    den = build_from_weights(path, arch=ADAPTED.get(name, name), device=device)
    if name in ADAPTED:
        den.name = name  # the key of its own solver defaults (recon.solvers.defaults)
    return den
