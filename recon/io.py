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
import tempfile
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

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


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


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
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success fsync it and rename it to ``path``.

    On any exception (or if the process is killed) the destination is untouched and
    the temporary file is removed (a kill leaves only a hidden ``.<name>.*.tmp`` file).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:  # mkstemp makes 0600 files; give the output the permissions a plain open() would
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
    finally:
        os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_output_path(out: str | os.PathLike, inputs=(), *, what: str = "output") -> Path:
    """Refuse an output path whose folder is missing or that would overwrite an input file.

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


def write_measurement(path: str | os.PathLike, m: Measurement) -> Path:
    """Validate ``m`` and write it atomically to ``path`` (HDF5).

    The measurement is checked with the same rules as reading (operator rebuilt
    from the geometry, shapes, dtypes, finiteness), so a file this writes always reads.
    """
    import h5py

    path = check_output_path(path)
    _validate_measurement(m, path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_MEASUREMENT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["created"] = _now()
            f.attrs["software_version"] = software_version()
            _write_measurement_groups(f, m)
    return path


def write_reconstruction(path: str | os.PathLike, r: Reconstruction, *, inputs=()) -> Path:
    """Write a reconstruction file atomically (measurement groups copied, plus /reconstruction)."""
    import h5py

    path = check_output_path(path, inputs)
    m = r.measurement
    x = np.asarray(r.x)
    if not np.all(np.isfinite(x)):
        raise MeasurementFileError(path, "reconstruction contains NaN or Inf; nothing written")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
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
    try:
        return f[key][()]
    except KeyError:
        raise MeasurementFileError(path, f"missing dataset {key}") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise MeasurementFileError(path, f"dataset {key} cannot be read, the file may be truncated "
                                         f"({_short(e)})") from None


def _check_array(a, name: str, path, *, shape=None, kinds="f", allow_complex=False) -> np.ndarray:
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
    if a.dtype != np.bool_ and not np.all(np.isfinite(a)):
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


def _validate_measurement(m: Measurement, path) -> Any:
    """Check a :class:`Measurement` in memory (same rules as reading); return the operator."""
    _check_geometry_values(m.geometry, m.geometry_units, path)
    entry, op = _build_operator(m.forward_model, m.geometry, path)
    _check_array(np.asarray(m.y), "measurement y", path, shape=op.out_shape,
                 allow_complex=bool(getattr(op, "output_complex", False)))
    if m.sigma is not None:
        s = m.sigma
        if not (isinstance(s, (int, float, np.floating, np.integer)) and math.isfinite(float(s)) and s > 0):
            raise MeasurementFileError(path, f"measurement sigma must be a finite number > 0, got {s!r}")
    if m.weights is not None:
        w = _check_array(np.asarray(m.weights), "measurement weights", path, shape=op.out_shape)
        if np.any(w < 0):
            raise MeasurementFileError(path, "measurement weights must be >= 0")
    if m.mask is not None:
        _check_array(np.asarray(m.mask), "measurement mask", path, shape=op.out_shape, kinds="b")
    if m.ground_truth is not None:
        _check_array(np.asarray(m.ground_truth), "ground truth x", path, shape=op.in_shape,
                     allow_complex=bool(getattr(op, "input_complex", False)))
    return op


def _read_provenance(f, path) -> dict:
    if "provenance" not in f:
        return {}
    g = f["provenance"]
    prov: dict[str, Any] = {}
    for key in ("generator", "command", "software_version"):
        if key in g.attrs:
            val = g.attrs[key]
            prov[key] = val.decode() if isinstance(val, bytes) else str(val)
    if "seed" in g.attrs:
        seed = int(np.asarray(g.attrs["seed"]).item())
        prov["seed"] = None if seed < 0 else seed
    for key in ("config", "parents"):
        if key in g.attrs:
            text = g.attrs[key]
            text = text.decode() if isinstance(text, bytes) else str(text)
            try:
                prov[key] = json.loads(text)
            except json.JSONDecodeError:
                raise MeasurementFileError(path, f"provenance {key} is not valid JSON") from None
    return prov


def _read_measurement_open(f, path, *, expected_format: str | None) -> Measurement:
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
    if "geometry" not in f:
        raise MeasurementFileError(path, "missing group /geometry")
    geo = f["geometry"]
    from forward_models import read_geometry

    try:
        geometry = read_geometry(geo)
    except (OSError, RuntimeError, ValueError, AttributeError, TypeError) as e:
        raise MeasurementFileError(path, f"geometry cannot be read ({_short(e)})") from None
    units = {}
    for key in geo:
        if "units" in geo[key].attrs:
            u = geo[key].attrs["units"]
            units[key] = u.decode() if isinstance(u, bytes) else str(u)
    if "measurement" not in f or "y" not in f["measurement"]:
        raise MeasurementFileError(path, "missing dataset /measurement/y")
    y = _read_dataset(f, "measurement/y", path)
    ds = f["measurement/y"]
    yunits = ds.attrs.get("units", "1")
    yunits = yunits.decode() if isinstance(yunits, bytes) else str(yunits)
    dims = []
    if "dims" in ds.attrs:
        with contextlib.suppress(Exception):
            dims = list(json.loads(ds.attrs["dims"]))
    sigma = None
    if "sigma" in f["measurement"]:
        s = np.asarray(_read_dataset(f, "measurement/sigma", path))
        if s.size != 1 or s.dtype.kind not in "fiu":
            raise MeasurementFileError(path, f"measurement sigma must be one number, got shape {s.shape} "
                                             f"dtype {s.dtype}")
        sigma = float(s.reshape(()))
        if not (math.isfinite(sigma) and sigma > 0):
            raise MeasurementFileError(path, f"measurement sigma must be a finite number > 0, got {sigma}")
    weights = _read_dataset(f, "measurement/weights", path) if "weights" in f["measurement"] else None
    mask = _read_dataset(f, "measurement/mask", path) if "mask" in f["measurement"] else None
    gt = None
    if "ground_truth" in f:
        if "x" not in f["ground_truth"]:
            raise MeasurementFileError(path, "group /ground_truth has no dataset x")
        gt = _read_dataset(f, "ground_truth/x", path)
    m = Measurement(y=np.asarray(y), forward_model=name, geometry=geometry, geometry_units=units, sigma=sigma,
                    weights=weights, mask=mask, ground_truth=gt, provenance=_read_provenance(f, path),
                    units=yunits, dims=dims, path=str(path), format_version=version,
                    created=f.attrs.get("created"), software_version=f.attrs.get("software_version"))
    if isinstance(m.created, bytes):
        m.created = m.created.decode()
    _validate_measurement(m, path)
    return m


def read_measurement(path: str | os.PathLike) -> Measurement:
    """Read and validate a measurement file (a reconstruction file also works: its measurement).

    Raises
    ------
    MeasurementFileError
        One line naming the file and the problem, for every way the file can be wrong.
    """
    path = Path(path)
    f = _open_h5(path)
    try:
        with f:
            return _read_measurement_open(f, path, expected_format=None)
    except MeasurementFileError:
        raise
    except (OSError, RuntimeError, KeyError) as e:  # h5py errors deep in a damaged file
        raise MeasurementFileError(path, f"HDF5 file is damaged ({_short(e)})") from None


def read_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read and validate a reconstruction file written by :func:`write_reconstruction`."""
    path = Path(path)
    f = _open_h5(path)
    try:
        with f:
            m = _read_measurement_open(f, path, expected_format=FORMAT_RECONSTRUCTION)
            if "reconstruction" not in f or "x" not in f["reconstruction"]:
                raise MeasurementFileError(path, "missing dataset /reconstruction/x")
            g = f["reconstruction"]
            op = m.operator()
            x = _check_array(_read_dataset(f, "reconstruction/x", path), "reconstruction x", path,
                             shape=op.in_shape, allow_complex=bool(getattr(op, "input_complex", False)))
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            try:
                options = json.loads(attrs.pop("options", "{}"))
            except json.JSONDecodeError:
                raise MeasurementFileError(path, "reconstruction options are not valid JSON") from None
            history = {k: np.asarray(ds[()]) for k, ds in g["history"].items()} if "history" in g else {}
            solver, prior = str(attrs.pop("solver", "")), str(attrs.pop("prior", ""))
            wsha = str(attrs.pop("weights_sha256", ""))
            metrics = {k: float(v) for k, v in attrs.items() if np.ndim(v) == 0 and not isinstance(v, str)}
            return Reconstruction(x=x, measurement=m, solver=solver, prior=prior, options=options,
                                  history=history, metrics=metrics, weights_sha256=wsha, path=str(path),
                                  provenance=m.provenance)
    except MeasurementFileError:
        raise
    except (OSError, RuntimeError, KeyError) as e:
        raise MeasurementFileError(path, f"HDF5 file is damaged ({_short(e)})") from None


def file_kind(path: str | os.PathLike) -> str:
    """``"recon-measurement"`` or ``"recon-reconstruction"`` (validated enough to tell)."""
    path = Path(path)
    with _open_h5(path) as f:
        return _attr_str(f, "format", path, "the root group")


# ============================================================================ FITS
def write_fits(path: str | os.PathLike, image, *, pixel_scale_deg: float, ra_deg: float, dec_deg: float,
               origin: str = "lower", bunit: str = "Jy/pixel", object_name: str = "", frequency_hz=None,
               history: list[str] | None = None, overwrite_inputs=(), extra_header: dict | None = None) -> Path:
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
    if not (math.isfinite(pixel_scale_deg) and pixel_scale_deg > 0):
        raise ValueError(f"pixel_scale_deg must be finite and > 0, got {pixel_scale_deg}")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg) and -90 <= dec_deg <= 90):
        raise ValueError(f"ra_deg/dec_deg must be finite with |dec_deg| <= 90, got {ra_deg}, {dec_deg}")
    if origin not in ("lower", "upper"):
        raise ValueError(f"origin must be 'lower' or 'upper', got {origin!r}")
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
    hdu = fits.PrimaryHDU(data=img.astype(np.float32), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
        with fits.open(tmp) as check:  # the WCS must parse back as celestial
            wcs_back = WCS(check[0].header)
            if not wcs_back.has_celestial or wcs_back.wcs.radesys.strip() != "ICRS":
                raise RuntimeError("FITS WCS did not read back as a celestial ICRS frame")
    return path
