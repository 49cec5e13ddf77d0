"""``--option KEY=VALUE`` parsing, shared by ``recon run``, ``recon compare`` and ``python -m recon.adapt``."""

from __future__ import annotations

import json


class OptionError(ValueError):
    """A malformed ``--option`` item (bad input: the CLI exits with status 2)."""


def parse_value(text: str):
    """An option value: JSON when it parses (numbers, true/false, null, lists, objects), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(pairs) -> dict:
    """``["lam=0.01", "amp=bf16"]`` -> ``{"lam": 0.01, "amp": "bf16"}``.

    Keys may use ``-`` for ``_`` (``init-steps`` is ``init_steps``); a later
    item overrides an earlier one with the same key.

    Raises
    ------
    OptionError
        An item without ``=`` or whose key is not a Python identifier, naming the item.
    """
    out = {}
    for item in pairs or []:
        if not isinstance(item, str) or "=" not in item:
            raise OptionError(f"--option {item!r} must be KEY=VALUE")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise OptionError(f"--option {item!r}: {key!r} is not a valid option name")
        out[key] = parse_value(value)
    return out
