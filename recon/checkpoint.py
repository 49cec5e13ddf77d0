"""Periodic, atomic checkpoints of a solver's state, for ``recon run --checkpoint-every N --resume``.

Protocol (what a solver implements to be resumable): it accepts two keyword arguments,

* ``state_callback(k, state)`` -- called after iteration ``k`` (0-based) with a dict that fully
  determines the rest of the run: tensors / arrays (iterates, dual variables, optimiser moments)
  and JSON-able values (iteration counter, step sizes, the history so far as lists);
* ``resume_state`` -- such a dict (tensors on the solver's device) to continue from
  iteration ``state["iteration"] + 1`` instead of starting afresh.

The checkpointer writes the state every ``N`` iterations to an HDF5 file through a
temporary file and ``os.replace`` (a kill at any moment leaves the previous checkpoint
intact), together with the torch RNG state and a key of the run (input hash, solver,
prior, options, seed), so ``--resume`` refuses a checkpoint of a different run.  A
resumed run gives the same result as an uninterrupted one with the same seed.  Solvers
without the protocol still run; they are restarted from the beginning on ``--resume``
(same result, no time saved) and a note says so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from forward_models.atomic import atomic_write_bytes, stale_temporaries

from .io import MeasurementFileError, h5_bytes

CHECKPOINT_FORMAT = "recon-checkpoint"
CHECKPOINT_VERSION = "1.0"


def _flatten(prefix: str, value: Any, arrays: dict, meta: dict) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        arrays[prefix] = value.detach().cpu().numpy()
        meta[prefix] = {"kind": "tensor", "dtype": str(value.dtype).replace("torch.", "")}
    elif isinstance(value, np.ndarray):
        arrays[prefix] = value
        meta[prefix] = {"kind": "ndarray"}
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value) and \
            any(isinstance(v, (torch.Tensor, np.ndarray, dict)) for v in value.values()):
        meta[prefix] = {"kind": "dict", "keys": list(value)}
        for k, v in value.items():
            _flatten(f"{prefix}/{k}", v, arrays, meta)
    else:
        meta[prefix] = {"kind": "json", "value": _jsonable(value)}


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(t) for t in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(t) for k, t in v.items()}
    if hasattr(v, "as_dict"):
        return _jsonable(v.as_dict())
    return v


def _unflatten(prefix: str, arrays: dict, meta: dict, device):
    import torch

    info = meta[prefix]
    kind = info["kind"]
    if kind == "tensor":
        return torch.from_numpy(np.array(arrays[prefix])).to(device=device, dtype=getattr(torch, info["dtype"]))
    if kind == "ndarray":
        return np.array(arrays[prefix])
    if kind == "dict":
        return {k: _unflatten(f"{prefix}/{k}", arrays, meta, device) for k in info["keys"]}
    return info["value"]


def save_state(path: str | os.PathLike, state: dict, *, iteration: int, run_key: dict) -> None:
    """Write ``state`` (plus the torch RNG state) atomically to an HDF5 checkpoint."""
    import h5py
    import torch

    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    full = dict(state)
    full["_torch_rng"] = torch.get_rng_state()
    meta_root = {"keys": list(full)}
    for k, v in full.items():
        _flatten(k, v, arrays, meta)

    def fill(f):
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["format_version"] = CHECKPOINT_VERSION
        f.attrs["iteration"] = int(iteration)
        f.attrs["run_key"] = json.dumps(run_key, sort_keys=True, default=str)
        f.attrs["meta"] = json.dumps({"root": meta_root, "items": meta})
        g = f.create_group("arrays")
        for i, (k, a) in enumerate(arrays.items()):
            ds = g.create_dataset(f"a{i}", data=a)
            ds.attrs["key"] = k

    atomic_write_bytes(path, h5_bytes(fill))


def _key_json(run_key: dict):
    return json.loads(json.dumps(run_key, sort_keys=True, default=str))


def checkpoint_run_key(path: str | os.PathLike) -> dict | None:
    """The run key of the recon checkpoint at ``path``, or ``None`` if it is not one (or unreadable)."""
    import h5py

    try:
        if not h5py.is_hdf5(str(path)):
            return None
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != CHECKPOINT_FORMAT:
                return None
            key = json.loads(f.attrs["run_key"])
        return key if isinstance(key, dict) else None
    except (OSError, KeyError, ValueError, TypeError):
        return None


def replaceable_checkpoint(path: str | os.PathLike, run_key: dict) -> bool:
    """Whether an existing ``path`` may be (over)written as the checkpoint of the run ``run_key``.

    Only a recon checkpoint of the same run may; a checkpoint of another run is refused with its
    own message (it may hold someone's progress), anything else is not recon's.
    """
    key = checkpoint_run_key(path)
    if key is None:
        return False
    if key != _key_json(run_key):
        raise MeasurementFileError(path, "checkpoint path holds the checkpoint of a different run (input, solver, "
                                         "prior, options or seed differ); remove it or choose another --checkpoint")
    return True


def _state_error(path, problem: str) -> MeasurementFileError:
    return MeasurementFileError(path, f"checkpoint is invalid: {problem}; remove it to start afresh")


def _check_state(path, state: dict, iteration) -> int:
    """Field checks that need no solver: the iteration a whole number >= 0, every array finite."""
    if isinstance(iteration, bool) or not isinstance(iteration, (int, np.integer)) or iteration < 0:
        raise _state_error(path, f"iteration {iteration!r} is not a whole number >= 0")
    if "iteration" in state and state["iteration"] != iteration:
        raise _state_error(path, f"iteration {state['iteration']!r} differs from the file's {iteration}")

    def walk(prefix, value):
        import torch

        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, (torch.Tensor, np.ndarray)) and prefix != "_torch_rng":
            arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
                raise _state_error(path, f"{prefix} contains NaN or Inf")
        elif isinstance(value, float) and not np.isfinite(value):
            raise _state_error(path, f"{prefix} is {value}")

    for k, v in state.items():
        walk(k, v)
    return int(iteration)


def load_state(path: str | os.PathLike, *, run_key: dict | None = None, device="cpu") -> tuple[dict, int]:
    """Read a checkpoint; ``(state, iteration)``.  Raises :class:`MeasurementFileError` if it is unusable.

    Besides the run key, every field is checked: the iteration is a whole number >= 0 that
    agrees with the state's, and every array is finite (the solver then checks the iteration
    against its budget and the shapes against the problem, see
    ``recon.solvers.iterative.IterativeSolver.load_state_dict``).
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != CHECKPOINT_FORMAT:
                raise MeasurementFileError(path, "not a recon checkpoint file")
            key = json.loads(f.attrs["run_key"])
            if run_key is not None and key != _key_json(run_key):
                raise MeasurementFileError(path, "checkpoint belongs to a different run (input, solver, prior, "
                                                 "options or seed differ); remove it or drop --resume")
            meta = json.loads(f.attrs["meta"])
            arrays = {ds.attrs["key"]: ds[()] for ds in f["arrays"].values()}
            iteration = f.attrs["iteration"]
        items = meta["items"]
        state = {k: _unflatten(k, arrays, items, device) for k in meta["root"]["keys"]}
    except MeasurementFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, RuntimeError) as e:
        raise MeasurementFileError(path, f"checkpoint cannot be read ({' '.join(str(e).split())[:120]})") from None
    return state, _check_state(path, state, iteration.item() if isinstance(iteration, np.generic) else iteration)


class Checkpointer:
    """Run :func:`recon.workflow.reconstruct` with periodic checkpoints and optional resume.

    Parameters
    ----------
    path : path
        Checkpoint file (HDF5).
    every : int
        Write a checkpoint every ``every`` iterations (0: never; resume only).
    resume : bool
        Continue from ``path`` when it exists.
    run_key : dict
        Identifies the run; a checkpoint with another key is refused.
    """

    def __init__(self, path, *, every: int = 0, resume: bool = False, run_key: dict | None = None):
        if every < 0:
            raise ValueError(f"every must be >= 0, got {every}")
        self.path, self.every, self.resume = Path(path), int(every), bool(resume)
        self.run_key = dict(run_key or {})
        self.resumed_from: int | None = None

    def run(self, measurement, *, solver: str, prior: str, device: str = "cpu", **kwargs):
        from . import workflow
        from .methods import default_solver
        from .solvers import get_solver

        name = default_solver(prior, measurement) if solver in (None, "auto") else solver
        if not get_solver(name).resumable:
            print(f"note: solver {name} does not expose its state; checkpoints are not written and --resume "
                  "restarts from the beginning (same result)", file=sys.stderr)
            return workflow.reconstruct(measurement, solver=name, prior=prior, device=device, **kwargs)
        state = None
        if self.resume and self.path.exists():
            state, it = load_state(self.path, run_key=self.run_key, device=device)
            self.resumed_from = it
            print(f"resuming from {self.path} after iteration {it + 1}", file=sys.stderr)

        def on_state(k: int, st: dict) -> None:
            if self.every and (k + 1) % self.every == 0:
                save_state(self.path, st, iteration=k, run_key=self.run_key)

        from .solvers.common import ResumeStateError

        try:
            return workflow.reconstruct(measurement, solver=name, prior=prior, device=device, resume_state=state,
                                        state_callback=on_state, **kwargs)
        except ResumeStateError as e:  # the solver found the state inconsistent with this run
            raise _state_error(self.path, str(e)) from None

    def cleanup(self) -> None:
        """Remove the checkpoint, and temporaries an interrupted checkpoint write left, once the
        final output is safely written."""
        for p in [self.path, *stale_temporaries(self.path)]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
