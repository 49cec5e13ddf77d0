"""A killed Dask comparison shuts its cluster down (issue 26: no orphaned workers, no leaked semaphores)."""

import os
import signal

import pytest

from recon.comparison import ignore_interrupt, terminate_as_interrupt


def test_sigterm_becomes_keyboard_interrupt_inside_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_ignore_interrupt_ignores_sigint():
    before = signal.getsignal(signal.SIGINT)
    try:
        ignore_interrupt()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt with the default handler
    finally:
        signal.signal(signal.SIGINT, before)
