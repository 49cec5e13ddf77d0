"""The workflow calls the solver registry directly: what a registry entry declares (iteration
parameter, the forward models it applies to) is what ``reconstruct`` does, and its result is the
entry's own ``run`` on the measurement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import forward_models as fm
import recon
from recon.inputs import build_operator, load_image
from recon.methods import default_solver, pair_applies
from recon.solvers import SOLVERS, SolverSpec
from recon.workflow import reconstruct, simulate


@pytest.fixture(scope="module")
def denoise():
    img = load_image("camera", size=16)
    return simulate(build_operator("denoise", image_shape=(16, 16)), img[0], noise_sigma=0.05, seed=1)


def test_entries_declare_what_the_workflow_reads():
    from recon.io import forward_model_registry

    forward_model_registry()
    for name, spec in SOLVERS.items():
        assert isinstance(spec, SolverSpec) and spec.name == name
        assert spec.iteration_param is None or spec.iteration_param in spec.params, name
        known = set(fm.REGISTRY) | {t for e in fm.REGISTRY.values() for t in e.tags}  # names and families
        assert spec.applies_to is None or set(spec.applies_to) <= known, name
    assert SOLVERS["fbp"].iteration_param is None and SOLVERS["coordinate"].iteration_param == "n_steps"


def test_reconstruct_is_the_entry_s_run(denoise):
    """``iterations`` becomes the entry's ``iteration_param``; the estimate is the registry's own run."""
    r = reconstruct(denoise, solver="cg", prior="none", iterations=3, dtype="float64")
    op = denoise.operator()
    y = torch.as_tensor(denoise.y)[None].double()
    x, hist = SOLVERS["cg"].run(op, y, sigma=denoise.sigma, n_iter=3)
    np.testing.assert_allclose(r.x, x[0].numpy(), rtol=1e-12, atol=1e-12)
    assert r.options["n_iter"] == 3 and r.metrics["iterations"] == len(hist.as_dict()["objective"])
    with pytest.raises(ValueError, match="unknown option 'banana' for solver cg"):
        reconstruct(denoise, solver="cg", prior="none", banana=1)


def test_applies_to_and_claims_decide_the_pairs(denoise):
    ok, why = pair_applies(denoise, "fbp", "none")
    assert not ok and "ct" in why  # fbp applies to the ct family (radon's tag)
    ct = simulate(build_operator("radon", image_shape=(16, 16), angles=8), load_image("shepp-logan", size=16)[0])
    assert pair_applies(ct, "fbp", "none") == (True, "")
    with pytest.raises(ValueError, match="does not apply"):
        reconstruct(denoise, solver="fbp")
    assert pair_applies(denoise, "vlbi", "mem")[0] is False  # claims only imported VLBI data
    assert default_solver("none", denoise) == "cg" and default_solver("drunet", denoise) == "hqs"


def test_stand_in_entry_through_the_fixture(denoise, standin):
    """A solver registered as a SolverSpec (here the test stand-in) runs through the same path."""
    r = reconstruct(denoise, solver="landweber", prior="none", iterations=4)
    assert r.solver == "landweber" and r.metrics["iterations"] == 4


def test_recon_compare_is_a_function():
    import recon.comparison

    assert callable(recon.compare) and recon.compare is recon.comparison.compare
    assert not isinstance(recon.compare, type(recon))
