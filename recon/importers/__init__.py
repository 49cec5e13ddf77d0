"""Instrument files in: one importer per file format, chosen from the file's content.

``recon import FILE -o meas.h5`` turns what an instrument wrote (a beamline's
tomography HDF5, an interferometer's UVFITS) into a standard recon measurement
file. Each format lives in its own module of this package and registers an
:class:`Importer`; the command line, ``recon.import_file`` and the format
detection iterate over :data:`IMPORTERS`, so a new format is one new module
listed in :data:`_MODULES` and nothing else.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable

# modules that define importers; imported lazily so `recon --help` stays fast
_MODULES = ("recon.importers.tomography", "recon.importers.uvfits", "recon.importers.alma")


@dataclass(frozen=True)
class Importer:
    """One instrument file format.

    Attributes
    ----------
    name : str
        The ``--format`` value (e.g. ``"dxchange"``, ``"nxtomo"``, ``"uvfits"``).
    description : str
        One line for ``recon import --help``.
    sniff : callable
        ``sniff(path) -> bool``: cheap content check (magic bytes, HDF5 groups);
        must not read data arrays and must not raise on foreign files.
    load : callable
        ``load(path, **options) -> recon.io.Measurement``; raises
        :class:`recon.io.MeasurementFileError` (or ``ValueError``) naming the file
        and the problem on bad input.
    add_arguments : callable or None
        ``add_arguments(group)`` adds this format's command-line options to an
        argparse group; every option must have ``default=None`` so that the
        options of other formats stay unset and are not passed to ``load``.
    """

    name: str
    description: str
    sniff: Callable[[str], bool]
    load: Callable[..., object]
    add_arguments: Callable | None = None


IMPORTERS: dict[str, Importer] = {}


def register_importer(importer: Importer) -> Importer:
    """Add ``importer`` to :data:`IMPORTERS` (its name must be new)."""
    if importer.name in IMPORTERS:
        raise ValueError(f"an importer named {importer.name!r} is already registered")
    IMPORTERS[importer.name] = importer
    return importer


def _load_modules() -> dict[str, Importer]:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a format whose module is not written yet
            if e.name != mod:
                raise
    return IMPORTERS


def importers() -> dict[str, Importer]:
    """Every registered importer, by format name."""
    return _load_modules()


def detect_format(path: str | os.PathLike) -> str:
    """The format name of ``path`` from its content; ``ValueError`` naming the file if none matches."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    found = [name for name, imp in importers().items() if imp.sniff(path)]
    if not found:
        raise ValueError(f"{path}: not a recognised instrument file (known formats: "
                         f"{', '.join(sorted(importers())) or 'none'})")
    return found[0]


def import_file(path: str | os.PathLike, *, format: str = "auto", **options):
    """Read an instrument file into a :class:`recon.io.Measurement`.

    Parameters
    ----------
    path : path-like
        The instrument's file.
    format : str
        ``"auto"`` (detect from content) or a name in :data:`IMPORTERS`.
    **options
        Format-specific options (see ``recon import --help``).
    """
    path = os.fspath(path)
    fmt = detect_format(path) if format == "auto" else format
    table = importers()
    if fmt not in table:
        raise ValueError(f"--format {fmt!r} is unknown; choose from auto, {', '.join(sorted(table))}")
    return table[fmt].load(path, **options)
