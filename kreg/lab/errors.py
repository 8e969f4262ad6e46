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


class PipelineSyntaxError(ConfigError):
    """A pipeline file that is not valid YAML, in one line: ``FILE line L, column C: PROBLEM``.

    Line and column count from 1, as editors do; the parser's context (``while
    parsing a flow sequence at line 3, column 12``) follows in parentheses.
    """

    def __init__(self, path: str, line: int | None, column: int | None, problem: str):
        self.field, self.value, self.expected, self.source = "pipeline", path, "valid YAML", path
        self.line, self.column, self.problem = line, column, problem
        where = f" line {line}, column {column}" if line is not None else ""
        ValueError.__init__(self, f"{path}{where}: {problem}")


class BuilderError(ConfigError):
    """The user's model builder raised: one line naming the function, the exception and its message, and the
    log file that holds the traceback (``kreg tune`` exits 2 on it, as on any model problem)."""

    def __init__(self, builder: str, error: BaseException, log: str | None = None):
        self.field, self.value, self.expected, self.source = "model", builder, "a builder that returns a keras.Model", None
        self.builder, self.error, self.log = builder, error, log
        said = " ".join(str(error).split())
        text = f"the model builder {builder} raised {type(error).__name__}" + (f": {said}" if said else "")
        ValueError.__init__(self, text + (f" (traceback in {log})" if log else ""))
