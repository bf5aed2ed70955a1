"""Ctrl-C and SIGTERM during training: a request to stop at the next batch boundary."""

from __future__ import annotations

import signal
import threading


class StopRequests:
    """Turns SIGINT and SIGTERM into a request to stop at the next batch boundary (main thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, run=None):
        self.requested: int | None = None
        self.run = run          # an optim.Run, whose ``signal`` gets the request
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = self.requested or signum
        if self.run is not None:
            self.run.signal = self.requested

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                previous = signal.getsignal(signum)
                # an ignored signal stays ignored; a handler set outside Python (None) could not be restored
                if previous is not None and previous != signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc):
        self.restore()

    def act(self, interrupted: Exception):
        """Restore the handlers, then end as the signal would have: raise ``interrupted`` (a
        KeyboardInterrupt) for SIGINT, SIGTERM's default action for SIGTERM."""
        signum, self.requested = self.requested, None
        self.restore()
        if signum == signal.SIGINT:
            raise interrupted
        signal.raise_signal(signum)
        raise SystemExit(128 + signum)  # a handler that returned: still stop
