"""A forward model in the user's own file reaches the ``recon`` command through RECON_PLUGINS or an entry point."""

import sys
import textwrap

import numpy as np
import pytest

import forward_models as fm
from recon import plugins
from recon.cli import main
from recon.io import read_measurement, read_reconstruction

PLUGIN = textwrap.dedent('''
    import torch
    import forward_models as fm


    class Doubling(fm.LinearOperator):
        """y = 2 x on an image (the user's own model)."""

        def __init__(self, image_shape):
            super().__init__()
            self.image_shape = tuple(int(s) for s in image_shape)
            self.in_shape = self.out_shape = (1, *self.image_shape)

        def _forward(self, x):
            return 2 * x

        def _adjoint(self, y):
            return 2 * y

        def geometry(self):
            return {"image_shape": (list(self.image_shape), "pixel"), "gain": (2.0, "volt per volt")}

        @classmethod
        def from_geometry(cls, g):
            return cls(tuple(int(s) for s in g["image_shape"]))


    fm.register("{name}", Doubling, example=lambda dtype=torch.float64: Doubling((4, 3)),
                description="twice the image")
''')


@pytest.fixture
def plugin_file(tmp_path, monkeypatch):
    """A plugin file registering forward model 'user-doubling'; unregistered afterwards."""
    path = tmp_path / "my_model.py"
    path.write_text(PLUGIN.replace("{name}", "user-doubling"))
    monkeypatch.setenv("RECON_PLUGINS", str(path))
    yield path
    fm.REGISTRY.pop("user-doubling", None)
    plugins._loaded.clear()
    sys.modules.pop("recon_plugin_my_model", None)


def test_a_plugin_model_is_simulated_and_reconstructed(plugin_file, tmp_path, capsys):
    assert "user-doubling" not in fm.REGISTRY
    meas = tmp_path / "m.h5"
    rc = main(["simulate", "--forward-model", "user-doubling", "--size", "16",
               "--geometry", '{"image_shape": [16, 16]}',
               "--noise-sigma", "0.0", "-o", str(meas)])
    assert rc == 0, capsys.readouterr().err
    m = read_measurement(meas)
    assert m.forward_model == "user-doubling" and m.geometry_units["gain"] == "volt per volt"
    y, truth = np.asarray(m.y), np.asarray(m.ground_truth)
    np.testing.assert_allclose(y, 2 * truth.reshape(y.shape), rtol=1e-6)
    out = tmp_path / "r.h5"
    assert main(["run", str(meas), "--solver", "cg", "-o", str(out)]) == 0, capsys.readouterr().err
    x = np.asarray(read_reconstruction(out).x).reshape(16, 16)
    np.testing.assert_allclose(x, np.asarray(m.ground_truth).reshape(16, 16), atol=1e-3)  # y = 2x: CG inverts it


def test_a_missing_plugin_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECON_PLUGINS", str(tmp_path / "nowhere.py"))
    assert main(["info", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "RECON_PLUGINS" in err and "nowhere.py" in err


def test_a_broken_plugin_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECON_PLUGINS", "a_module_that_is_not_there_123")
    assert main(["info", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "a_module_that_is_not_there_123" in err and "ModuleNotFoundError" in err


def test_entry_points_are_loaded(tmp_path, monkeypatch):
    (tmp_path / "pkg_doubling.py").write_text(PLUGIN.replace("{name}", "user-doubling-ep"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RECON_PLUGINS", raising=False)

    class EntryPoint:
        name, value = "doubling", "pkg_doubling"

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [EntryPoint()] if group == plugins.ENTRY_POINT_GROUP else [])
    try:
        assert plugins.load_plugins() == ["pkg_doubling"]
        assert fm.get_entry("user-doubling-ep").description == "twice the image"
    finally:
        fm.REGISTRY.pop("user-doubling-ep", None)
        plugins._loaded.clear()
        sys.modules.pop("pkg_doubling", None)
