"""The one atomic writer (forward_models.atomic) and the one file hash every package uses."""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

import pytest

from forward_models.atomic import atomic_path, atomic_write_bytes, atomic_write_files, sha256_file, stale_temporaries

ROOT = Path(__file__).resolve().parents[2]


def test_sha256_file_matches_hashlib(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3 << 20))  # more than one read chunk
    assert sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_temporaries_have_unique_names(tmp_path):
    dest = tmp_path / "out.h5"
    with atomic_path(dest) as a, atomic_path(dest) as b:
        assert a != b and a.parent == b.parent == tmp_path and a.name.startswith(".out.h5.")
        a.write_bytes(b"first")
        b.write_bytes(b"second")
    assert dest.read_bytes() == b"first" and stale_temporaries(dest) == []


def test_write_error_names_the_destination_and_leaves_nothing(tmp_path, monkeypatch):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic_write_bytes(dest, b"new")
    assert err.value.errno == 28 and err.value.filename == str(dest)
    assert dest.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_group_is_all_or_nothing(tmp_path, monkeypatch):
    a, b, c = tmp_path / "a.h5", tmp_path / "a.png", tmp_path / "new.md"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    real = os.replace
    calls = []

    def fail_third(src, dst, *args, **kw):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        return real(src, dst, *args, **kw)

    monkeypatch.setattr(os, "replace", fail_third)
    with pytest.raises(OSError):
        atomic_write_files({a: b"new a", b: b"new b", c: b"new c"})
    monkeypatch.setattr(os, "replace", real)
    assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b" and not c.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "a.png"]
    atomic_write_files({a: b"new a", c: b"new c"})
    assert a.read_bytes() == b"new a" and c.read_bytes() == b"new c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "a.png", "new.md"]


def test_stale_temporaries_are_found(tmp_path):
    dest = tmp_path / "run.ckpt"
    (tmp_path / ".run.ckpt.abc123.tmp").write_bytes(b"x")
    (tmp_path / ".other.ckpt.abc123.tmp").write_bytes(b"x")
    assert [p.name for p in stale_temporaries(dest)] == [".run.ckpt.abc123.tmp"]


def test_every_package_writes_through_the_one_writer():
    """No module but forward_models/atomic.py renames temporaries into place or defines a sha256_file."""
    offenders = []
    for top in ("forward_models", "priors", "recon"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "forward_models" / "atomic.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in ("replace", "rename", "mkstemp") and \
                        isinstance(node.value, ast.Name) and node.value.id in ("os", "tempfile"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
                if isinstance(node, ast.FunctionDef) and node.name == "sha256_file":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} def sha256_file")
    assert offenders == []
