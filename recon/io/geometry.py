"""The geometry group: the forward-model registry, operator building, units and integer checks,
reading and writing ``/geometry``, and the fingerprint that says when an operator must be rebuilt."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from .errors import MeasurementFileError, short_error
from .format import to_numpy
from .hdf5 import attr_text, checked_dataset


def geometry_fingerprint(geometry: dict) -> str:
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


def write_geometry(group, geometry: dict, units: dict) -> None:
    """One dataset per geometry parameter in ``group``, each with its ``units`` attribute."""
    for key, value in geometry.items():
        value = to_numpy(value) if not isinstance(value, (str, int, float, list, tuple)) else value
        ds = group.create_dataset(key, data=value if isinstance(value, str) else np.asarray(value))
        ds.attrs["units"] = str(units.get(key, ""))


def check_geometry_values(geometry: dict, units: dict, path) -> None:
    """Every geometry parameter has units and holds finite numbers or text."""
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


def build_operator(name: str, geometry: dict, path):
    """``(registry entry, operator)`` of forward model ``name`` built from ``geometry``; errors name the file."""
    REGISTRY = forward_model_registry()
    entry = REGISTRY.get(name)
    if entry is None:
        raise MeasurementFileError(path, f"unknown forward model {name!r}; known: {', '.join(sorted(REGISTRY))} "
                                         "(a model of your own: list its module in RECON_PLUGINS)")
    try:
        return entry, entry.build(geometry)
    except KeyError as e:
        raise MeasurementFileError(path, f"geometry for {name!r} lacks parameter {e.args[0]!r}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise MeasurementFileError(path, f"invalid geometry for {name!r}: {short_error(e)}") from None


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
        exact = got.strip() == want.strip()  # a model's own unit, outside the alias table, is fine as written
        have = _unit_class(got)
        if not exact and (have is None or (have != _unit_class(want) and (have, want) not in _CONVERSIONS)):
            raise MeasurementFileError(path, f"geometry parameter {key!r} has units {got!r}; expected {want!r}")
        if not exact and (have, want) in _CONVERSIONS and have != _unit_class(want):
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


def read_geometry_group(f, path) -> tuple[dict, dict]:
    """``(geometry, units)`` read from ``/geometry`` of open file ``f`` (every dataset size-checked first)."""
    import h5py

    if "geometry" not in f:
        raise MeasurementFileError(path, "missing group /geometry")
    geo = f["geometry"]
    if not isinstance(geo, h5py.Group):
        raise MeasurementFileError(path, "/geometry must be a group")
    for key in geo:
        checked_dataset(f, f"geometry/{key}", path)  # a dataset, of a size within the limit, before reading
    from forward_models import read_geometry

    try:
        geometry = read_geometry(geo)
    except MemoryError:
        raise MeasurementFileError(path, "geometry does not fit in memory") from None
    except (OSError, RuntimeError, ValueError, AttributeError, TypeError) as e:
        raise MeasurementFileError(path, f"geometry cannot be read ({short_error(e)})") from None
    units = {}
    for key in geo:
        if "units" in geo[key].attrs:
            units[key] = attr_text(geo[key].attrs["units"], f"units of geometry parameter {key!r}", path)
    return geometry, units
