"""Every error the lab raises on purpose, and what ``kreg`` (the command) exits with on each.

All derive from :class:`kreg.KregError` (``except kreg.KregError`` catches
any of them) and from the Python exception their kind calls for. Bad input
is refused before any MLflow run is created or changed; the message names
the field and the value.

=======================  ==========================================  =====================  ================
error                    raised when                                 Python kind            exit code
=======================  ==========================================  =====================  ================
``ArgumentError``        a library constructor refuses an argument   ``ValueError``         2
``InputError``           a layer/callback gets inputs it cannot use  ``ValueError``         2
``ConfigError``          a setting (YAML or ``kreg.tune``) is bad    ``ValueError``         2
``PipelineSyntaxError``  a pipeline file is not valid YAML           ``ValueError``         2
``BuilderError``         the user's model builder raised             ``ValueError``         2
``DataError``            the data cannot be used as asked            ``ValueError``         2
``ResumeError``          a search cannot be resumed as asked         ``ValueError``         2
``JoinError``            a worker cannot join this chief's search    ``ValueError``         2
``StoreError``           the MLflow store stopped taking writes      ``RuntimeError``       1
``ChiefLost``            a worker's chief stopped answering          ``RuntimeError``       1
``BaselineBlocked``      the baseline makes every trial meaningless  ``RuntimeError``       1
``Diverged``             a training loss became NaN or infinite      ``RuntimeError``       1
``SearchInterrupted``    a signal stopped the search                 ``KeyboardInterrupt``  128 + the signal
=======================  ==========================================  =====================  ================

(``ArgumentError`` and ``InputError`` live in :mod:`kreg.errors`, beside the
library that raises them; ``JoinError`` in ``kreg.lab.search.worker``,
``StoreError`` in ``kreg.lab.tracking.mlflow``, ``ChiefLost`` in
``kreg.lab.search.rpc``, ``BaselineBlocked`` in ``kreg.lab.analysis.blockers``,
``Diverged`` in ``kreg.lab.trial.fit``, ``SearchInterrupted`` in
``kreg.lab.search.signals``: each beside the code that raises it.)
``Diverged`` and ``BaselineBlocked`` are caught by the search, which records
the trial as failed or stops with one line; they reach the command only from
a study.
"""

from __future__ import annotations

from typing import Any

from kreg.errors import ArgumentError, InputError, KregError

__all__ = ["KregError", "ArgumentError", "InputError", "ConfigError", "DataError", "ResumeError",
           "PipelineSyntaxError", "BuilderError"]


class ConfigError(KregError, ValueError):
    """A setting is invalid: names the field and the value."""

    exit_code = 2

    def __init__(self, field: str, value: Any, expected: str, source: str | None = None):
        self.field, self.value, self.expected, self.source = field, value, expected, source
        where = f" in {source}" if source else ""
        super().__init__(
            f"Invalid value received for field `{field}`{where}. "
            f"Expected {expected}. Received: {field}={value!r}"
        )


class DataError(KregError, ValueError):
    """The data cannot be used as asked: says what is wrong and where."""

    exit_code = 2


class ResumeError(KregError, ValueError):
    """A search cannot be resumed as asked: says which search and why."""

    exit_code = 2


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
