"""Safety checks for reading files that may be hostile: size limits and data stored in other files.

Every size a file declares (its arrays, and what its geometry would make the operator allocate)
is checked against a limit before anything is read or built; external links, external raw
storage and virtual datasets are refused unless ``RECON_ALLOW_EXTERNAL=1``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import MeasurementFileError


ALLOW_EXTERNAL_ENV = "RECON_ALLOW_EXTERNAL"
MAX_ELEMENTS_ENV = "RECON_MAX_ELEMENTS"
MAX_RAY_SAMPLES_ENV = "RECON_MAX_RAY_SAMPLES"
#: Largest element count of any array a file may declare (data, truth, geometry) and of the
#: operator's input and output that its geometry declares: 2**26 (512 MiB in float64).
DEFAULT_MAX_ELEMENTS = 1 << 26
#: Largest number of ray samples (screen positions x samples per ray) of a black-hole geometry:
#: tracing costs about 0.6 kB and 15 µs per sample, so 2**21 is about 1.3 GB and half a minute.
DEFAULT_MAX_RAY_SAMPLES = 1 << 21


def _env_limit(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} must be a positive integer") from None
    if value < 1:
        raise ValueError(f"environment variable {name}={text!r} must be a positive integer")
    return value


def max_elements() -> int:
    """The element limit of arrays in files (``RECON_MAX_ELEMENTS``, default :data:`DEFAULT_MAX_ELEMENTS`)."""
    return _env_limit(MAX_ELEMENTS_ENV, DEFAULT_MAX_ELEMENTS)


def max_ray_samples() -> int:
    """The ray-sample limit of black-hole geometries (``RECON_MAX_RAY_SAMPLES``)."""
    return _env_limit(MAX_RAY_SAMPLES_ENV, DEFAULT_MAX_RAY_SAMPLES)


def allow_external_default() -> bool:
    """Whether ``RECON_ALLOW_EXTERNAL=1`` lets reading follow data stored in other files."""
    return os.environ.get(ALLOW_EXTERNAL_ENV, "").strip() == "1"


def check_dataset_size(ds, name: str, path) -> None:
    """Refuse dataset ``ds`` (named ``name``) if its declared element count is over :func:`max_elements`."""
    shape = ds.shape
    n = 1 if shape is None else math.prod(int(s) for s in shape)
    lim = max_elements()
    if n > lim:
        raise MeasurementFileError(path, f"dataset {name} declares shape {tuple(shape)} = {n} elements, over the "
                                         f"limit of {lim} ({MAX_ELEMENTS_ENV} raises it); nothing was read")


def check_local_storage(f, path, *, allow_external: bool = False) -> None:
    """Refuse an open HDF5 file whose objects read bytes from other files.

    Every link is walked without following it: external links, datasets with external raw
    storage and virtual datasets are refused (one line naming the object).  With
    ``allow_external`` they are accepted, except virtual datasets whose source file is missing
    (they would read fill values silently).
    """
    import h5py

    hint = f"refused (set {ALLOW_EXTERNAL_ENV}=1 to read data stored in other files)"
    stack, seen, count = [("", f)], set(), 0
    while stack:
        prefix, group = stack.pop()
        for key in group.keys():
            count += 1
            if count > 100_000:
                raise MeasurementFileError(path, "file holds more than 100000 objects; not a recon file")
            name = f"{prefix}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                if allow_external:
                    continue
                raise MeasurementFileError(path, f"{name} is an external link to {link.filename}:{link.path}; "
                                                 + hint)
            if isinstance(link, h5py.SoftLink):
                continue  # its target lives in this file and is walked where it is hard-linked
            obj = group.get(key)
            if isinstance(obj, h5py.Group):
                ident = hash(obj.id)
                if ident not in seen:
                    seen.add(ident)
                    stack.append((name, obj))
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    sources = sorted({vs.file_name for vs in obj.virtual_sources()})
                    if not allow_external:
                        raise MeasurementFileError(path, f"dataset {name} is a virtual dataset reading from "
                                                         f"{', '.join(sources)}; " + hint)
                    folder = Path(path).parent
                    missing = [s for s in sources if s != "." and not (folder / s).exists() and not Path(s).exists()]
                    if missing:
                        raise MeasurementFileError(path, f"dataset {name} is a virtual dataset whose source "
                                                         f"{', '.join(missing)} is missing")
                elif obj.external and not allow_external:
                    files = sorted({str(e[0]) for e in obj.external})
                    raise MeasurementFileError(path, f"dataset {name} has external raw storage in "
                                                     f"{', '.join(files)}; " + hint)


def _count(value) -> int:
    return int(np.asarray(value).size)


def _prod(value) -> int:
    return math.prod(int(v) for v in np.asarray(value).reshape(-1))


def declared_work(name: str, geometry: dict) -> list[tuple[str, int, int, str]]:
    """Sizes a geometry declares before its operator is built: ``[(what, count, limit, env)]``.

    Known forward models declare their input and output sizes (and the black-hole model its ray
    samples); a count over its limit is refused before anything is allocated.
    """
    g, lim = geometry, max_elements()
    out: list[tuple[str, int, int, str]] = []
    try:
        if "image_shape" in g:
            ch = int(g.get("channels", 1)) if not isinstance(g.get("channels", 1), str) else 1
            out.append(("image (channels x image_shape)", max(ch, 1) * _prod(g["image_shape"]), lim, MAX_ELEMENTS_ENV))
        if name == "radon" and "image_shape" in g and "angles" in g:
            n_det = math.ceil(math.sqrt(2.0) * max(int(v) for v in np.asarray(g["image_shape"]).reshape(-1))) + 1
            ch = max(int(g.get("channels", 1)), 1)
            out.append(("sinogram (channels x detectors x angles)", ch * n_det * _count(g["angles"]), lim,
                        MAX_ELEMENTS_ENV))
        if name in ("blackhole", "blackhole-lightcurve", "blackhole-visibilities") and {"alpha", "beta"} <= set(g):
            screen = _count(g["alpha"]) * _count(g["beta"])
            if "grid_shape" in g:
                out.append(("emission grid", _prod(g["grid_shape"]), lim, MAX_ELEMENTS_ENV))
            out.append(("movie (frames x beta x alpha)", max(_count(g.get("t_frames", 1)), 1) * screen, lim,
                        MAX_ELEMENTS_ENV))
            out.append(("ray samples (alpha x beta x n_samples)", screen * max(int(g.get("n_samples", 1)), 1),
                        max_ray_samples(), MAX_RAY_SAMPLES_ENV))
        if name == "eht-visibilities" and "u" in g and "image_shape" in g:
            shape = [int(v) for v in np.asarray(g["image_shape"]).reshape(-1)]
            out.append(("visibility kernels (visibilities x (H + W))", _count(g["u"]) * sum(shape), lim,
                        MAX_ELEMENTS_ENV))
    except (TypeError, ValueError, OverflowError):
        pass  # malformed values: building the operator names them
    return out


def check_declared_work(name: str, geometry: dict, path) -> None:
    for what, n, lim, env in declared_work(name, geometry):
        if n > lim:
            raise MeasurementFileError(path, f"forward model {name!r}: the geometry declares a {what} of {n}, over "
                                             f"the limit of {lim} ({env} raises it); nothing was built")
