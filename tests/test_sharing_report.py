"""The HTML report: one self-contained file (inline PNG charts, no network) with the reading, Table III with
best/second and Wilcoxon p, curves, Table II and settings; a warning for runs that are not comparable."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from embsr_core import reports
from embsr_core.cli import main
from embsr_core.sharing.report import reading, write_report
from embsr_core.store import runs_repo


class Page(HTMLParser):
    """Collects the headings, table cells, images and any external reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.cells: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []
        self._tag: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("data:"):
                self.external.append(value)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._tag:
            self._tag.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._tag and self._tag[-1] in ("h1", "h2", "h3"):
            self.headings.append(data.strip())
        if "td" in self._tag and self.cells:
            self.cells[-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_content(real_runs, tmp_path: Path) -> None:
    ids = real_runs.run_ids
    out = tmp_path / "report.html"
    result = write_report(real_runs.store, ids, out)
    page = parse(out)
    assert page.external == []  # opens without network
    assert {"In short", "Comparison (Table III)", "Training and validation curves", "Data",
            "Settings of each run"} <= set(page.headings)
    assert "Dataset tiny-demo" in page.headings
    assert len(page.images) >= 5  # loss, two validation curves, operations, session lengths
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    table = reports.comparison_table(real_runs.store, ids, significance=True)
    text = " ".join(page.text)
    for i, info in enumerate(table.runs):
        assert f"#{info.id} {info.display_name}" in page.cells
        for value in table.values[i]:
            assert f"{100 * value:.2f}" in page.cells
    html = out.read_text()
    assert html.count('class="best"') == int(table.best.sum())
    assert html.count('class="second"') == int(table.second.sum())
    p = table.p_values[next(i for i in ids if i != table.chosen_run_id)]
    assert p is not None and f"{p:.3g}" in page.cells
    # the reading names the best run of H@20 and says whether the difference is significant
    j = table.columns.index(("hit", 20))
    best = table.runs[int(np.nanargmax(table.values[:, j]))]
    assert any(s.startswith("On H@20") and f"{best.display_name} (run {best.id}) is best" in s for s in result.reading)
    verdict = "is statistically significant" if p < 0.05 else "is not statistically significant"
    assert any(verdict in s for s in result.reading)
    assert all(s in text for s in result.reading)
    t2 = real_runs.prepared.stats["table2"]
    assert f"{t2['test']:,}" in page.cells and f"{t2['items']:,}" in page.cells
    assert "embedding_dim" in text  # settings
    assert result.pdf_path is None and result.pdf_note == "no PDF asked for"


def test_not_comparable_runs_get_a_warning(real_runs) -> None:
    ids = real_runs.run_ids
    run = runs_repo.get_run(real_runs.store, ids[1])
    try:
        runs_repo.update_run(real_runs.store, ids[1], prep_hash="0" * 64)  # as if prepared differently
        table = reports.comparison_table(real_runs.store, ids, significance=True)
        sentences = reading(table)
    finally:
        runs_repo.update_run(real_runs.store, ids[1], prep_hash=run.prep_hash)
    assert sentences[0].startswith("Warning: these runs are not comparable")
    assert not any("is best" in s or "significant (" in s for s in sentences)


def test_cli_report(real_runs, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["--db", real_runs.url, "report", *map(str, real_runs.run_ids), "-o", str(out),
                                       "--pdf"])
    assert result.exit_code == 0, result.output
    assert f"Wrote the report of 2 run(s) to {out}" in result.output and "On H@20" in result.output
    assert re.search(r"PDF: .*r\.pdf|No PDF: no PDF converter found", result.output)
    assert out.is_file()
    result = CliRunner().invoke(main, ["--db", real_runs.url, "report", "999", "-o", str(out)])
    assert result.exit_code == 1 and "999" in result.output
    if not (tmp_path / "r.pdf").exists():
        pytest.skip("no PDF converter on this machine: the PDF branch was checked for its message only")
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
