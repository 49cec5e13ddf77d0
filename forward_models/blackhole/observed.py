"""What a telescope records of the lensed emission: unresolved light curves and visibilities, as operators.

:class:`~forward_models.blackhole.EmissionTomography` maps the 3-D emission to a movie; an
instrument sees that movie through a second linear map.  The two compositions an instrument gives
are registered forward models of their own, so that their data can be stored as measurement files
and rebuilt from them (``recon simulate --observation``, ``recon import``, ``recon run``):

* ``blackhole-lightcurve`` (:class:`LightCurveTomography`): emission ``(B, Nx, Ny, Nz)`` ->
  ``(B, n_frames)`` or, with ``stokes="IQU"``, ``(B, n_frames, 3)`` (I, Q, U per frame) -- what
  ALMA measures of Sgr A*;
* ``blackhole-visibilities`` (:class:`VisibilityTomography`): emission -> complex visibilities
  ``(B, n_frames, n_vis)`` (``(B, n_frames, 3, n_vis)`` polarized), each frame on its own baselines.

Their geometry is that of the movie operator (every ``EmissionTomography`` argument, the Stokes
and magnetic-field ones included) plus, for visibilities, the baselines ``u, v`` (wavelengths), their
``mask`` and the pixel size ``psize_rad``.  :attr:`~ObservedTomography.tomography` and
:attr:`~ObservedTomography.observation` give the two factors (the black-hole fits render the
emission into a movie and apply the observation to it).
"""

from __future__ import annotations

import numpy as np
import torch

from ..base import LinearOperator
from ..registry import register
from .observe import VisibilityOperator
from .tomography import EmissionTomography, LightCurve

__all__ = ["LightCurveTomography", "ObservedTomography", "VisibilityTomography"]


class ObservedTomography(LinearOperator):
    """``observation ∘ tomography``: emission grid -> what the instrument records.

    Parameters
    ----------
    tomography : EmissionTomography
        Emission ``(B, Nx, Ny, Nz)`` -> movie ``(B, n_frames[, 3], Nβ, Nα)``.
    observation : LinearOperator
        Movie -> data; its ``in_shape`` must be the movie's shape.
    """

    def __init__(self, tomography: EmissionTomography, observation: LinearOperator):
        super().__init__()
        if not isinstance(tomography, EmissionTomography):
            raise TypeError(f"tomography must be an EmissionTomography, got {type(tomography).__name__}")
        if tuple(observation.in_shape) != tuple(tomography.out_shape):
            raise ValueError(f"the observation takes movies of shape {tuple(observation.in_shape)} but the "
                             f"tomography makes {tuple(tomography.out_shape)}")
        self.tomography, self.observation = tomography, observation
        self.in_shape = tuple(tomography.in_shape)
        self.out_shape = tuple(observation.out_shape)
        self.output_complex = bool(getattr(observation, "output_complex", False))

    # the stages' public calls check their inputs and keep their own autograd (the movie of a
    # finite grid is finite, so the second check is a cheap formality)
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.observation(self.tomography(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.tomography.adjoint(self.observation.adjoint(y))

    @property
    def n_frames(self) -> int:
        return self.tomography.n_frames

    @property
    def n_stokes(self) -> int:
        return self.tomography.n_stokes

    @property
    def stokes(self) -> str:
        return self.tomography.stokes

    @property
    def out_dims(self) -> tuple[str, ...]:
        """Names of the data axes (what measurement files record as ``dims``)."""
        stokes = ("stokes",) if self.n_stokes > 1 else ()
        last = ("visibility",) if len(self.out_shape) > 1 + len(stokes) else ()
        return ("frame", *stokes, *last)

    def extra_repr(self) -> str:
        return f"out_shape={self.out_shape}"


class LightCurveTomography(ObservedTomography):
    """Emission grid -> unresolved light curve ``(B, n_frames)`` (``stokes="IQU"``: ``(B, n_frames, 3)``).

    The flux of a frame is the plain sum of its movie pixels (:class:`LightCurve`).
    """

    def __init__(self, tomography: EmissionTomography):
        super().__init__(tomography, LightCurve(tomography.n_frames, tomography.image_shape,
                                                n_stokes=tomography.n_stokes))

    def geometry(self):
        return self.tomography.geometry()

    @classmethod
    def from_geometry(cls, g, *, dtype: torch.dtype = torch.float64):
        return cls(EmissionTomography.from_geometry(g, dtype=dtype))


class VisibilityTomography(ObservedTomography):
    """Emission grid -> complex visibilities ``(B, n_frames[, 3], n_vis)`` on per-frame baselines.

    Parameters
    ----------
    tomography : EmissionTomography
    u, v : array (n_frames, n_vis)
        Baselines in wavelengths (e.g. :func:`~forward_models.blackhole.observe.uv_coverage`).
    psize_rad : float
        Angular size of a movie pixel in radians.
    mask : array of bool (n_frames, n_vis), optional
        Valid entries (padding is False).
    """

    def __init__(self, tomography: EmissionTomography, u, v, *, psize_rad: float, mask=None):
        super().__init__(tomography, VisibilityOperator(u, v, image_shape=tomography.image_shape,
                                                        psize_rad=psize_rad, mask=mask,
                                                        n_stokes=tomography.n_stokes))

    @classmethod
    def from_coverage(cls, tomography: EmissionTomography, coverage, *, fov_M: float, scale=None):
        """Observe ``tomography``'s movie (``fov_M`` M on a side) with a :class:`UVCoverage`."""
        obs = VisibilityOperator.from_coverage(coverage, image_shape=tomography.image_shape, fov_M=fov_M,
                                               scale=scale, n_stokes=tomography.n_stokes)
        self = cls.__new__(cls)  # the observation is built: do not build it again from (u, v)
        ObservedTomography.__init__(self, tomography, obs)
        return self

    def geometry(self):
        geo = self.tomography.geometry()
        obs = self.observation.geometry()
        geo.update({k: obs[k] for k in ("u", "v", "mask", "psize_rad")})
        return geo

    @classmethod
    def from_geometry(cls, g, *, dtype: torch.dtype = torch.float64):
        return cls(EmissionTomography.from_geometry(g, dtype=dtype), np.asarray(g["u"]), np.asarray(g["v"]),
                   psize_rad=float(g["psize_rad"]), mask=np.asarray(g["mask"]).astype(bool))


def _tomography_example(dtype=torch.float64, **kw):
    from .geodesics import trace_rays

    geos = trace_rays(0.0, 30.0, np.linspace(-7.0, 7.0, 4), np.linspace(-7.0, 7.0, 4), n_samples=10,
                      sampling="adaptive", r_max=10.0)
    return EmissionTomography(geos, grid_shape=6, extent=8.0, t_frames=[0.0, 30.0], t_injection=-1040.0,
                              dtype=dtype, **kw)


def _lightcurve_example(dtype=torch.float64):
    """4x4 rays x 10 samples x 2 frames on a 6³ grid, polarized (I, Q, U)."""
    return LightCurveTomography(_tomography_example(dtype, stokes="IQU"))


def _visibility_example(dtype=torch.float64):
    """The same rays observed on 3 baselines per frame (one padded)."""
    rng = np.random.default_rng(3)
    u, v = rng.uniform(-5e9, 5e9, (2, 3)), rng.uniform(-5e9, 5e9, (2, 3))
    mask = np.ones((2, 3), dtype=bool)
    mask[1, 2] = False
    return VisibilityTomography(_tomography_example(dtype), u, v, psize_rad=2e-11, mask=mask)


# "variant": simulated through the blackhole model (recon simulate --forward-model blackhole --observation ...)
register("blackhole-lightcurve", LightCurveTomography, example=_lightcurve_example,
         description="3-D emission near a Kerr black hole -> unresolved light curve (Stokes I or I, Q, U per frame)",
         image_input=False, tags=("astronomy", "variant"))
register("blackhole-visibilities", VisibilityTomography, example=_visibility_example,
         description="3-D emission near a Kerr black hole -> per-frame interferometric visibilities",
         image_input=False, tags=("astronomy", "variant"))
