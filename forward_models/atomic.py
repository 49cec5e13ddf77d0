"""Atomic file writes and file hashes: the one implementation every package writes through.

It lives in the lowest package (``forward_models`` <- ``priors`` <- ``recon``) so that the
geodesic cache, the weights files, training checkpoints and every ``recon`` output share it.

A write goes to a temporary file with a unique name (``.<name>.<random>.tmp``) in the
destination folder, is flushed to disk (``fsync``) and renamed over the destination
(``os.replace``, atomic on POSIX), and the folder is fsynced so the rename is durable.  On
any error -- a full disk, a file-size limit, an exception of the caller, Ctrl-C -- the
temporary file is removed and the destination is untouched; a kill leaves at most the hidden
temporary, which :func:`stale_temporaries` finds.  Write errors are raised as ``OSError``
naming the destination.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

TEMP_SUFFIX = ".tmp"


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _new_temporary(path: Path) -> Path:
    """An empty file with a unique name beside ``path``, with the permissions a plain ``open`` gives."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=_folder(path))
    try:  # mkstemp makes 0600 files; give the output the permissions a plain open() would
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
    finally:
        os.close(fd)
    return Path(tmp)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make a rename durable (not possible on every file system)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _named(err: OSError, path: Path) -> OSError:
    """The same error with the destination as its file name (``[Errno 28] No space left ...: 'out.h5'``)."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror or str(err), str(path))


def _fill(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, fsync it and rename it to ``path``.

    On any exception the destination is untouched and the temporary file is removed.
    """
    path = Path(path)
    tmp = _new_temporary(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(_folder(path))
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _named(err, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        _fill(tmp, data)
    return path


def atomic_write_files(contents: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write several files all-or-nothing: every one is new, or every one is as before.

    All contents are first written and fsynced to temporaries; only then are they renamed into
    place.  Existing destinations are kept as hard-linked backups until every rename succeeded,
    so a failure at any point (including a rename) puts the old files back and removes the new ones.
    """
    items = [(Path(p), data) for p, data in contents.items()]
    temps: dict[Path, Path] = {}
    backups: dict[Path, Path] = {}
    done: list[Path] = []
    try:
        for path, data in items:
            temps[path] = _new_temporary(path)
            try:
                _fill(temps[path], data)
            except OSError as err:
                raise _named(err, path) from None
        for path in temps:
            if path.exists():
                backup = _new_temporary(path)
                backup.unlink()
                try:
                    os.link(path, backup)
                except OSError:  # no hard links here: the old file cannot be put back, but is replaced last
                    continue
                backups[path] = backup
        for path, tmp in temps.items():
            os.replace(tmp, path)
            done.append(path)
    except BaseException:
        for path in done:  # undo: the old file back (or no file, as before)
            with contextlib.suppress(OSError):
                if path in backups:
                    os.replace(backups.pop(path), path)
                else:
                    path.unlink()
        for tmp in [*temps.values(), *backups.values()]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for backup in backups.values():
        with contextlib.suppress(OSError):
            backup.unlink()
    for folder in {_folder(p) for p in temps}:
        _fsync_folder(folder)
    return [p for p, _ in items]


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files that an interrupted atomic write of ``path`` left behind."""
    path = Path(path)
    folder = _folder(path)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}") if p.is_file())


__all__ = ["TEMP_SUFFIX", "atomic_path", "atomic_write_bytes", "atomic_write_files", "sha256_file", "stale_temporaries"]
