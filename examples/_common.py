"""Helpers shared by the example scripts (paths, available denoisers, figures, ``--smoke`` inputs).

Every example has a ``--smoke`` mode: the same code path end to end (every stage, figure and file)
at tiny sizes and iteration counts, seconds on one core, with bundled or generated data only, so that
``tests/test_examples.py`` can run each one and an example cannot rot.  Each script lists the files
it writes into its output folder in ``OUTPUTS`` (a literal tuple the test reads).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples" / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def available_denoisers(names=("drunet", "dncnn", "tv")):
    """``{name: denoiser}`` for every name that loads (learned weights may not be shipped yet)."""
    from priors import load_denoiser

    out = {}
    for n in names:
        try:
            out[n] = load_denoiser(n)
        except (FileNotFoundError, ValueError, ImportError) as exc:
            warnings.warn(f"skipping denoiser {n!r}: {str(exc).splitlines()[0]}", RuntimeWarning, stacklevel=2)
    return out


def save_figure(panels, path: Path, *, title: str = "") -> None:
    """A row of grayscale panels ``[(label, image 2-D array), ...]`` written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), squeeze=False)
    for ax, (label, img) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


#: Side of the ``--smoke`` test image (pixels): big enough for the denoisers' downsampling levels.
SMOKE_SIZE = 32


def smoke_image(size: int = SMOKE_SIZE):
    """A bundled grayscale image in [0, 1] (scikit-image's camera man), resized to ``(size, size)``.

    The ``--smoke`` input of the Set12 examples: ships with scikit-image, so it needs neither
    ``../shared`` nor the network.
    """
    from priors.data import resize_square
    from skimage import data

    return resize_square(data.camera() / 255.0, size)
