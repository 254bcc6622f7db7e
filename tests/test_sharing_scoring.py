"""Batch scoring: the round trip (exported model on the test split gives the stored evaluation's ranks),
streaming across chunks, unknown items / operations reported, clear errors, cancel leaves no file."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.data.errors import DataFormatError
from embsr_core.inference import Predictor
from embsr_core.sharing.model_file import export_model
from embsr_core.sharing.scoring import ScoringCancelled, score_file
from embsr_core.store import runs_repo

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_split(prepared, path: Path, split: str = "test") -> list[str]:
    """The split's inputs as a generic CSV (one row per micro-behavior); returns the session ids in order."""
    data = prepared.split(split)
    vocab = prepared.vocab
    items, ops = np.asarray(data.items), np.asarray(data.ops)
    ids = [f"s{i}" for i in range(len(data))]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session", "item", "operation", "timestamp"])
        for row, sid in enumerate(ids):
            for t in range(int(data.lengths[row])):
                writer.writerow([sid, vocab.item_ids[items[row, t]], vocab.op_names[ops[row, t]], t])
    return ids


def read_rows(path: Path) -> dict[str, list[tuple[int, str, float]]]:
    out: dict[str, list[tuple[int, str, float]]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["session_id", "rank", "item_id", "score"]
        for r in reader:
            out.setdefault(r["session_id"], []).append((int(r["rank"]), r["item_id"], float(r["score"])))
    return out


@pytest.fixture(scope="module")
def model_path(real_runs, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("score") / "embsr.embsr"
    export_model(real_runs.store, real_runs.run_ids[0], path)
    return path


def test_round_trip_gives_the_stored_ranks(real_runs, model_path: Path, tmp_path: Path) -> None:
    """Export → score the test split once per next operation → each session's target sits at its stored rank."""
    prepared = real_runs.prepared
    test = prepared.test
    stored, _ = runs_repo.load_ranks(real_runs.store, real_runs.run_ids[0], "test", "oracle")
    assert len(stored) == len(test)
    sessions = tmp_path / "test_split.csv"
    ids = write_split(prepared, sessions)
    predictor = Predictor.from_model_file(model_path)
    exclude = predictor.model_info.manifest["evaluation"]["exclude_seen_items"]
    k = 20
    checked_in, checked_out = 0, 0
    for op_id in sorted(set(test.target_ops.tolist())):
        op = prepared.vocab.op_names[op_id]
        out = tmp_path / f"pred_{op}.csv"
        # small chunks: sessions are cut by chunk boundaries and carried over
        report = score_file(predictor, sessions, out, top_k=k, target_op=op, exclude_seen=exclude, chunk_rows=97)
        assert report.sessions_scored == len(test) and report.unknown_item_steps == 0
        rows = read_rows(out)
        assert list(rows) == ids  # the file's session order
        for s in np.flatnonzero(test.target_ops == op_id):
            target = prepared.vocab.item_ids[test.targets[s]]
            ranked = {item: rank for rank, item, _ in rows[ids[s]]}
            assert [r for r, _, _ in rows[ids[s]]] == list(range(1, k + 1))
            if stored[s] <= k:
                assert ranked.get(target) == stored[s], (s, stored[s], ranked.get(target))
                checked_in += 1
            else:
                assert target not in ranked
                checked_out += 1
    assert checked_in > 10 and checked_out > 10  # both sides of the cut-off were exercised


def test_unknown_items_and_operations_are_reported(real_runs, model_path: Path, tmp_path: Path) -> None:
    vocab = real_runs.prepared.vocab
    a, b = vocab.item_ids[1], vocab.item_ids[2]
    op = vocab.op_names[1]
    src = tmp_path / "mixed.csv"
    src.write_text(
        "session,item,operation,timestamp\n"
        f"u1,{a},{op},1\nu1,never-seen,{op},2\nu1,{b},teleport,3\n"
        "u2,never-seen,teleport,1\n"
        f"u3,{b},{op},5\nu3,{a},{op},4\n"
    )
    out = tmp_path / "pred.csv"
    report = score_file(model_path, src, out, top_k=5, exclude_seen=True)
    assert (report.sessions_read, report.sessions_scored, report.sessions_skipped) == (3, 2, 1)
    assert report.unknown_item_steps == 2 and report.unknown_items == {"never-seen"}
    assert report.unknown_op_steps == 2 and report.unknown_ops == {"teleport": 2}
    text = "\n".join(report.summary_lines())
    assert "2 step(s) on 1 item(s) the model never saw (e.g. never-seen)" in text
    assert "teleport (2)" in text and "1 session(s) had no step the model knows" in text
    rows = read_rows(out)
    assert list(rows) == ["u1", "u3"] and len(rows["u1"]) == 5
    assert a not in {item for _, item, _ in rows["u1"]}  # exclude seen
    scores = [s for _, _, s in rows["u3"]]
    assert scores == sorted(scores, reverse=True)
    # u3's rows are out of time order in the file: the model sees b after a, as Predictor does
    expected = Predictor.from_model_file(model_path).predict([(a, op), (b, op)], k=5, exclude_seen=True)
    assert [item for _, item, _ in rows["u3"]] == [r.item_id for r in expected]


def test_bad_input_is_refused_and_leaves_nothing(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        score_file(model_path, empty, out)
    split = tmp_path / "split.csv"
    split.write_text("session,item,operation,timestamp\nx,1,a,1\ny,1,a,1\nx,2,a,2\n")
    with pytest.raises(DataFormatError, match="rows of session 'x' are not together"):
        score_file(model_path, split, out, chunk_rows=2)
    with pytest.raises(ValueError, match="'fly' is not one of"):
        score_file(model_path, split, out, target_op="fly")
    assert set(tmp_path.iterdir()) == {empty, split}  # no output, no partial file


def test_cancel_leaves_no_file(real_runs, model_path: Path, tmp_path: Path) -> None:
    sessions = tmp_path / "test_split.csv"
    write_split(real_runs.prepared, sessions)
    out = tmp_path / "pred.csv"
    token = threading.Event()
    seen = []

    def progress(event: object) -> None:
        seen.append(event)
        token.set()  # cancel after the first batch

    with pytest.raises(ScoringCancelled):
        score_file(model_path, sessions, out, chunk_rows=50, batch_size=4, progress=progress, cancel=token)
    assert len(seen) == 1 and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["test_split.csv"]


def test_cli_score(real_runs, model_path: Path, tmp_path: Path) -> None:
    sessions = tmp_path / "test_split.csv"
    ids = write_split(real_runs.prepared, sessions)
    out = tmp_path / "pred.csv"
    op = real_runs.prepared.vocab.op_names[2]
    result = CliRunner().invoke(main, ["score", str(model_path), str(sessions), "-o", str(out), "--top-k", "3",
                                       "--target-op", op, "--exclude-seen"])
    assert result.exit_code == 0, result.output
    assert f"Scored {len(ids):,} of {len(ids):,} sessions (generic file)" in result.output
    assert len(read_rows(out)) == len(ids)
    result = CliRunner().invoke(main, ["score", str(model_path), str(sessions), "-o", str(out), "--target-op", "x"])
    assert result.exit_code == 1 and "'x' is not one of" in result.output


@pytest.mark.parametrize("source", ["generated", "real-sample"])
def test_scores_a_native_jd_file(model_path: Path, tmp_path: Path, source: str) -> None:
    """A JD file (generated on any clone, or the real sample): detected as jd, read in streaming chunks;
    its items are unknown to this model."""
    if source == "generated":
        from native_fixtures import write_jd

        written = write_jd(tmp_path / "jd.txt", n_sessions=150, seed=2)
        path, chunk_rows = written.path, written.rows // 5
    else:
        path, chunk_rows = SHARED_DATA / "jd" / "JD_Appliances_sample.txt", 5_000
        if not path.is_file():
            pytest.skip(f"sample data not present ({path.name}); the generated JD file covers the same path")
    report = score_file(model_path, path, tmp_path / "pred.csv", chunk_rows=chunk_rows)
    assert report.format == "jd" and report.sessions_read > 100
    assert report.sessions_scored + report.sessions_skipped == report.sessions_read
    # another catalogue: every item is unknown, every session is reported as skipped, nothing crashes
    assert report.unknown_item_steps == report.steps_read and report.sessions_skipped == report.sessions_read
    assert report.rows_written == 0 and "had no step the model knows" in "\n".join(report.summary_lines())
