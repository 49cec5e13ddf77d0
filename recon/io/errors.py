"""The one error every unusable recon file (or output path) raises, and how its message is kept to one line."""

from __future__ import annotations

import os


class MeasurementFileError(ValueError):
    """A measurement or reconstruction file (or an output path) is unusable.

    The message is one line: ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


def short_error(e: BaseException) -> str:
    """An exception's message on one line, at most 160 characters (for a :class:`MeasurementFileError`)."""
    text = " ".join(str(e).split())
    return text[:160]


def short_repr(value) -> str:
    """``repr(value)`` on one line, at most 80 characters (for quoting a bad value)."""
    return " ".join(repr(value).split())[:80]
