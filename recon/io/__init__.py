"""HDF5 measurement and reconstruction files, atomic writes and FITS sky images.

File layout (format version 1.0; ``data/FORMAT.md`` is the user description)::

    /                attrs: format ("recon-measurement" | "recon-reconstruction"),
                            format_version "MAJOR.MINOR", forward_model, created (ISO 8601 UTC),
                            software_version
    /measurement/y   float32/float64 (complex64/complex128 for complex operators), shape
                     ``out_shape`` of the operator; attrs units, dims
    /measurement/sigma    optional scalar > 0: Gaussian noise std in the units of y
    /measurement/weights  optional, shape of y, finite and >= 0
    /measurement/mask     optional, shape of y, bool (True = datum used)
    /geometry/<arg>  every constructor argument of the operator, attr ``units``
    /ground_truth/x  optional, shape ``in_shape``
    /provenance      attrs: generator, seed, config (JSON), command, parents (JSON list of
                     {"path", "sha256"}), software_version

A reconstruction file has the same groups (copied from its measurement, so it is
self-contained) plus ``/reconstruction/x`` with attrs solver, prior, options
(JSON), weights_sha256, wall_time_s, iterations, psnr/ssim when the truth is known,
and ``/reconstruction/history/<name>`` per-iteration arrays.

Reading validates everything and raises one :class:`MeasurementFileError` whose
one-line message names the file and the problem.  Writing goes to a temporary
file in the destination folder, is fsynced, then renamed over the destination
(``os.replace`` is atomic on POSIX), so a killed writer never leaves a partial file.

One job per module; every public name is re-exported here (``recon.io.<name>``):

==================  ==============================================================
``errors``          :class:`MeasurementFileError` (one-line messages)
``format``          format names and version, software version, value conversions
``limits``          reading hostile files: size limits, external data refused
``hdf5``            checked HDF5 access (open, datasets, attributes, in-memory files)
``geometry``        forward-model registry, operator building, geometry units
``output``          output ownership (replace only recon's files, never an input)
``measurement``     :class:`Measurement`, ``read_measurement`` / ``write_measurement``
``reconstruction``  :class:`Reconstruction`, ``read_reconstruction`` / ``write_reconstruction``
``fits``            ``write_fits`` (images and Stokes cubes) and ``check_sky_grid``
==================  ==============================================================
"""

from __future__ import annotations

# One writer for every file recon writes (unique temporary names, fsync, rename; all-or-nothing
# groups of files) and one hash: forward_models.atomic, re-exported as public recon.io names.
from forward_models.atomic import atomic_path, atomic_write_bytes, atomic_write_files, sha256_file

from .errors import MeasurementFileError
from .fits import STOKES_CODES, check_sky_grid, write_fits
from .format import (FORMAT_MEASUREMENT, FORMAT_RECONSTRUCTION, FORMAT_VERSION, json_default, parse_version,
                     software_version)
from .geometry import expected_geometry, forward_model_registry, normalise_geometry
from .hdf5 import h5_bytes
from .limits import (ALLOW_EXTERNAL_ENV, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_RAY_SAMPLES, MAX_ELEMENTS_ENV,
                     MAX_RAY_SAMPLES_ENV, allow_external_default, check_local_storage, declared_work, max_elements,
                     max_ray_samples)
from .measurement import Measurement, file_kind, measurement_bytes, read_measurement, write_measurement
from .output import check_output_path, is_recon_file, tag_png
from .reconstruction import Reconstruction, read_header, read_reconstruction, reconstruction_bytes, write_reconstruction

__all__ = [
    "ALLOW_EXTERNAL_ENV", "DEFAULT_MAX_ELEMENTS", "DEFAULT_MAX_RAY_SAMPLES", "FORMAT_MEASUREMENT",
    "FORMAT_RECONSTRUCTION", "FORMAT_VERSION", "MAX_ELEMENTS_ENV", "MAX_RAY_SAMPLES_ENV", "Measurement",
    "MeasurementFileError", "Reconstruction", "allow_external_default", "atomic_path", "atomic_write_bytes",
    "atomic_write_files", "check_local_storage", "check_output_path", "check_sky_grid", "declared_work",
    "expected_geometry", "file_kind", "forward_model_registry", "h5_bytes", "is_recon_file", "json_default",
    "max_elements", "max_ray_samples", "measurement_bytes", "normalise_geometry", "parse_version",
    "read_header", "read_measurement", "read_reconstruction", "reconstruction_bytes", "sha256_file",
    "STOKES_CODES", "software_version", "tag_png", "write_fits", "write_measurement", "write_reconstruction",
]
