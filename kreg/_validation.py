"""Eager argument validation with one message template (the house rule: validate arguments eagerly, before any work starts).

Every public constructor validates its arguments before any work starts and
raises ``ArgumentError`` (a ``ValueError``) with Keras' wording, so users see the same sentence
whether the mistake is in Python code or in a pipeline YAML file::

    Invalid value received for argument `rate`. Expected a float between 0
    and 1. Received: rate=1.5

Numbers are Python or NumPy reals; a string (``"0.1"``), a bool or ``None``
is refused with that same message, never compared (which would raise a
``TypeError``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from kreg.errors import ArgumentError


def invalid(name: str, expected: str, value: Any) -> ArgumentError:
    """Build the one error message kreg uses for a bad argument (a ``ValueError`` and a ``kreg.KregError``)."""
    return ArgumentError(
        f"Invalid value received for argument `{name}`. "
        f"Expected {expected}. Received: {name}={value!r}"
    )


def _is_real(value: Any) -> bool:
    """A finite real number (Python or NumPy scalar); not a bool, a string or None."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_rate(name: str, value: Any, *, allow_one: bool = False) -> float:
    """A probability-like rate in [0, 1) (or [0, 1] with ``allow_one``)."""
    if not _is_real(value) or value < 0 or not (value <= 1 if allow_one else value < 1):
        bound = "1" if allow_one else "1 (exclusive)"
        raise invalid(name, f"a float between 0 and {bound}", value)
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    if not _is_real(value) or value < 0:
        raise invalid(name, "a non-negative float", value)
    return float(value)


def check_positive(name: str, value: Any) -> float:
    if not _is_real(value) or value <= 0:
        raise invalid(name, "a positive float", value)
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise invalid(name, "a positive integer", value)
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise invalid(name, "a non-negative integer", value)
    return int(value)


def check_choice(name: str, value: Any, choices) -> Any:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise invalid(name, f"one of {options}", value)
    return value


def check_optional_seed(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return check_non_negative_int(name, value)
