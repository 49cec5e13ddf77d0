"""Black-hole emission tomography: Kerr geodesics, orbiting emission, movies, light curves, visibilities.

Conventions (G = c = M = 1, Boyer-Lindquist coordinates, screen (alpha, beta) in M, image arrays
[beta, alpha]) follow ../shared/reference/blackhole/README.md.
"""

from .emission import (check_spin, fluid_ut, gaussian_hotspot, horizon_radius, isco_radius, keplerian_omega,
                       redshift_factor)
from .tomography import EmissionTomography, LightCurve, RayBundle, rays_from_npz

from .geodesics import Geodesics, load_geodesics, save_geodesics, trace_rays, trace_rays_cached
from .kerr import (conserved_quantities, critical_curve, horizon_radii, inside_critical_curve, photon_orbit_radii,
                   points_in_polygon)

from .observe import VisibilityOperator
from .observed import LightCurveTomography, ObservedTomography, VisibilityTomography
from .polarization import rotate_evpa, stokes_factors

__all__ = [
    "EmissionTomography", "Geodesics", "LightCurve", "LightCurveTomography", "ObservedTomography", "RayBundle",
    "VisibilityOperator", "VisibilityTomography", "check_spin",
    "conserved_quantities", "critical_curve", "fluid_ut", "gaussian_hotspot", "horizon_radii", "horizon_radius",
    "inside_critical_curve", "isco_radius", "keplerian_omega", "load_geodesics", "photon_orbit_radii",
    "points_in_polygon", "rays_from_npz", "redshift_factor", "rotate_evpa", "save_geodesics", "stokes_factors",
    "trace_rays", "trace_rays_cached",
]
