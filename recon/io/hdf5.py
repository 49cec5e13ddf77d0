"""Checked access to HDF5 files: building one in memory, opening, reading datasets and attributes.

Every failure is a :class:`~recon.io.errors.MeasurementFileError` naming the file and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from forward_models.atomic import sha256_file

from .errors import MeasurementFileError, short_error, short_repr
from .limits import check_dataset_size


_FLOAT_DTYPES = (np.float32, np.float64)
_COMPLEX_DTYPES = (np.complex64, np.complex128)


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


def attr_str(obj, key: str, path, where: str) -> str:
    """The string attribute ``key`` of ``obj`` (``where`` names it in messages); missing or not a string: error."""
    if key not in obj.attrs:
        raise MeasurementFileError(path, f"missing attribute {key!r} on {where}")
    val = obj.attrs[key]
    if isinstance(val, bytes):
        val = val.decode("utf-8", "replace")
    if isinstance(val, np.ndarray) or not isinstance(val, str):
        raise MeasurementFileError(path, f"attribute {key!r} on {where} must be a string, got {val!r}")
    return val


def open_h5(path: Path):
    """Open ``path`` read-only as HDF5, or one :class:`MeasurementFileError` saying why not."""
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
        raise MeasurementFileError(path, f"HDF5 file is corrupt or truncated ({short_error(e)})") from None


def read_dataset(f, key: str, path):
    """The values of dataset ``key`` of open file ``f`` (size-checked first)."""
    ds = checked_dataset(f, key, path)
    try:
        return ds[()]
    except MemoryError:
        raise MeasurementFileError(path, f"dataset /{key} {tuple(ds.shape)} does not fit in memory") from None
    except (OSError, RuntimeError, ValueError) as e:
        raise MeasurementFileError(path, f"dataset /{key} cannot be read, the file may be truncated "
                                         f"({short_error(e)})") from None


def checked_dataset(f, key: str, path, *, limit: bool = True):
    """The dataset ``key`` (not read), its declared size checked against :func:`max_elements`."""
    import h5py

    try:
        ds = f[key]
    except KeyError:
        raise MeasurementFileError(path, f"missing dataset /{key}") from None
    if not isinstance(ds, h5py.Dataset):
        raise MeasurementFileError(path, f"/{key} is a {type(ds).__name__.lower()}, expected a dataset")
    if limit:
        check_dataset_size(ds, f"/{key}", path)
    return ds


def placeholder(ds) -> np.ndarray:
    """Zeros of ``ds``'s declared shape and dtype without reading or allocating them."""
    return np.broadcast_to(np.zeros((), dtype=ds.dtype), ds.shape or ())


def check_array(a, name: str, path, *, shape=None, kinds="f", allow_complex=False, values=True) -> np.ndarray:
    """Check an array's dtype (``kinds``: ``"f"`` float, ``"b"`` bool), shape and (with ``values``) finiteness."""
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


def attr_text(value, what: str, path) -> str:
    """An attribute value as text (bytes are decoded); anything else is an error naming ``what``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise MeasurementFileError(path, f"{what} must be a string, got {short_repr(value)}")
    return value


def read_file(path, read, *, values: bool):
    """Open ``path`` and ``read(f)``; with ``values`` also hash the bytes and make sure they did not change.

    The hash is taken before parsing and the file's identity (inode, size, modification time)
    compared before and after, so the hash is that of the bytes actually read.
    """
    path = Path(path)
    before = _identity(path) if values else None
    digest = sha256_file(path) if values and path.is_file() else None
    f = open_h5(path)
    try:
        with f:
            out = read(f)
    except MeasurementFileError:
        raise
    except MemoryError:
        raise MeasurementFileError(path, "file does not fit in memory") from None
    except (OSError, RuntimeError, KeyError, AttributeError, TypeError) as e:  # h5py errors in a damaged file
        raise MeasurementFileError(path, f"HDF5 file is damaged ({short_error(e)})") from None
    if values and _identity(path) != before:
        raise MeasurementFileError(path, "file changed while it was being read; read it again")
    return out, digest


def _identity(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
