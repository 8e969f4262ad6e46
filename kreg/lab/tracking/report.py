"""A search's summary artifacts on its parent run, and ``report.html``: the page a person reads.

Artifacts: ``trials.csv`` / ``trials.md`` (every trial), ``validation_vs_gap.png``
(with the Pareto front), ``technique_effects.csv`` / ``.md`` / ``.png``
(``kreg.lab.analysis.effects``), ``curves_baseline_vs_chosen.png`` and
``report.html``: one self-contained file (plots embedded as base64 PNG, CSS
inline, no script, no network) with the answer and its uncertainty, the
diagnoses, the trials, the search map, the per-technique effects and the
learning curves. MLflow's UI shows HTML artifacts in its artifact viewer.
"""

from __future__ import annotations

import base64
import csv
import html
import math
import time
from pathlib import Path

from kreg.lab.analysis import effects
from kreg.lab.tracking import plots
from kreg.lab.tracking.records import COMPLETED, PRUNED, markdown_table


def search_artifacts(summary, search, directory: Path) -> list[Path]:
    """Writes the summary artifacts into ``directory``; returns their paths (``report.html`` last)."""
    rows = [r.row(summary.metric) for r in summary.records]
    paths, figures = [], {}
    if rows:
        paths += _table(rows, directory / "trials")
    done = any(r.status == COMPLETED for r in summary.records)
    front = effects.pareto_front(summary.records, summary.metric, summary.higher_is_better) if done else []
    if done:
        figures["map"] = plots.search_map(
            summary.records, directory / "validation_vs_gap.png", metric=summary.metric,
            best_id=summary.best.trial_id if summary.best else None,
            baseline_id=summary.baseline.trial_id if summary.baseline else None, front=front)
    direction = search.objective.direction
    table = effects.technique_effects(summary.records, direction, summary.metric)
    if table:
        paths += _table(table, directory / "technique_effects")
        figures["effects"] = plots.technique_effects(table, directory / "technique_effects.png",
                                                     objective=search.objective.name)
    base, best = summary.baseline, summary.best
    if best is not None and base is not None and base.status == COMPLETED and base.history.get("loss"):
        curves = {f"baseline (trial {base.trial_id})": base.history}
        if best is not base:
            curves[f"chosen (trial {best.trial_id})"] = best.history
        figures["curves"] = plots.overlaid_curves(curves, directory / "curves_baseline_vs_chosen.png",
                                                  metric=summary.metric)
    paths += list(figures.values())
    report = directory / "report.html"
    report.write_text(render(summary, search, table, front, figures))
    paths.append(report)
    return paths


def _table(rows: list[dict], stem: Path) -> list[Path]:
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    md_path.write_text(markdown_table(rows))
    return [csv_path, md_path]


# ------------------------------------------------------------------ the page
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2330;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
.sub{color:#5a6270;font-size:.92em}.answer{background:#f3f7ff;border-left:4px solid #3b6fd8;padding:.8em 1em;margin:1em 0}
.answer.weak{background:#fff8ec;border-color:#d89a3b}.big{font-size:1.1em;font-weight:600}
table{border-collapse:collapse;font-size:.86em;margin:.5em 0}th,td{padding:.25em .6em;border-bottom:1px solid #e6e8ee;
text-align:right}th{background:#f5f6f9}td.l,th.l{text-align:left}tr.chosen td{background:#fffbe0;font-weight:600}
tr.failed td{color:#a33}tr.pruned td{color:#888}img{max-width:100%;border:1px solid #eee;margin:.4em 0}.diag{background:#fff4f0;
border-left:4px solid #d8603b;padding:.5em 1em;margin:.5em 0}code{background:#f3f3f6;padding:0 .25em}
"""


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def _image(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render(summary, search, technique_rows, front, figures: dict) -> str:
    """The report as one HTML string (no external resources)."""
    metric = summary.metric
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>kreg report: {e(summary.pipeline)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Which regularization does it need? <span class='sub'>{e(summary.pipeline)}</span></h1>",
             f"<p class='sub'>{e(search.task.describe())}; model {e(search.model.describe())}; data "
             f"{e(search.splits.describe())}<br>{len(summary.records)} trials ({e(search.settings.tuner)} tuner), "
             f"{search.training.epochs} epochs each, objective <code>{e(search.objective.name)}</code> "
             f"({e(search.objective.direction)}), scored by {e(_scoring(search))}, answer chosen by "
             f"<code>{e(search.settings.select)}</code>; {summary.duration_s:.0f} s; status {e(summary.status)}; "
             f"MLflow parent run <code>{e(str(summary.parent_run_id))}</code>; written "
             f"{time.strftime('%Y-%m-%d %H:%M')}</p>"]
    parts.append(_answer(summary, metric))
    parts.append(_diagnoses(summary))
    parts.append("<h2>Validation score against generalization gap</h2><p class='sub'>Every completed trial; the "
                 "dashed line joins the Pareto front (no other trial has both a better validation score and a "
                 "smaller gap): " + e(", ".join(f"trial {r.trial_id}" for r in front) or "none") + ".</p>")
    parts.append(_image(figures.get("map"), "validation score against gap"))
    parts.append(_effects(technique_rows, figures.get("effects"), search.objective.name))
    parts.append("<h2>Learning curves: baseline and chosen</h2><p class='sub'>Train figures in inference mode "
                 "(dotted), validation (solid)" + (", means over the folds" if search.settings.cv else "") +
                 ".</p>" + _image(figures.get("curves"), "learning curves"))
    parts.append(_trials(summary, search, metric))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _scoring(search) -> str:
    cv = search.settings.cv
    if cv is None:
        size = search.splits.sizes().get("validation")  # None for a stream whose length is unknown
        return "the holdout validation split" + (f" ({size} examples)" if isinstance(size, int) else "")
    repeats = f" x {cv.repeats} repeats" if cv.repeats > 1 else ""
    return f"{cv.folds}-fold cross-validation{repeats} ({cv.scheme}) of training + validation"


def _answer(summary, metric: str) -> str:
    e = html.escape
    best, answer = summary.best, summary.answer
    if best is None:
        return f"<div class='answer weak'><p class='big'>No trial completed.</p><p>{e(summary.failure_summary())}</p></div>"
    comparison = summary.comparison
    weak = comparison is not None and not comparison["distinguishable"]
    lines = [f"<div class='answer{' weak' if weak else ''}'>",
             f"<p class='big'>Chosen: {e(best.plan.describe())} (trial {e(best.trial_id)})</p>",
             f"<p>{e(summary.selection)}.</p>"]
    if getattr(summary, "pruning", ""):
        lines.append(f"<p>Pruning: {e(summary.pruning)}.</p>")
    if getattr(summary, "budget", ""):
        lines.append(f"<p>Time: {e(summary.budget)}.</p>")
    if answer is not None and answer.line:
        lines.append(f"<p class='big'>{e(answer.line)}</p>")
    if comparison is not None:
        rows = []
        for key in (metric, "loss", "ece", "mae", "r2"):
            if f"chosen_test_{key}" not in comparison:
                continue
            cells = []
            for who in ("baseline", "chosen"):
                value = comparison[f"{who}_test_{key}"]
                low, high = comparison[f"{who}_test_{key}_ci95_low"], comparison[f"{who}_test_{key}_ci95_high"]
                cells.append(f"<td>{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]</td>")
            rows.append(f"<tr><td class='l'>test {e(key)}</td>{''.join(cells)}</tr>")
        lines.append("<table><tr><th class='l'>refit on training + validation, tested once</th><th>baseline "
                     "[95% CI]</th><th>chosen [95% CI]</th></tr>" + "".join(rows) + "</table>")
        lines.append(f"<p class='sub'>Intervals: percentile bootstrap of the {comparison['rounds']} resampled "
                     f"test sets; the gain's test: {e(comparison['test'])} on the same test examples.</p>")
    elif answer is not None and answer.refit is not None:
        lines.append(f"<p>Refit on training + validation ({answer.refit.epochs} epochs): test {e(metric)} "
                     f"{_fmt(answer.refit.metrics.get(f'test_{metric}'))}.</p>")
    if answer is not None and answer.refit is not None:
        lines.append("<p class='sub'>The refit model is this run's artifact <code>model/model.keras</code>: "
                     "<code>keras.saving.load_model(path)</code> after <code>import kreg</code>.</p>")
    lines.append("</div>")
    return "\n".join(lines)


def _diagnoses(summary) -> str:
    e = html.escape
    items = []
    for label, record in (("baseline", summary.baseline), ("chosen", summary.best)):
        if record is None or (label == "chosen" and record is summary.baseline):
            continue
        for d in record.diagnoses:
            items.append(f"<div class='diag'><b>{e(label)} (trial {e(record.trial_id)}): {e(d['kind'])}</b>: "
                         f"{e(d['evidence'])}.<br>{e(d['advice'])}</div>")
    if not items:
        return ""
    return "<h2>Diagnoses</h2>" + "\n".join(items)


def _effects(rows, figure, objective: str) -> str:
    if not rows:
        return ""
    e = html.escape
    head = ("<tr><th class='l'>technique</th><th>trials with / without</th><th>mean objective with</th>"
            "<th>without</th><th>difference</th><th>fitted effect (+- SE)</th><th>mean gap with</th>"
            "<th>without</th></tr>")
    body = "".join(
        f"<tr><td class='l'>{e(r['technique'])}</td><td>{r['trials_with']} / {r['trials_without']}</td>"
        f"<td>{_fmt(r['objective_with'])}</td><td>{_fmt(r['objective_without'])}</td><td>{_fmt(r['difference'])}"
        f"</td><td>{_fmt(r['effect'])} +- {_fmt(r['effect_se'])}</td><td>{_fmt(r['gap_with'])}</td>"
        f"<td>{_fmt(r['gap_without'])}</td></tr>" for r in rows)
    return (f"<h2>Which technique helped</h2><p class='sub'>Differences and effects in {e(objective)}, positive = "
            f"better. Fitted effect: {e(effects.METHOD)}; a summary of what this search saw, not a causal "
            f"effect.</p><table>{head}{body}</table>" + _image(figure, "technique effects"))


def _trials(summary, search, metric: str) -> str:
    e = html.escape
    cv = search.settings.cv is not None
    key = f"cv_sem_kept_{search.objective.name}"
    head = ("<tr><th class='l'>trial</th><th class='l'>status</th><th class='l'>plan</th>"
            f"<th>{e(search.objective.name)}{' (mean +- SE)' if cv else ''}</th><th>val {e(metric)}</th>"
            f"<th>gap {e(metric)}</th><th>test {e(metric)}</th><th>kept epoch</th><th>s</th></tr>")
    rows = []
    for r in summary.records:
        m = r.metrics
        objective = _fmt(r.objective) + (f" +- {_fmt(m.get(key))}" if cv and key in m else "")
        cls = " class='chosen'" if r is summary.best else (
            "" if r.status == COMPLETED else " class='pruned'" if r.status == PRUNED else " class='failed'")
        rows.append(f"<tr{cls}><td class='l'>{e(r.trial_id)}</td><td class='l'>{e(r.status)}</td><td class='l'>"
                    f"{e(r.plan.describe() if r.plan is not None else '')}</td><td>{objective}</td>"
                    f"<td>{_fmt(m.get(f'val_{metric}'))}</td><td>{_fmt(m.get(f'gap_{metric}'))}</td>"
                    f"<td>{_fmt(m.get(f'test_{metric}'))}</td><td>{_fmt(m.get('kept_epoch'), 1)}</td>"
                    f"<td>{r.duration_s:.0f}</td></tr>")
    return ("<h2>Every trial</h2><p class='sub'>The chosen trial highlighted. Test figures are shown for "
            "reading, never for choosing.</p><table>" + head + "".join(rows) + "</table>")
