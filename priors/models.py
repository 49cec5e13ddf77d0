"""Registry of learned denoiser architectures: name -> constructor taking keyword arguments."""

from __future__ import annotations

from importlib import import_module

# name -> "module:Class"; imported lazily so listing architectures stays cheap.
ARCHITECTURES = {
    "drunet": "priors.drunet:DRUNet",
    "dncnn": "priors.dncnn:DnCNN",
    "dnresnet": "priors.dnresnet:DNResNet",
}


def architecture(name: str):
    """The class registered as ``name``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    module, cls = ARCHITECTURES[name].split(":")
    return getattr(import_module(module), cls)


def build_model(name: str, **config):
    """Instantiate architecture ``name`` with keyword ``config``."""
    cfg = dict(config)
    if "channels" in cfg:
        cfg["channels"] = tuple(cfg["channels"])
    if "sigma_range" in cfg:
        cfg["sigma_range"] = tuple(cfg["sigma_range"])
    return architecture(name)(**cfg)
