"""The lab's kinds of bad input, all raised before any MLflow run is created or changed.

``ConfigError``: a setting (from YAML or from ``kreg.tune``'s arguments) is
invalid. ``DataError``: the data cannot be used as asked (mismatched lengths,
NaN inputs, labels that do not fit the task, a split too small).
``ResumeError``: a search cannot be resumed (none to resume, it finished, it
runs elsewhere, or the pipeline changed since: the message names what). All
are ``ValueError``s whose message names the problem; the CLI turns them into
exit code 2.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting is invalid: names the field and the value."""

    def __init__(self, field: str, value: Any, expected: str, source: str | None = None):
        self.field, self.value, self.expected, self.source = field, value, expected, source
        where = f" in {source}" if source else ""
        super().__init__(
            f"Invalid value received for field `{field}`{where}. "
            f"Expected {expected}. Received: {field}={value!r}"
        )


class DataError(ValueError):
    """The data cannot be used as asked: says what is wrong and where."""


class ResumeError(ValueError):
    """A search cannot be resumed as asked: says which search and why."""
