"""One registry of forward models: tests, the command line and sweeps iterate over it.

A forward model appears everywhere (adjoint tests, ``recon simulate``,
``recon compare``) by calling :func:`register` once in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .base import LinearOperator


@dataclass(frozen=True)
class OperatorEntry:
    """A registered forward model.

    Attributes
    ----------
    name : str
        Registry key, also the ``forward_model`` attribute of measurement files.
    cls : type
        The :class:`LinearOperator` subclass; rebuilt with ``cls.from_geometry``.
    example : callable
        ``example(dtype=torch.float64) -> LinearOperator``: a small instance for
        tests (dense-matrix checks need ``prod(in_shape) * prod(out_shape)`` small).
    description : str
        One line for ``--help`` and reports.
    image_input : bool
        Whether the unknown is a 2-D image ``(C, H, W)`` (so 2-D image priors apply).
    tags : tuple of str
        Free-form labels (``"ct"``, ``"astronomy"``, ...).
    """

    name: str
    cls: type
    example: Callable[..., LinearOperator]
    description: str
    image_input: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)

    def build(self, geometry: dict[str, Any]) -> LinearOperator:
        """Rebuild an operator from geometry values."""
        return self.cls.from_geometry(geometry)


REGISTRY: dict[str, OperatorEntry] = {}


def register(name: str, cls: type, *, example, description: str, image_input: bool = True, tags=()) -> None:
    """Add a forward model to :data:`REGISTRY` (called at import of its module)."""
    if name in REGISTRY and REGISTRY[name].cls is not cls:
        raise ValueError(f"forward model {name!r} is already registered to {REGISTRY[name].cls.__name__}")
    if "registry_name" not in cls.__dict__:  # the first (primary) name is what files record
        cls.registry_name = name
    REGISTRY[name] = OperatorEntry(name, cls, example, description, image_input, tuple(tags))


def primary_names() -> list[str]:
    """Registry names of measurement models (what the CLI offers to simulate).

    Left out: variants of another entry and regularisation operators (the ``"regularizer"`` tag,
    e.g. the finite differences of total variation).
    """
    return [n for n, e in REGISTRY.items() if not {"variant", "regularizer"} & set(e.tags)]


def get_entry(name: str) -> OperatorEntry:
    """The registry entry ``name``, or a ``ValueError`` listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown forward model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def write_geometry(group, op: LinearOperator) -> None:
    """Write ``op.geometry()`` into an h5py group, one dataset per argument with a ``units`` attribute.

    A value of ``None`` (an optional argument left unknown) is omitted; ``from_geometry`` reads
    its absence as the default.
    """
    for key, (value, units) in op.geometry().items():
        if value is None:
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, str):
            ds = group.create_dataset(key, data=value)
        else:
            ds = group.create_dataset(key, data=np.asarray(value))
        ds.attrs["units"] = units


def read_geometry(group) -> dict[str, Any]:
    """Read a geometry group back into ``{name: value}`` (strings decoded, 0-d arrays to scalars)."""
    out: dict[str, Any] = {}
    for key, ds in group.items():
        val = ds[()]
        if isinstance(val, bytes):
            val = val.decode()
        elif isinstance(val, np.ndarray) and val.ndim == 0:
            val = val.item()
        elif isinstance(val, np.generic):
            val = val.item()
        out[key] = val
    return out
