"""Fixtures of the recon tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def standin(monkeypatch):
    """The fast stand-in solvers of ``tests/recon/standin.py`` registered in ``recon.solvers.SOLVERS``
    for one test (``cg``, ``tv``, ``pnp-admm`` replaced, ``landweber`` added); the module is returned."""
    from recon.solvers import SOLVERS
    from tests.recon import standin as s

    for name, spec in s.SOLVERS.items():
        monkeypatch.setitem(SOLVERS, name, spec)
    return s
