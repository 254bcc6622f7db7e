"""The per-family attack on the importers, rerun: malformed and odd files, each imported into a fresh
SQLite store and judged (tests/_fault_harness.py) as refused clearly / refused unclearly / wrongly
accepted / traceback / valid file refused / partial state. Target: 0 in the four bad columns.

Every file is generated in a temporary folder from the project's own fixture writers (never a copy
of the third-party samples).

    .venv/bin/python benchmarks/fault_table.py            # the table
    .venv/bin/python benchmarks/fault_table.py --verbose  # plus every case and its message
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _fault_harness import Expect, attempt  # noqa: E402
from native_fixtures import (  # noqa: E402
    jd_sessions,
    jd_text,
    taobao_frame,
    trivago_frame,
    write_generic_csv,
    write_jd,
    write_taobao,
    write_trivago_csv,
    write_trivago_parquet,
)

from embsr_core.data.importers import ColumnMapping, Source  # noqa: E402
from embsr_core.data.importers import table as table_module  # noqa: E402
from embsr_core.store import open_store  # noqa: E402

COLUMNS = ("tried", "refused clearly", "refused unclearly", "wrongly accepted", "traceback", "valid file refused",
           "partial state", "imported exactly")
BAD = ("refused unclearly", "wrongly accepted", "traceback", "valid file refused", "partial state")
Case = tuple[list[Path | Source], str, ColumnMapping | None, Expect]
REFUSE = Expect(refuse=True)
REFUSE_FILE = Expect(refuse=True, located=False)


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _replace_line(text: str, k: int, new: str) -> str:
    lines = text.split("\n")
    lines[k] = new
    return "\n".join(lines)


# -- JD ------------------------------------------------------------------------------------------
def jd_cases(d: Path) -> dict[str, Case]:
    sessions = jd_sessions(60, seed=1)
    text = jd_text(sessions)
    rows = sum(len(s) for s in sessions)
    items = len({mb[0] for s in sessions for mb in s})
    ok = Expect(rows=rows, sessions=60, items=items)
    long_text = jd_text(jd_sessions(1500, seed=2))  # beyond the 64 KiB probe

    def bad_token(token: str, line: int = 5) -> Case:
        lines = text.split("\n")
        lines[line] += " " + token
        return [_write(d / f"tok{abs(hash(token))}.txt", "\n".join(lines))], "jd", None, REFUSE

    loop = d / "loop.txt"
    loop.symlink_to(d / "loop2.txt")
    (d / "loop2.txt").symlink_to(loop)
    cases: dict[str, Case] = {
        "valid": ([write_jd(d / "v.txt", 60, seed=1).path], "auto", None, ok),
        "BOM": ([write_jd(d / "bom.txt", 60, seed=1, bom=True).path], "auto", None, ok),
        "gzip": ([write_jd(d / "v.txt.gz", 60, seed=1, gz=True).path], "auto", None, ok),
        "CRLF": ([_write(d / "crlf.txt", text.replace("\n", "\r\n"))], "auto", None, ok),
        "blank lines": ([_write(d / "blank.txt", text.replace("\n", "\n\n", 5))], "auto", None, ok),
        "no final newline": ([_write(d / "nonl.txt", text.rstrip("\n"))], "auto", None, ok),
        "double spaces": ([_write(d / "sp.txt", text.replace(" ", "  ", 3))], "auto", None, ok),
        "cut mid token": ([_write(d / "cut.txt", text[: text.index("\n", 2000) + 12])], "jd", None, REFUSE),
        "text sku": bad_token("sku9+5+753+1+1"),
        "negative interval": bad_token("12+5+753+-4+1"),
        "behavior 0": bad_token("12+0+753+4+1"),
        "behavior 11": bad_token("12+11+753+4+1"),
        "sku above 2^63": bad_token("9223372036854775808+5+753+4+1"),
        "sku 30 digits": bad_token("9" * 30 + "+5+753+4+1"),
        "interval 10^400": bad_token("12+5+753+1" + "0" * 400 + "+1"),
        "dwell 400 digits": bad_token("12+5+753+1+" + "7" * 400),
        "four fields": bad_token("12+5+753+1"),
        "six fields": bad_token("12+5+753+1+1+1"),
        "nan interval": bad_token("12+5+753+nan+1"),
        "inf dwell": bad_token("12+5+753+1+inf"),
        "fraction sku": bad_token("12.5+5+753+1+1"),
        "empty fields": bad_token("++++"),
        "NUL mid file": ([_write(d / "nul.txt", long_text[:70_000] + "\x00" + long_text[70_000:])], "jd", None,
                         REFUSE),
        "NUL in head": ([_write(d / "nulh.txt", text[:500] + "\x00" + text[500:])], "auto", None, REFUSE),
        "latin-1 mid file": ([_write(d / "lat.txt", long_text[:80_000].encode() + b"\xe9" +
                                     long_text[80_000:].encode())], "jd", None, REFUSE),
        "latin-1 in head": ([_write(d / "lath.txt", text[:300].encode() + b"\xe9" + text[300:].encode())], "auto",
                            None, REFUSE),
        "empty file": ([_write(d / "empty.txt", "")], "auto", None, REFUSE_FILE),
        "only blank lines": ([_write(d / "blanks.txt", "\n\n  \n")], "auto", None, REFUSE_FILE),
        "binary": ([_write(d / "bin.txt", bytes(range(256)) * 40)], "jd", None, REFUSE_FILE),
        "gzip cut": ([_write(d / "cut.txt.gz", gzip.compress(long_text.encode())[:3000])], "jd", None, REFUSE),
        "symlink loop": ([loop], "auto", None, REFUSE_FILE),
        "folder": ([d], "auto", None, REFUSE_FILE),
        "missing file": ([d / "nope.txt"], "auto", None, REFUSE_FILE),
        "Parquet as jd": ([write_trivago_parquet(d / "t.parquet").path], "jd", None, REFUSE_FILE),
        "trivago CSV as jd": ([write_trivago_csv(d / "t.csv").path], "jd", None, REFUSE),
        "tab separated tokens": ([_write(d / "tab.txt", text.replace(" ", "\t", 2))], "auto", None, ok),
    }
    return cases


# -- Trivago CSV ---------------------------------------------------------------------------------
def trivago_csv_cases(d: Path) -> dict[str, Case]:
    frame = trivago_frame(40, seed=3)
    written = write_trivago_csv(d / "base.csv", frame=frame)
    ok = Expect(rows=written.kept, sessions=written.sessions, items=written.items)
    text = written.path.read_text()
    big = trivago_frame(900, seed=4).to_csv(index=False, lineterminator="\n")

    def with_value(column: str, value: object, row: int = 4, name: str = "") -> Case:
        f = frame.copy()
        f[column] = f[column].astype(object)
        f.loc[row, column] = value
        path = d / f"v_{column}_{name or abs(hash(str(value)))}.csv"
        f.to_csv(path, index=False, lineterminator="\n")
        return [path], "trivago", None, REFUSE

    last = text.rstrip("\n").split("\n")[-1]
    item_row = next(k for k, a in enumerate(frame["action_type"]) if a == "clickout item")
    cases: dict[str, Case] = {
        "valid": ([written.path], "auto", None, ok),
        "BOM": ([write_trivago_csv(d / "bom.csv", frame=frame, bom=True).path], "auto", None, ok),
        "gzip": ([write_trivago_csv(d / "v.csv.gz", frame=frame, gz=True).path], "auto", None, ok),
        "CRLF": ([_write(d / "crlf.csv", text.replace("\n", "\r\n"))], "auto", None, ok),
        "no step column": ([write_trivago_csv(d / "nostep.csv", frame=frame.drop(columns=["step"])).path], "auto",
                           None, ok),
        "rows shuffled": ([write_trivago_csv(d / "shuf.csv", frame=frame.sample(frac=1, random_state=1)).path],
                          "auto", None, ok),
        "columns reordered": ([write_trivago_csv(d / "reord.csv", frame=frame[frame.columns[::-1]]).path], "auto",
                              None, ok),
        "no final newline": ([_write(d / "nonl.csv", text.rstrip("\n"))], "auto", None, ok),
        "blank line inside": ([_write(d / "blank.csv", _replace_line(text, 6, "\n" + text.split("\n")[6]))],
                              "auto", None, ok),
        "last line cut in reference": ([_write(d / "cutref.csv", text.rstrip("\n")[: len(text.rstrip("\n"))
                                                                                    - len(last) + 60])],
                                       "trivago", None, REFUSE),
        "five-field row": ([_write(d / "five.csv", _replace_line(text, 3, "U1,s,1541030400,1,clickout item"))],
                           "trivago", None, REFUSE),
        "extra trailing field": ([_write(d / "extra.csv", _replace_line(text, 3, text.split("\n")[3] + ",x"))],
                                 "trivago", None, REFUSE),
        "extra field on every row": ([_write(d / "extraall.csv", "\n".join(
            ln + ",x" if k else ln for k, ln in enumerate(text.split("\n")) if ln))], "trivago", None, REFUSE),
        "cut inside quotes": ([_write(d / "quote.csv", text[: text.rindex('"Berlin') + 5])], "trivago", None,
                              REFUSE),
        "step above 2^64": with_value("step", "18446744073709551617"),
        "step negative": with_value("step", -3),
        "step fraction": with_value("step", "1.5"),
        "step text": with_value("step", "first"),
        "timestamp text": with_value("timestamp", "yesterday"),
        "timestamp inf": with_value("timestamp", "inf"),
        "timestamp 400 digits": with_value("timestamp", "9" * 400),
        "timestamp empty": with_value("timestamp", ""),
        "timestamp true": with_value("timestamp", "True", name="true"),
        "session empty": with_value("session_id", ""),
        "NUL in session": with_value("session_id", "ab\x00c"),
        "action empty": with_value("action_type", "", row=item_row),
        "latin-1 mid file": ([_write(d / "lat.csv", big[:90_000].encode() + b"\xe9" + big[90_000:].encode())],
                             "trivago", None, REFUSE),
        "missing reference column": ([_write(d / "noref.csv", frame.drop(columns=["reference"]).to_csv(index=False))],
                                     "trivago", None, REFUSE),
        "session_id twice": ([_write(d / "dup.csv", text.replace("user_id", "session_id", 1))], "trivago", None,
                             REFUSE),
        "empty file": ([_write(d / "empty.csv", "")], "trivago", None, REFUSE_FILE),
        "header only": ([_write(d / "head.csv", text.split("\n")[0] + "\n")], "trivago", None, REFUSE_FILE),
        "only non-item actions": ([_write(d / "noitem.csv", frame[~frame["action_type"].str.contains("item")]
                                          .to_csv(index=False))], "trivago", None, REFUSE_FILE),
        "gzip cut": ([_write(d / "cut.csv.gz", gzip.compress(big.encode())[:5000])], "trivago", None, REFUSE),
        "binary": ([_write(d / "bin.csv", bytes(range(256)) * 40)], "trivago", None, REFUSE_FILE),
        "quoted newline in a field": ([_write(d / "qnl.csv", _replace_line(text, 2, text.split("\n")[2].replace(
            '"Berlin, Germany"', '"Berlin,\nGermany"')))], "auto", None, ok),
    }
    return cases


# -- Trivago Parquet -----------------------------------------------------------------------------
def trivago_parquet_cases(d: Path) -> dict[str, Case]:
    frame = trivago_frame(40, seed=5)
    written = write_trivago_parquet(d / "base.parquet", frame=frame)
    ok = Expect(rows=written.kept, sessions=written.sessions, items=written.items)

    def parquet(name: str, f: pd.DataFrame | pa.Table, expect: Expect = REFUSE) -> Case:
        path = d / f"{name}.parquet"
        if isinstance(f, pd.DataFrame):
            f.to_parquet(path, index=False)
        else:
            pq.write_table(f, path)
        return [path], "trivago", None, expect

    def changed(column: str, values: object) -> pd.DataFrame:
        return frame.assign(**{column: values})

    n = len(frame)
    numeric_ref = pd.to_numeric(frame["reference"], errors="coerce")
    ts = pd.to_datetime(frame["timestamp"], unit="s")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    dup = pa.table(list(table.columns) + [table.column("session_id")], names=[*table.column_names, "session_id"])
    list_ref = table.set_column(table.column_names.index("reference"), "reference",
                                pa.array([[r] for r in frame["reference"]]))
    list_session = table.set_column(1, "session_id", pa.array([[s] for s in frame["session_id"]]))
    struct_ts = table.set_column(2, "timestamp", pa.array([{"s": int(t)} for t in frame["timestamp"]]))
    step_u64 = table.set_column(3, "step", pa.array([2**63 + 5] * n, pa.uint64()))
    nul_session = frame["session_id"].copy()
    nul_session.iloc[3] = "a\x00b"
    cases: dict[str, Case] = {
        "valid": ([written.path], "auto", None, ok),
        "float reference (pandas)": parquet("floatref", changed("reference", numeric_ref), ok),
        "timestamp[us]": parquet("us", changed("timestamp", ts.dt.as_unit("us")), ok),
        "timestamp[ms]": parquet("ms", changed("timestamp", ts.dt.as_unit("ms")), ok),
        "timestamp[ns] with zone": parquet("tz", changed("timestamp", ts.dt.tz_localize("UTC")), ok),
        "no step": parquet("nostep", frame.drop(columns=["step"]), ok),
        "step int32": parquet("step32", changed("step", frame["step"].astype("int32")), ok),
        "categorical columns": parquet("cat", frame.astype({"action_type": "category", "session_id": "category"}),
                                       ok),
        "small row groups": ([written.path], "trivago", None, ok),
        "float timestamps": parquet("floatts", changed("timestamp", frame["timestamp"].astype(float)), ok),
        "bool timestamp": parquet("boolts", changed("timestamp", frame["step"] % 2 == 0)),
        "NaN timestamp": parquet("nants", changed("timestamp", frame["timestamp"].astype(float).where(
            frame.index != 4))),
        "inf timestamp": parquet("infts", changed("timestamp", frame["timestamp"].astype(float).where(
            frame.index != 4, float("inf")))),
        "timestamp 1e300": parquet("hugets", changed("timestamp", frame["timestamp"].astype(float).where(
            frame.index != 4, 1e300))),
        "timestamp text": parquet("textts", changed("timestamp", frame["timestamp"].astype(str).where(
            frame.index != 4, "soon"))),
        "missing reference": parquet("noref", frame.drop(columns=["reference"])),
        "missing session_id": parquet("nosess", frame.drop(columns=["session_id"])),
        "duplicate column name": parquet("dup", dup),
        "list reference": parquet("listref", list_ref),
        "list session": parquet("listsess", list_session),
        "struct timestamp": parquet("structts", struct_ts),
        "step negative": parquet("stepneg", changed("step", -frame["step"])),
        "step NaN": parquet("stepnan", changed("step", frame["step"].astype(float).where(frame.index != 4))),
        "step uint64 above 2^63": parquet("stepu64", step_u64),
        "step 1e20": parquet("step1e20", changed("step", frame["step"].astype(float) * 1e20)),
        "session null": parquet("sessnull", changed("session_id", frame["session_id"].where(frame.index != 4))),
        "NUL in session": parquet("nulsess", changed("session_id", nul_session)),
        "action null": parquet("actnull", changed("action_type", frame["action_type"].where(frame.index != 4))),
        "zero rows": parquet("zero", frame.head(0), REFUSE_FILE),
        "only non-item actions": parquet("noitem", frame[~frame["action_type"].str.contains("item")], REFUSE_FILE),
        "truncated": ([_write(d / "trunc.parquet", written.path.read_bytes()[:-300])], "trivago", None, REFUSE_FILE),
        "magic only": ([_write(d / "magic.parquet", b"PAR1" + b"\x00" * 100)], "trivago", None, REFUSE_FILE),
        "empty file": ([_write(d / "empty.parquet", b"")], "trivago", None, REFUSE_FILE),
        "footer damaged": ([_write(d / "foot.parquet", written.path.read_bytes()[:-8] + b"XXXXPAR1")], "trivago",
                           None, REFUSE_FILE),
        "generic Parquet as trivago": ([_write(d / "g.parquet", b"")], "trivago", None, REFUSE_FILE),
    }
    pd.DataFrame({"session": ["a"], "item": ["1"], "operation": ["v"], "timestamp": [1.0]}).to_parquet(
        d / "g.parquet")
    cases["small row groups"] = parquet("rg", frame, ok)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), d / "rg.parquet", row_group_size=7)
    return cases


def _sessions_by_gap(frame: pd.DataFrame, gap: float) -> int:
    """Sessions of a user log counted the plain way: per user, 1 + pauses longer than ``gap``."""
    return int(sum(1 + (g.sort_values().diff() > gap).sum() for _, g in frame.groupby("user_id")["timestamp"]))


# -- generic -------------------------------------------------------------------------------------
def generic_cases(d: Path) -> dict[str, Case]:
    written = write_generic_csv(d / "base.csv", n_sessions=40, seed=6)
    frame = pd.read_csv(written.path, dtype=str)
    ok = Expect(rows=written.kept, sessions=written.sessions, items=written.items)
    text = written.path.read_text()
    big_rows = "".join(f"s{k // 5},{k % 97},view,{1_700_000_000 + k}\n" for k in range(20_000))
    big = "session_id,item_id,action,timestamp\n" + big_rows
    taobao = write_taobao(d / "ub.csv", n_users=20, seed=7)
    by_position = ColumnMapping(user="1", item="2", category="3", operation="4", timestamp="5", header=False)

    def csv(name: str, data: str | bytes, expect: Expect = REFUSE, mapping: ColumnMapping | None = None) -> Case:
        return [_write(d / name, data)], "generic", mapping, expect

    def with_value(column: str, value: str, name: str) -> Case:
        f = frame.copy()
        f.loc[4, column] = value
        return csv(f"{name}.csv", f.to_csv(index=False, lineterminator="\n"))

    ids = "session,item,operation,timestamp\na,007,v,1\na,7,v,2\nb,7,v,3\nb,18446744073709551617,v,4\n"
    latin = "session,item,operation,timestamp\nà,café,vue,1\nà,thé,vue,2\n".encode("latin-1")
    dates = "session;item;operation;time\na;1;v;2016-05-09T10:00:00\na;2;v;2016-05-09T10:00:05\nb;1;v;2016-05-10\n"
    quoted = 'session,item,operation,timestamp\n"a,1",x,v,1\n"a,1","multi\nline",v,2\n'
    tmall = "user_id,brand_id,type,visit_datetime\n1,5,0,6-4\n1,6,0,6-5\n"
    pframe = pd.read_csv(written.path, dtype={"session_id": str, "item_id": str})
    cases: dict[str, Case] = {
        "valid CSV": ([written.path], "auto", None, ok),
        "TSV": ([write_generic_csv(d / "v.tsv", 40, seed=6, sep="\t").path], "auto", None, ok),
        "semicolon": ([write_generic_csv(d / "semi.csv", 40, seed=6, sep=";").path], "auto", None, ok),
        "pipe": ([write_generic_csv(d / "pipe.csv", 40, seed=6, sep="|").path], "auto", None, ok),
        "BOM": ([write_generic_csv(d / "bom.csv", 40, seed=6, bom=True).path], "auto", None, ok),
        "gzip": ([write_generic_csv(d / "v.csv.gz", 40, seed=6, gz=True).path], "auto", None, ok),
        "CRLF and blank lines": csv("crlf.csv", text.replace("\n", "\r\n").replace("\r\n", "\r\n\r\n", 3), ok),
        "ids 007 / 7 / above 2^64": csv("ids.csv", ids, Expect(rows=4, sessions=2, items=3)),
        "latin-1 file": csv("latin.csv", latin, Expect(rows=2, sessions=1, items=2)),
        "ISO dates": csv("dates.csv", dates, Expect(rows=3, sessions=2, items=2)),
        "quoted delimiter and newline": csv("quoted.csv", quoted, Expect(rows=2, sessions=1, items=2)),
        "Parquet": ([d / "p.parquet"], "auto", None, ok),
        "user log by position, 30 min": ([taobao.path], "generic", by_position,
                                         Expect(rows=taobao.rows, sessions=taobao.sessions)),
        "user log, 5 min gap": ([taobao.path], "generic",
                                ColumnMapping(**{**by_position.__dict__, "session_gap": 300.0}),
                                Expect(rows=taobao.rows, sessions=_sessions_by_gap(taobao_frame(20, 7)[0], 300.0))),
        "last line cut inside the session": csv("cut.csv", "item,session,operation,timestamp\n1,abc,v,1\n2,ab"),
        "extra field": csv("extra.csv", _replace_line(text, 3, text.split("\n")[3] + ",9")),
        "extra field on every row": csv("extraall.csv", "\n".join(ln + ",9" if k else ln
                                                                  for k, ln in enumerate(text.split("\n")) if ln)),
        "short row": csv("short.csv", _replace_line(text, 3, "S000,0001")),
        "mapped column missing": ([written.path], "generic", ColumnMapping(item="product"), REFUSE),
        "no operation column": csv("noop.csv", "session,item,timestamp\na,1,1\n"),
        "timestamp text": with_value("timestamp", "soon", "tstext"),
        "month-day date": csv("tmall.csv", tmall, REFUSE, ColumnMapping(user="user_id", item="brand_id",
                                                                        operation="type", timestamp="visit_datetime")),
        "timestamp inf": with_value("timestamp", "inf", "tsinf"),
        "timestamp 400 digits": with_value("timestamp", "9" * 400, "ts400"),
        "timestamp true": with_value("timestamp", "True", "tstrue"),
        "session empty": with_value("session_id", "", "sessempty"),
        "dwell negative": with_value("dwell", "-5", "dwellneg"),
        "dwell text": with_value("dwell", "long", "dwelltext"),
        "NUL mid file": csv("nul.csv", big[:80_000] + "\x00" + big[80_000:]),
        "latin-1 byte after the head": csv("lat.csv", big[:90_000].encode() + b"\xe9" + big[90_000:].encode()),
        "quote never closed": csv("quote.csv", text + 'S999,"0001,view,1,c1,1\n'),
        "empty file": csv("empty.csv", "", REFUSE_FILE),
        "header only": csv("head.csv", text.split("\n")[0] + "\n", REFUSE_FILE),
        "single column (wrong delimiter)": ([write_generic_csv(d / "w.csv", 40, seed=6, sep=";").path], "generic",
                                            ColumnMapping(delimiter=","), REFUSE),
        "mapped column twice in header": csv("twice.csv", "session,item,item,operation,timestamp\na,1,2,v,1\n"),
        "Parquet list column": ([d / "list.parquet"], "generic", None, REFUSE),
        "Parquet bool timestamp": ([d / "bool.parquet"], "generic", None, REFUSE),
        "header-less without saying so": ([taobao.path], "generic", None, REFUSE),
        "line over the limit": csv("long.csv", "session,item,operation,timestamp\n" + "a" * 70_000 + ",1,v,1\n"),
    }
    pframe.to_parquet(d / "p.parquet", index=False)
    pq.write_table(pa.table({"session": ["a"], "item": pa.array([["1", "2"]]), "operation": ["v"],
                             "timestamp": [1.0]}), d / "list.parquet")
    pd.DataFrame({"session": ["a", "a"], "item": ["1", "2"], "operation": ["v", "v"],
                  "timestamp": [True, False]}).to_parquet(d / "bool.parquet")
    return cases


FAMILIES: dict[str, Callable[[Path], dict[str, Case]]] = {
    "JD": jd_cases,
    "Trivago CSV": trivago_csv_cases,
    "Trivago Parquet": trivago_parquet_cases,
    "generic": generic_cases,
}


def run(verbose: bool) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    saved_limit = table_module.MAX_LINE_BYTES
    with tempfile.TemporaryDirectory(prefix="embsr-faults-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'store.db'}")
        try:
            for family, build in FAMILIES.items():
                folder = Path(tmp) / family.replace(" ", "_")
                folder.mkdir()
                counts = dict.fromkeys(COLUMNS, 0)
                for k, (label, (sources, fmt, mapping, expect)) in enumerate(build(folder).items()):
                    table_module.MAX_LINE_BYTES = 65_536 if label == "line over the limit" else saved_limit
                    result = attempt(store, f"{family} {k}", sources, fmt, mapping, expect)
                    table_module.MAX_LINE_BYTES = saved_limit
                    counts["tried"] += 1
                    counts[result.outcome] += 1
                    if verbose or result.outcome in BAD:
                        print(f"  {family:16s} {label:34s} {result.outcome:18s} {result.message[:150]}")
                table[family] = counts
        finally:
            store.dispose()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print every case and its message")
    args = parser.parse_args()
    started = time.perf_counter()
    table = run(args.verbose)
    short = ("tried", "refused ok", "unclear", "accepted!", "traceback", "valid ref", "partial", "exact")
    print(f"{'family':16s} " + " ".join(f"{c:>10s}" for c in short))
    for family, counts in table.items():
        print(f"{family:16s} " + " ".join(f"{counts[c]:>10d}" for c in COLUMNS))
    bad = sum(counts[c] for counts in table.values() for c in BAD)
    print("columns: tried / refused clearly / refused unclearly / wrongly accepted / traceback / valid file "
          "refused / partial state / imported exactly (the 4 bad ones and 'unclear' should be 0)")
    print(f"bad outcomes: {bad} (target 0); {time.perf_counter() - started:.1f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
