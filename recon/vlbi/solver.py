"""The ``vlbi`` solver: :func:`recon.vlbi.imaging.image_vlbi` behind the solver registry's calling convention.

``recon run meas.h5`` on a measurement imported from UVFITS (one carrying the ``vlbi_*`` station
and time tables) chooses this solver for every prior (:attr:`VLBISolverSpec.default_for`); its
built-in priors (``mem`` -- also what ``none`` means here --, ``tv``, ``tsv``, ``l1``, ``coordinate``)
are regularisers it owns, any other prior name is a learned denoiser loaded by the workflow.
The history carries the reduced χ² per data product, the ring measurements and the fitted
station gains (flattened ``(n_scan, n_sta)``: ``gain_amp``, ``gain_phase_deg``, ``gain_shape``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import UAS_PER_RAD, VLBIData, is_vlbi_measurement
from .imaging import OWN_PRIORS, image_vlbi
from .ring import extract_ring

PARAMS = ("prior_fwhm_uas", "flux", "min_uv", "sys_noise", "closure_weight", "amp_weight", "reg_scale", "n_iter",
          "selfcal_rounds", "gain_sigma", "coord_steps", "reg_weights")


class VLBIHistory(dict):
    """Per-round values as 1-D arrays (what reconstruction files store) plus ``meta`` and ``extra_metrics``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.meta: dict = {}
        self.extra_metrics: dict = {}


def run_vlbi(A, y, *, measurement=None, prior=None, prior_name=None, x0=None, truth=None, callback=None,
             device=None, progress=None, seed: int = 0, **params):
    """Image a VLBI measurement; ``(x (1, 1, H, W), history)``.

    ``measurement`` (the :class:`recon.io.Measurement`, with its VLBI tables) is required;
    ``prior`` is a loaded denoiser or None, ``prior_name`` the prior's name.
    """
    unknown = set(params) - set(PARAMS)
    if unknown:
        raise TypeError(f"solver 'vlbi' got unknown option(s) {sorted(unknown)}; accepted: {sorted(PARAMS)}")
    if measurement is None or not is_vlbi_measurement(measurement):
        raise ValueError("solver 'vlbi' needs a measurement imported from UVFITS (recon import OBS.uvfits)")
    data = VLBIData.from_measurement(measurement)
    name = prior_name or "mem"
    if name == "none":
        name = "mem"  # the pipeline's default regulariser
    denoiser = prior if (prior is not None and name not in OWN_PRIORS) else None
    start = None if x0 is None else np.asarray(torch.as_tensor(x0).detach().cpu(), dtype=np.float64).reshape(
        data.meta["npix"], data.meta["npix"])  # recon run --x0: the start (and first prior) image
    x, info = image_vlbi(data, prior=name, denoiser=denoiser, seed=seed, x0=start, **params)
    ps = data.meta["psize_rad"] * UAS_PER_RAD
    ring = extract_ring(x, ps)
    hist = VLBIHistory()
    hist["iteration"] = np.arange(1, len(info["rounds"]) + 1, dtype=np.float64)  # imaging rounds
    hist["round_chi2_cphase"] = np.array([r.get("cphase", np.nan) for r in info["rounds"]])
    hist["round_chi2_logcamp"] = np.array([r.get("logcamp", np.nan) for r in info["rounds"]])
    if info["gains"] is not None:
        g = info["gains"]
        hist["gain_amp"] = np.abs(g).ravel()
        hist["gain_phase_deg"] = np.degrees(np.angle(g)).ravel()
        hist["gain_shape"] = np.asarray(g.shape, dtype=np.float64)
    extra = {f"chi2_{k}": v for k, v in info["chi2"].items()}
    extra.update({f"ring_{k}": v for k, v in ring.as_dict().items()})
    extra["total_flux_jy"] = info["flux"]
    hist.extra_metrics = extra
    hist.meta = {"solver": "vlbi", "params": {**params, "prior": name}, "n_data": info["n_data"]}
    out = torch.as_tensor(x, dtype=torch.float64)[None, None]
    if device is not None:
        out = out.to(device)
    return out, hist


@dataclass(frozen=True)
class VLBISolverSpec:
    """Registry entry of the ``vlbi`` solver (duck-typed like :class:`recon.solvers.SolverSpec`)."""

    name: str = "vlbi"
    description: str = ("multi-round VLBI imaging: closure phases and log closure amplitudes, blur and re-image, "
                        "amplitudes with self-calibrated station gains; priors mem/tv/tsv/l1/coordinate or a denoiser")
    params: tuple = PARAMS
    needs_prior: bool | None = None
    resumable: bool = False
    own_priors: tuple = OWN_PRIORS

    @staticmethod
    def run(A, y, *, measurement=None, prior=None, prior_name=None, x0=None, truth=None, callback=None, device=None,
            progress=None, seed: int = 0, **params):
        return run_vlbi(A, y, measurement=measurement, prior=prior, prior_name=prior_name, x0=x0, truth=truth,
                        callback=callback, device=device, progress=progress, seed=seed, **params)

    @property
    def algorithm(self):
        return image_vlbi

    @staticmethod
    def default_for(measurement) -> bool:
        """Real (imported) interferometer data: this solver is the default for every prior."""
        return is_vlbi_measurement(measurement)

    @staticmethod
    def applies_to_measurement(measurement) -> bool:
        return is_vlbi_measurement(measurement)

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs)


VLBI_SOLVER = VLBISolverSpec()

__all__ = ["VLBIHistory", "VLBISolverSpec", "VLBI_SOLVER", "run_vlbi"]
