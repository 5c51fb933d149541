"""core/interrupt: Ctrl-C and SIGTERM become a flag while a window is open, and
the handlers in force before come back after it (real signals, sent to this process)."""

import os
import signal
import threading

import pytest

from v6diag.core.interrupt import StopRequest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_window_is_a_request_not_an_exception(signum):
    before = signal.getsignal(signum)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signum)  # handled before kill() returns to Python code
        assert stop.requested and stop.signum == signum
    assert signal.getsignal(signum) is before


def test_after_the_window_ctrl_c_interrupts_again():
    with StopRequest():
        pass
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0.5)  # gives the interpreter a point to run the handler at


def test_outside_the_main_thread_it_changes_nothing():
    seen = {}

    def run():
        with StopRequest() as stop:
            seen["handler"] = signal.getsignal(signal.SIGINT)
            seen["requested"] = stop.requested

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == {"handler": before, "requested": False}
