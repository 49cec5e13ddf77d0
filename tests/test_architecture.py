"""Architecture rules that a change could silently break.

* Layering runs downwards only: ``forward_models`` <- ``priors`` <- ``recon``
  (a lower package never imports a higher one, not even inside a function).
* No module imports another module's private (``_underscore``) name; a private
  *module* may be imported only from inside its own package or folder.

The checks read the source with :mod:`ast`, so imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forward_models", "priors", "recon")
LAYER = {"forward_models": 0, "priors": 1, "recon": 2}
SOURCE_DIRS = (*PACKAGES, "examples")


def _python_files():
    for top in SOURCE_DIRS:
        yield from sorted((ROOT / top).rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(absolute module, imported names or None, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module, [a.name for a in node.names], node.lineno


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_layering_runs_downwards_only():
    bad = []
    for path in _python_files():
        top = _module_name(path).split(".")[0]
        if top not in LAYER:
            continue
        for module, _names, line in _imports(path):
            target = module.split(".")[0]
            if target in LAYER and LAYER[target] > LAYER[top]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "lower layers import higher ones:\n" + "\n".join(bad)


def test_no_module_imports_another_modules_private_name():
    bad = []
    for path in _python_files():
        here = _module_name(path)
        here_pkg = here.rsplit(".", 1)[0] if "." in here else ""
        if path.name == "__init__.py":
            here_pkg = here
        for module, names, line in _imports(path):
            parts = module.split(".")
            if parts[0] not in SOURCE_DIRS and not (ROOT / "examples" / f"{parts[0]}.py").exists():
                continue  # third-party or standard library
            private_modules = [p for p in parts if _is_private(p)]
            if private_modules:
                owner = module.rsplit(".", 1)[0] if "." in module else ""
                if owner != here_pkg and not path.parent.joinpath(f"{parts[-1]}.py").exists():
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports private module {module}")
            for name in names or ():
                if not _is_private(name):
                    continue
                is_submodule = (ROOT / Path(*parts) / f"{name}.py").exists()
                if is_submodule and module == here_pkg:
                    continue  # a package's own private submodule
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} from {module}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_checker_sees_function_level_imports(package):
    # the rules above are only as good as the import finder: it must see imports inside functions
    found = [m for p in (ROOT / package).rglob("*.py") for m, _n, _l in _imports(p)]
    assert found, f"no imports found in {package}"
