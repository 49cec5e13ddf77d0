"""The command line's choices are generated from the registries, so they cannot drift from them."""

import argparse

import priors
from recon import cli
from recon.importers import importers
from recon.solvers import SOLVERS


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _choices(parser, dest):
    return tuple(next(a for a in parser._actions if a.dest == dest).choices)


def test_run_solver_and_prior_choices_are_the_registries():
    run = _subparser("run")
    assert set(_choices(run, "solver")) == {"auto", *SOLVERS}
    assert set(_choices(run, "prior")) == {*priors.DENOISERS, "coordinate", "none"}
    compare = _subparser("compare")
    assert set(_choices(compare, "solver")) == {"auto", *SOLVERS}


def test_import_formats_are_the_importer_registry():
    assert set(_choices(_subparser("import"), "format")) == {"auto", *importers()}


def test_a_newly_registered_solver_appears_in_the_cli(monkeypatch):
    spec = next(iter(SOLVERS.values()))
    monkeypatch.setitem(SOLVERS, "my-solver", spec)
    assert "my-solver" in _choices(_subparser("run"), "solver")


def test_unknown_solver_is_bad_input(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:  # argparse: exit 2 with the choices named
        cli.main(["run", "x.h5", "--solver", "nope", "-o", "y.h5"])
    assert e.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
