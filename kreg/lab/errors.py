"""The lab's two kinds of bad input, both raised before any MLflow run exists.

``ConfigError``: a setting (from YAML or from ``kreg.tune``'s arguments) is
invalid. ``DataError``: the data cannot be used as asked (mismatched lengths,
NaN inputs, labels that do not fit the task, a split too small). Both are
``ValueError``s whose message names the field and the value; the CLI turns
them into exit code 2.
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
