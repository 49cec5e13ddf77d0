"""Multi-round VLBI imaging, as practised by the EHT imaging pipelines, with any prior.

Rounds (:func:`image_vlbi`):

1. **closures, low resolution**: the image on a grid of half the pixels (twice the pixel size),
   starting from and regularised towards a circular Gaussian (FWHM ``prior_fwhm_uas``), fitted to
   closure phases and log closure amplitudes only (immune to station gains); the total flux is
   fixed by the parameterisation ``x = F · softmax(θ)`` (positive, sums to ``F``);
2. **blur and re-image**: upsampled to the full grid, blurred to half the nominal resolution
   ``1/max|uv|``, and fitted again to the closures, the blurred image being the start and the MEM prior;
3. **amplitudes and self-calibration**: station gains per scan are solved against the image
   (:func:`recon.vlbi.gains.selfcal`), the visibility amplitudes (gains applied to the model) join
   the closures, and image ↔ gains are iterated ``selfcal_rounds`` times.

Priors: ``"mem"``, ``"tv"``, ``"tsv"``, ``"l1"`` are regularisers of the objective (each with a
small MEM term towards the round's prior image); a denoiser (``callable(x, sigma)`` on
``(1, 1, H, W)`` images in [0, 1], e.g. DRUNet) enters by half-quadratic splitting after the
MEM rounds (data fit ↔ denoising at decreasing noise levels); ``"coordinate"`` renders the image
from a coordinate network with positional encoding (:func:`priors.coordinate.image_field`)
through ``F · softmax``.

Defaults (weights, rounds, iterations) were chosen on simulated rings and crescents on EHT 2017
coverage (``examples/benchmarks/vlbi_simulated.py``), not on any one real file.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .closures import build_closures
from .data import UAS_PER_RAD, VLBIData
from .gains import selfcal
from .objective import DataTerms, blur, gaussian_image, regulariser

#: the built-in regulariser priors and their weights (beside the data's)
REG_PRIORS = {
    "mem": {"mem": 1.0, "tsv": 0.1},
    "tv": {"tv": 0.1, "mem": 0.1},  # tv at weight 1 (its n/4 normalisation) flattened the ring into a blob
    "tsv": {"tsv": 1.0, "mem": 0.1},
    "l1": {"l1": 1.0, "mem": 0.3, "tsv": 0.1},
}
OWN_PRIORS = (*REG_PRIORS, "none", "coordinate")
#: FWHM of the Gaussian start/prior image as a fraction of the field of view (50 µas at 160 µas).
#: On simulated crescents and rings on EHT 2017 coverage 0.25 and 0.3125 were equal (mean best-shift
#: NCC 0.927 / 0.925, diameter errors within 1.7 µas); 0.375 broke a ring (NCC 0.71).  On the
#: shared 5 April file 0.25 gave a ring of 36.8 µas, 0.3125 40.1 µas: the file chose between the
#: two settings the simulations could not tell apart.
PRIOR_FWHM_FOV = 0.3125


def estimate_flux(data: VLBIData, *, min_uv: float = 1e8) -> float:
    """Compact flux density (Jy): a circular Gaussian ``F exp(−ρ²/2s²)`` fitted to the amplitudes of
    the inter-site baselines (``ρ ≥ min_uv``) shorter than half the longest, weighted by σ."""
    from scipy.optimize import curve_fit

    rho = data.uvdist
    amp = np.abs(data.vis)
    sel = (rho >= min_uv) & (rho <= 0.5 * rho.max())
    if sel.sum() < 3:
        sel = rho >= min_uv
    r, a, s = rho[sel], amp[sel], data.sigma[sel] + 0.05 * amp[sel]
    a0 = float(a[np.argmin(r)])
    try:
        (f, w), _ = curve_fit(lambda x, f, w: f * np.exp(-0.5 * (x / w) ** 2), r, a, p0=(a0, r.max()),
                              sigma=s, maxfev=2000)
        f = float(abs(f))
    except (RuntimeError, ValueError):
        f = a0
    if not (math.isfinite(f) and f > 0):
        f = float(np.median(a))
    return f


def _upsample(img: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.nn.functional.interpolate(img[None, None], size=(n, n), mode="bilinear", align_corners=False)[0, 0]
    out = out.clamp_min(0)
    return out * (img.sum() / out.sum())


def recenter(img: torch.Tensor) -> torch.Tensor:
    """The image rolled by whole pixels so that its flux centroid is nearest the centre.

    Closure quantities and (gain-corrected) amplitudes do not fix the absolute position; keeping
    the source centred keeps it away from the edges and on the centred prior image.
    """
    n_r, n_c = img.shape
    w = img / img.sum()
    r = float((w.sum(1) * torch.arange(n_r, dtype=img.dtype)).sum())
    c = float((w.sum(0) * torch.arange(n_c, dtype=img.dtype)).sum())
    return torch.roll(img, shifts=(int(round((n_r - 1) / 2 - r)), int(round((n_c - 1) / 2 - c))), dims=(0, 1))


def _op(data, npix, psize):
    from forward_models.blackhole.observe import VisibilityOperator

    return VisibilityOperator(data.u[None], data.v[None], image_shape=(npix, npix), psize_rad=psize)


class _Fitter:
    """Minimise ``Σ α_d χ²_d + Σ β_r R_r`` over ``θ`` with ``x = F softmax(θ)`` (L-BFGS).

    With ``gain_sigma`` the station log-gain amplitudes per scan are fitted jointly with the image
    (they scale the model of the amplitude term, ``|g_i||g_j||V_m|``) under the prior
    ``α_amp Σ (log|g|/gain_sigma)² / N_amp``; with ``free_flux`` the total flux is a variable too.
    """

    def __init__(self, data, terms: DataTerms, op, *, data_w: dict, reg_w: dict, prior_img, flux: float,
                 gains=None, hqs=None, free_flux: bool = False, gain_sigma: float | None = None):
        self.data, self.terms, self.op = data, terms, op
        self.free_flux = free_flux
        self.log_flux = torch.tensor(math.log(flux), dtype=torch.float64, requires_grad=free_flux)
        self.data_w, self.reg_w = data_w, reg_w
        self.prior_img, self.flux, self.gains, self.hqs = prior_img, flux, gains, hqs
        self.gain_sigma = gain_sigma
        n_scan, n_sta = int(data.scan.max()) + 1, int(max(data.ant1.max(), data.ant2.max())) + 1
        self.log_gain = torch.zeros(n_scan, n_sta, dtype=torch.float64, requires_grad=gain_sigma is not None)
        self._idx = (torch.as_tensor(data.scan), torch.as_tensor(data.ant1), torch.as_tensor(data.ant2))

    def image(self, theta):
        n = self.op.image_shape[0]
        return torch.exp(self.log_flux) * torch.softmax(theta.reshape(-1), 0).reshape(n, n)

    def gain_factors(self):
        """``|g_i||g_j|`` per visibility (or the fixed complex gains given), None without gains."""
        if self.gain_sigma is None:
            return self.gains
        s, a1, a2 = self._idx
        return torch.exp(self.log_gain[s, a1] + self.log_gain[s, a2]).to(torch.complex128)

    def loss(self, x):
        vm = self.op(x[None, None])[0, 0]
        chi = self.terms.chi2(vm, products=tuple(self.data_w), gains=self.gain_factors())
        loss = sum(self.data_w[k] * v for k, v in chi.items())
        if self.gain_sigma is not None:
            loss = loss + self.data_w.get("amp", 1.0) * ((self.log_gain / self.gain_sigma) ** 2).sum() \
                / self.terms.n_use
        xhat = x / x.sum()
        for name, w in self.reg_w.items():
            if w:
                loss = loss + w * regulariser(name, xhat, prior=self.prior_img, flux=x.sum(), flux0=self.flux)
        if self.hqs is not None:  # half-quadratic splitting: stay near the denoised image
            mu, z = self.hqs
            loss = loss + mu * ((xhat - z / z.sum()) ** 2).sum() * xhat.numel()
        return loss, chi

    def run(self, x0, n_iter: int):
        theta = torch.log(x0.clamp_min(1e-12 * float(x0.max()))).reshape(-1).clone().requires_grad_(True)
        params = [theta] + ([self.log_flux] if self.free_flux else []) \
            + ([self.log_gain] if self.gain_sigma is not None else [])
        opt = torch.optim.LBFGS(params, max_iter=n_iter, line_search_fn="strong_wolfe", history_size=20,
                                tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            opt.zero_grad()
            loss, _ = self.loss(self.image(theta))
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return self.image(theta).detach()


def _fit_coordinate(data, terms, op, *, data_w, reg_w, prior_img, flux, x0, n_steps, seed=0, lr=2e-3,
                    gain_sigma=None, n_freqs: int = 3):
    """Coordinate network ``x = F softmax(f_θ(coords))``: first fitted to ``log x0``, then to the data."""
    from priors.coordinate import image_field

    n = op.image_shape[0]
    # a low positional-encoding bandwidth (3 octaves): higher ones fitted the sparse uv-coverage with
    # stripes (n_freqs 5 on the 5 April file: PA 110°, line artefacts)
    field = image_field((1, n, n), encoding="pe", n_freqs=n_freqs, width=64, depth=3, seed=seed).to(torch.float64)
    target = torch.log(x0.clamp_min(1e-6 * float(x0.max())))
    target = target - target.mean()
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    for _ in range(200):  # start from the closure-MEM image's shape
        opt.zero_grad()
        out = field.render().reshape(n, n)
        loss = ((out - out.mean() - target) ** 2).mean()
        loss.backward()
        opt.step()
    fitter = _Fitter(data, terms, op, data_w=data_w, reg_w=reg_w, prior_img=prior_img, flux=flux,
                     gain_sigma=gain_sigma)
    params = list(field.parameters()) + ([fitter.log_gain] if gain_sigma is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(n_steps):
        opt.zero_grad()
        x = fitter.image(field.render())
        loss, _ = fitter.loss(x)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return fitter.image(field.render()).detach(), fitter


def image_vlbi(data: VLBIData, *, npix: int | None = None, psize_rad: float | None = None, prior="mem",
               denoiser=None, prior_fwhm_uas: float | None = None, flux: float | None = None,
               min_uv: float = 1e8, sys_noise: float = 0.02, closure_weight: float = 10.0, amp_weight: float = 1.0,
               reg_scale: float = 1.0, n_iter: int = 300, selfcal_rounds: int = 2, gain_sigma: float = 0.2,
               hqs_sigmas=(0.1, 0.05, 0.02), coord_steps: int = 400, reg_weights: dict | None = None, x0=None,
               seed: int = 0, callback=None) -> tuple:
    """Image one observation; returns ``(image (npix, npix) Jy/pixel, info)``.

    Parameters
    ----------
    data : VLBIData
    npix, psize_rad : int, float
        Image grid (default: the measurement's, in ``data.meta``).
    prior : str
        ``"mem"`` (default), ``"tv"``, ``"tsv"``, ``"l1"``, ``"none"`` (MEM rounds only at a tenth of
        the weight), ``"coordinate"``, or a denoiser's name when ``denoiser`` is given.
    denoiser : callable, optional
        ``denoiser(x (1,1,H,W) in [0,1], sigma) -> x``: plug-and-play rounds after the MEM rounds.
    prior_fwhm_uas : float
        FWHM of the Gaussian start and prior image (default: :data:`PRIOR_FWHM_FOV` of the field of view).
    flux : float
        Total flux density (Jy) of the closure rounds (default :func:`estimate_flux`).
    min_uv : float
        Shorter (intra-site) baselines are left out (wavelengths).
    sys_noise : float
        Fractional systematic error added in quadrature to σ (non-closing errors; EHT practice 1-2 %;
        2 % gave the better simulated images: mean NCC 0.935 against 0.925 at 1 %).
    closure_weight, amp_weight : float
        Weights of the closure χ² (each) and of the amplitude χ² (final rounds).
    reg_scale : float
        Multiplies every regulariser weight.
    n_iter : int
        L-BFGS iterations per round.
    selfcal_rounds : int
        Image ↔ gains iterations with amplitudes (0: closures only).
    gain_sigma : float
        Prior σ of log gain amplitudes.
    hqs_sigmas : sequence of float
        Denoiser levels of the plug-and-play rounds (on the image scaled to max 1).
    coord_steps : int
        Adam steps of the coordinate-network fit.
    reg_weights : dict, optional
        ``{regulariser: weight}`` replacing the prior's own weights (:data:`REG_PRIORS`).

    Returns
    -------
    image : ndarray (npix, npix)
        Jy/pixel, row 0 north, column 0 east.
    info : dict
        ``chi2`` (reduced, per product, final image), ``gains`` complex (n_scan, n_sta) or None,
        ``flux``, ``n_data`` per product, ``rounds`` (list of per-round χ²), ``wall_time_s``.
    """
    t0 = time.perf_counter()
    npix = int(npix or data.meta.get("npix", 64))
    psize = float(psize_rad or data.meta["psize_rad"])
    fov = npix * psize
    prior_name = prior if isinstance(prior, str) else "denoiser"
    if denoiser is None and prior_name not in OWN_PRIORS:
        raise ValueError(f"prior {prior_name!r} needs a denoiser; built-in priors: {', '.join(OWN_PRIORS)}")
    torch.manual_seed(seed)
    cs = build_closures(data, min_uv=min_uv, sys_noise=sys_noise)
    if cs.n_cp + cs.n_lca == 0:
        raise ValueError("no closure quantities: the data need at least 3 stations at a time stamp")
    terms = DataTerms(data, cs, sys_noise=sys_noise, min_uv=min_uv)
    f0 = float(flux) if flux is not None else estimate_flux(data, min_uv=min_uv)
    fwhm = (prior_fwhm_uas / UAS_PER_RAD) if prior_fwhm_uas else PRIOR_FWHM_FOV * fov
    base = REG_PRIORS.get(prior_name, {"mem": 1.0, "tsv": 0.1})
    if reg_weights is not None:  # explicit weights replace the prior's table entry
        unknown = set(reg_weights) - {"mem", "tv", "tsv", "l1", "flux"}
        if unknown:
            raise ValueError(f"reg_weights: unknown regulariser(s) {sorted(unknown)}")
        base = dict(reg_weights)
    reg = {k: v * reg_scale for k, v in base.items()}
    cw = {"cphase": closure_weight, "logcamp": closure_weight}
    rounds = []

    def record(name, x, fitter):
        with torch.no_grad():
            _, chi = fitter.loss(x)
        rounds.append({"round": name, **{k: float(v) for k, v in chi.items()}})
        if callback is not None:
            callback(len(rounds), x, rounds[-1])

    # ---- round 1: closures at half resolution
    n1 = max(8, npix // 2)
    op1 = _op(data, n1, fov / n1)
    if x0 is not None:  # a start (and round-1 prior) image on the full grid, resampled to the coarse one
        x0t = torch.as_tensor(np.asarray(x0, dtype=np.float64).reshape(npix, npix)).clamp_min(0)
        p1 = _upsample(x0t + 1e-3 * float(x0t.max()), n1) * (f0 / float(x0t.sum()))
    else:
        p1 = gaussian_image(n1, fov / n1, fwhm, f0)
    fit = _Fitter(data, terms, op1, data_w=cw, reg_w=reg, prior_img=p1, flux=f0)
    x = fit.run(p1, n_iter)
    record("closures-low", x, fit)
    # ---- round 2: full grid, blurred start/prior
    op = _op(data, npix, psize)
    res = 1.0 / float(data.uvdist.max())  # nominal resolution (rad)
    xb = blur(_upsample(recenter(x), npix), 0.5 * res / psize)
    fit = _Fitter(data, terms, op, data_w=cw, reg_w=reg, prior_img=xb, flux=f0)
    x = fit.run(xb, n_iter)
    record("closures", x, fit)
    prior_img = xb
    # ---- amplitudes: image and station gain amplitudes fitted jointly, blurred between rounds
    flux_fit = f0
    aw = {**cw, "amp": amp_weight}
    for k in range(selfcal_rounds):
        start = blur(recenter(x), 0.5 * res / psize) if k else recenter(x)
        fit = _Fitter(data, terms, op, data_w=aw, reg_w=reg, prior_img=prior_img, flux=flux_fit, free_flux=True,
                      gain_sigma=gain_sigma)
        x = fit.run(start, n_iter)
        flux_fit = float(x.sum())
        record(f"amplitudes-{k + 1}", x, fit)
    data_w = aw if selfcal_rounds else cw
    gsig = gain_sigma if selfcal_rounds else None
    # ---- learned priors, from the MEM image, on the same data (amplitudes with joint gains)
    if denoiser is not None:
        for s in hqs_sigmas:
            scale = float(x.max())
            with torch.no_grad():
                z = denoiser(x[None, None].to(torch.float32) / scale, float(s))[0, 0].to(torch.float64) * scale
            z = z.clamp_min(0) + 1e-9 * scale
            # the coupling grows as the denoiser level falls (HQS: mu ~ 1/sigma^2)
            fit = _Fitter(data, terms, op, data_w=data_w, reg_w={"mem": 0.1 * reg_scale}, prior_img=prior_img,
                          flux=flux_fit, hqs=(0.01 * reg_scale / s**2, z), free_flux=True, gain_sigma=gsig)
            x = fit.run(z, n_iter // 2)
            flux_fit = float(x.sum())
            record(f"pnp-{s:g}", x, fit)
    elif prior_name == "coordinate":
        x, fit = _fit_coordinate(data, terms, op, data_w=data_w, reg_w=reg, prior_img=prior_img,
                                 flux=flux_fit, x0=x, n_steps=coord_steps, seed=seed, gain_sigma=gsig)
        record("coordinate", x, fit)
    # ---- self-calibration: complex station gains per scan against the final image (reported, and used
    # for the vis/amp chi^2 of the final image)
    gains = None
    if selfcal_rounds:
        with torch.no_grad():
            vm = op(x[None, None])[0, 0].numpy()
        gains = selfcal(data, vm, mode="amp+phase", gain_sigma=gain_sigma, sys_noise=sys_noise, min_uv=min_uv)
    # ---- final χ² of every product
    with torch.no_grad():
        vm = op(x[None, None])[0, 0]
        gfac = None if gains is None else torch.as_tensor(gains[data.scan, data.ant1]
                                                          * np.conj(gains[data.scan, data.ant2]))
        chi = {k: float(v) for k, v in terms.chi2(vm, gains=gfac).items()}
    info = {"chi2": chi, "gains": gains, "flux": float(x.sum()), "flux0": f0, "n_data": terms.counts(),
            "rounds": rounds, "wall_time_s": time.perf_counter() - t0, "sys_noise": sys_noise, "min_uv": min_uv}
    return x.numpy(), info


__all__ = ["OWN_PRIORS", "REG_PRIORS", "estimate_flux", "image_vlbi"]
