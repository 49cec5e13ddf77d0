"""Reconstruction files (``format = "recon-reconstruction"``): the :class:`Reconstruction` record
(an estimate plus its measurement, solver, options, history and metrics), writing it with its
preview all-or-nothing, and reading it back (or only its header)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forward_models.atomic import atomic_write_files

from .errors import MeasurementFileError, short_repr
from .format import FORMAT_RECONSTRUCTION, FORMAT_VERSION, json_default, software_version, utc_now
from .hdf5 import attr_str, attr_text, check_array, checked_dataset, h5_bytes, placeholder, read_dataset, read_file
from .measurement import Measurement, read_measurement_open, write_measurement_groups
from .output import check_output_path, tag_png


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


def reconstruction_bytes(r: Reconstruction, *, path="<memory>") -> bytes:
    """The bytes of the reconstruction file of ``r`` (measurement groups copied, plus /reconstruction)."""
    m = r.measurement
    x = np.asarray(r.x)
    if not np.all(np.isfinite(x)):
        raise MeasurementFileError(path, "reconstruction contains NaN or Inf; nothing written")

    def fill(f):
        f.attrs["format"] = FORMAT_RECONSTRUCTION
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["created"] = utc_now()
        f.attrs["software_version"] = software_version()
        mm = dataclasses.replace(m)
        if r.provenance:
            mm.provenance = r.provenance
        write_measurement_groups(f, mm)
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


def read_header(path: str | os.PathLike, *, allow_external: bool | None = None):
    """Read a measurement or reconstruction file's metadata without reading its data arrays.

    The geometry (size-limited) and the scalar noise level are read and validated, the operator
    is built and every array's declared shape and dtype is checked; the arrays themselves are
    zero placeholders (``header_only=True``) and their values (NaN, negative weights) are not
    checked.  Returns a :class:`Measurement`, or a :class:`Reconstruction` for reconstruction files.
    """
    path = Path(path)

    def read(f):
        fmt = attr_str(f, "format", path, "the root group")
        m = read_measurement_open(f, path, expected_format=None, values=False, allow_external=allow_external)
        if fmt == FORMAT_RECONSTRUCTION:
            return _read_reconstruction_open(f, path, m, values=False)
        return m

    return read_file(path, read, values=False)[0]


def _read_reconstruction_open(f, path, m: Measurement, *, values: bool) -> Reconstruction:
    import h5py

    if "reconstruction" not in f or "x" not in f["reconstruction"]:
        raise MeasurementFileError(path, "missing dataset /reconstruction/x")
    g = f["reconstruction"]
    op = m.operator()
    xds = checked_dataset(f, "reconstruction/x", path)
    x = check_array(read_dataset(f, "reconstruction/x", path) if values else placeholder(xds),
                     "reconstruction x", path, shape=op.in_shape,
                     allow_complex=bool(getattr(op, "input_complex", False)), values=values)
    attrs = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
    try:
        options = json.loads(attr_text(attrs.pop("options", "{}"), "reconstruction options", path))
    except json.JSONDecodeError:
        raise MeasurementFileError(path, "reconstruction options are not valid JSON") from None
    if not isinstance(options, dict):
        raise MeasurementFileError(path, f"reconstruction options must be a JSON object, got {short_repr(options)}")
    history = {}
    if "history" in g:
        if not isinstance(g["history"], h5py.Group):
            raise MeasurementFileError(path, "/reconstruction/history must be a group")
        for k in g["history"]:
            ds = checked_dataset(f, f"reconstruction/history/{k}", path)
            history[k] = np.asarray(read_dataset(f, f"reconstruction/history/{k}", path)) if values \
                else placeholder(ds)
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
        m = read_measurement_open(f, path, expected_format=FORMAT_RECONSTRUCTION, allow_external=allow_external)
        return _read_reconstruction_open(f, path, m, values=True)

    r, digest = read_file(path, read, values=True)
    r.measurement.sha256 = digest
    return r
