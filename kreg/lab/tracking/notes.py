"""Run descriptions: the Markdown MLflow shows on a run's Overview (its ``mlflow.note.content`` tag).

- ``search_note``: the parent run of a search says its answer (the line also
  in tag ``kreg.answer``), the baseline against the chosen plan (validation,
  test, gap of the headline metric), the refit figures (``refit_test_*``)
  and where ``report.html`` is.
- ``trial_note``: a trial run says its plan, where each technique went (its
  placements) and its diagnoses (or why it failed).
- ``study_note``: a study's parent says its claim and, at the end, its verdict.

Every note is plain text escaped for Markdown's table and emphasis marks
where it quotes figures or names, and is cut at ``MAX_CHARS`` (MLflow keeps
a tag value up to 8,000 characters).
"""

from __future__ import annotations

import math

from kreg.lab.tracking.records import ENDED, PRUNED

NOTE_TAG = "mlflow.note.content"
MAX_CHARS = 5000  # TrialRun.set_tags keeps 5,000 characters of a tag


def note_tags(text: str) -> dict:
    """``{NOTE_TAG: text}``, cut to ``MAX_CHARS``: merge it into a run's tags."""
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS - 2].rsplit("\n", 1)[0] + "\n…"
    return {NOTE_TAG: text}


def set_note(client, run_id: str, text: str) -> None:
    """Writes run ``run_id``'s description."""
    for key, value in note_tags(text).items():
        client.set_tag(run_id, key, value)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value) -> str:
    if value is None or isinstance(value, bool):
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(value):
        return "–"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"


def _duration(seconds: float) -> str:
    seconds = float(seconds or 0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"


# ------------------------------------------------------------------ trials
def trial_started_note(trial_id: str, plan) -> str:
    """What a running trial's page says before its end figures exist."""
    return f"**Trial {trial_id}** (running)\n\n**Plan:** `{plan.describe()}`\n"


_WHERE = {"loss": "in the loss", "optimizer": "in the optimizer", "data": "in the training batches (tf.data)",
          "training": "in the training procedure", "setting": "tuned settings"}


def _not_in_layers(record) -> dict:
    """Active techniques that no layer holds, by where they act: ``{"in the loss": ["label_smoothing"]}``."""
    if record.plan is None or record.status not in ENDED:
        return {}
    from kreg.lab import techniques

    placed = set(record.placements or {})
    out: dict = {}
    for name in record.plan.active_techniques():
        entry = techniques.REGISTRY.get(name)
        if name in placed or entry is None or entry.acts_on == "model":  # model ones: in placements
            continue
        out.setdefault(_WHERE.get(entry.acts_on, entry.acts_on), []).append(name)
    return out


def trial_note(record, metric: str) -> str:
    """A finished (or failed) trial: plan, figures of ``metric``, placements, diagnoses."""
    m = record.metrics or {}
    lines = [f"**Trial {record.trial_id}** · {record.status} · {_duration(record.duration_s)}", "",
             f"**Plan:** `{record.plan.describe() if record.plan is not None else '?'}`", ""]
    if record.status not in ENDED and record.reason:
        lines += ["**Why it failed:**", "", "```", record.reason.strip()[-1500:], "```", ""]
    from kreg.lab.tracking.records import stopped_by_budget

    if record.status == PRUNED and stopped_by_budget(m):
        where = (f"epoch {int(m['budget_stopped_at_epoch'])}" if "budget_stopped_at_epoch" in m
                 else f"fold {int(m.get('budget_stopped_at_fold', 0))}")
        lines += [f"**Stopped by the budget** after {where}: one more would have eaten into the time kept for "
                  "the refit; it is never the answer.", ""]
    elif record.status == PRUNED and "pruned_at_fold" in m and "pruned_at_epoch" in m:
        lines += [f"**Pruned** at epoch {int(m['pruned_at_epoch'])} of fold {int(m['pruned_at_fold'])}: its "
                  "validation curve on that fold could not win against the curves the ended trials had on the same "
                  "fold (the search's pruning rule); its later folds were not trained; it is never the answer.", ""]
    elif record.status == PRUNED and "pruned_at_fold" in m:
        lines += [f"**Pruned** after fold {int(m['pruned_at_fold'])}: its fold scores were significantly worse than "
                  "the incumbent's on the same folds (a paired t-test); it is never the answer.", ""]
    elif record.status == PRUNED:
        lines += [f"**Pruned** after epoch {int(m.get('pruned_at_epoch', 0))}: its validation curve could not win "
                  "against the trials that had ended (the search's pruning rule); it is never the answer.", ""]
    if any(f"{k}_{metric}" in m for k in ("train", "val", "test")):
        kept, run = m.get("kept_epoch"), m.get("epochs_run", m.get("kept_epoch"))
        which = f"kept weights (epoch {int(kept)} of {int(run)})" if _fmt(kept) != "–" and _fmt(run) != "–" \
            else "end of training"
        lines += [f"| {metric} | train (inference mode) | validation | test | gap (train − validation) |",
                  "|---|---|---|---|---|",
                  f"| {which} "
                  f"| {_fmt(m.get(f'train_{metric}'))} | {_fmt(m.get(f'val_{metric}'))} "
                  f"| {_fmt(m.get(f'test_{metric}'))} | {_fmt(m.get(f'gap_{metric}'))} |", ""]
    elsewhere = _not_in_layers(record)
    if record.placements or elsewhere:
        lines += ["**Where each technique went:**", ""]
        for name, layers in sorted(record.placements.items()):
            shown = ", ".join(f"`{layer}`" for layer in layers[:12])
            more = f" and {len(layers) - 12} more" if len(layers) > 12 else ""
            lines.append(f"- {name}: {shown or '(the model as a whole)'}{more}")
        for where, names in elsewhere.items():
            lines.append(f"- {', '.join(names)}: {where}")
        lines.append("")
    if record.status == "COMPLETED":
        if record.diagnoses:
            lines += ["**Diagnoses:**", ""]
            for d in record.diagnoses:
                lines.append(f"- **{d.get('kind', '?')}**: {d.get('evidence', '')}. *Try:* {d.get('advice', '')}")
            lines.append("")
        else:
            lines += ["**Diagnoses:** none", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ search
def search_started_note(name: str) -> str:
    """What a running search's parent says until ``search_note`` replaces it at the end."""
    return (f"**kreg search `{name}`** (running): each trial is a nested run of this one; this description "
            "says the answer when the search ends.")


def search_note(summary, search) -> str:
    """The parent run's description: answer, baseline against the chosen plan, refit, report."""
    metric = summary.metric
    n_failed = sum(r.status not in ENDED for r in summary.records)
    n = len(summary.records)
    lines = [f"**kreg search `{summary.pipeline}`**: {n} trial{'' if n == 1 else 's'}"
             f"{f' ({n_failed} failed)' if n_failed else ''}, {_duration(summary.duration_s)}, {summary.status}", ""]
    if getattr(summary, "pruning", ""):
        lines += [f"Pruning: {summary.pruning}.", ""]
    if getattr(search.space, "origin", ""):
        lines += [f"Default space (no techniques given): {search.space.origin}.", ""]
    if getattr(summary, "budget", ""):
        lines += [f"Time: {summary.budget}.", ""]
    answer = getattr(summary.answer, "line", "") if summary.answer is not None else ""
    if answer:
        lines += [f"> **Answer:** {answer}", ""]
    if summary.error:
        lines += [f"> **Problem:** {summary.error[:1500]}", ""]
    best, base = summary.best, summary.baseline
    if best is not None:
        lines += [f"**Chosen plan** (trial {best.trial_id}): `{best.plan.describe()}`"
                  f"{f' — {summary.selection}' if summary.selection else ''}", ""]
        rows = [("validation", f"val_{metric}"), ("test", f"test_{metric}"),
                ("gap (train − validation)", f"gap_{metric}"), ("test gap (train − test)", f"test_gap_{metric}")]
        has_base = base is not None and base.status == "COMPLETED" and base is not best
        header = f"| {metric} | baseline (trial {base.trial_id}) | chosen (trial {best.trial_id}) |" if has_base \
            else f"| {metric} | chosen (trial {best.trial_id}{', the baseline' if best is base else ''}) |"
        lines += [header, "|---|---|---|" if has_base else "|---|---|"]
        for label, key in rows:
            if key not in best.metrics:
                continue
            cells = [_fmt(base.metrics.get(key))] if has_base else []
            lines.append(f"| {label} | {' | '.join([*cells, _fmt(best.metrics.get(key))])} |")
        lines.append("")
    elif summary.records:
        lines += [f"No trial finished: {summary.failure_summary()}", ""]
    refit = getattr(summary.answer, "refit", None) if summary.answer is not None else None
    if refit is not None:
        baseline_refit = getattr(summary.answer, "baseline_refit", None)
        keys = sorted(k for k in refit.metrics if k.startswith("test_"))
        lines += [f"**Refit** on training + validation for {refit.epochs} epochs, tested once "
                  "(metrics `refit_test_*`" + (", `refit_baseline_test_*`" if baseline_refit is not None else "")
                  + "):", ""]
        if baseline_refit is not None:
            lines += ["| test | baseline refit | chosen refit |", "|---|---|---|"]
            lines += [f"| {_cell(k[5:])} | {_fmt(baseline_refit.metrics.get(k))} | {_fmt(refit.metrics[k])} |"
                      for k in keys]
        else:
            lines += ["| test | chosen refit |", "|---|---|"]
            lines += [f"| {_cell(k[5:])} | {_fmt(refit.metrics[k])} |" for k in keys]
        lines.append("")
    model_uri = getattr(summary, "model_uri", None)
    if model_uri:
        lines += [f"**MLflow model:** `{model_uri}` (`mlflow.pyfunc.load_model(\"{model_uri}\").predict(raw_inputs)`)",
                  ""]
    if summary.parent_run_id and summary.experiment_id:
        link = f"#/experiments/{summary.experiment_id}/runs/{summary.parent_run_id}/artifacts/report.html"
        lines.append(f"The whole report (every trial, technique effects, diagnoses): [report.html]({link}) among "
                     "this run's artifacts; each trial is a nested run of this one.")
    else:
        lines.append("The whole report: `report.html` among this run's artifacts.")
    return "\n".join(lines)


# ------------------------------------------------------------------ studies
def study_note(kind: str, claim: str, verdict: str | None = None, held: bool | None = None) -> str:
    """A study's parent: the claim it tests and, once known, whether it held and why."""
    lines = [f"**kreg study `{kind}`**", "", f"**Claim:** {claim}", ""]
    if verdict is None:
        lines.append("*Running.*")
    else:
        lines.append(f"**Verdict: {'held' if held else 'did not hold'}.** {verdict}")
    return "\n".join(lines)
