"""What ``kreg tune`` shows while it runs and when it ends (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kreg.lab.tracking.records import COMPLETED, ENDED


def _fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


class RichReporter:
    """Trial k of N, epoch, current validation metric and gap; then a summary table."""

    def __init__(self, console: Console | None = None):
        # Piped output (a log file, CI) gets a wide console: rich would wrap at 80 columns mid-phrase.
        self.console = console or Console(soft_wrap=True)
        if console is None and not self.console.is_terminal:
            self.console.width = 200
        self.progress = None
        self.search_task = self.trial_task = None
        self.total = 0
        self.metric = "accuracy"  # the task's headline metric, set when the search starts
        self.fold = ""  # " fold 2/5" while a cross-validated trial trains its second fold

    def search_started(self, search, total):
        self.total = total  # None: as many trials as the budget holds
        self.metric = search.task.primary
        budget = getattr(search.settings, "budget", None)
        how_many = f"up to {total} trials" if total is not None else "trials"
        if budget is not None:
            from kreg.lab.tracking.records import show_duration

            how_many += f" within {show_duration(budget)}"
        self.console.print(
            f"[bold]kreg tune[/] {search.name}: {search.settings.tuner} search, {how_many} x "
            f"{search.training.epochs} epochs, objective {search.objective.name} ({search.objective.direction})\n"
            f"  data: {search.splits.describe()}\n  model: {search.model.describe()}"
            + (f"\n  default space: {search.space.origin}" if getattr(search.space, "origin", "") else "")
            + "".join(f"\n  {line}" for line in getattr(search, "notes", ())),
            highlight=False,
        )
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=True,
        )
        self.progress.start()
        self.search_task = self.progress.add_task("search", total=total)

    def search_resumed(self, parent_run_id, records, rerun):
        again = f"; trial {', '.join(rerun)} runs again (interrupted)" if rerun else ""
        self.console.print(f"resuming search {parent_run_id}: {len(records)}{self._of()} trials done{again}",
                           highlight=False)
        if self.progress is not None:
            self.progress.update(self.search_task, completed=len(records))

    def trial_started(self, index, trial_id, plan, epochs):
        if self.progress is None:
            return
        if self.trial_task is not None:
            self.progress.remove_task(self.trial_task)
        self.trial_task = self.progress.add_task(f"trial {index + 1}{self._of('/')}", total=epochs)
        self.fold = ""

    def fold_started(self, index, fold, folds):
        self.fold = f" fold {fold + 1}/{folds}"

    def epoch_end(self, index, epoch, epochs, logs):
        if self.progress is None or self.trial_task is None:
            return
        metric = self.metric
        val = logs.get(f"val_{metric}")
        gap = logs.get(f"gap_{metric}")
        self.progress.update(
            self.trial_task, completed=epoch,
            description=f"trial {index + 1}{self._of('/')}{self.fold} epoch {epoch}/{epochs} "
                        f"val_{metric} {_fmt(val)} gap {_fmt(gap, 3)}",
        )

    def _of(self, sep: str = " of ") -> str:
        """``/20`` or `` of 20``; nothing when a budget decides how many trials run."""
        return f"{sep}{self.total}" if self.total is not None else ""

    def note(self, line: str):
        """A line about the search's progress outside a trial (the refit)."""
        self.console.print(line, highlight=False)

    def trial_ended(self, index, record):
        if self.progress is not None:
            self.progress.advance(self.search_task)
        if record.status in ENDED:
            m, metric = record.metrics, self.metric
            status = "[green]COMPLETED[/]" if record.status == COMPLETED else "[yellow]PRUNED[/]"
            line = (f"trial {record.trial_id} {status} {m['epochs_run']} ep "
                    f"val_{metric} {_fmt(m.get(f'val_{metric}'))} gap {_fmt(m.get(f'gap_{metric}'), 3)} "
                    f"test {_fmt(m.get(f'test_{metric}'))} {record.duration_s:.1f}s | {record.plan.describe()}")
        else:
            reason = record.reason.strip().splitlines()[-1] if record.reason else ""
            line = f"trial {record.trial_id} [red]FAILED[/] {reason} | {record.plan.describe()}"
        self.console.print(line, highlight=False)

    def search_ended(self, summary):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        metric = summary.metric
        table = Table(title=f"{summary.pipeline}: baseline vs best ({len(summary.records)} trials, "
                            f"{summary.duration_s:.0f}s)")
        table.add_column("trial")
        # When something else than val_<metric> picks the best trial (a gap-penalized loss, another metric),
        # show it first: otherwise a "best" with a lower validation score than the baseline looks like a bug.
        objective = summary.objective
        selects = objective is not None and objective.name != f"val_{metric}"
        if selects:
            table.add_column(f"{objective.name} ({objective.direction}, picks best)", justify="right", no_wrap=True)
        # Gaps are positive when overfitting: val - train for losses and errors, train - val for scores.
        for col in (f"val {metric}", f"test {metric}", f"gap {metric} (val)", f"gap {metric} (test)", "epochs"):
            table.add_column(col, justify="right", no_wrap=True)
        plans = []
        for label, record in (("baseline", summary.baseline), ("best", summary.best)):
            if record is None or record.status != COMPLETED:
                continue
            m = record.metrics
            table.add_row(f"{label} ({record.trial_id})", *([_fmt(record.objective)] if selects else []),
                          _fmt(m.get(f"val_{metric}")),
                          _fmt(m.get(f"test_{metric}")), _fmt(m.get(f"gap_{metric}")),
                          _fmt(m.get(f"test_gap_{metric}")), str(m["epochs_run"]))
            plans.append(f"{label}: {record.plan.describe()}")
        if plans:  # nothing to tabulate when no trial completed
            self.console.print(table)
        for line in plans:
            self.console.print(line, highlight=False)
        if summary.selection and summary.top is not None and summary.top is not summary.best:
            self.console.print(f"chosen by {summary.selection}", highlight=False)
        if summary.pruning:
            self.console.print(f"pruning: {summary.pruning}", highlight=False)
        if getattr(summary, "budget", ""):
            self.console.print(summary.budget, highlight=False)
        if summary.gain_test is not None:
            better = "higher" if summary.higher_is_better else "lower"
            gain = summary.gain_test + 0.0  # no "-0.0000" for a tie
            self.console.print(f"gain in test {metric} over the baseline: {gain:+.4f} "
                               f"(positive = better; {better} {metric} is better; gaps: positive = overfitting)")
        answer = summary.answer
        if answer is not None and answer.refit is not None:
            refit = answer.refit.metrics.get(f"test_{metric}")
            base = answer.baseline_refit.metrics.get(f"test_{metric}") if answer.baseline_refit else None
            self.console.print(f"refit on training + validation ({answer.refit.epochs} epochs): test {metric} "
                               f"{_fmt(refit)}" + (f" against the refit baseline's {_fmt(base)}" if base is not None
                                                   else ""), highlight=False)
        if answer is not None and answer.line:
            self.console.print(f"[bold]answer[/]: {answer.line}", highlight=False)
        if answer is not None and getattr(answer, "model_uri", None):
            registered = f"; registered as {answer.registered}" if answer.registered else ""
            self.console.print(f"model (takes your raw inputs): {answer.model_uri}{registered}; "
                               f"mlflow.pyfunc.load_model(uri).predict(raw)", highlight=False)
        for label, record in (("baseline", summary.baseline), ("best", summary.best)):
            if record is None or (label == "best" and record is summary.baseline):
                continue
            for d in record.diagnoses:
                self.console.print(f"[yellow]diagnosis[/] ({label}, trial {record.trial_id}) {d['kind']}: "
                                   f"{d['evidence']}. {d['advice']}", highlight=False)
        if summary.records and summary.best is None:
            self.console.print(f"[red]no trial completed[/]: {summary.failure_summary()}", highlight=False)
        if summary.status != "FINISHED":
            self.console.print(f"[red]search {summary.status}[/]: {summary.error}")
        self.console.print(f"MLflow parent run {summary.parent_run_id} in experiment '{summary.experiment}'")
        from kreg.lab.tracking.store import default_tracking_uri

        if summary.tracking_uri == default_tracking_uri():
            ui = "kreg ui"
        elif summary.tracking_uri.startswith("sqlite:"):
            ui = f"kreg ui --tracking-uri {summary.tracking_uri}"
        else:
            ui = f"mlflow ui --backend-store-uri {summary.tracking_uri}"
        from kreg.lab.tracking.views import experiment_url, view_key

        url = experiment_url("http://127.0.0.1:5000", summary.experiment_id, view_key(summary.parent_run_id))
        self.console.print(f"open the trials: [bold]{ui}[/], then {url}  (store: {summary.tracking_uri})",
                           highlight=False)
