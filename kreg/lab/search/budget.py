"""A search's time budget: ``kreg.tune(..., budget="20m")`` / ``kreg tune --budget 20m``.

The clock starts when ``kreg.tune`` is called, or when the ``kreg tune``
command started (a resume adds the time the search had already taken). The baseline always runs. After it, before every
new trial, the oracle asks ``Budget.admits``: a trial starts only when the
time left, less a reserve for the end of the search (the refit of the answer
and of the baseline, the comparison, saving, the report), holds a whole
trial as long as the completed trials took. Pruned trials end early and give
their time back to the next proposals, so the planned trial count is only an
estimate, said once the baseline has ended.

A trial running when that reserve is reached is stopped at the end of its
epoch (``should_stop``) and recorded PRUNED ("stopped by the budget"), so
an estimate that was too short costs one epoch, not the refit. The refit
itself is never cut: it is the answer.

Why trials and not epochs: the epochs are part of what every trial means
(the objective compares curves at the same length, the refit trains for
the kept epoch); shortening them to fit a budget would change the question.
A budget that holds too few trials says so, with what to change.

The estimates: a whole trial costs the median of the completed trials'
durations (measured by the oracle from proposal to result, so it holds for
a chief and its workers too); the refit costs the baseline's trial time
scaled by the pooled training + validation data over the data one training
saw, once for the answer and once for the baseline, plus ``END_S`` for
saving and the report.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import time

from kreg.lab.errors import ConfigError
from kreg.lab.tracking.records import show_duration as show  # the console shows durations too

END_S = 10.0  # saving the answer, the MLflow model and the report, measured at 2-8 s on the demo (2 cores)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([smhd]))+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


_command_started: float | None = None  # when ``kreg tune`` started: its budget counts from the command, not the call


def command_started(at: float) -> None:
    """The ``kreg`` command notes when it started (before TensorFlow's import): its search's budget counts from
    there, as the user's ``time kreg tune ... --budget 5m`` does."""
    global _command_started
    _command_started = at


def take_start() -> float:
    """Where a search's budget clock starts: the command's start once (one search a command), else now."""
    global _command_started
    started, _command_started = _command_started, None
    return started if started is not None else time.time()


def parse_duration(value, field: str = "budget") -> float | None:
    """Seconds in ``value``: ``"20m"``, ``"1h30m"``, ``"90s"``, ``"2.5h"`` or a number of seconds; None stays None."""
    if value is None:
        return None
    expected = "a duration such as '20m', '1h30m', '90s' or a number of seconds (> 0)"
    if isinstance(value, bool):
        raise ConfigError(field, value, expected)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.lower()):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value.lower()))
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    else:
        raise ConfigError(field, value, expected)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(field, value, expected)
    return seconds


@dataclasses.dataclass
class Budget:
    """The budget of one search run: its deadline and what the trials so far cost.

    ``trial_seconds`` (trial id -> seconds, completed trials only: a pruned one says nothing about what a
    whole trial costs) is kept in the oracle's state, so a resumed search plans from the first proposal.
    """

    seconds: float
    deadline: float  # time.time() at which the search must have ended
    pooled_ratio: float = 1.0  # examples a refit trains on / examples one trial's training saw
    trainings_per_trial: int = 1  # folds x repeats under cross-validation
    refit: bool = True
    started: float = dataclasses.field(default_factory=time.time)
    baseline_id: str | None = None
    trial_seconds: dict = dataclasses.field(default_factory=dict)
    stopped_proposing: str = ""  # why no more trials were started, once that happened
    first_proposal: float | None = None  # time.time() of this run's first trial
    notify: object = None  # a callable taking one line (the reporter's note), or None

    @classmethod
    def start(cls, search, *, started: float | None = None, previous_s: float = 0.0) -> "Budget | None":
        """The budget of ``search`` (None without one), its clock started at ``started`` (``time.time()``,
        default now) less the ``previous_s`` seconds a resumed search had already taken."""
        seconds = search.settings.budget
        if seconds is None:
            return None
        started = time.time() if started is None else started
        cv = search.settings.cv
        trainings = cv.trainings if cv is not None else 1
        splits = search.splits
        ratio = 1.0
        n_train, n_val = _length(splits, "x_train"), _length(splits, "x_val")
        if n_train:
            per_training = n_train if cv is None else (n_train + n_val) * (cv.folds - 1) / cv.folds
            ratio = (n_train + n_val) / max(1.0, per_training)
        return cls(seconds=seconds, deadline=started + seconds - previous_s, pooled_ratio=ratio,
                   trainings_per_trial=trainings, refit=bool(search.settings.refit and splits.in_memory),
                   started=started - previous_s)

    # ------------------------------------------------------------- estimates
    def left(self, now: float | None = None) -> float:
        return self.deadline - (time.time() if now is None else now)

    def trial_estimate(self) -> float | None:
        """Seconds a whole trial takes: the median of the completed ones (None before any)."""
        values = list(self.trial_seconds.values())
        return statistics.median(values) if values else None

    def reserve(self) -> float:
        """Seconds kept for the end of the search: the two refits (answer and baseline) and saving."""
        if not self.refit:
            return END_S
        base = self.trial_seconds.get(self.baseline_id) if self.baseline_id else None
        base = base if base is not None else self.trial_estimate()
        if base is None:
            return END_S
        one_refit = base / self.trainings_per_trial * self.pooled_ratio
        return 2 * one_refit + END_S

    # ------------------------------------------------------------- decisions
    def admits(self, now: float | None = None) -> bool:
        """Whether a new trial fits: the time left, less the reserve, holds a whole trial."""
        if self.first_proposal is None:
            self.first_proposal = time.time() if now is None else now
        estimate = self.trial_estimate()
        if estimate is None:  # the baseline's result is not in yet: nothing to plan from, nothing to stop
            return True
        room = self.left(now) - self.reserve()
        if room >= estimate:
            return True
        if not self.stopped_proposing:
            self.stopped_proposing = (f"no trial started after {show(self.elapsed(now))}: {show(max(0.0, room))} "
                                      f"left before the refit's reserve of {show(self.reserve())}, a trial takes "
                                      f"about {show(estimate)}")
        return False

    def should_stop(self, epoch_seconds: float, now: float | None = None) -> bool:
        """Whether a running trial must stop now: one more epoch would eat into the end's reserve."""
        if self.trial_estimate() is None:
            return False
        return self.left(now) - epoch_seconds < self.reserve()

    def elapsed(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.started

    # ------------------------------------------------------------- bookkeeping
    def trial_ended(self, trial_id: str, seconds: float, *, completed: bool) -> None:
        first = self.baseline_id is None
        if first:
            self.baseline_id = trial_id
        if completed:
            self.trial_seconds[trial_id] = float(seconds)
        if first and completed and self.notify is not None:
            self.notify(self.plan_line())

    def plan_line(self) -> str:
        """Said once the baseline has ended: how many trials are expected to fit."""
        estimate = self.trial_estimate()
        room = self.left() - self.reserve()
        fits = int(max(0.0, room) // estimate) if estimate else 0
        line = (f"budget {show(self.seconds)}: the baseline took {show(estimate or 0)}; about {fits} more "
                f"trial{'s' if fits != 1 else ''} fit in {show(max(0.0, room))}, {show(self.reserve())} kept for "
                "the refit and the report (pruned trials leave room for more)")
        if fits < 2:
            line += "; too few to compare plans: give a larger budget, fewer epochs or a smaller model"
        return line

    def spent_line(self, *, trials: int, pruned: int, stopped: int, refit_s: float, search_s: float,
                   now: float | None = None) -> str:
        """How the budget went: ``budget 5m: 9s on start-up, 4m21s on 14 trials (5 pruned, 1 stopped by the
        budget), 38s on the refit, 4s on the summary; ended 8s before the budget``."""
        total = self.elapsed(now)
        extra = [f"{pruned} pruned"] if pruned else []
        if stopped:
            extra.append(f"{stopped} stopped by the budget")
        trial_part = f"{show(search_s)} on {trials} trial{'s' if trials != 1 else ''}"
        if extra:
            trial_part += f" ({', '.join(extra)})"
        startup = max(0.0, (self.first_proposal or self.started) - self.started)
        parts = [f"{show(startup)} on start-up", trial_part]
        if refit_s:
            parts.append(f"{show(refit_s)} on the refit")
        parts.append(f"{show(max(0.0, total - startup - search_s - refit_s))} on the summary")
        over = total - self.seconds
        ending = (f"ended {show(-over)} before the budget" if over <= 0
                  else f"ended {show(over)} over the budget ({100 * over / self.seconds:.1f}%)")
        return f"budget {show(self.seconds)}: {', '.join(parts)}; {ending}"

    # ------------------------------------------------------------- the oracle's state
    def state(self) -> dict:
        return {"baseline_id": self.baseline_id, "trial_seconds": dict(self.trial_seconds)}

    def restore(self, state: dict | None) -> None:
        if state:
            self.baseline_id = state.get("baseline_id") or self.baseline_id
            self.trial_seconds.update({str(k): float(v) for k, v in (state.get("trial_seconds") or {}).items()})


def _length(splits, name: str) -> int:
    value = getattr(splits, name, None)
    try:
        return len(value) if value is not None else 0
    except TypeError:
        return 0
