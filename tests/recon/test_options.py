"""recon.options: the one --option KEY=VALUE parser of recon run, recon compare and recon.adapt."""

import pytest

from recon.options import OptionError, parse_options, parse_value


def test_values_parse_as_json_else_stay_strings():
    got = parse_options(["lam=0.01", "n=3", "flag=true", "sched=[1, 2]", "amp=bf16", "none=null", "e=1e-3"])
    assert got == {"lam": 0.01, "n": 3, "flag": True, "sched": [1, 2], "amp": "bf16", "none": None, "e": 1e-3}
    assert isinstance(got["n"], int) and isinstance(got["lam"], float)


def test_dashes_in_keys_and_later_items_win():
    assert parse_options(["init-steps=5", "init_steps=7"]) == {"init_steps": 7}
    assert parse_options(["path=a=b"]) == {"path": "a=b"}  # only the first '=' splits
    assert parse_options(None) == {} and parse_options([]) == {}


@pytest.mark.parametrize("item", ["lam", "=3", "2x=1", "a b=1"])
def test_malformed_items_are_named(item):
    with pytest.raises(OptionError, match="--option") as e:
        parse_options([item])
    assert repr(item) in str(e.value)
    assert isinstance(e.value, ValueError)  # the CLI's bad-input class: exit 2


def test_parse_value_keeps_unparseable_text():
    assert parse_value("hann") == "hann" and parse_value("[1,") == "[1,"
