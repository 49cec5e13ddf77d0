"""Per-iteration records of a solver run, writable to and readable from HDF5."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The per-iteration series every solver may fill (empty lists are simply not written).
SERIES = ("iteration", "objective", "primal_residual", "dual_residual", "sigma", "step", "time", "psnr", "ssim",
          "cg_iterations", "lr")


@dataclass
class History:
    """What a solver did, one entry per recorded iteration.

    Attributes
    ----------
    iteration : list of int
        Iteration index (0-based) of each record.
    objective : list of float
        Objective value (solver-specific; documented by each solver), summed over the batch.
    primal_residual, dual_residual : list of float
        ADMM residuals ``‖x − v‖`` and ``ρ‖v − v_prev‖`` (relative, see the solver).
    sigma : list of float
        Denoiser noise level used at each iteration (image units).
    step : list of float
        Penalty ``ρ`` / step ``τ`` / ``α`` of the iteration (solver-specific).
    time : list of float
        Seconds since the solver started, at the end of the iteration.
    psnr, ssim : list of float
        Mean over the batch of the (clipped to the data range) estimate against the truth, when
        the truth was given.
    cg_iterations : list of int
        Inner conjugate-gradient iterations of the data prox (0 for closed forms).
    lr : list of float
        Learning rate (coordinate networks).
    meta : dict
        Run description: solver name, hyper-parameters, stop reason, prox method... (JSON-able).
    extra : dict of str -> list
        Any further series a solver records.
    artifacts : dict
        Objects that are not series (the fitted coordinate field); not serialised.
    """

    iteration: list = field(default_factory=list)
    objective: list = field(default_factory=list)
    primal_residual: list = field(default_factory=list)
    dual_residual: list = field(default_factory=list)
    sigma: list = field(default_factory=list)
    step: list = field(default_factory=list)
    time: list = field(default_factory=list)
    psnr: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    cg_iterations: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    #: Python objects a run produced (e.g. the fitted field); never written to HDF5.
    artifacts: dict = field(default_factory=dict, repr=False, compare=False)

    def record(self, **values: Any) -> None:
        """Append one value to each named series (unknown names go to :attr:`extra`)."""
        for k, v in values.items():
            if v is None:
                continue
            v = float(v) if not isinstance(v, (int, np.integer)) or isinstance(v, bool) else int(v)
            if k in SERIES:
                getattr(self, k).append(v)
            else:
                self.extra.setdefault(k, []).append(v)

    def __len__(self) -> int:
        return len(self.iteration)

    @property
    def last(self) -> dict:
        """The latest value of every non-empty series."""
        out = {k: getattr(self, k)[-1] for k in SERIES if getattr(self, k)}
        out.update({k: v[-1] for k, v in self.extra.items() if v})
        return out

    def as_dict(self) -> dict:
        """Non-empty series as ``{name: list}`` (extra series included), plus ``meta``."""
        out = {k: list(getattr(self, k)) for k in SERIES if getattr(self, k)}
        out.update({k: list(v) for k, v in self.extra.items() if v})
        out["meta"] = dict(self.meta)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """Inverse of :meth:`as_dict` (used to resume a run from a checkpoint's state)."""
        h = cls()
        for k, v in d.items():
            if k == "meta":
                h.meta = dict(v)
            elif k in SERIES:
                setattr(h, k, list(v))
            else:
                h.extra[k] = list(v)
        return h

    def to_hdf5(self, group) -> None:
        """Write into an h5py group: one 1-D dataset per non-empty series, ``meta`` as attributes.

        Extra series are written under ``extra/``; non-scalar meta values are stored as JSON strings.
        """
        for k in SERIES:
            vals = getattr(self, k)
            if vals:
                group.create_dataset(k, data=np.asarray(vals))
        if any(self.extra.values()):
            sub = group.require_group("extra")
            for k, vals in self.extra.items():
                if vals:
                    sub.create_dataset(k, data=np.asarray(vals))
        for k, v in self.meta.items():
            if isinstance(v, (bool, int, float, str, np.integer, np.floating)):
                group.attrs[k] = v
            elif v is None:
                group.attrs[k] = "null"
                group.attrs[f"{k}__json"] = True
            else:
                group.attrs[k] = json.dumps(v, default=str)
                group.attrs[f"{k}__json"] = True

    @classmethod
    def from_hdf5(cls, group) -> "History":
        """Read a group written by :meth:`to_hdf5`."""
        h = cls()
        for k in SERIES:
            if k in group:
                setattr(h, k, np.asarray(group[k]).tolist())
        if "extra" in group:
            h.extra = {k: np.asarray(ds).tolist() for k, ds in group["extra"].items()}
        attrs = dict(group.attrs)
        for k, v in attrs.items():
            if k.endswith("__json"):
                continue
            if isinstance(v, bytes):
                v = v.decode()
            if attrs.get(f"{k}__json"):
                v = json.loads(v)
            elif isinstance(v, np.generic):
                v = v.item()
            h.meta[k] = v
        return h


__all__ = ["History", "SERIES"]
