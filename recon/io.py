"""HDF5 measurement and reconstruction files, atomic writes and FITS sky images.

File layout (format version 1.0; ``data/FORMAT.md`` is the user description)::

    /                attrs: format ("recon-measurement" | "recon-reconstruction"),
                            format_version "MAJOR.MINOR", forward_model, created (ISO 8601 UTC),
                            software_version
    /measurement/y   float32/float64 (complex64/complex128 for complex operators), shape
                     ``out_shape`` of the operator; attrs units, dims
    /measurement/sigma    optional scalar > 0: Gaussian noise std in the units of y
    /measurement/weights  optional, shape of y, finite and >= 0
    /measurement/mask     optional, shape of y, bool (True = datum used)
    /geometry/<arg>  every constructor argument of the operator, attr ``units``
    /ground_truth/x  optional, shape ``in_shape``
    /provenance      attrs: generator, seed, config (JSON), command, parents (JSON list of
                     {"path", "sha256"}), software_version

A reconstruction file has the same groups (copied from its measurement, so it is
self-contained) plus ``/reconstruction/x`` with attrs solver, prior, options
(JSON), weights_sha256, wall_time_s, iterations, psnr/ssim when the truth is known,
and ``/reconstruction/history/<name>`` per-iteration arrays.

Reading validates everything and raises one :class:`MeasurementFileError` whose
one-line message names the file and the problem.  Writing goes to a temporary
file in the destination folder, is fsynced, then renamed over the destination
(``os.replace`` is atomic on POSIX), so a killed writer never leaves a partial file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forward_models.atomic import atomic_path, atomic_write_bytes, atomic_write_files, sha256_file

FORMAT_MEASUREMENT = "recon-measurement"
FORMAT_RECONSTRUCTION = "recon-reconstruction"
FORMAT_VERSION = "1.0"
_SUPPORTED_MAJOR = 1
_FLOAT_DTYPES = (np.float32, np.float64)
_COMPLEX_DTYPES = (np.complex64, np.complex128)


class MeasurementFileError(ValueError):
    """A measurement or reconstruction file (or an output path) is unusable.

    The message is one line: ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


def software_version() -> str:
    """Version of the installed ``recon`` distribution (falls back to the source tree's)."""
    try:
        from importlib.metadata import version

        return version("recon")
    except Exception:  # not installed: running from a checkout
        from . import __version__

        return __version__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ============================================================================ data classes
def _geometry_fingerprint(geometry: dict) -> str:
    """A digest of a geometry dict (arrays by their bytes), so a changed geometry rebuilds the operator."""
    h = hashlib.sha256()
    for key in sorted(geometry):
        value = geometry[key]
        h.update(key.encode())
        if isinstance(value, np.ndarray):
            h.update(str((value.dtype, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


@dataclass
class Measurement:
    """A measurement file's contents.

    Attributes
    ----------
    y : ndarray, shape ``out_shape``
        The data (units in ``units``).
    forward_model : str
        Registry name of the operator.
    geometry : dict
        Constructor arguments of the operator (``{name: value}``).
    geometry_units : dict
        ``{name: units}`` for every geometry argument.
    sigma : float or None
        Gaussian noise standard deviation in the units of ``y``.
    weights, mask : ndarray or None
        Optional per-datum weights (>= 0) and boolean mask.
    ground_truth : ndarray or None, shape ``in_shape``
    provenance : dict
        generator, seed, config (dict), command, parents (list of dict), software_version.
    units, dims : str, list of str
        Units and axis names of ``y``.
    path : str or None
        The file it was read from.
    format_version : str
    sha256 : str or None
        SHA-256 of the bytes that were read (the provenance of anything made from it).
    header_only : bool
        Only the metadata was read (:func:`read_header`); the arrays are placeholders.
    """

    y: np.ndarray
    forward_model: str
    geometry: dict[str, Any]
    geometry_units: dict[str, str] = field(default_factory=dict)
    sigma: float | None = None
    weights: np.ndarray | None = None
    mask: np.ndarray | None = None
    ground_truth: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    units: str = "1"
    dims: list[str] = field(default_factory=list)
    path: str | None = None
    format_version: str = FORMAT_VERSION
    created: str | None = None
    software_version: str | None = None
    #: SHA-256 of the file's bytes as they were read (``None`` for a measurement built in memory).
    sha256: str | None = None
    #: True when only the metadata was read (``read_header``): the arrays are zero placeholders
    #: of the declared shape and dtype.
    header_only: bool = False

    _operators: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def operator(self, device=None):
        """The forward model (a ``forward_models.LinearOperator``) of this measurement's geometry.

        Built once per geometry and device, then reused: building can be expensive (the black-hole
        model traces Kerr geodesics).  Every call with the same ``device`` returns the same object, so
        move a copy (``copy.deepcopy(op).to(...)``), not the returned operator, to another device.

        Parameters
        ----------
        device : str or torch.device, optional
            Where the operator's buffers live (default: the CPU).
        """
        from forward_models import get_entry

        key = (self.forward_model, _geometry_fingerprint(self.geometry), str(device or "cpu"))
        if key not in self._operators:
            forward_model_registry()
            op = get_entry(self.forward_model).build(self.geometry)
            for old in [k for k in self._operators if k[:2] != key[:2]]:
                del self._operators[old]  # the geometry changed: its operators are stale
            self._operators[key] = op if device is None else op.to(device)
        return self._operators[key]

    @property
    def entry(self):
        """The ``forward_models`` registry entry of this measurement's operator."""
        from forward_models import get_entry

        forward_model_registry()
        return get_entry(self.forward_model)

    @classmethod
    def from_operator(cls, op, y, *, sigma=None, ground_truth=None, provenance=None, units="1", dims=None,
                      weights=None, mask=None) -> "Measurement":
        """Build a measurement from an operator and data (tensors or arrays, batch axis of 1 dropped)."""
        name = getattr(type(op), "registry_name", None)
        if name is None:
            raise ValueError(f"operator {type(op).__name__} is not registered in forward_models.REGISTRY")
        geom, units_map = {}, {}
        for key, (value, u) in op.geometry().items():
            if value is None:
                # an unset optional argument: files omit it and from_geometry falls back to its
                # default (NaN is never "unset": NaN in a geometry is an error on reading)
                continue
            geom[key] = _to_numpy(value) if not isinstance(value, (str, int, float, list, tuple)) else value
            units_map[key] = u
        return cls(y=_squeeze_batch(_to_numpy(y), op.out_shape), forward_model=name, geometry=geom,
                   geometry_units=units_map, sigma=None if sigma is None else float(sigma),
                   weights=None if weights is None else _squeeze_batch(_to_numpy(weights), op.out_shape),
                   mask=None if mask is None else _squeeze_batch(_to_numpy(mask), op.out_shape).astype(bool),
                   ground_truth=None if ground_truth is None else _squeeze_batch(_to_numpy(ground_truth),
                                                                                  op.in_shape),
                   provenance=dict(provenance or {}), units=units, dims=list(dims or []))


@dataclass
class Reconstruction:
    """A reconstruction: the estimate plus everything needed to reproduce and judge it.

    Attributes
    ----------
    x : ndarray, shape ``in_shape`` of the operator
    measurement : Measurement
        The measurement it came from (copied into the reconstruction file).
    solver, prior : str
    options : dict
        Solver options as used (JSON-serialisable).
    history : dict of 1-D arrays
        Per-iteration values (objective, residuals, sigma, time, psnr, ...).
    metrics : dict
        ``psnr``, ``ssim`` (against the ground truth, when known), ``data_misfit``
        (``‖A x − y‖ / ‖y‖``), ``wall_time_s``, ``iterations``.
    weights_sha256 : str
        SHA-256 of the prior's weights file ("" for classical priors).
    """

    x: np.ndarray
    measurement: Measurement
    solver: str
    prior: str
    options: dict[str, Any] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    weights_sha256: str = ""
    path: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def _to_numpy(v) -> np.ndarray:
    try:
        import torch

        if isinstance(v, torch.Tensor):
            return v.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np.asarray(v)


def _squeeze_batch(a: np.ndarray, shape) -> np.ndarray:
    if a.ndim == len(shape) + 1 and a.shape[0] == 1:
        return a[0]
    return a


# ============================================================================ atomic writes
# One writer for every file recon writes (forward_models.atomic: unique temporary names, fsync,
# rename; all-or-nothing groups of files).  Re-exported here as the public recon.io names.
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


# ============================================================================ output paths
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEYWORD = b"Software"


def tag_png(data: bytes) -> bytes:
    """PNG bytes with a ``Software = recon <version>`` text chunk, so recon knows its own previews."""
    import struct
    import zlib

    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not PNG data")
    text = _PNG_KEYWORD + b"\0" + f"recon {software_version()}".encode("latin-1")
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length/type, IHDR data, CRC
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _png_is_recon(path: Path) -> bool:
    import struct

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(_PNG_SIGNATURE):
        return False
    pos = 8
    while pos + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[pos:pos + 8])
        body = head[pos + 8:pos + 8 + length]
        if kind == b"tEXt" and body.startswith(_PNG_KEYWORD + b"\0") and \
                body[len(_PNG_KEYWORD) + 1:].startswith(b"recon "):
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def is_recon_file(path: str | os.PathLike) -> bool:
    """Whether the existing file ``path`` was written by recon (so recon may replace it).

    HDF5 files whose root ``format`` starts with ``recon-``, PNG files with recon's ``Software``
    text chunk and FITS files whose ``ORIGIN`` is recon.  Anything else is the user's.
    """
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(_PNG_SIGNATURE):
            return _png_is_recon(path)
        if head.startswith(b"SIMPLE  "):
            with open(path, "rb") as f:
                header = f.read(2880 * 4)
            return b"ORIGIN  = 'recon " in header
        import h5py

        if not h5py.is_hdf5(str(path)):
            return False
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", "")
        fmt = fmt.decode("utf-8", "replace") if isinstance(fmt, bytes) else fmt
        return isinstance(fmt, str) and fmt.startswith("recon-")
    except (OSError, ValueError):
        return False


def check_output_path(out: str | os.PathLike, inputs=(), *, what: str = "output", replace=is_recon_file) -> Path:
    """Refuse an output path whose folder is missing, that is an input, or that would replace a file
    recon did not write.

    Parameters
    ----------
    out : path
    inputs : paths
        Inputs of the run (never overwritten).
    what : str
        What the path is, for the message (``"output"``, ``"checkpoint"``, ...).
    replace : callable
        ``replace(path) -> bool``: whether an existing ``out`` may be replaced (default
        :func:`is_recon_file`: only files recon wrote).

    Raises
    ------
    MeasurementFileError
    """
    out = Path(out)
    if str(out) == "" or out.name in ("", ".", ".."):
        raise MeasurementFileError(out, f"{what} path must name a file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MeasurementFileError(out, f"{what} folder {parent} does not exist")
    if out.is_dir():
        raise MeasurementFileError(out, f"{what} path is a folder, expected a file name")
    for inp in inputs:
        inp = Path(inp)
        same = False
        try:
            same = out.exists() and inp.exists() and os.path.samefile(out, inp)
        except OSError:
            pass
        if same or out.resolve() == inp.resolve():
            raise MeasurementFileError(out, f"{what} path is the same file as the input {inp}; "
                                            "choose another output name")
    if out.exists() and not replace(out):
        raise MeasurementFileError(out, f"{what} path is an existing file not written by recon; remove it or "
                                        "choose another name")
    return out


# ============================================================================ writing
def _write_str_attr(obj, key: str, value: str) -> None:
    obj.attrs[key] = str(value)


def _write_geometry(group, geometry: dict, units: dict) -> None:
    for key, value in geometry.items():
        value = _to_numpy(value) if not isinstance(value, (str, int, float, list, tuple)) else value
        ds = group.create_dataset(key, data=value if isinstance(value, str) else np.asarray(value))
        ds.attrs["units"] = str(units.get(key, ""))


def _write_provenance(group, prov: dict) -> None:
    for key in ("generator", "command", "software_version"):
        _write_str_attr(group, key, prov.get(key, ""))
    seed = prov.get("seed")
    group.attrs["seed"] = -1 if seed is None else int(seed)  # -1: not seeded
    group.attrs["config"] = json.dumps(prov.get("config", {}), sort_keys=True, default=json_default)
    group.attrs["parents"] = json.dumps(list(prov.get("parents", [])), sort_keys=True)


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _write_measurement_groups(f, m: Measurement) -> None:
    """Write /measurement, /geometry, /ground_truth, /provenance of ``m`` into open file ``f``."""
    f.attrs["forward_model"] = m.forward_model
    g = f.create_group("measurement")
    ds = g.create_dataset("y", data=np.ascontiguousarray(m.y))
    ds.attrs["units"] = str(m.units)
    ds.attrs["dims"] = json.dumps(list(m.dims))
    if m.sigma is not None:
        g.create_dataset("sigma", data=np.float64(m.sigma)).attrs["units"] = str(m.units)
    if m.weights is not None:
        g.create_dataset("weights", data=np.asarray(m.weights, dtype=np.float64)).attrs["units"] = "1"
    if m.mask is not None:
        g.create_dataset("mask", data=np.asarray(m.mask, dtype=bool)).attrs["units"] = "1"
    _write_geometry(f.create_group("geometry"), m.geometry, m.geometry_units)
    if m.ground_truth is not None:
        gt = f.create_group("ground_truth").create_dataset("x", data=np.ascontiguousarray(m.ground_truth))
        gt.attrs["units"] = "1"
    prov = dict(m.provenance)
    prov.setdefault("software_version", software_version())
    _write_provenance(f.create_group("provenance"), prov)


def h5_bytes(fill) -> bytes:
    """The bytes of an HDF5 file built in memory by ``fill(h5py.File)``.

    Files are built in memory and then written with one plain write (:func:`atomic_write_bytes`):
    a full disk or a file-size limit then fails that write cleanly (``OSError``, temporary
    removed, destination untouched) instead of failing deep inside the HDF5 library.
    """
    import io as _io

    import h5py

    buf = _io.BytesIO()
    with h5py.File(buf, "w") as f:
        fill(f)
    return buf.getvalue()


def measurement_bytes(m: Measurement, *, path="<memory>") -> bytes:
    """Validate ``m`` and return the bytes of its measurement file."""
    _validate_measurement(m, path)

    def fill(f):
        f.attrs["format"] = FORMAT_MEASUREMENT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = _now()
        f.attrs["software_version"] = software_version()
        _write_measurement_groups(f, m)

    return h5_bytes(fill)


def write_measurement(path: str | os.PathLike, m: Measurement) -> Path:
    """Validate ``m`` and write it atomically to ``path`` (HDF5).

    The measurement is checked with the same rules as reading (operator rebuilt
    from the geometry, shapes, dtypes, finiteness), so a file this writes always reads.
    """
    path = check_output_path(path)
    return atomic_write_bytes(path, measurement_bytes(m, path=path))


def reconstruction_bytes(r: Reconstruction, *, path="<memory>") -> bytes:
    """The bytes of the reconstruction file of ``r`` (measurement groups copied, plus /reconstruction)."""
    m = r.measurement
    x = np.asarray(r.x)
    if not np.all(np.isfinite(x)):
        raise MeasurementFileError(path, "reconstruction contains NaN or Inf; nothing written")

    def fill(f):
        f.attrs["format"] = FORMAT_RECONSTRUCTION
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = _now()
        f.attrs["software_version"] = software_version()
        mm = dataclasses.replace(m)
        if r.provenance:
            mm.provenance = r.provenance
        _write_measurement_groups(f, mm)
        g = f.create_group("reconstruction")
        ds = g.create_dataset("x", data=np.ascontiguousarray(x))
        ds.attrs["units"] = "1"
        for key, val in (("solver", r.solver), ("prior", r.prior), ("weights_sha256", r.weights_sha256)):
            g.attrs[key] = str(val)
        g.attrs["options"] = json.dumps(r.options, sort_keys=True, default=json_default)
        for key, val in r.metrics.items():
            if val is not None:
                g.attrs[key] = float(val)
        h = g.create_group("history")
        for key, val in r.history.items():
            arr = np.asarray(val)
            if arr.dtype == object or arr.dtype.kind in "USO":
                continue
            h.create_dataset(key, data=arr)

    return h5_bytes(fill)


def write_reconstruction(path: str | os.PathLike, r: Reconstruction, *, inputs=(), preview: bytes | None = None,
                         extra: dict | None = None) -> Path:
    """Write a reconstruction file atomically; with ``preview`` (PNG bytes) also ``path`` with ``.png``.

    The .h5, its preview and any ``extra`` ``{path: bytes}`` files (checked with
    :func:`check_output_path` by the caller) are written all-or-nothing: after an error every
    one of them is as it was before.
    """
    path = check_output_path(path, inputs)
    files = {path: reconstruction_bytes(r, path=path)}
    if preview is not None:
        png_path = check_output_path(path.with_suffix(".png"), [*inputs, path], what="preview")
        files[png_path] = tag_png(preview)
    files.update(extra or {})
    atomic_write_files(files)
    return path


# ============================================================================ reading / validation
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def parse_version(text: str, path) -> tuple[int, int]:
    """``"MAJOR.MINOR"`` -> ``(major, minor)``, else a :class:`MeasurementFileError`."""
    match = _VERSION_RE.match(str(text))
    if not match:
        raise MeasurementFileError(path, f"format_version {text!r} is not of the form MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2))


def _attr_str(obj, key: str, path, where: str) -> str:
    if key not in obj.attrs:
        raise MeasurementFileError(path, f"missing attribute {key!r} on {where}")
    val = obj.attrs[key]
    if isinstance(val, bytes):
        val = val.decode("utf-8", "replace")
    if isinstance(val, np.ndarray) or not isinstance(val, str):
        raise MeasurementFileError(path, f"attribute {key!r} on {where} must be a string, got {val!r}")
    return val


def _open_h5(path: Path):
    import h5py

    if not path.exists():
        raise MeasurementFileError(path, "file does not exist")
    if path.is_dir():
        raise MeasurementFileError(path, "is a folder, expected an HDF5 file")
    if not os.access(path, os.R_OK):
        raise MeasurementFileError(path, "file is not readable (permission denied)")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise MeasurementFileError(path, f"cannot read file: {e.strerror or e}") from None
    if size == 0:
        raise MeasurementFileError(path, "file is empty")
    try:
        is_h5 = h5py.is_hdf5(str(path))
    except OSError as e:
        raise MeasurementFileError(path, f"cannot read file: {e}") from None
    if not is_h5:
        raise MeasurementFileError(path, "not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise MeasurementFileError(path, f"HDF5 file is corrupt or truncated ({_short(e)})") from None


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:160]


def _read_dataset(f, key: str, path):
    ds = _dataset(f, key, path)
    try:
        return ds[()]
    except MemoryError:
        raise MeasurementFileError(path, f"dataset /{key} {tuple(ds.shape)} does not fit in memory") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise MeasurementFileError(path, f"dataset /{key} cannot be read, the file may be truncated "
                                         f"({_short(e)})") from None


def _dataset(f, key: str, path, *, limit: bool = True):
    """The dataset ``key`` (not read), its declared size checked against :func:`max_elements`."""
    import h5py

    try:
        ds = f[key]
    except KeyError:
        raise MeasurementFileError(path, f"missing dataset /{key}") from None
    if not isinstance(ds, h5py.Dataset):
        raise MeasurementFileError(path, f"/{key} is a {type(ds).__name__.lower()}, expected a dataset")
    if limit:
        _check_size(ds, f"/{key}", path)
    return ds


def _check_size(ds, name: str, path) -> None:
    shape = ds.shape
    n = 1 if shape is None else math.prod(int(s) for s in shape)
    lim = max_elements()
    if n > lim:
        raise MeasurementFileError(path, f"dataset {name} declares shape {tuple(shape)} = {n} elements, over the "
                                         f"limit of {lim} ({MAX_ELEMENTS_ENV} raises it); nothing was read")


def _placeholder(ds) -> np.ndarray:
    """Zeros of ``ds``'s declared shape and dtype without reading or allocating them."""
    return np.broadcast_to(np.zeros((), dtype=ds.dtype), ds.shape or ())


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


def _check_array(a, name: str, path, *, shape=None, kinds="f", allow_complex=False, values=True) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    ok = (a.dtype in [np.dtype(d) for d in _FLOAT_DTYPES]) if "f" in kinds else False
    if allow_complex and a.dtype in [np.dtype(d) for d in _COMPLEX_DTYPES]:
        ok = True
    if "b" in kinds and a.dtype == np.bool_:
        ok = True
    if not ok:
        expected = "float32 or float64" + (" (or complex64/complex128)" if allow_complex else "")
        if "b" in kinds:
            expected = "bool"
        raise MeasurementFileError(path, f"{name} has dtype {a.dtype}, expected {expected}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise MeasurementFileError(path, f"{name} has shape {tuple(a.shape)} but the geometry implies "
                                         f"{tuple(shape)}")
    if values and a.dtype != np.bool_ and not np.all(np.isfinite(a)):
        raise MeasurementFileError(path, f"{name} contains NaN or Inf")
    return a


def _check_geometry_values(geometry: dict, units: dict, path) -> None:
    if not geometry:
        raise MeasurementFileError(path, "geometry group /geometry is empty")
    for key, value in geometry.items():
        if key not in units:
            raise MeasurementFileError(path, f"geometry parameter {key!r} has no 'units' attribute")
        if isinstance(value, str):
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf c":
            if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
                raise MeasurementFileError(path, f"geometry parameter {key!r} contains NaN or Inf")
        elif arr.dtype.kind not in "SU":
            raise MeasurementFileError(path, f"geometry parameter {key!r} has unsupported type {arr.dtype}")


def forward_model_registry() -> dict:
    """``forward_models.REGISTRY`` with the optional sub-packages (black hole) imported so they register."""
    import importlib

    from forward_models import REGISTRY

    for mod in ("forward_models.radon", "forward_models.blackhole"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    return REGISTRY


def _build_operator(name: str, geometry: dict, path):
    REGISTRY = forward_model_registry()
    entry = REGISTRY.get(name)
    if entry is None:
        raise MeasurementFileError(path, f"unknown forward model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    try:
        return entry, entry.build(geometry)
    except KeyError as e:
        raise MeasurementFileError(path, f"geometry for {name!r} lacks parameter {e.args[0]!r}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise MeasurementFileError(path, f"invalid geometry for {name!r}: {_short(e)}") from None


# ---------------------------------------------------------------------------- geometry units and sizes
# Accepted spellings of each unit recon writes (compared case-insensitively, except M).
_UNIT_ALIASES = {
    "rad": {"rad", "radian", "radians"},
    "deg": {"deg", "degree", "degrees", "\u00b0"},
    "pixel": {"pixel", "pixels", "px", "pix"},
    "voxel": {"voxel", "voxels"},
    "1": {"1", "", "dimensionless", "none"},
    "": {"", "1", "dimensionless", "none"},
    "bool": {"bool", "boolean", "1", ""},
    "M": {"M", "GM/c^2", "GM/c2", "r_g", "rg"},
    "wavelength": {"wavelength", "wavelengths", "lambda"},
    "m": {"m", "metre", "metres", "meter", "meters"},
}
_CONVERSIONS = {("deg", "rad"): math.pi / 180.0, ("rad", "deg"): 180.0 / math.pi}  # (file, expected)


def _unit_class(units: str) -> str | None:
    u = units.strip()
    for canon, names in _UNIT_ALIASES.items():
        if canon == "M":
            if u in names:
                return canon
        elif u.lower() in names:
            return canon
    return None


_EXPECTED: dict[str, dict] = {}


def expected_geometry(name: str) -> dict[str, tuple[str, bool]]:
    """``{parameter: (units, integer)}`` that forward model ``name`` writes (from its registry example)."""
    if name not in _EXPECTED:
        from forward_models import get_entry

        forward_model_registry()
        out = {}
        for key, (value, units) in get_entry(name).example().geometry().items():
            arr = np.asarray(value) if value is not None and not isinstance(value, str) else None
            integer = arr is not None and arr.dtype.kind in "biu"
            out[key] = (str(units), bool(integer))
        _EXPECTED[name] = out
    return _EXPECTED[name]


def normalise_geometry(name: str, geometry: dict, units: dict, path) -> tuple[dict, dict]:
    """Check every geometry parameter's units (and integer parameters) against the forward model's.

    A known alias (``degrees`` for ``deg``, ``px`` for ``pixel``, ...) is accepted; angles in
    degrees where radians are expected (or the reverse) are converted; anything else is refused.
    Integer parameters (image shapes, counts) must hold whole numbers.  Returns new dicts.
    """
    try:
        expected = expected_geometry(name)
    except (KeyError, ValueError):
        return geometry, units  # unknown forward model: reported when it is built
    geometry, units = dict(geometry), dict(units)
    for key, value in list(geometry.items()):
        if key not in expected or key not in units:
            continue
        want, integer = expected[key]
        got = units[key]
        if not isinstance(got, str):
            raise MeasurementFileError(path, f"geometry parameter {key!r} has units {got!r}, expected a string")
        have = _unit_class(got)
        if have is None or (have != _unit_class(want) and (have, want) not in _CONVERSIONS):
            raise MeasurementFileError(path, f"geometry parameter {key!r} has units {got!r}; expected {want!r}")
        if (have, want) in _CONVERSIONS and have != _unit_class(want):
            arr = np.asarray(value, dtype=np.float64) * _CONVERSIONS[(have, want)]
            geometry[key] = float(arr) if arr.ndim == 0 else arr
        units[key] = want
        if integer and not isinstance(value, str):
            arr = np.asarray(value)
            if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
                raise MeasurementFileError(path, f"geometry parameter {key!r} must hold integers, got "
                                                 f"{np.array2string(arr, threshold=6)}")
            if arr.dtype.kind not in "biuf":
                raise MeasurementFileError(path, f"geometry parameter {key!r} must hold integers, got dtype "
                                                 f"{arr.dtype}")
    return geometry, units


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
        if name == "blackhole" and {"alpha", "beta"} <= set(g):
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


def _check_declared_work(name: str, geometry: dict, path) -> None:
    for what, n, lim, env in declared_work(name, geometry):
        if n > lim:
            raise MeasurementFileError(path, f"forward model {name!r}: the geometry declares a {what} of {n}, over "
                                             f"the limit of {lim} ({env} raises it); nothing was built")


def _validate_measurement(m: Measurement, path, *, values: bool = True) -> Any:
    """Check a :class:`Measurement` in memory (same rules as reading); return the operator.

    ``values=False`` checks shapes and dtypes only (for :func:`read_header`'s placeholders).
    """
    _check_geometry_values(m.geometry, m.geometry_units, path)
    normalise_geometry(m.forward_model, m.geometry, m.geometry_units, path)
    _check_declared_work(m.forward_model, m.geometry, path)
    entry, op = _build_operator(m.forward_model, m.geometry, path)
    _check_array(np.asarray(m.y), "measurement y", path, shape=op.out_shape,
                 allow_complex=bool(getattr(op, "output_complex", False)), values=values)
    if m.sigma is not None:
        s = m.sigma
        if not (isinstance(s, (int, float, np.floating, np.integer)) and math.isfinite(float(s)) and s > 0):
            raise MeasurementFileError(path, f"measurement sigma must be a finite number > 0, got {s!r}")
    if m.weights is not None:
        w = _check_array(np.asarray(m.weights), "measurement weights", path, shape=op.out_shape, values=values)
        if values and np.any(w < 0):
            raise MeasurementFileError(path, "measurement weights must be >= 0")
    if m.mask is not None:
        _check_array(np.asarray(m.mask), "measurement mask", path, shape=op.out_shape, kinds="b")
    if m.ground_truth is not None:
        _check_array(np.asarray(m.ground_truth), "ground truth x", path, shape=op.in_shape,
                     allow_complex=bool(getattr(op, "input_complex", False)), values=values)
    return op


def _text(value, what: str, path) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise MeasurementFileError(path, f"{what} must be a string, got {_short_repr(value)}")
    return value


def _short_repr(value) -> str:
    return " ".join(repr(value).split())[:80]


def _read_provenance(f, path) -> dict:
    import h5py

    if "provenance" not in f:
        return {}
    g = f["provenance"]
    if not isinstance(g, h5py.Group):
        raise MeasurementFileError(path, "/provenance must be a group")
    prov: dict[str, Any] = {}
    for key in ("generator", "command", "software_version"):
        if key in g.attrs:
            prov[key] = _text(g.attrs[key], f"provenance {key}", path)
    if "seed" in g.attrs:
        seed = np.asarray(g.attrs["seed"])
        if seed.shape != () or seed.dtype.kind not in "iu":
            raise MeasurementFileError(path, f"provenance seed must be one integer, got "
                                             f"{_short_repr(g.attrs['seed'])}")
        seed = int(seed)
        prov["seed"] = None if seed < 0 else seed
    for key, kind in (("config", dict), ("parents", list)):
        if key in g.attrs:
            text = _text(g.attrs[key], f"provenance {key}", path)
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise MeasurementFileError(path, f"provenance {key} is not valid JSON") from None
            if not isinstance(value, kind):
                raise MeasurementFileError(path, f"provenance {key} must be a JSON "
                                                 f"{'object' if kind is dict else 'list'}, got {_short_repr(value)}")
            prov[key] = value
    for par in prov.get("parents", []):
        if not (isinstance(par, dict) and all(isinstance(par.get(k, ""), str) for k in ("path", "sha256"))):
            raise MeasurementFileError(path, f"provenance parents must be a list of {{\"path\", \"sha256\"}} "
                                             f"objects, got {_short_repr(par)}")
    return prov


def _read_geometry_group(f, path) -> tuple[dict, dict]:
    import h5py

    if "geometry" not in f:
        raise MeasurementFileError(path, "missing group /geometry")
    geo = f["geometry"]
    if not isinstance(geo, h5py.Group):
        raise MeasurementFileError(path, "/geometry must be a group")
    for key in geo:
        _dataset(f, f"geometry/{key}", path)  # a dataset, of a size within the limit, before reading
    from forward_models import read_geometry

    try:
        geometry = read_geometry(geo)
    except MemoryError:
        raise MeasurementFileError(path, "geometry does not fit in memory") from None
    except (OSError, RuntimeError, ValueError, AttributeError, TypeError) as e:
        raise MeasurementFileError(path, f"geometry cannot be read ({_short(e)})") from None
    units = {}
    for key in geo:
        if "units" in geo[key].attrs:
            units[key] = _text(geo[key].attrs["units"], f"units of geometry parameter {key!r}", path)
    return geometry, units


def _read_measurement_open(f, path, *, expected_format: str | None, values: bool = True,
                           allow_external: bool | None = None) -> Measurement:
    fmt = _attr_str(f, "format", path, "the root group")
    if fmt not in (FORMAT_MEASUREMENT, FORMAT_RECONSTRUCTION):
        raise MeasurementFileError(path, f"unknown format {fmt!r}; expected {FORMAT_MEASUREMENT!r}")
    if expected_format is not None and fmt != expected_format:
        raise MeasurementFileError(path, f"file is a {fmt!r}, expected a {expected_format!r}")
    version = _attr_str(f, "format_version", path, "the root group")
    major, _minor = parse_version(version, path)
    if major > _SUPPORTED_MAJOR:
        raise MeasurementFileError(path, f"format_version {version} is newer than this software supports "
                                         f"({FORMAT_VERSION}); upgrade recon")
    if major < 1:
        raise MeasurementFileError(path, f"format_version {version} is not supported")
    name = _attr_str(f, "forward_model", path, "the root group")
    check_local_storage(f, path, allow_external=allow_external_default() if allow_external is None
                        else allow_external)
    geometry, units = _read_geometry_group(f, path)
    _check_geometry_values(geometry, units, path)
    geometry, units = normalise_geometry(name, geometry, units, path)
    if "measurement" not in f or "y" not in f["measurement"]:
        raise MeasurementFileError(path, "missing dataset /measurement/y")

    def array(key):
        return _read_dataset(f, key, path) if values else _placeholder(_dataset(f, key, path))

    for key in ("measurement/y", "measurement/weights", "measurement/mask", "ground_truth/x"):
        if key in f:
            _dataset(f, key, path)  # every declared size within the limit before anything is read
    ds = f["measurement/y"]
    yunits = _text(ds.attrs.get("units", "1"), "units of /measurement/y", path)
    dims = []
    if "dims" in ds.attrs:
        try:
            dims = json.loads(_text(ds.attrs["dims"], "dims of /measurement/y", path))
        except json.JSONDecodeError:
            raise MeasurementFileError(path, "dims of /measurement/y is not valid JSON") from None
        if not (isinstance(dims, list) and all(isinstance(d, str) for d in dims)):
            raise MeasurementFileError(path, f"dims of /measurement/y must be a JSON list of names, got "
                                             f"{_short_repr(dims)}")
    sigma = None
    if "sigma" in f["measurement"]:
        sds = _dataset(f, "measurement/sigma", path)
        if sds.size != 1 or sds.dtype.kind not in "fiu":
            raise MeasurementFileError(path, f"measurement sigma must be one number, got shape {sds.shape} "
                                             f"dtype {sds.dtype}")
        sigma = float(np.asarray(_read_dataset(f, "measurement/sigma", path)).reshape(()))
        if not (math.isfinite(sigma) and sigma > 0):
            raise MeasurementFileError(path, f"measurement sigma must be a finite number > 0, got {sigma}")
    gt = None
    if "ground_truth" in f:
        if "x" not in f["ground_truth"]:
            raise MeasurementFileError(path, "group /ground_truth has no dataset x")
        gt = array("ground_truth/x")
    created = f.attrs.get("created")
    sw = f.attrs.get("software_version")
    m = Measurement(y=np.asarray(array("measurement/y")), forward_model=name, geometry=geometry,
                    geometry_units=units, sigma=sigma,
                    weights=array("measurement/weights") if "weights" in f["measurement"] else None,
                    mask=array("measurement/mask") if "mask" in f["measurement"] else None,
                    ground_truth=gt, provenance=_read_provenance(f, path), units=yunits, dims=dims, path=str(path),
                    format_version=version,
                    created=None if created is None else _text(created, "attribute 'created'", path),
                    software_version=None if sw is None else _text(sw, "attribute 'software_version'", path),
                    header_only=not values)
    op = _validate_measurement(m, path, values=values)
    m._operators[(m.forward_model, _geometry_fingerprint(m.geometry), "cpu")] = op  # built once
    return m


def _read_file(path, read, *, values: bool):
    """Open ``path`` and ``read(f)``; with ``values`` also hash the bytes and make sure they did not change.

    The hash is taken before parsing and the file's identity (inode, size, modification time)
    compared before and after, so the hash is that of the bytes actually read.
    """
    path = Path(path)
    before = _identity(path) if values else None
    digest = sha256_file(path) if values and path.is_file() else None
    f = _open_h5(path)
    try:
        with f:
            out = read(f)
    except MeasurementFileError:
        raise
    except MemoryError:
        raise MeasurementFileError(path, "file does not fit in memory") from None
    except (OSError, RuntimeError, KeyError, AttributeError, TypeError) as e:  # h5py errors in a damaged file
        raise MeasurementFileError(path, f"HDF5 file is damaged ({_short(e)})") from None
    if values and _identity(path) != before:
        raise MeasurementFileError(path, "file changed while it was being read; read it again")
    return out, digest


def _identity(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_measurement(path: str | os.PathLike, *, allow_external: bool | None = None) -> Measurement:
    """Read and validate a measurement file (a reconstruction file also works: its measurement).

    Parameters
    ----------
    path : path
    allow_external : bool, optional
        Read datasets stored in other files (external links, external raw storage, virtual
        datasets).  Default: refused unless the environment sets ``RECON_ALLOW_EXTERNAL=1``.

    Raises
    ------
    MeasurementFileError
        One line naming the file and the problem, for every way the file can be wrong (see
        ``data/FORMAT.md``: size limits and what is refused).
    """
    m, digest = _read_file(path, lambda f: _read_measurement_open(f, Path(path), expected_format=None,
                                                                   allow_external=allow_external), values=True)
    m.sha256 = digest
    return m


def read_header(path: str | os.PathLike, *, allow_external: bool | None = None):
    """Read a measurement or reconstruction file's metadata without reading its data arrays.

    The geometry (size-limited) and the scalar noise level are read and validated, the operator
    is built and every array's declared shape and dtype is checked; the arrays themselves are
    zero placeholders (``header_only=True``) and their values (NaN, negative weights) are not
    checked.  Returns a :class:`Measurement`, or a :class:`Reconstruction` for reconstruction files.
    """
    path = Path(path)

    def read(f):
        fmt = _attr_str(f, "format", path, "the root group")
        m = _read_measurement_open(f, path, expected_format=None, values=False, allow_external=allow_external)
        if fmt == FORMAT_RECONSTRUCTION:
            return _read_reconstruction_open(f, path, m, values=False)
        return m

    return _read_file(path, read, values=False)[0]


def _read_reconstruction_open(f, path, m: Measurement, *, values: bool) -> Reconstruction:
    import h5py

    if "reconstruction" not in f or "x" not in f["reconstruction"]:
        raise MeasurementFileError(path, "missing dataset /reconstruction/x")
    g = f["reconstruction"]
    op = m.operator()
    xds = _dataset(f, "reconstruction/x", path)
    x = _check_array(_read_dataset(f, "reconstruction/x", path) if values else _placeholder(xds),
                     "reconstruction x", path, shape=op.in_shape,
                     allow_complex=bool(getattr(op, "input_complex", False)), values=values)
    attrs = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
    try:
        options = json.loads(_text(attrs.pop("options", "{}"), "reconstruction options", path))
    except json.JSONDecodeError:
        raise MeasurementFileError(path, "reconstruction options are not valid JSON") from None
    if not isinstance(options, dict):
        raise MeasurementFileError(path, f"reconstruction options must be a JSON object, got {_short_repr(options)}")
    history = {}
    if "history" in g:
        if not isinstance(g["history"], h5py.Group):
            raise MeasurementFileError(path, "/reconstruction/history must be a group")
        for k in g["history"]:
            ds = _dataset(f, f"reconstruction/history/{k}", path)
            history[k] = np.asarray(_read_dataset(f, f"reconstruction/history/{k}", path)) if values \
                else _placeholder(ds)
    solver, prior = str(attrs.pop("solver", "")), str(attrs.pop("prior", ""))
    wsha = str(attrs.pop("weights_sha256", ""))
    metrics = {}
    for k, v in attrs.items():
        if np.ndim(v) == 0 and not isinstance(v, str):
            try:
                metrics[k] = float(v)
            except (TypeError, ValueError):
                raise MeasurementFileError(path, f"reconstruction attribute {k!r} must be a number") from None
    return Reconstruction(x=x, measurement=m, solver=solver, prior=prior, options=options, history=history,
                          metrics=metrics, weights_sha256=wsha, path=str(path), provenance=m.provenance)


def read_reconstruction(path: str | os.PathLike, *, allow_external: bool | None = None) -> Reconstruction:
    """Read and validate a reconstruction file written by :func:`write_reconstruction`."""
    path = Path(path)

    def read(f):
        m = _read_measurement_open(f, path, expected_format=FORMAT_RECONSTRUCTION, allow_external=allow_external)
        return _read_reconstruction_open(f, path, m, values=True)

    r, digest = _read_file(path, read, values=True)
    r.measurement.sha256 = digest
    return r


def file_kind(path: str | os.PathLike) -> str:
    """``"recon-measurement"`` or ``"recon-reconstruction"`` (validated enough to tell)."""
    path = Path(path)
    with _open_h5(path) as f:
        return _attr_str(f, "format", path, "the root group")


# ============================================================================ FITS
def check_sky_grid(*, pixel_scale_deg: float, ra_deg: float, dec_deg: float, origin: str) -> None:
    """``ValueError`` naming the argument unless the sky grid of a FITS image is valid
    (pixel scale finite and > 0 degrees, finite RA, |Dec| <= 90 degrees, origin 'lower' or 'upper')."""
    if not (math.isfinite(pixel_scale_deg) and pixel_scale_deg > 0):
        raise ValueError(f"pixel_scale_deg must be finite and > 0, got {pixel_scale_deg}")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg) and -90 <= dec_deg <= 90):
        raise ValueError(f"ra_deg/dec_deg must be finite with |dec_deg| <= 90, got {ra_deg}, {dec_deg}")
    if origin not in ("lower", "upper"):
        raise ValueError(f"origin must be 'lower' or 'upper', got {origin!r}")


def write_fits(path: str | os.PathLike, image, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
               origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "", frequency_hz=None,
               history: list[str] | None = None, overwrite_inputs=(), extra_header: dict | None = None,
               defer: dict | None = None) -> Path:
    """Write a 2-D sky image as FITS with a complete celestial WCS (SIN projection, ICRS).

    Parameters
    ----------
    image : array (ny, nx)
        Sky brightness.  Column index increases towards the west (RA decreasing,
        east to the left as on the sky); with ``origin="lower"`` row index increases
        towards north (FITS order), with ``"upper"`` row 0 is the northern edge
        (image order, flipped on write).
    pixel_scale_deg : float
        Pixel size in degrees (both axes).
    ra_deg, dec_deg : float
        Sky position of the image centre (ICRS, degrees); it lands on
        ``CRPIX = ((nx + 1) / 2, (ny + 1) / 2)``, the geometric centre in FITS's 1-based pixels.
    bunit : str
        Brightness unit written as ``BUNIT``.
    defer : dict, optional
        Receives ``{path: FITS bytes}`` instead of the file being written (the caller writes
        it all-or-nothing with other files, :func:`recon.io.atomic_write_files`).
    extra_header : dict, optional
        More header cards ``{keyword: value or (value, comment)}`` (e.g. ``DATE-OBS``).

    The header is checked by parsing it back with ``astropy.wcs.WCS``.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    path = check_output_path(path, overwrite_inputs, what="FITS output")
    img = np.asarray(_to_numpy(image), dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (ny, nx), got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or Inf")
    check_sky_grid(pixel_scale_deg=pixel_scale_deg, ra_deg=ra_deg, dec_deg=dec_deg, origin=origin)
    if origin == "upper":
        img = img[::-1]
    ny, nx = img.shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [ra_deg % 360.0, dec_deg]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.cdelt = [-pixel_scale_deg, pixel_scale_deg]  # RA increases to the east (left)
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    header = w.to_header()
    header["BUNIT"] = bunit
    header["OBJECT"] = object_name
    header["ORIGIN"] = f"recon {software_version()}"
    header["DATE"] = _now()
    if frequency_hz is not None:
        header["FREQ"] = (float(frequency_hz), "observing frequency [Hz]")
    for key, value in (extra_header or {}).items():  # e.g. DATE-OBS, TELESCOP of an observation
        header[key] = value
    for line in history or []:
        header["HISTORY"] = line
    import io as _io

    hdu = fits.PrimaryHDU(data=img.astype(np.float32), header=header)
    buf = _io.BytesIO()
    hdu.writeto(buf)
    data = buf.getvalue()
    with fits.open(_io.BytesIO(data)) as check:  # the WCS must parse back as celestial
        wcs_back = WCS(check[0].header)
        if not wcs_back.has_celestial or wcs_back.wcs.radesys.strip() != "ICRS":
            raise RuntimeError("FITS WCS did not read back as a celestial ICRS frame")
    if defer is not None:  # written later, all-or-nothing with other files
        defer[path] = data
    else:
        atomic_write_bytes(path, data)
    return path
