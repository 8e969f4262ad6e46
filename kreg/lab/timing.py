"""Where a search's time goes: named wall-clock sections, summed while ``KREG_TIMING`` is set.

``with timing.section("trial.build"):`` adds the seconds of its body to
``timing.totals()["trial.build"]`` (and counts the calls) when timing is on:
the environment variable ``KREG_TIMING`` is set to anything but ``0`` when
this module is imported, or ``enable()`` was called. Off, a section is a
module-level flag test and a shared no-op context: nothing is timed or
kept. ``scripts/bench_overhead.py --breakdown`` turns it on and prints the
table of a small search.

Sections may nest (the caller subtracts what it wants); threads add into
the same totals under a lock, so a section run on a worker thread (a
trial's plots) counts as that thread's wall time, not the search's.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

_enabled = os.environ.get("KREG_TIMING", "0") not in ("", "0")
_totals: dict[str, float] = {}
_counts: dict[str, int] = {}
_marks: dict[str, float] = {}
_lock = threading.Lock()
_NOTHING = contextlib.nullcontext()


def enable(on: bool = True) -> None:
    """Turns timing on (or off) for this process."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


def reset() -> None:
    with _lock:
        _totals.clear()
        _counts.clear()
        _marks.clear()


def add(name: str, seconds: float) -> None:
    """Adds ``seconds`` to ``name`` (a section timed by other means, e.g. between two callbacks)."""
    if not _enabled:
        return
    with _lock:
        _totals[name] = _totals.get(name, 0.0) + seconds
        _counts[name] = _counts.get(name, 0) + 1


class _Section:
    __slots__ = ("name", "start")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        add(self.name, time.perf_counter() - self.start)
        return False


def section(name: str):
    """A context manager timing its body under ``name`` when timing is on; a shared no-op when off."""
    return _Section(name) if _enabled else _NOTHING


def mark(name: str) -> None:
    """Notes the first time ``name`` happened (``perf_counter``), e.g. the first trial's start."""
    if _enabled:
        with _lock:
            _marks.setdefault(name, time.perf_counter())


def totals() -> dict[str, float]:
    with _lock:
        return dict(_totals)


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def marks() -> dict[str, float]:
    with _lock:
        return dict(_marks)
