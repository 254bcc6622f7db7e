"""Portable model file: export → info → load gives the run's own predictions; damaged, altered and
newer-version files are refused with a clear message; the CLI commands work end to end."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.inference import Predictor
from embsr_core.sharing import model_file
from embsr_core.sharing.model_file import ModelFileError, export_model, load_model_file, read_info


def rewrite_member(path: Path, name: str, data: bytes) -> None:
    """Replace one member of a zip, keeping the others (a consistent, CRC-valid tampering)."""
    with zipfile.ZipFile(path) as z:
        members = {m: z.read(m) for m in z.namelist()}
    members[name] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for member, payload in members.items():
            z.writestr(member, payload)
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def exported(real_runs, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("model") / "embsr.embsr"
    export_model(real_runs.store, real_runs.run_ids[0], path)
    return path


def test_model_file_predicts_like_the_run(real_runs, exported: Path) -> None:
    info = read_info(exported)
    assert info.model_name == "EMBSR"
    assert info.manifest["versions"]["torch"] == torch.__version__
    assert info.manifest["source"]["dataset"] == "tiny-demo"
    assert info.max_len == real_runs.prepared.train.max_len
    with zipfile.ZipFile(exported) as z:
        assert sorted(z.namelist()) == sorted(model_file.MEMBERS)

    from_file = Predictor.from_model_file(exported)
    from_run = Predictor.from_run(real_runs.store, real_runs.run_ids[0])
    assert from_file.vocab.item_ids == from_run.vocab.item_ids
    session = [(from_run.vocab.item_ids[i], from_run.vocab.op_names[1]) for i in (3, 5, 3, 9)]
    for target in ("unknown", from_run.vocab.op_names[2]):
        a = from_file.predict(session, k=10, target_op=target)
        b = from_run.predict(session, k=10, target_op=target)
        assert [r.item_id for r in a] == [r.item_id for r in b]
        assert [r.score for r in a] == pytest.approx([r.score for r in b])


def test_damaged_altered_and_newer_files_are_refused(exported: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.embsr"
    cut.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="not a zip archive"):
        load_model_file(cut)

    flipped = tmp_path / "flipped.embsr"
    data = bytearray(exported.read_bytes())
    with zipfile.ZipFile(exported) as z:
        weights = z.getinfo(model_file.WEIGHTS)
    data[weights.header_offset + 200] ^= 0xFF  # a byte inside the stored (uncompressed) weights
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged"):
        load_model_file(flipped)

    altered = tmp_path / "altered.embsr"
    altered.write_bytes(exported.read_bytes())
    with zipfile.ZipFile(exported) as z:
        vocab = json.loads(z.read(model_file.VOCAB))
    vocab["item_ids"][1] = "someone-else"
    rewrite_member(altered, model_file.VOCAB, json.dumps(vocab).encode())
    with pytest.raises(ModelFileError, match="altered or damaged: the SHA-256 of vocab.json"):
        load_model_file(altered)

    newer = tmp_path / "newer.embsr"
    newer.write_bytes(exported.read_bytes())
    manifest = read_info(exported).manifest | {"format_version": model_file.FORMAT_VERSION + 1}
    manifest["versions"] = {**manifest["versions"], "package": "9.0.0"}
    rewrite_member(newer, model_file.MANIFEST, json.dumps(manifest).encode())
    with pytest.raises(ModelFileError, match=r"made by EMBSR Workbench 9\.0\.0 .* update EMBSR Workbench"):
        read_info(newer)

    unknown = tmp_path / "unknown.embsr"
    unknown.write_bytes(exported.read_bytes())
    manifest = read_info(exported).manifest
    manifest["model"] = {**manifest["model"], "name": "FutureNet"}
    rewrite_member(unknown, model_file.MANIFEST, json.dumps(manifest).encode())
    with pytest.raises(ModelFileError, match="'FutureNet', which this EMBSR Workbench .* cannot build"):
        load_model_file(unknown)

    no_len = tmp_path / "no_len.embsr"
    no_len.write_bytes(exported.read_bytes())
    manifest = read_info(exported).manifest
    del manifest["preprocessing"]["max_len"]
    rewrite_member(no_len, model_file.MANIFEST, json.dumps(manifest).encode())
    with pytest.raises(ModelFileError, match="'preprocessing' section lacks 'max_len'"):
        read_info(no_len)

    not_model = tmp_path / "notes.embsr"
    not_model.write_text("hello")
    with pytest.raises(ModelFileError, match="not an EMBSR model file"):
        read_info(not_model)


def test_cli_model_export_and_info(real_runs, tmp_path: Path) -> None:
    out = tmp_path / "sgnn.embsr"
    runner = CliRunner()
    result = runner.invoke(main, ["--db", real_runs.url, "model", "export", str(real_runs.run_ids[1]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote SGNN-Self" in result.output and out.is_file()
    result = runner.invoke(main, ["model", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "model:          SGNN-Self" in result.output and "tiny-demo" in result.output
    broken = tmp_path / "broken.embsr"
    broken.write_bytes(b"PK\x03\x04 nothing")
    result = runner.invoke(main, ["model", "info", str(broken)])
    assert result.exit_code == 1 and "not an EMBSR model file" in result.output
    result = runner.invoke(main, ["--db", real_runs.url, "model", "export", "999", "-o", str(out)])
    assert result.exit_code == 1 and "no run with id 999" in result.output
