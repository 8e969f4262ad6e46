"""A search owns its signals: SIGINT, SIGTERM and SIGHUP end it cleanly (DESIGN house rule 12).

``timeout``, a CI cancel, ``docker stop`` and a closed SSH session send
SIGTERM; a closed terminal SIGHUP; Ctrl-C SIGINT. While a search runs,
``SignalGuard`` turns each of them into a ``SearchInterrupted`` raised in the
main thread, so the running trial writes its buffered epochs and ends
KILLED, the parent run ends KILLED with the summary of the finished trials,
and the command exits ``128 + signal number`` (130, 143, 129) with one line
saying how to resume.

Where the exception may land matters: Python runs a signal handler between
two bytecodes of the main thread, anywhere: in the middle of writing
keras-tuner's oracle state or an MLflow batch (half-written), or inside a
``__del__`` or a garbage-collector callback, where Python prints "Exception
ignored" and swallows it. So a search runs *deferred*: the handler only
notes the signal, and ``checkpoint()`` raises it from known places: after
every training batch (Keras' fit loop returns to Python each batch; the
trial's epoch reporter checks), before the oracle proposes a trial and
before a trial creates its run. Preparing the search (importing
TensorFlow, loading data, building the models once) is *immediate*: the
handler raises at once, and nothing is half-written there. After the first
signal, further ones do not disturb the closing (the second is ignored with
a note on stderr; a third exits at once, leaving whatever was not yet
closed RUNNING for ``--resume`` to close).

``SearchInterrupted`` is a ``KeyboardInterrupt`` (a ``BaseException``):
trial code that catches ``Exception`` does not swallow it, and code that
already handles Ctrl-C handles it too.

Handlers can only be installed from the main thread: elsewhere (a search
started in a worker thread) ``SignalGuard`` does nothing and the process's
own handlers stay in charge. The previous handlers are restored on exit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading

from kreg.errors import KregError

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_IMMEDIATE, _DEFERRED = "immediate", "deferred"


class SearchInterrupted(KregError, KeyboardInterrupt):
    """A search was stopped by a signal.

    Attributes:
        signum: The signal number (``signal.SIGTERM``, ...).
        exit_code: ``128 + signum``, what the command exits with.
        summary: The ``SearchSummary`` of the finished trials, when the
            search had started (None if the signal came before).
        message: One line: what happened and how to resume.
    """

    def __init__(self, signum: int, message: str = ""):
        self.signum = int(signum)
        self.summary = None
        self.message = message or f"interrupted by {signal_name(signum)}"
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal_name(self.signum)

    def __str__(self) -> str:
        return self.message


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class SignalGuard:
    """Installs the search's handlers for SIGINT, SIGTERM and SIGHUP; restores the previous ones on exit."""

    def __init__(self):
        self.signum: int | None = None  # the first signal received
        self.extra = 0  # signals received after the first
        self._modes = [_IMMEDIATE]
        self._previous: dict = {}

    # ------------------------------------------------------------ install
    def __enter__(self) -> "SignalGuard":
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    # ------------------------------------------------------------ handler
    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            self.extra += 1
            if self.extra >= 2:  # a third signal: the user insists
                os._exit(128 + signum)
            with contextlib.suppress(OSError, ValueError):  # stderr may be a closed terminal (SIGHUP)
                sys.stderr.write(f"kreg: {signal_name(signum)} received while closing the runs; "
                                 "send it again to quit at once (runs not yet closed stay RUNNING)\n")
            return
        self.signum = signum
        if self._modes[-1] == _IMMEDIATE:
            raise SearchInterrupted(signum)

    def checkpoint(self) -> None:
        """Raises ``SearchInterrupted`` if a signal came (again at every checkpoint: one may be swallowed)."""
        if self.signum is not None:
            raise SearchInterrupted(self.signum)

    @contextlib.contextmanager
    def mode(self, mode: str):
        self._modes.append(mode)
        try:
            yield
        finally:
            self._modes.pop()
        if self._modes[-1] == _IMMEDIATE:  # a signal noted during the block (e.g. while closing)
            self.checkpoint()


_active: SignalGuard | None = None


@contextlib.contextmanager
def owned_signals():
    """Installs a ``SignalGuard`` for the block when in the main thread and none is active; yields it (or None)."""
    global _active
    if _active is not None or threading.current_thread() is not threading.main_thread():
        yield _active
        return
    guard = SignalGuard()
    with guard:
        _active = guard
        try:
            yield guard
        finally:
            _active = None


def deferred():
    """A block during which a signal is only noted (raised at the next checkpoint or when the block ends)."""
    return _active.mode(_DEFERRED) if _active is not None else contextlib.nullcontext()


def checkpoint() -> None:
    """A safe point: raises ``SearchInterrupted`` if a signal was noted meanwhile."""
    if _active is not None:
        _active.checkpoint()


def owning_signals(function):
    """Decorator: ``function`` runs under ``owned_signals()``."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with owned_signals():
            return function(*args, **kwargs)
    return wrapper


def deferring(function):
    """Decorator: ``function`` runs ``deferred()``."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with deferred():
            return function(*args, **kwargs)
    return wrapper
