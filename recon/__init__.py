"""recon: solvers, HDF5/FITS I/O, comparisons and the ``recon`` command line.

The public workflow API is re-exported here lazily (``recon.load_measurement``,
``recon.reconstruct``, ``recon.compare``, ``recon.save_reconstruction``, ...) so
that ``import recon`` -- and with it ``recon --help`` -- does not import torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> submodule that defines it (imported on first access)
_LAZY = {
    "load_measurement": "recon.workflow",
    "reconstruct": "recon.workflow",
    "compare": "recon.comparison",  # the function; the module is recon.comparison
    "save_reconstruction": "recon.workflow",
    "load_reconstruction": "recon.workflow",
    "simulate": "recon.workflow",
    "import_scan": "recon.importers.tomography",
    "Measurement": "recon.io",
    "Reconstruction": "recon.io",
    "MeasurementFileError": "recon.io",
    "read_measurement": "recon.io",
    "write_measurement": "recon.io",
    "read_reconstruction": "recon.io",
    "write_reconstruction": "recon.io",
    "write_fits": "recon.io",
    "import_uvfits": "recon.importers.uvfits",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # cache: later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'recon' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
