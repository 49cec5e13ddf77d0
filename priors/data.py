"""Training data for denoisers: image folders, random patches and augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image paths in ``folder``; a clear error if it is missing or has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image as float64 grayscale in [0, 1] (uint8 / 255, as the evaluation protocol)."""
    from skimage import io

    img = io.imread(str(path))
    if img.ndim == 3:
        if img.shape[-1] == 4:
            img = img[..., :3]
        from skimage.color import rgb2gray

        return rgb2gray(img).astype(np.float64)
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    return img.astype(np.float64)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` (H, W) in [0, 1] resized to ``(size, size)``: anti-aliased cubic, clipped to [0, 1].

    The resize of the CT benchmarks (Set12 at 256x256) and of the CT adaptation's training images,
    one function so that the two stay the same; a no-op copy when the shape already matches.
    """
    if img.shape == (size, size):
        return np.array(img, dtype=np.float64)
    from skimage.transform import resize

    return np.clip(resize(img, (size, size), anti_aliasing=True, order=3), 0, 1)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Apply the ``k``-th of the 8 flips/90-degree rotations to the last two axes."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def inverse_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`dihedral` ``k``."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    if k >= 4:
        x = x.flip(-1)
    return x


class PatchSampler:
    """Random augmented patches from a list of grayscale images held in memory.

    Parameters
    ----------
    images : list of 2-D arrays in [0, 1]
    patch_size : int
        Side of the square patches (pixels).
    affine_prob : float
        Probability that a patch also gets a small random affine warp
        (translation up to ``max_shift`` px, rotation up to ``max_rotation_deg``,
        stretching up to ``max_stretch``, shear up to ``max_shear``), on top of
        the 8 dihedral flips/rotations every patch gets.
    generator : torch.Generator
        Source of randomness (a CPU generator); its state is saved in
        checkpoints for exact resume.
    device : str or torch.device, optional
        Where the images live and patches are cut (default CPU).  On a GPU
        this keeps the sampler from starving the training step; the random
        draws stay on the CPU generator, so the same patches are chosen.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        patch_size: int,
        *,
        affine_prob: float = 0.2,
        max_shift: float = 2.0,
        max_rotation_deg: float = 10.0,
        max_stretch: float = 0.1,
        max_shear: float = 0.1,
        generator: torch.Generator,
        device: str | torch.device | None = None,
    ):
        # The margin leaves room for the affine warp's rotation and shift; without warps a patch
        # may be as large as the image (full-image fine-tuning).
        self.margin = int(math.ceil(patch_size * 0.25)) + int(max_shift) + 1 if affine_prob > 0 else 0
        big = patch_size + 2 * self.margin
        small = [im for im in images if min(im.shape) < big]
        if small:
            raise ValueError(f"{len(small)} training images are smaller than the patch plus margin ({big} px)")
        self.device = torch.device(device or "cpu")
        self.images = [torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32)).to(self.device) for im in images]
        self.patch_size = patch_size
        self.affine_prob = affine_prob
        self.max_shift = max_shift
        self.max_rotation = math.radians(max_rotation_deg)
        self.max_stretch = max_stretch
        self.max_shear = max_shear
        self.generator = generator

    def _uniform(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=self.generator)

    def sample(self, batch_size: int) -> torch.Tensor:
        """Return ``(batch_size, 1, P, P)`` float32 patches."""
        g = self.generator
        big = self.patch_size + 2 * self.margin
        idx = torch.randint(len(self.images), (batch_size,), generator=g).tolist()
        crops = []
        for i in idx:
            im = self.images[i]
            top = int(torch.randint(im.shape[0] - big + 1, (1,), generator=g))
            left = int(torch.randint(im.shape[1] - big + 1, (1,), generator=g))
            k = int(torch.randint(8, (1,), generator=g))
            crops.append(dihedral(im[top : top + big, left : left + big], k))
        x = torch.stack(crops)[:, None]
        warp = torch.rand(batch_size, generator=g) < self.affine_prob
        if warp.any():  # decided on the CPU and indexed by position: no device synchronisation
            sel = warp.nonzero().squeeze(1).to(self.device)
            x[sel] = self._affine(x[sel])
        m = self.margin
        return x[..., m : m + self.patch_size, m : m + self.patch_size].contiguous()

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        rot = self._uniform(n, -self.max_rotation, self.max_rotation)
        sx = 1 + self._uniform(n, -self.max_stretch, self.max_stretch)
        sy = 1 + self._uniform(n, -self.max_stretch, self.max_stretch)
        sh = self._uniform(n, -self.max_shear, self.max_shear)
        tx = self._uniform(n, -self.max_shift, self.max_shift) * 2 / w
        ty = self._uniform(n, -self.max_shift, self.max_shift) * 2 / h
        c, s = torch.cos(rot), torch.sin(rot)
        # theta = R @ Shear @ Stretch in normalised coordinates
        a11 = c * sx + (-s) * 0
        a12 = c * sh * sy - s * sy
        a21 = s * sx
        a22 = s * sh * sy + c * sy
        theta = torch.stack([torch.stack([a11, a12, tx], 1), torch.stack([a21, a22, ty], 1)], 1).to(x.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
