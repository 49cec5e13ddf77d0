"""Every command in the README runs as written (issue 26).

The README's ```bash blocks are split into commands (``\\`` continues a line; blank and ``#`` lines
are skipped) and run in order with ``bash -e -c`` in one temporary folder -- so a command may use
the files an earlier one wrote, as a reader following the README would -- and its ```python
blocks run with this interpreter.  The folder sees the checkout's ``data/`` and ``examples/`` (a
fresh clone has them) and nothing else.  Skipped, and only these:

* the two set-up commands (they install the project and run this test suite): lines containing
  one of :data:`SETUP_MARKERS`;

A command that needs a file the user brings (their own weights, their own scan, ...) says in the
README where it comes from; :data:`STAND_INS` makes a stand-in of that file before the command
runs.  A new README section whose command needs such a file adds its stand-in here.

Each command's time is printed (``pytest -s``); the README states the sizes, so the test runs
them as they are written (small ones, so the whole file takes about a minute on 2 cores).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Lines with these are the set-up commands (install + demo, the test suite itself): not run here.
SETUP_MARKERS = ("pip install", "pytest")
#: Folders of the checkout a fresh clone has, visible to the commands (read-only use).
SHARED_FOLDERS = ("data", "examples")
#: The data kept next to the repository (``../shared``: Train400, Set12, the EHT release) is seen at the same
#: relative place, as from a clone beside it.
SIBLING = ROOT.parent / "shared"


def _stand_in_weights(path: Path) -> None:
    """Your own weights: a copy of the shipped DRUNet export under the README's name (its sidecar too)."""
    src = ROOT / "priors" / "weights" / "drunet.safetensors"
    shutil.copyfile(src, path)
    shutil.copyfile(src.with_suffix(".json"), path.with_suffix(".json"))


#: File name -> function(path) that writes a stand-in for a file the README says the user brings.
STAND_INS = {
    "my_drunet.safetensors": _stand_in_weights,
}


def readme_blocks(text: str) -> list[tuple[str, str, int]]:
    """``[(language, code, first line number)]`` of the fenced code blocks."""
    out = []
    for m in re.finditer(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.M | re.S):
        out.append((m.group(1), m.group(2), text[:m.start()].count("\n") + 2))
    return out


def bash_commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, blank and comment lines dropped."""
    cmds, cur = [], ""
    for line in code.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.strip().startswith("#"):
            cmds.append(cur.strip())
        cur = ""
    return cmds


def readme_steps() -> list[tuple[str, str, int]]:
    """``[(kind, text, line)]`` in README order: ``("bash", command)`` or ``("python", code)``."""
    steps = []
    for lang, code, line in readme_blocks(README.read_text()):
        if lang == "bash":
            steps += [("bash", c, line) for c in bash_commands(code)]
        elif lang == "python":
            steps.append(("python", code, line))
    return steps


def test_readme_parser_finds_the_commands():
    steps = readme_steps()
    bash = [s for k, s, _ in steps if k == "bash"]
    assert sum(any(m in c for m in SETUP_MARKERS) for c in bash) == 2  # exactly the two set-up commands
    assert any(c.startswith("recon compare") for c in bash) and any(k == "python" for k, _, _ in steps)
    assert [" ".join(c.split()) for c in bash_commands("a \\\n  b\n# c\n\nd  # e\n")] == ["a b", "d # e"]


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    # the interpreter's folder first: `recon` and `python` are this environment's, as after `. .venv/bin/activate`
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_every_readme_command_runs(tmp_path):
    if SIBLING.is_dir():
        (tmp_path / "shared").symlink_to(SIBLING, target_is_directory=True)
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    for name in SHARED_FOLDERS:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    env = _env(tmp_path)
    times = []
    unavailable = set()  # outputs of commands skipped because ../shared is not beside this checkout
    for kind, text, line in readme_steps():
        if kind == "bash" and any(m in text for m in SETUP_MARKERS):
            continue
        if kind == "bash":
            tokens = shlex.split(text, comments=True)
            if ("../shared" in text and not SIBLING.is_dir()) or unavailable & set(tokens):
                # the command needs data that only a checkout next to ../shared has (e.g. the EHT file)
                unavailable |= {tokens[i + 1] for i, tok in enumerate(tokens[:-1]) if tok in ("-o", "--output")}
                times.append((0.0, line, "skipped (no ../shared): " + text.splitlines()[0][:60]))
                continue
            for token in shlex.split(text, comments=True):
                name = Path(token).name
                if name in STAND_INS and not (tmp_path / token).exists():
                    STAND_INS[name](tmp_path / token)
            argv = ["bash", "-e", "-c", text]
        else:
            argv = [sys.executable, "-c", text]
        t0 = time.perf_counter()
        res = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        times.append((time.perf_counter() - t0, line, text.splitlines()[0][:90]))
        assert res.returncode == 0, (f"README line {line}: `{text[:200]}` exited {res.returncode}\n"
                                     f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-3000:]}")
    print("\nREADME commands (s, line, command):")
    for sec, line, cmd in times:
        print(f"  {sec:6.1f}  {line:4d}  {cmd}")
