"""A self-contained HTML report of runs a manager can open: no network, every chart an inline PNG.

Contents: a plain-language reading of the result; per dataset the paper's Table II row and its
operation / session-length charts; the Table III comparison (best bold, second underlined, the
Imp. row, Wilcoxon p-values); training-loss and validation curves; every run's settings. Numbers come
from :mod:`embsr_core.reports` and :mod:`embsr_core.training.significance` (through
``reports.comparison_table``); this module only lays them out. Charts use matplotlib's Agg canvas
directly (no pyplot, no global backend, no Qt). A PDF of the same page is written when a converter
(Chromium or wkhtmltopdf) is installed; otherwise the result says none was found.
"""

from __future__ import annotations

import base64
import html
import io
import math
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from embsr_core import __version__, reports
from embsr_core.store import run_details

SIGNIFICANCE_LEVEL = 0.05
HEADLINE = (("hit", 20), ("mrr", 20))  # the columns the reading speaks about
PDF_CONVERTERS = ("chromium", "chromium-browser", "google-chrome", "wkhtmltopdf")
METRIC_WORDS = {"hit": "hit rate (share of sessions whose next item is in the top {k})",
                "mrr": "mean reciprocal rank (how high the next item is ranked, within the top {k})",
                "ndcg": "NDCG (rank quality within the top {k})"}


@dataclass
class ReportResult:
    html_path: Path
    pdf_path: Path | None
    pdf_note: str  # how the PDF was made, or why there is none
    reading: list[str]  # the plain-language sentences, as in the page


# --- charts -------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _figure(width: float = 6.0, height: float = 3.0) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def _bar_chart(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> str:
    fig, ax = _figure(6.0, 0.35 * len(labels) + 1.0)
    ax.barh(list(labels)[::-1], list(values)[::-1], color="#3b6fd8")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _lines_chart(series: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str, ylabel: str) -> str:
    fig, ax = _figure(6.0, 3.0)
    for label, x, y in series:
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return _png(fig)


# --- sections -----------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _pct(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def dataset_section(store: Any, info: reports.RunInfo) -> str:
    """Table II row and charts of the prepared data ``info``'s run was trained on."""
    from embsr_core.data.from_store import prepared_for_run
    from embsr_core.data.preprocess import dataset_stats

    title = f"<h3>Dataset {_esc(info.dataset)}</h3>"
    try:
        stats = dataset_stats(prepared_for_run(store, info.config, info.dataset_id))
    except Exception as exc:  # the dataset may be gone or no longer preparable: say so, keep the report
        return title + f'<p class="warn">Its statistics are not available: {_esc(exc)}</p>'
    t2 = stats.get("table2", {})
    names = {"train": "Train sessions", "valid": "Validation sessions", "test": "Test sessions",
             "sessions": "Sessions", "items": "Items", "micro_behaviors": "Micro-behaviors"}
    rows = [[_esc(names.get(k, k)) for k in t2], [f"{int(v):,}" for v in t2.values()]]
    table = _table(rows[0], [rows[1]], "t2")
    facts = (f"<p>Mean session length {stats.get('mean_session_length', 0):.1f} micro-behaviors, "
             f"{stats.get('mean_macro_items', 0):.1f} distinct consecutive items (macro-items) per session; "
             f"{100 * stats.get('revisit_rate', 0):.1f}% of macro-items revisit an earlier item.</p>")
    charts = []
    ops = stats.get("operations") or {}
    if ops:
        charts.append(_bar_chart(list(ops), list(ops.values()), "Micro-behaviors per operation", "count"))
    hist = stats.get("session_length_hist") or {}
    if hist:
        charts.append(_bar_chart(list(hist), list(hist.values()), "Sessions by length (micro-behaviors)",
                                 "sessions"))
    return title + "<p>The paper's Table II row, as this run's preprocessing prepared it:</p>" + table + facts + \
        '<div class="charts">' + "".join(charts) + "</div>"


def comparison_section(table: reports.ComparisonTable) -> str:
    headers = ["Run", "Model"] + [_esc(label) for label in table.labels]
    tested = bool(table.p_values)
    if tested:
        headers.append(f"Wilcoxon p vs run {table.chosen_run_id}")
    rows = []
    for i, info in enumerate(table.runs):
        row = [f"#{info.id} {_esc(info.display_name)}", _esc(info.model)]
        for j, value in enumerate(table.values[i]):
            text = _pct(value)
            if table.best[i, j]:
                text = f'<b class="best">{text}</b>'
            elif table.second[i, j]:
                text = f'<u class="second">{text}</u>'
            row.append(text)
        if tested:
            p = table.p_values.get(info.id)
            row.append("(reference)" if info.id == table.chosen_run_id else ("–" if p is None else f"{p:.3g}"))
        rows.append(row)
    if table.improvement is not None:
        rows.append(["", f"<i>Imp. of run {table.chosen_run_id}</i>"]
                    + ["–" if not math.isfinite(v) else f"{v:+.2f}%" for v in table.improvement]
                    + ([""] if tested else []))
    caption = (f"<p>Scores in % on the <b>{_esc(table.split)}</b> split ({_esc(table.aggregation)} epoch, the true "
               "next operation given, as in the paper). <b>Bold</b>: best in the column; <u>underlined</u>: second "
               "best; Imp.: the reference run's gain over the best other run.</p>")
    warn = f'<p class="warn">Not comparable: {_esc(table.mismatch)}.</p>' if table.mismatch else ""
    return caption + warn + '<div class="wide">' + _table(headers, rows, "t3") + "</div>"


def _label(info: reports.RunInfo) -> str:
    return f"{info.display_name} (run {info.id})"


def reading(table: reports.ComparisonTable) -> list[str]:
    """A few plain sentences: who is best on the headline metrics, by how much, and whether it is significant."""
    infos = table.runs
    out: list[str] = []
    if table.mismatch:
        out.append(f"Warning: these runs are not comparable ({table.mismatch}), so no run is named best and no "
                   "significance is computed; compare runs of one dataset and one preparation.")
    if len(infos) == 1:
        info = infos[0]
        parts = [f"{m.upper()[0]}@{k} {_pct(table.values[0, table.columns.index((m, k))])}%"
                 for m, k in HEADLINE if (m, k) in table.columns]
        out.append(f"{_label(info)} scores " + ", ".join(parts) + f" on the {table.split} split.")
        return out
    if table.mismatch:
        return out
    for metric, k in HEADLINE:
        if (metric, k) not in table.columns:
            continue
        j = table.columns.index((metric, k))
        column = table.values[:, j]
        if not np.isfinite(column).any():
            continue
        order = np.argsort(-np.nan_to_num(column, nan=-np.inf), kind="stable")
        best, runner_up = order[0], order[1]
        words = METRIC_WORDS[metric].format(k=k)
        sentence = (f"On {metric.upper()[0]}@{k}, the {words}, {_label(infos[best])} is best with "
                    f"{_pct(column[best])}%")
        if np.isfinite(column[runner_up]):
            gap = 100 * (column[best] - column[runner_up])
            rel = 100 * (column[best] / column[runner_up] - 1) if column[runner_up] > 0 else float("inf")
            sentence += (f", {gap:.2f} points ahead of {_label(infos[runner_up])} "
                         f"({_pct(column[runner_up])}%" + (f", {rel:+.1f}% relative" if math.isfinite(rel) else "")
                         + ")")
        out.append(sentence + ".")
    if table.significance_metric is not None:
        m, k = table.significance_metric
        chosen = next(i for i in infos if i.id == table.chosen_run_id)
        for info in infos:
            if info.id == chosen.id:
                continue
            p = table.p_values.get(info.id)
            if p is None:
                out.append(f"No significance test for {_label(info)}: per-session ranks of both runs on the "
                           f"{table.split} split are needed (evaluate the run again).")
            elif p < SIGNIFICANCE_LEVEL:
                out.append(f"The difference between {_label(chosen)} and {_label(info)} in per-session "
                           f"{m.upper()[0]}@{k} is statistically significant (Wilcoxon signed-rank p = {p:.3g} < "
                           f"{SIGNIFICANCE_LEVEL}): unlikely to be chance.")
            else:
                out.append(f"The difference between {_label(chosen)} and {_label(info)} in per-session "
                           f"{m.upper()[0]}@{k} is not statistically significant (Wilcoxon p = {p:.3g}): it may be "
                           "chance; more test sessions or runs would tell.")
    return out


def curves_section(store: Any, infos: Sequence[reports.RunInfo]) -> str:
    ids = [i.id for i in infos]
    losses = reports.losses_by_run(store, ids)
    metrics = reports.metrics_by_run(store, ids)
    loss_series = []
    for info in infos:
        x, _, y = reports.loss_curve(losses[info.id])
        if len(x):
            loss_series.append((_label(info), x, y))
    charts = []
    if loss_series:
        charts.append(_lines_chart(loss_series, "Training loss", "loss"))
    for metric, k in HEADLINE:
        series = []
        for info in infos:
            frame = metrics.get(info.id)
            if frame is None or frame.empty:
                continue
            epochs, _, values = reports.curve(frame, metric, k, "valid")
            if len(epochs):
                series.append((_label(info), epochs, 100 * values))
        if series:
            charts.append(_lines_chart(series, f"Validation {reports.metric_label(metric, k)} by epoch", "%"))
    if not charts:
        return "<p>No training curves are stored for these runs.</p>"
    return '<div class="charts">' + "".join(charts) + "</div>"


def settings_section(store: Any, info: reports.RunInfo) -> str:
    facts = [
        ("Status", info.status), ("Model", info.model), ("Dataset", info.dataset),
        ("Epochs", f"{info.epochs_done} (best {info.best_epoch if info.best_epoch is not None else '–'})"),
        ("Duration", reports.format_duration(info.duration_s()) or "–"), ("Device", info.device or "–"),
        ("Created", f"{info.created_at:%Y-%m-%d %H:%M}" if info.created_at else "–"),
    ]
    tags = run_details.get_tags(store, info.id)
    if tags:
        facts.append(("Tags", ", ".join(tags)))
    notes = run_details.get_notes(store, info.id)
    if notes:
        facts.append(("Notes", notes))
    config = sorted(reports.flatten_config(info.config).items())
    left = _table(["", ""], [[_esc(k), _esc(v)] for k, v in facts], "kv")
    right = _table(["Setting", "Value"], [[_esc(k), _esc(v)] for k, v in config], "kv small")
    return f"<h3>#{info.id} {_esc(info.display_name)}</h3><div class='two'>{left}{right}</div>"


STYLE = """
body{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;max-width:1200px;margin:24px auto;
color:#1d2433;padding:0 18px}
h1{font-size:26px;margin-bottom:2px}h2{border-bottom:2px solid #e3e8f2;padding-bottom:4px;margin-top:30px}
.muted{color:#68718a}.warn{background:#fff4e0;border-left:4px solid #e59a1a;padding:8px 12px}
.reading{background:#eef4ff;border-left:4px solid #3b6fd8;padding:10px 16px}
table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;border-bottom:1px solid #e3e8f2;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
table.kv td{text-align:left}table.small{font-size:12px}.best{color:#0b5c2a}.second{color:#24407a}
.charts img{max-width:49%;vertical-align:top}.wide{overflow-x:auto}
table.t3{font-size:13px}table.t3 td,table.t3 th{padding:4px 7px;white-space:nowrap}
.two{display:flex;gap:24px;align-items:flex-start}
"""


def build_html(store: Any, run_ids: Sequence[int], *, aggregation: str = "best", split: str | None = None,
               progress: Callable[[object], None] | None = None) -> tuple[str, list[str]]:
    """The report page (HTML text) and its plain-language reading."""
    step = progress or (lambda _v: None)
    ids = [int(r) for r in run_ids]
    if not ids:
        raise ValueError("no runs to report on; give at least one run id")
    infos = reports.run_infos(store, ids)  # KeyError names a missing run
    table = reports.comparison_table(store, ids, aggregation=aggregation, split=split,  # type: ignore[arg-type]
                                     significance=len(ids) > 1)
    step(0.2)
    sentences = reading(table)
    datasets = []
    seen: set[tuple[int, str]] = set()
    for info in infos:
        key = (info.dataset_id, str(info.prep_hash))
        if key not in seen:
            seen.add(key)
            datasets.append(dataset_section(store, info))
    step(0.5)
    curves = curves_section(store, infos)
    step(0.8)
    settings = "".join(settings_section(store, info) for info in infos)
    names = ", ".join(_esc(_label(i)) for i in infos)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>EMBSR Workbench report: {names}</title>
<style>{STYLE}</style></head><body>
<h1>Session recommendation report</h1>
<p class="muted">{len(infos)} run(s): {names} · made {datetime.now():%Y-%m-%d %H:%M} with EMBSR Workbench
{_esc(__version__)}</p>
<h2>In short</h2><div class="reading">{"".join(f"<p>{_esc(s)}</p>" for s in sentences)}</div>
<h2>Comparison (Table III)</h2>{comparison_section(table)}
<h2>Training and validation curves</h2>{curves}
<h2>Data</h2>{"".join(datasets)}
<h2>Settings of each run</h2>{settings}
<p class="muted">How to read the scores: H@K (hit rate) is the share of test sessions whose true next item is among
the K recommended; M@K (mean reciprocal rank) also rewards ranking it high (1 at rank 1, ½ at rank 2, 0 beyond K).
Significance: two-sided Wilcoxon signed-rank test on the per-session scores of the same test sessions.</p>
</body></html>
"""
    step(1.0)
    return page, sentences


def _pdf(html_path: Path) -> tuple[Path | None, str]:
    """Print ``html_path`` to a PDF beside it with the first converter found; (None, why) when none is."""
    pdf = html_path.with_suffix(".pdf")
    for name in PDF_CONVERTERS:
        exe = shutil.which(name)
        if exe is None:
            continue
        if name == "wkhtmltopdf":
            cmd = [exe, "--quiet", str(html_path), str(pdf)]
        else:
            cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={pdf}",
                   "--no-pdf-header-footer", html_path.resolve().as_uri()]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"the PDF converter {name} failed ({type(exc).__name__}); the HTML report is complete"
        if pdf.is_file():
            return pdf, f"PDF printed by {name}"
    return None, "no PDF converter found (Chromium or wkhtmltopdf); the HTML report is complete"


def write_report(store: Any, run_ids: Sequence[int], path: Path | str, *, pdf: bool = False,
                 aggregation: str = "best", split: str | None = None,
                 progress: Callable[[object], None] | None = None, cancel: Any = None) -> ReportResult:
    """Write the report of ``run_ids`` to ``path`` (HTML, atomically) and, with ``pdf``, a PDF beside it."""
    del cancel  # a report takes seconds; nothing to stop between steps
    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"cannot write {target}: folder {target.parent} does not exist")
    page, sentences = build_html(store, run_ids, aggregation=aggregation, split=split, progress=progress)
    tmp = target.with_name(f".{target.name}.partial")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    pdf_path, note = _pdf(target) if pdf else (None, "no PDF asked for")
    return ReportResult(target, pdf_path, note, sentences)
