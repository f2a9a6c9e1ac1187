"""Ctrl-C held back while native libraries load (``interrupts.py``): noted inside the block, raised on
leaving it, and nothing changes when none came."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pixsearch.library.interrupts import deferred_interrupt


def test_an_interrupt_inside_the_block_is_raised_when_it_ends() -> None:
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python would have raised here
            reached_end = True
    assert reached_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_change() -> None:
    with deferred_interrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_error_in_the_block_is_the_one_raised() -> None:
    with pytest.raises(ValueError), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        raise ValueError
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_off_the_main_thread_the_block_just_runs() -> None:
    ran: list[bool] = []

    def work() -> None:
        with deferred_interrupt():
            ran.append(True)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert ran == [True]
