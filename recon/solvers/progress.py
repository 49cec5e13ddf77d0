"""Progress bars of the iterative solvers (tqdm, off when stderr is not a terminal)."""

from __future__ import annotations

import sys


def use_progress(progress: bool | None) -> bool:
    """Progress bars on when asked, or by default only when stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def progress_bar(total: int, desc: str, progress: bool | None):
    """A tqdm bar (or a no-op stand-in when disabled or tqdm is missing)."""
    if use_progress(progress):
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, leave=False)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass
    return _NoBar()


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *a, **k):
        pass

    def close(self):
        pass


class ProgressLogger:
    """The tqdm bar as a logger: one :meth:`tick` per iteration, the latest objective and PSNR shown."""

    def __init__(self, total: int, desc: str, progress: bool | None):
        self.bar = progress_bar(total, desc, progress)
        self._postfix: dict[str, str] = {}

    def __call__(self, k: int, record: dict, *, last: bool = False) -> None:
        for key, label, fmt in (("objective", "obj", "{:.4g}"), ("psnr", "psnr", "{:.2f}")):
            if record.get(key) is not None:
                self._postfix[label] = fmt.format(record[key])
        if self._postfix and (last or k % 5 == 0 or "psnr" in record):
            self.bar.set_postfix(self._postfix, refresh=last)

    def tick(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


__all__ = ["ProgressLogger", "progress_bar", "use_progress"]
