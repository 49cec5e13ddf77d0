"""The command line's choices are generated from the registries, so they cannot drift from them."""

import argparse

import priors
from recon import cli
from recon.importers import importers
from recon.solvers import SOLVERS


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _choices(parser, dest):
    return tuple(next(a for a in parser._actions if a.dest == dest).choices)


def _listed(parser, dest):
    """The names a help text lists before its "(default ...)"."""
    text = next(a for a in parser._actions if a.dest == dest).help
    text = text.split(":", 1)[-1] if ":" in text.split("(")[0] else text
    return {n.strip() for n in text.split("(")[0].split(",")}


def test_run_solver_and_prior_choices_are_the_registries():
    run = _subparser("run")
    assert _listed(run, "solver") == set(SOLVERS)
    assert _listed(run, "prior") == {*priors.DENOISERS, "coordinate", "none", "auto"}
    assert _listed(_subparser("compare"), "solver") == set(SOLVERS)


def test_import_formats_are_the_importer_registry():
    assert set(_choices(_subparser("import"), "format")) == {"auto", *importers()}


def test_a_newly_registered_solver_appears_in_the_cli(monkeypatch):
    spec = next(iter(SOLVERS.values()))
    monkeypatch.setitem(SOLVERS, "my-solver", spec)
    assert "my-solver" in _listed(_subparser("run"), "solver")


def test_unknown_solver_is_bad_input(capsys, tmp_path):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "data" / "denoise.h5"
    assert cli.main(["run", str(sample), "--solver", "nope", "-o", str(tmp_path / "y.h5")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and len(err.strip().splitlines()) == 1
