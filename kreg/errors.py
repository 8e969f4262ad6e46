"""The base of every error kreg raises on purpose: ``except kreg.KregError`` catches them all.

Each error is also the Python exception a caller would expect for its kind:
a bad argument or setting is a ``ValueError`` (so ``except ValueError`` in
code written against Keras keeps working), a store that stopped taking
writes a ``RuntimeError``, and a search stopped by a signal a
``KeyboardInterrupt``. That last one is why ``KregError`` derives from
``BaseException`` and not ``Exception``: a signal must pass through
keras-tuner's and Keras' ``except Exception`` handlers (which would record
a failed trial and carry on) exactly as Ctrl-C does. Every concrete kreg
error other than ``SearchInterrupted`` is an ``Exception`` through its Python
kind, so ``except Exception`` still catches it.

Each class carries ``exit_code``: what ``kreg`` (the command) exits with when
the error reaches it. The lab's errors and their codes are listed in one table
in the lab's ``errors`` module (the library never imports the lab).
"""

from __future__ import annotations


class KregError(BaseException):
    """An error kreg raised on purpose; its message names what is wrong and, where it can, what to change.

    Attributes:
        exit_code: What the ``kreg`` command exits with on this error
            (2: bad input, nothing was changed; 1: the work stopped;
            128 + the signal's number: interrupted).
    """

    exit_code: int = 1


class ArgumentError(KregError, ValueError):
    """A library constructor refused an argument (``Invalid value received for argument `rate` ...``)."""

    exit_code = 2


class InputError(KregError, ValueError):
    """A layer, callback or helper was handed inputs it cannot use (wrong dtype, shape, labels or state): the
    message says what it takes and what it received."""

    exit_code = 2
