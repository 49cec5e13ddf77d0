"""Simulation inputs: test images (bundled or PNG), blur kernels from their text form, and forward
models built from command-line style options (``recon simulate``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import MeasurementFileError

BUILTIN_IMAGES = ("camera", "shepp-logan")


def load_image(spec: str | os.PathLike, *, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """A grey-level test image ``(1, H, W)`` in [0, 1].

    ``spec`` is ``"camera"`` or ``"shepp-logan"`` (bundled with scikit-image, resized to
    ``size``, default 128) or a PNG path: 8-bit values are divided by 255 (16-bit by
    65535), colour is converted to grey, and the image is resized only if ``size`` is given.
    """
    from skimage import data as skdata
    from skimage.transform import resize

    spec = str(spec)
    if spec == "camera":
        img = skdata.camera().astype(np.float64) / 255.0
        size = size or 128
    elif spec == "shepp-logan":
        img = np.clip(skdata.shepp_logan_phantom().astype(np.float64), 0.0, 1.0)
        size = size or 128
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"image {spec!r} is neither a bundled image ({', '.join(BUILTIN_IMAGES)}) "
                             "nor an existing file")
        img = _read_png(path)
    if size is not None:
        shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
        if min(shape) < 1:
            raise ValueError(f"size must be positive, got {size}")
        if tuple(img.shape) != shape:
            img = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(img, 0.0, 1.0)[None]


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
            mode = im.mode
    except (UnidentifiedImageError, OSError) as e:
        raise MeasurementFileError(path, f"cannot read image ({' '.join(str(e).split())[:120]})") from None
    if arr.dtype == np.uint8 or mode in ("L", "P", "RGB", "RGBA", "LA"):
        if mode == "P":
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        scale = 255.0
    elif arr.dtype in (np.uint16, np.int32) or mode.startswith("I;16") or mode == "I":
        scale = 65535.0
    else:
        scale = 1.0
    a = arr.astype(np.float64) / scale
    if a.ndim == 3:  # colour -> luminance (ITU-R BT.709, as skimage.color.rgb2gray); alpha dropped
        a = a[..., :3] @ np.array([0.2125, 0.7154, 0.0721]) if a.shape[2] >= 3 else a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise MeasurementFileError(path, f"image has unsupported shape {arr.shape}")
    return a


def parse_kernel(spec: str) -> np.ndarray:
    """Blur kernel from ``gaussian:STD``, ``motion:LENGTH:ANGLE``, ``disk:RADIUS`` or a ``.npy`` path."""
    from forward_models import disk_kernel, gaussian_kernel, load_kernel, motion_kernel

    parts = str(spec).split(":")
    try:
        if parts[0] == "gaussian" and len(parts) == 2:
            return gaussian_kernel(float(parts[1]))
        if parts[0] == "motion" and len(parts) == 3:
            return motion_kernel(float(parts[1]), float(parts[2]))
        if parts[0] == "disk" and len(parts) == 2:
            return disk_kernel(float(parts[1]))
    except ValueError as e:
        raise ValueError(f"kernel {spec!r}: {e}") from None
    if str(spec).endswith(".npy"):
        try:
            return load_kernel(spec)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
    raise ValueError(f"kernel {spec!r} is not gaussian:STD, motion:LENGTH:ANGLE, disk:RADIUS or a .npy file")


def build_operator(name: str, *, image_shape: tuple[int, int] | None = None, kernel: str = "gaussian:2",
                   boundary: str = "circular", angles: int = 60, geometry: dict | None = None, **model_options):
    """Build a registered forward model for simulation from command-line style options.

    ``denoise``, ``blur``, ``radon`` and ``blackhole`` have dedicated options; any other
    registered model is built from ``geometry`` (``{argument: value}``) through its
    registry entry, so new forward models can be simulated without changes here.
    """
    from forward_models import get_entry

    from .io import forward_model_registry

    forward_model_registry()
    entry = get_entry(name)
    if geometry:
        return entry.build(dict(geometry))
    if name == "denoise":
        return entry.cls(tuple(image_shape))
    if name == "blur":
        return entry.cls(parse_kernel(kernel), tuple(image_shape), boundary=boundary)
    if name == "radon":
        if not (isinstance(angles, int) and angles >= 1):
            raise ValueError(f"angles must be a positive integer, got {angles!r}")
        return entry.cls(tuple(image_shape), np.linspace(0.0, np.pi, int(angles), endpoint=False))
    if name == "blackhole":
        from .simulate_blackhole import blackhole_operator

        return blackhole_operator(**model_options)
    raise ValueError(f"forward model {name!r} has no simulation options; pass its geometry as JSON "
                     "(--geometry '{\"arg\": value, ...}')")


__all__ = ["BUILTIN_IMAGES", "build_operator", "load_image", "parse_kernel"]
