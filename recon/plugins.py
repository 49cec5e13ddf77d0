"""The user's own forward models, priors and solvers in the ``recon`` command, without editing recon.

A plugin is a Python module that registers what it defines when it is imported
(:func:`forward_models.register` for a forward model, an entry in :data:`recon.solvers.SOLVERS` for a
solver).  The ``recon`` command imports, before it builds its choices:

* every module named by an installed package's entry point in the group ``recon.plugins``
  (in the package's ``pyproject.toml``: ``[project.entry-points."recon.plugins"] mri = "my_pkg.mri"``);
* every module name or ``.py`` file listed in the environment variable ``RECON_PLUGINS``
  (separated by ``os.pathsep``, ``:`` on Linux), e.g. ``RECON_PLUGINS=my_operator.py recon simulate
  --forward-model my-model ...``.

So a forward model written in one file is simulated, reconstructed, compared and read back from its
measurement files like a built-in one (``examples/custom_operator.py`` is such a file).  The Python API
needs none of this: importing the module registers it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

ENTRY_POINT_GROUP = "recon.plugins"
ENVIRONMENT_VARIABLE = "RECON_PLUGINS"

_loaded: dict[str, object] = {}


class PluginError(ValueError):
    """A plugin that cannot be found or imported (one line naming it and where it was listed)."""


def _import_file(path: Path):
    """Import a ``.py`` file as module ``recon_plugin_<stem>`` (kept in ``sys.modules`` so pickling
    by reference and ``inspect`` work for what it defines)."""
    if not path.is_file():
        raise PluginError(f"{ENVIRONMENT_VARIABLE}: plugin file {str(path)!r} does not exist")
    name = f"recon_plugin_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_one(item: str, where: str):
    try:
        if item.endswith(".py") or os.sep in item:
            return _import_file(Path(item).expanduser().resolve())
        return importlib.import_module(item)
    except PluginError:
        raise
    except Exception as e:  # noqa: BLE001 - any import failure is the plugin's: name it in one line
        msg = " ".join(str(e).split()) or type(e).__name__
        raise PluginError(f"{where}: cannot import plugin {item!r}: {type(e).__name__}: {msg}") from e


def plugin_names(environ=None) -> list[tuple[str, str]]:
    """``[(module or file, where it was listed)]``: the entry points first, then ``RECON_PLUGINS``."""
    from importlib.metadata import entry_points

    found = [(ep.value, f"entry point {ep.name!r} ({ENTRY_POINT_GROUP})")
             for ep in entry_points(group=ENTRY_POINT_GROUP)]
    listed = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    found += [(item, ENVIRONMENT_VARIABLE) for item in listed.split(os.pathsep) if item.strip()]
    return found


def load_plugins(environ=None) -> list[str]:
    """Import every plugin (each once per process); returns what was imported, in order.

    Raises
    ------
    PluginError
        A listed module or file cannot be imported (the message names it and where it was listed).
    """
    done = []
    for item, where in plugin_names(environ):
        item = item.strip()
        if item not in _loaded:
            _loaded[item] = _import_one(item, where)
        done.append(item)
    return done
