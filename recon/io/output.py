"""Output safety: recon replaces only files it wrote (HDF5, PNG, FITS), never an input.

Files are written atomically and all-or-nothing in groups by :mod:`forward_models.atomic`
(``atomic_path``, ``atomic_write_bytes``, ``atomic_write_files``), re-exported as ``recon.io`` names.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import MeasurementFileError
from .format import software_version


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEYWORD = b"Software"


def tag_png(data: bytes) -> bytes:
    """PNG bytes with a ``Software = recon <version>`` text chunk, so recon knows its own previews."""
    import struct
    import zlib

    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not PNG data")
    text = _PNG_KEYWORD + b"\0" + f"recon {software_version()}".encode("latin-1")
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length/type, IHDR data, CRC
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _png_is_recon(path: Path) -> bool:
    import struct

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(_PNG_SIGNATURE):
        return False
    pos = 8
    while pos + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[pos:pos + 8])
        body = head[pos + 8:pos + 8 + length]
        if kind == b"tEXt" and body.startswith(_PNG_KEYWORD + b"\0") and \
                body[len(_PNG_KEYWORD) + 1:].startswith(b"recon "):
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def is_recon_file(path: str | os.PathLike) -> bool:
    """Whether the existing file ``path`` was written by recon (so recon may replace it).

    HDF5 files whose root ``format`` starts with ``recon-``, PNG files with recon's ``Software``
    text chunk and FITS files whose ``ORIGIN`` is recon.  Anything else is the user's.
    """
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(_PNG_SIGNATURE):
            return _png_is_recon(path)
        if head.startswith(b"SIMPLE  "):
            with open(path, "rb") as f:
                header = f.read(2880 * 4)
            return b"ORIGIN  = 'recon " in header
        import h5py

        if not h5py.is_hdf5(str(path)):
            return False
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", "")
        fmt = fmt.decode("utf-8", "replace") if isinstance(fmt, bytes) else fmt
        return isinstance(fmt, str) and fmt.startswith("recon-")
    except (OSError, ValueError):
        return False


def check_output_path(out: str | os.PathLike, inputs=(), *, what: str = "output", replace=is_recon_file) -> Path:
    """Refuse an output path whose folder is missing, that is an input, or that would replace a file
    recon did not write.

    Parameters
    ----------
    out : path
    inputs : paths
        Inputs of the run (never overwritten).
    what : str
        What the path is, for the message (``"output"``, ``"checkpoint"``, ...).
    replace : callable
        ``replace(path) -> bool``: whether an existing ``out`` may be replaced (default
        :func:`is_recon_file`: only files recon wrote).

    Raises
    ------
    MeasurementFileError
    """
    out = Path(out)
    if str(out) == "" or out.name in ("", ".", ".."):
        raise MeasurementFileError(out, f"{what} path must name a file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MeasurementFileError(out, f"{what} folder {parent} does not exist")
    if out.is_dir():
        raise MeasurementFileError(out, f"{what} path is a folder, expected a file name")
    for inp in inputs:
        inp = Path(inp)
        same = False
        try:
            same = out.exists() and inp.exists() and os.path.samefile(out, inp)
        except OSError:
            pass
        if same or out.resolve() == inp.resolve():
            raise MeasurementFileError(out, f"{what} path is the same file as the input {inp}; "
                                            "choose another output name")
    if out.exists() and not replace(out):
        raise MeasurementFileError(out, f"{what} path is an existing file not written by recon; remove it or "
                                        "choose another name")
    return out
