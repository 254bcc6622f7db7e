"""Moving runs between stores: export → import into a colleague's store shows the same runs (metrics,
comparison, curves, ranks, notes, tags, log, working checkpoints); importing twice adds nothing; a
missing or different dataset is named; damaged archives are refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embsr_core import reports
from embsr_core.cli import main
from embsr_core.data.demo import import_synthetic
from embsr_core.inference import Predictor
from embsr_core.sharing.runs_transfer import RunsArchiveError, export_runs, import_runs
from embsr_core.store import open_store, run_details, runs_repo


@pytest.fixture(scope="module")
def archive(real_runs, tmp_path_factory) -> Path:
    ids = real_runs.run_ids
    run_details.set_notes(real_runs.store, ids[0], "baseline for the Q3 review")
    run_details.set_tags(real_runs.store, ids[0], ["review", "tiny"])
    path = tmp_path_factory.mktemp("archive") / "runs.zip"
    export_runs(real_runs.store, ids, path)
    return path


def colleague_store(folder: Path, n_sessions: int = 300):
    """Another store with the same dataset imported again (same generator settings as real_runs)."""
    store = open_store(f"sqlite:///{folder / 'colleague.db'}")
    import_synthetic(store, "tiny-demo", n_sessions=n_sessions, n_items=120, n_categories=6, seed=1)
    return store


def test_import_shows_the_same_runs(real_runs, archive: Path, tmp_path: Path) -> None:
    store = colleague_store(tmp_path)
    result = import_runs(store, archive, checkpoint_root=tmp_path / "ckpt")
    assert sorted(result.imported) == sorted(real_runs.run_ids) and not result.problems
    new = [result.imported[i] for i in real_runs.run_ids]
    a = reports.comparison_table(real_runs.store, real_runs.run_ids, significance=True)
    b = reports.comparison_table(store, new, significance=True)
    np.testing.assert_array_equal(a.values, b.values)
    assert list(a.p_values.values()) == list(b.p_values.values()) and b.mismatch is None
    for old, fresh in zip(real_runs.run_ids, new, strict=True):
        x, y = reports.run_infos(real_runs.store, [old])[0], reports.run_infos(store, [fresh])[0]
        assert (x.display_name, x.model, x.dataset, x.status, x.config, x.epochs_done, x.best_epoch, x.created_at) \
            == (y.display_name, y.model, y.dataset, y.status, y.config, y.epochs_done, y.best_epoch, y.created_at)
        pd.testing.assert_frame_equal(reports.metrics_by_run(real_runs.store, [old])[old],
                                      reports.metrics_by_run(store, [fresh])[fresh])
        pd.testing.assert_frame_equal(reports.losses_by_run(real_runs.store, [old])[old],
                                      reports.losses_by_run(store, [fresh])[fresh])
        np.testing.assert_array_equal(runs_repo.load_ranks(real_runs.store, old, "test", "oracle")[0],
                                      runs_repo.load_ranks(store, fresh, "test", "oracle")[0])
        assert run_details.run_log_text(real_runs.store, old) == run_details.run_log_text(store, fresh)
        assert run_details.get_tags(store, fresh) == run_details.get_tags(real_runs.store, old)
        assert run_details.get_notes(store, fresh) == run_details.get_notes(real_runs.store, old)
        assert Path(runs_repo.get_run(store, fresh).best_checkpoint_path).is_relative_to(tmp_path / "ckpt")
        session = [(real_runs.prepared.vocab.item_ids[i], real_runs.prepared.vocab.op_names[1]) for i in (2, 5)]
        here = Predictor.from_run(store, fresh).predict(session, k=5)  # the copied checkpoint loads, hash-checked
        there = Predictor.from_run(real_runs.store, old).predict(session, k=5)
        assert [r.item_id for r in here] == [r.item_id for r in there]

    again = import_runs(store, archive, checkpoint_root=tmp_path / "ckpt")
    assert again.imported == {} and again.skipped == result.imported
    assert len(runs_repo.list_runs(store)) == 2
    assert "Skipped 2 run(s) already in this store" in "\n".join(again.summary_lines())
    store.dispose()


def test_missing_or_different_dataset_is_named(archive: Path, tmp_path: Path) -> None:
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    result = import_runs(empty, archive, checkpoint_root=tmp_path / "ckpt")
    assert result.imported == {} and len(result.problems) == 2
    assert "this store has no dataset 'tiny-demo' (300 sessions" in result.problems[0]
    assert runs_repo.list_runs(empty) == []
    (tmp_path / "other").mkdir()
    other = colleague_store(tmp_path / "other", n_sessions=250)  # same name, other content
    result = import_runs(other, archive, checkpoint_root=tmp_path / "ckpt")
    assert result.imported == {} and "is not the one it was trained on (n_sessions 250 here vs 300" in \
        result.problems[0]
    assert not any((tmp_path / "ckpt").glob("run_*/*.safetensors"))  # nothing copied for refused runs
    empty.dispose()
    other.dispose()


def test_damaged_archives_are_refused(archive: Path, tmp_path: Path) -> None:
    store = colleague_store(tmp_path)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(RunsArchiveError, match="not a zip file"):
        import_runs(store, cut)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(RunsArchiveError, match="not a runs archive"):
        import_runs(store, other)
    assert runs_repo.list_runs(store) == []
    store.dispose()


def test_cli_runs_export_and_import(real_runs, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "cli.zip"
    runner = CliRunner()
    result = runner.invoke(main, ["--db", real_runs.url, "runs", "export", *map(str, real_runs.run_ids), "-o",
                                  str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 run(s)" in result.output
    store = colleague_store(tmp_path)
    url = f"sqlite:///{tmp_path / 'colleague.db'}"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = runner.invoke(main, ["--db", url, "runs", "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "Imported 2 run(s)" in result.output
    result = runner.invoke(main, ["--db", url, "runs", "import", str(out)])
    assert "Imported 0 run(s)." in result.output and "Skipped 2 run(s)" in result.output
    result = runner.invoke(main, ["--db", url, "runs", "list"])
    assert result.output.count("tiny-demo") == 2
    store.dispose()
