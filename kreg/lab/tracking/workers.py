"""What a parallel search shows: one progress line per worker, each finished trial's line prefixed by its worker.

The chief's console (``ParallelReporter``, a ``RichReporter``) shows the
search's bar and, under it, a bar per worker (its trial, epoch, validation
figure and gap) from the workers' heartbeats; each finished trial prints a
line such as ``[w1] trial 05 COMPLETED 30 ep val_accuracy 0.9850 ...``; what
the chief itself notices (a worker that died, a trial that runs again)
prints as ``[chief] ...``; the end is the same baseline-vs-best table as a
single-process search.
"""

from __future__ import annotations

from rich.markup import escape

from kreg.lab.tracking.console import RichReporter, _fmt
from kreg.lab.tracking.records import COMPLETED, ENDED


def trial_line(record, metric: str) -> str:
    """One finished trial, in rich markup: status, epochs, validation, gap, test, time, plan."""
    plan = record.plan.describe() if record.plan is not None else ""
    if record.status in ENDED:
        m = record.metrics
        status = "[green]COMPLETED[/]" if record.status == COMPLETED else "[yellow]PRUNED[/]"
        return (f"trial {record.trial_id} {status} {m.get('epochs_run')} ep "
                f"val_{metric} {_fmt(m.get(f'val_{metric}'))} gap {_fmt(m.get(f'gap_{metric}'), 3)} "
                f"test {_fmt(m.get(f'test_{metric}'))} {record.duration_s:.1f}s | {plan}")
    reason = record.reason.strip().splitlines()[-1] if record.reason else ""
    return f"trial {record.trial_id} [red]{record.status}[/] {reason} | {plan}"


class ParallelReporter(RichReporter):
    """The chief's console: the search bar, a bar per worker, the workers' lines, the summary."""

    def __init__(self, console=None):
        super().__init__(console)
        self._workers: dict[str, int] = {}  # worker label -> progress task

    def serving(self, target: str, parent_run_id: str, local: int, threads: int | None, command: str | None):
        """Where the oracle listens, and how workers join."""
        text = f"oracle on {target}, parent run {parent_run_id}"
        if local:
            text += f"; {local} local worker{'s' if local > 1 else ''}"
            if threads:
                text += f", {threads} TensorFlow thread{'s' if threads > 1 else ''} each"
        self.console.print(text, highlight=False)
        if command:
            self.console.print(f"workers join with: [bold]{command}[/]", highlight=False)

    def line(self, label: str, text: str) -> None:
        self.console.print(f"{escape(f'[{label}]')} {text}", highlight=False)

    def ended(self, count: int) -> None:
        """``count`` trials have ended."""
        if self.progress is not None:
            self.progress.update(self.search_task, completed=count)

    def workers(self, progress: dict) -> None:
        """Each worker's current trial: ``{label: {trial_id, epoch, epochs, val, gap}}``."""
        if self.progress is None:
            return
        for label, state in sorted(progress.items()):
            task = self._workers.get(label)
            if task is None:
                task = self._workers[label] = self.progress.add_task(label, total=1)
            if state.get("trial_id") is None:
                self.progress.update(task, description=f"{label} waiting for a trial", completed=0, total=1)
                continue
            epochs = state.get("epochs") or 1
            self.progress.update(
                task, total=epochs, completed=state.get("epoch") or 0,
                description=f"{label} trial {state['trial_id']} epoch {state.get('epoch') or 0}/{epochs} "
                            f"val_{self.metric} {_fmt(state.get('val'))} gap {_fmt(state.get('gap'), 3)}")
        for label in [l for l in self._workers if l not in progress]:
            self.progress.remove_task(self._workers.pop(label))

    def search_ended(self, summary):
        if self.progress is not None:
            for task in self._workers.values():
                self.progress.remove_task(task)
        self._workers = {}
        super().search_ended(summary)
