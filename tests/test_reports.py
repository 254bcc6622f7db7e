"""Reports: the comparison table, significance and the CSV exports (round-trip of every value)."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from embsr_core import reports
from embsr_core.store import open_store
from embsr_core.store.models import Dataset, EpochMetric, Run, RunRanks


@pytest.fixture()
def store(tmp_path):
    """A store with a dataset and three runs of hand-made metrics (exact values known)."""
    st = open_store(f"sqlite:///{tmp_path / 'reports.db'}")
    rng = np.random.default_rng(7)
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    with st.session() as session, session.begin():
        ds = Dataset(name="démo-ds", source_format="synthetic", imported_at=t0)
        session.add(ds)
        session.flush()
        for rid, (name, model, best) in enumerate(
            [("EMBSR «a»", "EMBSR", 2), ("SGNN-Self, b", "SGNN-Self", 3), ("", "NARM", None)], start=1
        ):
            run = Run(
                id=rid, name=name, dataset_id=ds.id, model_name=model, status="finished", device="cpu",
                config={"model": {"dim": 64, "dropout": 0.1}, "train": {"lr": 0.001, "seed": rid}},
                created_at=t0, started_at=t0, finished_at=t0 + timedelta(seconds=75 * rid),
                epochs_done=3, best_epoch=best, prep_hash="abc",
            )
            session.add(run)
            session.flush()
            for epoch in (1, 2, 3):
                for split in ("valid", "test"):
                    for metric in reports.METRICS:
                        for k in reports.KS:
                            session.add(EpochMetric(
                                run_id=rid, epoch=epoch, split=split, target_op="oracle", metric=metric, k=k,
                                value=float(rng.random()) / 3 + (0.2 if rid == 1 else 0.0),
                                wall_time=None if (epoch == 1 and rid == 2) else float(epoch * 1.1 + rng.random()),
                            ))
            ranks = rng.integers(1, 40 if rid == 1 else 60, size=500).astype("<i4")
            session.add(RunRanks(run_id=rid, split="test", target_op="oracle", prep_hash="abc",
                                 n=500, ranks=ranks.tobytes()))
    yield st
    st.dispose()


def _value(store, run_id, epoch, split, metric, k):
    with store.session() as session:
        return session.query(EpochMetric.value).filter_by(
            run_id=run_id, epoch=epoch, split=split, target_op="oracle", metric=metric, k=k
        ).scalar()


def test_labels_round_trip():
    assert reports.metric_label("hit", 20) == "H@20"
    assert reports.parse_metric_label("M@10") == ("mrr", 10)
    assert reports.parse_metric_label("ndcg@5") == ("ndcg", 5)
    with pytest.raises(ValueError, match="expected e.g. H@20"):
        reports.parse_metric_label("recall@20")


def test_aggregations_pick_the_right_epoch(store):
    table_best = reports.comparison_table(store, [1, 2], aggregation="best", split="test")
    j = table_best.columns.index(("hit", 20))
    assert table_best.values[0, j] == _value(store, 1, 2, "test", "hit", 20)  # run 1: best epoch 2
    assert table_best.values[1, j] == _value(store, 2, 3, "test", "hit", 20)
    last = reports.comparison_table(store, [1], aggregation="last", split="test")
    assert last.values[0, j] == _value(store, 1, 3, "test", "hit", 20)
    values = [_value(store, 1, e, "valid", "mrr", 5) for e in (1, 2, 3)]
    jm = last.columns.index(("mrr", 5))
    assert reports.comparison_table(store, [1], aggregation="max", split="valid").values[0, jm] == max(values)
    assert reports.comparison_table(store, [1], aggregation="min", split="valid").values[0, jm] == min(values)
    # a run without a best epoch and several evaluations has no "best" value
    assert math.isnan(reports.comparison_table(store, [3], aggregation="best", split="test").values[0, j])


def test_flags_improvement_and_significance(store):
    table = reports.comparison_table(store, [1, 2, 3], aggregation="max", split="test", significance=True)
    for j in range(len(table.columns)):
        col = table.values[:, j]
        order = np.argsort(-col)
        assert table.best[order[0], j] and not table.best[order[1], j]
        assert table.second[order[1], j] and not table.second[order[0], j]
        best_other = max(col[1:])
        assert table.improvement[j] == pytest.approx(100 * (col[0] - best_other) / best_other)
    assert table.chosen_run_id == 1
    assert set(table.p_values) == {2, 3}
    assert 0 <= table.p_values[2] < 0.05  # run 1's ranks are clearly better (1..39 vs 1..59)
    p = reports.wilcoxon_p_value(store, 1, 2, split="test", metric=("mrr", 20))
    assert p == table.p_values[2]
    with pytest.raises(ValueError, match="no stored ranks for split 'valid'"):
        reports.wilcoxon_p_value(store, 1, 2, split="valid")


def test_rank_flags_ties_and_nan():
    values = np.array([[0.5, np.nan], [0.5, 0.1], [0.4, 0.2]])
    best, second = reports.rank_flags(values)
    assert best[:, 0].tolist() == [True, True, False] and second[:, 0].tolist() == [False, False, True]
    assert best[:, 1].tolist() == [False, False, True] and second[:, 1].tolist() == [False, True, False]


def test_metrics_csv_round_trips_every_value(store, tmp_path):
    path = reports.export_metrics_csv(store, [2, 1], tmp_path / "metrics.csv")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
    header = raw.decode("utf-8").splitlines()[0]
    assert header == ",".join(reports.LONG_COLUMNS)  # no index column
    back = reports.read_metrics_csv(path)
    assert len(back) == 2 * 3 * 2 * 3 * 5
    assert list(back["run_id"].unique()) == [2, 1]
    assert set(back["run_name"]) == {"SGNN-Self, b", "EMBSR «a»"}
    assert set(back["dataset"]) == {"démo-ds"}
    with store.session() as session:
        stored = {
            (m.run_id, m.epoch, m.split, m.target_op, m.metric, m.k): (m.value, m.wall_time)
            for m in session.query(EpochMetric).filter(EpochMetric.run_id.in_([1, 2]))
        }
    assert len(stored) == len(back)
    for row in back.itertuples(index=False):
        value, wall = stored[(row.run_id, row.epoch, row.split, row.target_op, row.metric, row.k)]
        assert row.value == value  # exact, not approx
        assert (math.isnan(row.wall_time) and wall is None) or row.wall_time == wall
    # the standard csv module (what a spreadsheet import does) sees the same values
    with path.open(encoding="utf-8", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert set(first) == set(reports.LONG_COLUMNS)


def test_comparison_csv_wide(store, tmp_path):
    path = reports.export_comparison_csv(store, [1, 2], tmp_path / "cmp.csv", aggregation="last", split="test")
    import pandas as pd

    back = pd.read_csv(path, encoding="utf-8")
    assert list(back.columns[:8]) == list(reports.COMPARISON_ID_COLUMNS)
    assert {"H@1", "H@20", "M@20", "N@10", "wilcoxon_p_vs_chosen"} <= set(back.columns)
    assert back.loc[0, "H@20"] == _value(store, 1, 3, "test", "hit", 20)
    assert back.loc[1, "N@10"] == _value(store, 2, 3, "test", "ndcg", 10)
    assert back.loc[2, "run_name"].startswith(reports.IMPROVEMENT_ROW)
    h20 = back.loc[[0, 1], "H@20"]
    assert back.loc[2, "H@20"] == pytest.approx(100 * (h20[0] - h20[1]) / h20[1])


def test_unknown_run_and_bad_folder(store, tmp_path):
    with pytest.raises(KeyError, match="no run with id 99"):
        reports.comparison_table(store, [1, 99])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        reports.export_metrics_csv(store, [1], tmp_path / "nope" / "m.csv")


def test_hyperparameters_and_signature(store):
    sig = reports.runs_signature(store)
    assert sig == ((1, "finished", 3), (2, "finished", 3), (3, "finished", 3))
    assert reports.format_hyperparameters({"model": {"dim": 64, "dropout": 0.1}, "train": {"lr": 0.001}}) == (
        "lr=0.001 d=64 drop=0.1"
    )
    assert reports.format_duration(3725) == "1:02:05" and reports.format_duration(75) == "1:15"


def test_cli_list_show_compare_export(store, tmp_path):
    from click.testing import CliRunner

    from embsr_core.cli import main

    runner = CliRunner()
    db = ["--db", store.url]
    out = runner.invoke(main, [*db, "runs", "list"])
    assert out.exit_code == 0, out.output
    assert "EMBSR «a»" in out.output and "SGNN-Self" in out.output and "lr=0.001 d=64 drop=0.1" in out.output
    out = runner.invoke(main, [*db, "runs", "show", "1"])
    assert out.exit_code == 0, out.output
    assert "model.dim = 64" in out.output and "best 2" in out.output
    out = runner.invoke(main, [*db, "runs", "compare", "1", "2", "--agg", "last", "--significance"])
    assert out.exit_code == 0, out.output
    assert "H@20" in out.output and "M@1" in out.output and "Imp. %" in out.output and "Wilcoxon p" in out.output
    assert f"{_value(store, 1, 3, 'test', 'hit', 20):.4f}" in out.output
    out = runner.invoke(main, [*db, "runs", "compare", "1", "x2"])
    assert out.exit_code != 0 and "not a run id" in out.output
    out = runner.invoke(main, [*db, "runs", "compare", "1", "42"])
    assert out.exit_code == 1 and "no run with id 42" in out.output
    m, c = tmp_path / "m.csv", tmp_path / "c.csv"
    out = runner.invoke(main, [*db, "export", "1", "2", "--metrics-csv", str(m), "--comparison-csv", str(c)])
    assert out.exit_code == 0, out.output
    assert len(reports.read_metrics_csv(m)) == 180 and c.read_text(encoding="utf-8").startswith("run_id,run_name")
    out = runner.invoke(main, [*db, "export", "1"])
    assert out.exit_code == 2 and "--metrics-csv" in out.output
    out = runner.invoke(main, [*db, "runs", "delete", "3"], input="n\n")
    assert out.exit_code == 1 and "Aborted" in out.output and len(reports.run_infos(store)) == 3
    out = runner.invoke(main, [*db, "runs", "delete", "3", "--yes"])
    assert out.exit_code == 0 and "Deleted run 3" in out.output
    assert [i.id for i in reports.run_infos(store)] == [2, 1]


def _second_dataset_run(store, *, same_dataset: bool) -> int:
    """A copy of run 2 on another dataset (or on the same dataset with another preprocessing)."""
    with store.session() as session, session.begin():
        source = session.get(Run, 2)
        dataset_id = source.dataset_id
        if not same_dataset:
            other = Dataset(name="other-ds", source_format="synthetic", imported_at=source.created_at)
            session.add(other)
            session.flush()
            dataset_id = other.id
        run = Run(name="elsewhere", dataset_id=dataset_id, model_name="NARM", status="finished", config={},
                  created_at=source.created_at, epochs_done=3, best_epoch=3, prep_hash="other-hash")
        session.add(run)
        session.flush()
        for metric in session.query(EpochMetric).filter_by(run_id=2).all():
            session.add(EpochMetric(run_id=run.id, epoch=metric.epoch, split=metric.split, target_op="oracle",
                                    metric=metric.metric, k=metric.k, value=metric.value / 4))
        ranks = session.get(RunRanks, (2, "test", "oracle"))
        session.add(RunRanks(run_id=run.id, split="test", target_op="oracle", prep_hash="other-hash", n=ranks.n,
                             ranks=ranks.ranks))
        return int(run.id)


@pytest.mark.parametrize("same_dataset", [False, True])
def test_runs_of_different_datasets_or_splits_get_no_improvement_or_wilcoxon(store, tmp_path, same_dataset):
    other = _second_dataset_run(store, same_dataset=same_dataset)
    table = reports.comparison_table(store, [1, other], split="test", aggregation="max", significance=True)
    assert not table.comparable and table.improvement is None and table.p_values == {}
    assert not table.best.any() and not table.second.any()
    reason = "different preprocessing or splits" if same_dataset else "different datasets"
    assert reason in table.mismatch
    assert ("other-ds" in table.mismatch) is not same_dataset
    assert np.isfinite(table.values).all()  # each run's own numbers are still shown
    frame = table.to_frame()
    assert reports.IMPROVEMENT_ROW not in " ".join(map(str, frame["run_name"]))
    assert set(frame["comparison_note"]) == {table.mismatch}
    # runs of one dataset and split still compare
    assert reports.comparison_table(store, [1, 2], split="test").comparable

    from click.testing import CliRunner

    from embsr_core.cli import main

    out = CliRunner().invoke(main, ["--db", store.url, "runs", "compare", "1", str(other), "--significance"])
    assert out.exit_code == 0, out.output
    assert "Not comparable" in out.output and "Imp. %" not in out.output and reason in out.output
    assert "*" not in out.output.split("second best", 1)[1]  # no run marked best
