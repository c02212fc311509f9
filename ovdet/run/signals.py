"""SIGINT and SIGTERM end a run cleanly: the frame in flight finishes, every output is closed valid, the run ends."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EXIT_BY_SIGNAL", "StopRequest", "stop_on_signals"]

EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    """Set by SIGINT/SIGTERM (or by whoever holds ``event``): the run ends after the frame in flight.

    A second signal stops at once — unless the outputs are already being closed: from then on signals are
    ignored (at the OS level, so that also holds while the interpreter shuts down), and closing always completes.
    """

    def __init__(self, handles_signals: bool = False, event: threading.Event | None = None) -> None:
        self.signum: int | None = None
        self.event = event or threading.Event()
        self.finalizing = False
        self.handles_signals = handles_signals

    @property
    def exit_code(self) -> int:
        """The shell's code for the signal that stopped the run; 0 when none did."""
        return EXIT_BY_SIGNAL[self.signum] if self.signum is not None else 0

    def closing(self) -> None:
        self.finalizing = True
        if self.handles_signals:
            for signum in EXIT_BY_SIGNAL:
                signal.signal(signum, signal.SIG_IGN)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """A :class:`StopRequest` that SIGINT and SIGTERM set while the block runs (in the main thread only)."""
    stop = StopRequest(handles_signals=threading.current_thread() is threading.main_thread())
    if not stop.handles_signals:
        yield stop
        return

    def request_stop(signum: int, _frame) -> None:
        if stop.signum is not None and not stop.finalizing:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.signum = stop.signum or signum
        stop.event.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in EXIT_BY_SIGNAL}
    try:
        yield stop
    except KeyboardInterrupt:
        if stop.signum is None:
            raise
    finally:
        if stop.signum is None:  # once stopped by a signal, later ones stay ignored while the process exits
            for signum, handler in previous.items():
                signal.signal(signum, handler)
