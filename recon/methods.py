"""Methods, i.e. (solver, prior) pairs: which apply to a measurement, which is the default, what they are called.

Everything here reads what the solver registry (:data:`recon.solvers.SOLVERS`, each entry a
:class:`recon.solvers.SolverSpec` declaring ``needs_prior``, ``applies_to``, ``claims``, ...) and
the forward model's registry entry (``image_input``) say, so a new solver or forward model needs
no change here.
"""

from __future__ import annotations

import numpy as np

# Priors that are 2-D image denoisers D(x, sigma) (used inside PnP solvers).  Anything else
# priors.load_denoiser knows is treated the same way; "none" and "coordinate" are special.
NO_PRIOR = "none"
COORDINATE_PRIOR = "coordinate"
#: The prior chosen from the measurement (:func:`auto_prior`): on CT the measured better of drunet / drunet-ct.
AUTO_PRIOR = "auto"

# Forward models on which denoiser priors default to HQS (see default_solver).
_DENOISER_SOLVER = {"denoise": "hqs", "blur": "hqs"}


def prior_is_denoiser(prior: str) -> bool:
    """Whether ``prior`` names a 2-D image denoiser (everything but ``none`` and ``coordinate``)."""
    return prior not in (NO_PRIOR, COORDINATE_PRIOR, "", None)


def method_label(solver: str, prior: str) -> str:
    """One name for a (solver, prior) pair, the same however it was asked for: ``tv`` (``--solver tv``
    or ``--prior tv``), ``cg`` (no prior), ``drunet (pnp-admm)`` (a denoiser inside a solver)."""
    if prior in (None, "", NO_PRIOR, solver) or (solver == COORDINATE_PRIOR and prior == COORDINATE_PRIOR):
        return str(solver)
    return f"{prior} ({solver})"


def default_solver(prior: str, measurement=None) -> str:
    """The solver used for ``prior`` when none is named.

    A solver that claims the measurement (``SolverSpec.claims``: real VLBI data -> ``vlbi``) wins;
    otherwise ``none`` -> ``cg`` (Tikhonov-damped least squares), ``coordinate`` -> ``coordinate``,
    ``tv`` -> ``tv`` (variational TV), any denoiser -> ``pnp-admm``, except on denoising and
    deblurring measurements with a known noise level, where the DPIR-schedule ``hqs`` (8
    denoiser calls, its noise levels following the data's) was both better and 5x cheaper
    in the demo (camera 128², sigma 25/255: 26.5 dB against 20.6 dB with the wavelet prior).
    """
    from .solvers import SOLVERS

    if measurement is not None:
        for name, spec in SOLVERS.items():
            if spec.claims is not None and spec.claims(measurement):
                return name
    if measurement is not None and prior_is_denoiser(prior) and prior != "tv" \
            and measurement.sigma is not None and _DENOISER_SOLVER.get(measurement.forward_model) == "hqs":
        return "hqs"
    if prior == NO_PRIOR:
        return "cg"
    if prior == COORDINATE_PRIOR:
        return "coordinate"
    if prior == "tv":
        return "tv"
    return "pnp-admm"


def auto_prior(measurement) -> tuple[str, str]:
    """``(prior, why)``: the learned prior measured best for this measurement.

    Sparse-view CT (``radon``): ``drunet-ct`` or ``drunet`` from the table of
    :data:`recon.solvers.defaults.CT_PRIOR_GAIN` (held-out Train400, by image size, views and noise
    relative to the sinogram's peak), the nearest measured condition deciding; other image
    problems: ``drunet``.
    """
    m = measurement
    if m.forward_model == "radon":
        from .solvers.defaults import ct_prior

        size = int(max(m.ground_truth.shape[-2:])) if m.ground_truth is not None else int(m.y.shape[-2] / 1.42)
        if m.geometry.get("image_shape") is not None:
            size = int(max(np.asarray(m.geometry["image_shape"]).ravel()))
        views = int(m.y.shape[-1])
        peak = float(np.abs(m.y).max()) or 1.0
        noise = float(m.sigma) / peak if m.sigma else 0.01
        prior, gain, cell = ct_prior(size, views, noise)
        return prior, (f"auto: {prior} for CT at {size}px, {views} views, noise {100 * noise:.2g}% of the peak "
                       f"(nearest measured condition {cell[0]}px/{cell[1]} views/{100 * cell[2]:g}%: drunet-ct "
                       f"{gain:+.2f} dB over drunet; recon/solvers/defaults.py CT_PRIOR_GAIN)")
    return "drunet", "auto: drunet (the Gaussian denoiser; drunet-ct is for CT only)"


def pair_applies(measurement, solver: str, prior: str) -> tuple[bool, str]:
    """Whether ``(solver, prior)`` makes sense on ``measurement``; ``(False, reason)`` if not.

    Decided by the solver's registry entry (``claims``, ``needs_prior``, ``applies_to``: the forward
    model's registry name or one of its tags) and the forward model's (2-D denoisers need an image
    unknown: ``image_input``).
    """
    from .solvers import SOLVERS

    spec = SOLVERS.get(solver)
    if spec is None:
        return False, f"unknown solver {solver!r}; known: {', '.join(sorted(SOLVERS))}"
    if spec.claims is not None:  # a solver for one kind of data judges it (and takes every prior)
        if not spec.claims(measurement):
            return False, f"solver {solver} does not apply to this {measurement.forward_model} measurement"
        return True, ""
    if prior_is_denoiser(prior) and not (solver == "tv" and prior == "tv") and not measurement.entry.image_input:
        return False, f"{prior} is a 2-D image prior; {measurement.forward_model} has a non-image unknown"
    if spec.needs_prior is True and not prior_is_denoiser(prior):
        return False, f"solver {solver} needs a denoiser prior (drunet, dncnn, drunet-ct, tv, wavelet, bm3d)"
    if spec.needs_prior is False and prior_is_denoiser(prior) and prior != solver:
        return False, f"solver {solver} does not use a denoiser prior (use prior none)"
    if prior == COORDINATE_PRIOR and solver != "coordinate":
        return False, "the coordinate prior is fitted by the coordinate solver"
    entry = measurement.entry
    if spec.applies_to is not None and not {measurement.forward_model, *entry.tags} & set(spec.applies_to):
        return False, (f"{solver} needs a {' or '.join(spec.applies_to)} operator; "
                       f"{measurement.forward_model} has no {solver}")
    return True, ""


__all__ = ["AUTO_PRIOR", "COORDINATE_PRIOR", "NO_PRIOR", "auto_prior", "default_solver", "method_label",
           "pair_applies", "prior_is_denoiser"]
