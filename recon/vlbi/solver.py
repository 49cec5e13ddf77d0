"""The ``vlbi`` solver: :func:`recon.vlbi.imaging.image_vlbi` behind the solver registry's calling convention.

``recon run meas.h5`` on a measurement imported from UVFITS (one carrying the ``vlbi_*`` station
and time tables) chooses this solver for every prior (its registry entry ``SOLVERS["vlbi"]`` claims
such measurements: :func:`recon.vlbi.data.is_vlbi_measurement`); its
built-in priors (``mem`` -- also what ``none`` means here --, ``tv``, ``tsv``, ``l1``, ``coordinate``)
are regularisers it owns, any other prior name is a learned denoiser loaded by the workflow.
The history carries the reduced χ² per data product, the ring measurements and the fitted
station gains (flattened ``(n_scan, n_sta)``: ``gain_amp``, ``gain_phase_deg``, ``gain_shape``).
"""

from __future__ import annotations

import numpy as np
import torch

from .data import UAS_PER_RAD, VLBIData, is_vlbi_measurement
from .imaging import OWN_PRIORS, image_vlbi
from .ring import extract_ring

#: The registry entry's description (``recon run --solver vlbi --help-options``).
DESCRIPTION = ("multi-round VLBI imaging: closure phases and log closure amplitudes, blur and re-image, "
               "amplitudes with self-calibrated station gains; priors mem/tv/tsv/l1/coordinate or a denoiser")
PARAMS = ("prior_fwhm_uas", "flux", "min_uv", "sys_noise", "closure_weight", "amp_weight", "reg_scale", "n_iter",
          "selfcal_rounds", "gain_sigma", "coord_steps", "reg_weights")


class VLBIHistory(dict):
    """Per-round values as 1-D arrays (what reconstruction files store) plus ``meta`` and ``extra_metrics``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.meta: dict = {}
        self.extra_metrics: dict = {}


def run_vlbi(A, y, *, prior=None, sigma=None, weights=None, x0=None, truth=None, callback=None, device=None,
             progress=None, state_callback=None, resume_state=None, measurement=None, seed: int = 0, **params):
    """Image a VLBI measurement; ``(x (1, 1, H, W), history)``.

    The solver registry's calling convention (:mod:`recon.solvers`) plus ``measurement`` (the
    :class:`recon.io.Measurement` with its VLBI tables, required) and ``seed``.  ``prior`` is the
    name of a regulariser of its own (:data:`recon.vlbi.imaging.OWN_PRIORS`; ``none`` means
    ``mem``), a loaded denoiser, or ``None`` (``mem``).  ``sigma`` and ``weights`` are unused
    (the data's own error columns weight it); ``state_callback`` / ``resume_state`` are unused
    (a multi-round pipeline without the checkpoint protocol).
    """
    unknown = set(params) - set(PARAMS)
    if unknown:
        raise TypeError(f"solver 'vlbi' got unknown option(s) {sorted(unknown)}; accepted: {sorted(PARAMS)}")
    if measurement is None or not is_vlbi_measurement(measurement):
        raise ValueError("solver 'vlbi' needs a measurement imported from UVFITS (recon import OBS.uvfits)")
    if prior is None or isinstance(prior, str):
        name, denoiser = prior or "mem", None
    else:
        from priors.base import denoiser_name

        name, denoiser = denoiser_name(prior), prior
    if name == "none":
        name = "mem"  # the pipeline's default regulariser
    data = VLBIData.from_measurement(measurement)
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


__all__ = ["DESCRIPTION", "OWN_PRIORS", "PARAMS", "VLBIHistory", "run_vlbi"]
