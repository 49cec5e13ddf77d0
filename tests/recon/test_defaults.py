"""The defaults table and the solver signatures cannot disagree; every table key is a real parameter."""

import inspect

import pytest

from priors.classical import TV_WEIGHT_PER_SIGMA
from recon.solvers import DEFAULTS, SOLVERS


@pytest.mark.parametrize("key", sorted(DEFAULTS, key=str))
def test_every_default_is_a_parameter_the_solver_accepts(key):
    name = key[0]
    assert name in SOLVERS, f"DEFAULTS has {key} but no solver {name!r} is registered"
    accepted = set(SOLVERS[name].params) | {"lam_per_sigma2", "lam_per_sigma", "denoiser_sigma0",
                                             "denoiser_sigma_end", "denoiser_sigma_end_per_sigma",
                                             "reg_weight_per_sigma"}
    unknown = set(DEFAULTS[key]) - accepted
    assert not unknown, f"DEFAULTS[{key}] sets {sorted(unknown)}, which {name!r} does not accept"


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_signature_defaults_equal_the_generic_table_entry(name):
    table = DEFAULTS.get((name, "*"), {})
    sig = inspect.signature(SOLVERS[name].algorithm).parameters
    differ = {k: (sig[k].default, v) for k, v in table.items()
              if k in sig and sig[k].default is not inspect.Parameter.empty and sig[k].default != v}
    assert not differ, f"{name}: (signature, table) disagree: {differ}"


def test_one_tv_weight():
    assert DEFAULTS[("tv", "denoise")]["lam_per_sigma"] == TV_WEIGHT_PER_SIGMA
