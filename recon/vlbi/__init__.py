"""Very-long-baseline interferometry: data that survive calibration errors, imaging, ring measurements.

* :mod:`recon.vlbi.data` -- :class:`VLBIData`: visibilities with their station/time tables
  (from a measurement written by ``recon import OBS.uvfits``).
* :mod:`recon.vlbi.closures` -- closure phases and log closure amplitudes on minimal independent
  sets of triangles/quadrangles per time stamp, amplitudes, total flux: differentiable torch
  functions of model visibilities, with propagated σ.
* :mod:`recon.vlbi.gains` -- station gains per scan: apply them, fit them to a model (self-calibration).
* :mod:`recon.vlbi.objective` -- χ² per data product and the VLBI regularisers (MEM, TV, TSV, ℓ1, flux).
* :mod:`recon.vlbi.imaging` -- multi-round imaging (closures at low resolution, blur, re-image,
  amplitudes, self-calibration) with any prior; registered as the ``vlbi`` solver.
* :mod:`recon.vlbi.ring` -- REx-like ring extraction: diameter, width, position angle, depression.
"""

from .closures import ClosureSet, build_closures, closure_phases, log_closure_amplitudes
from .data import VLBIData

__all__ = ["ClosureSet", "VLBIData", "build_closures", "closure_phases", "log_closure_amplitudes"]
