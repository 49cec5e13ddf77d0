"""Measurement files (``format = "recon-measurement"``): the :class:`Measurement` record, its
validation, and writing and reading it (``data/FORMAT.md`` describes the layout)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forward_models.atomic import atomic_write_bytes

from .errors import MeasurementFileError, short_repr
from .format import (FORMAT_MEASUREMENT, FORMAT_RECONSTRUCTION, FORMAT_VERSION, SUPPORTED_MAJOR, json_default,
                     parse_version, software_version, squeeze_batch, to_numpy, utc_now)
from .geometry import (build_operator, check_geometry_values, forward_model_registry, geometry_fingerprint,
                       normalise_geometry, read_geometry_group, write_geometry)
from .hdf5 import (attr_str, attr_text, check_array, checked_dataset, h5_bytes, open_h5, placeholder, read_dataset,
                   read_file)
from .limits import allow_external_default, check_declared_work, check_local_storage
from .output import check_output_path


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

        key = (self.forward_model, geometry_fingerprint(self.geometry), str(device or "cpu"))
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
            geom[key] = to_numpy(value) if not isinstance(value, (str, int, float, list, tuple)) else value
            units_map[key] = u
        return cls(y=squeeze_batch(to_numpy(y), op.out_shape), forward_model=name, geometry=geom,
                   geometry_units=units_map, sigma=None if sigma is None else float(sigma),
                   weights=None if weights is None else squeeze_batch(to_numpy(weights), op.out_shape),
                   mask=None if mask is None else squeeze_batch(to_numpy(mask), op.out_shape).astype(bool),
                   ground_truth=None if ground_truth is None else squeeze_batch(to_numpy(ground_truth),
                                                                                  op.in_shape),
                   provenance=dict(provenance or {}), units=units,
                   dims=list(dims or getattr(op, "out_dims", None) or []))  # an operator may name its data axes


def _write_str_attr(obj, key: str, value: str) -> None:
    obj.attrs[key] = str(value)


def _write_provenance(group, prov: dict) -> None:
    for key in ("generator", "command", "software_version"):
        _write_str_attr(group, key, prov.get(key, ""))
    seed = prov.get("seed")
    group.attrs["seed"] = -1 if seed is None else int(seed)  # -1: not seeded
    group.attrs["config"] = json.dumps(prov.get("config", {}), sort_keys=True, default=json_default)
    group.attrs["parents"] = json.dumps(list(prov.get("parents", [])), sort_keys=True)


def write_measurement_groups(f, m: Measurement) -> None:
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
    write_geometry(f.create_group("geometry"), m.geometry, m.geometry_units)
    if m.ground_truth is not None:
        gt = f.create_group("ground_truth").create_dataset("x", data=np.ascontiguousarray(m.ground_truth))
        gt.attrs["units"] = "1"
    prov = dict(m.provenance)
    prov.setdefault("software_version", software_version())
    _write_provenance(f.create_group("provenance"), prov)


def measurement_bytes(m: Measurement, *, path="<memory>") -> bytes:
    """Validate ``m`` and return the bytes of its measurement file."""
    _validate_measurement(m, path)

    def fill(f):
        f.attrs["format"] = FORMAT_MEASUREMENT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = utc_now()
        f.attrs["software_version"] = software_version()
        write_measurement_groups(f, m)

    return h5_bytes(fill)


def write_measurement(path: str | os.PathLike, m: Measurement) -> Path:
    """Validate ``m`` and write it atomically to ``path`` (HDF5).

    The measurement is checked with the same rules as reading (operator rebuilt
    from the geometry, shapes, dtypes, finiteness), so a file this writes always reads.
    """
    path = check_output_path(path)
    return atomic_write_bytes(path, measurement_bytes(m, path=path))


def _validate_measurement(m: Measurement, path, *, values: bool = True) -> Any:
    """Check a :class:`Measurement` in memory (same rules as reading); return the operator.

    ``values=False`` checks shapes and dtypes only (for :func:`read_header`'s placeholders).
    """
    check_geometry_values(m.geometry, m.geometry_units, path)
    normalise_geometry(m.forward_model, m.geometry, m.geometry_units, path)
    check_declared_work(m.forward_model, m.geometry, path)
    entry, op = build_operator(m.forward_model, m.geometry, path)
    check_array(np.asarray(m.y), "measurement y", path, shape=op.out_shape,
                 allow_complex=bool(getattr(op, "output_complex", False)), values=values)
    if m.sigma is not None:
        s = m.sigma
        if not (isinstance(s, (int, float, np.floating, np.integer)) and math.isfinite(float(s)) and s > 0):
            raise MeasurementFileError(path, f"measurement sigma must be a finite number > 0, got {s!r}")
    if m.weights is not None:
        w = check_array(np.asarray(m.weights), "measurement weights", path, shape=op.out_shape, values=values)
        if values and np.any(w < 0):
            raise MeasurementFileError(path, "measurement weights must be >= 0")
    if m.mask is not None:
        check_array(np.asarray(m.mask), "measurement mask", path, shape=op.out_shape, kinds="b")
    if m.ground_truth is not None:
        check_array(np.asarray(m.ground_truth), "ground truth x", path, shape=op.in_shape,
                     allow_complex=bool(getattr(op, "input_complex", False)), values=values)
    return op


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
            prov[key] = attr_text(g.attrs[key], f"provenance {key}", path)
    if "seed" in g.attrs:
        seed = np.asarray(g.attrs["seed"])
        if seed.shape != () or seed.dtype.kind not in "iu":
            raise MeasurementFileError(path, f"provenance seed must be one integer, got "
                                             f"{short_repr(g.attrs['seed'])}")
        seed = int(seed)
        prov["seed"] = None if seed < 0 else seed
    for key, kind in (("config", dict), ("parents", list)):
        if key in g.attrs:
            text = attr_text(g.attrs[key], f"provenance {key}", path)
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise MeasurementFileError(path, f"provenance {key} is not valid JSON") from None
            if not isinstance(value, kind):
                raise MeasurementFileError(path, f"provenance {key} must be a JSON "
                                                 f"{'object' if kind is dict else 'list'}, got {short_repr(value)}")
            prov[key] = value
    for par in prov.get("parents", []):
        if not (isinstance(par, dict) and all(isinstance(par.get(k, ""), str) for k in ("path", "sha256"))):
            raise MeasurementFileError(path, f"provenance parents must be a list of {{\"path\", \"sha256\"}} "
                                             f"objects, got {short_repr(par)}")
    return prov


def read_measurement_open(f, path, *, expected_format: str | None, values: bool = True,
                           allow_external: bool | None = None) -> Measurement:
    """Read and validate the measurement groups of open file ``f`` (a measurement or reconstruction file).

    ``expected_format`` (or ``None`` for either), ``values=False`` for placeholders instead of data
    (:func:`recon.io.read_header`), ``allow_external`` as in :func:`read_measurement`.
    """
    fmt = attr_str(f, "format", path, "the root group")
    if fmt not in (FORMAT_MEASUREMENT, FORMAT_RECONSTRUCTION):
        raise MeasurementFileError(path, f"unknown format {fmt!r}; expected {FORMAT_MEASUREMENT!r}")
    if expected_format is not None and fmt != expected_format:
        raise MeasurementFileError(path, f"file is a {fmt!r}, expected a {expected_format!r}")
    version = attr_str(f, "format_version", path, "the root group")
    major, _minor = parse_version(version, path)
    if major > SUPPORTED_MAJOR:
        raise MeasurementFileError(path, f"format_version {version} is newer than this software supports "
                                         f"({FORMAT_VERSION}); upgrade recon")
    if major < 1:
        raise MeasurementFileError(path, f"format_version {version} is not supported")
    name = attr_str(f, "forward_model", path, "the root group")
    check_local_storage(f, path, allow_external=allow_external_default() if allow_external is None
                        else allow_external)
    geometry, units = read_geometry_group(f, path)
    check_geometry_values(geometry, units, path)
    geometry, units = normalise_geometry(name, geometry, units, path)
    if "measurement" not in f or "y" not in f["measurement"]:
        raise MeasurementFileError(path, "missing dataset /measurement/y")

    def array(key):
        return read_dataset(f, key, path) if values else placeholder(checked_dataset(f, key, path))

    for key in ("measurement/y", "measurement/weights", "measurement/mask", "ground_truth/x"):
        if key in f:
            checked_dataset(f, key, path)  # every declared size within the limit before anything is read
    ds = f["measurement/y"]
    yunits = attr_text(ds.attrs.get("units", "1"), "units of /measurement/y", path)
    dims = []
    if "dims" in ds.attrs:
        try:
            dims = json.loads(attr_text(ds.attrs["dims"], "dims of /measurement/y", path))
        except json.JSONDecodeError:
            raise MeasurementFileError(path, "dims of /measurement/y is not valid JSON") from None
        if not (isinstance(dims, list) and all(isinstance(d, str) for d in dims)):
            raise MeasurementFileError(path, f"dims of /measurement/y must be a JSON list of names, got "
                                             f"{short_repr(dims)}")
    sigma = None
    if "sigma" in f["measurement"]:
        sds = checked_dataset(f, "measurement/sigma", path)
        if sds.size != 1 or sds.dtype.kind not in "fiu":
            raise MeasurementFileError(path, f"measurement sigma must be one number, got shape {sds.shape} "
                                             f"dtype {sds.dtype}")
        sigma = float(np.asarray(read_dataset(f, "measurement/sigma", path)).reshape(()))
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
                    created=None if created is None else attr_text(created, "attribute 'created'", path),
                    software_version=None if sw is None else attr_text(sw, "attribute 'software_version'", path),
                    header_only=not values)
    op = _validate_measurement(m, path, values=values)
    m._operators[(m.forward_model, geometry_fingerprint(m.geometry), "cpu")] = op  # built once
    return m


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
    m, digest = read_file(path, lambda f: read_measurement_open(f, Path(path), expected_format=None,
                                                                   allow_external=allow_external), values=True)
    m.sha256 = digest
    return m


def file_kind(path: str | os.PathLike) -> str:
    """``"recon-measurement"`` or ``"recon-reconstruction"`` (validated enough to tell)."""
    path = Path(path)
    with open_h5(path) as f:
        return attr_str(f, "format", path, "the root group")
