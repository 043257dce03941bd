"""Ingestion: presets load real files with matching counts, bad rows are reported, loads are atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from salescast.config import Settings
from salescast.data import staging
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.runs import mark_interrupted, run_locks, running_run
from salescast.data.schema import IngestionRun, RejectedRow
from salescast.data.summary import recent_runs
from salescast.errors import FileRefusedError, StorageError
from tests.conftest import FIXTURES, SHARED_DATA


def sales_table(engine: Engine) -> pd.DataFrame:
    """The whole sales store as one frame keyed by names, to compare states before and after."""
    query = """
        SELECT p.sku, st.code AS store, s.date, s.units, s.revenue, s.unit_price, s.on_promotion
        FROM sales s JOIN products p ON p.id = s.product_id JOIN stores st ON st.id = s.store_id
        ORDER BY p.sku, st.code, s.date"""
    with engine.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(text(query)).all(),
            columns=["sku", "store", "date", "units", "revenue", "unit_price", "on_promotion"],
        )
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["on_promotion"] = frame["on_promotion"].astype(bool)
    return frame


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def write_csv(path: Path, text_: str) -> Path:
    path.write_text(text_)
    return path


# ---------------------------------------------------------------- presets on the real data sets


def superstore_expectations(path: Path) -> dict[str, float]:
    raw = pd.read_csv(path, encoding="utf-8-sig")
    raw["date"] = pd.to_datetime(raw["Order Date"], format="%d/%m/%y")
    keys = raw.groupby(["Product ID", "Region", "date"]).ngroups
    return {
        "lines": len(raw),
        "keys": keys,
        "units": raw["Quantity"].sum(),
        "revenue": raw["Sales"].sum(),
        "products": raw["Product ID"].nunique(),
    }


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "superstore/sample_superstore_300.csv", SHARED_DATA / "superstore/sample_superstore.csv"],
    ids=["fixture", "shared"],
)
def test_superstore_preset_aggregates_order_lines_to_daily_sales(
    engine: Engine, settings: Settings, path: Path
) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data sets sit beside the repo)")
    expected = superstore_expectations(path)

    report = ingest_file(engine, path, resolve_spec("superstore"), settings, preset="superstore")

    assert report.status == "succeeded"
    assert report.rows_read == report.rows_accepted == expected["lines"]
    assert report.rows_rejected == 0
    assert report.facts_inserted == expected["keys"]
    sales = sales_table(engine)
    assert len(sales) == expected["keys"]
    assert sales["units"].sum() == pytest.approx(expected["units"])
    assert sales["revenue"].sum() == pytest.approx(expected["revenue"], rel=1e-9)
    assert count(engine, "products") == expected["products"]
    # Discounted lines are promotions; a day's unit price is its revenue per unit.
    assert sales["on_promotion"].any() and not sales["on_promotion"].all()
    priced = sales[sales["units"] > 0]
    assert (priced["unit_price"] - priced["revenue"] / priced["units"]).abs().max() < 1e-9


def test_superstore_categories_form_a_hierarchy(engine: Engine, settings: Settings) -> None:
    ingest_file(engine, FIXTURES / "superstore/sample_superstore_300.csv", resolve_spec("superstore"), settings)
    with engine.connect() as conn:
        pairs = set(
            conn.execute(text("SELECT c.name, p.name FROM categories c JOIN categories p ON p.id = c.parent_id")).all()
        )
    assert ("Chairs", "Furniture") in pairs
    assert ("Phones", "Technology") in pairs


@pytest.mark.parametrize(
    "path",
    [
        FIXTURES / "m5/sales_train_validation_2.csv",
        SHARED_DATA / "m5_sample/sales_train_validation_sample.csv",
    ],
    ids=["fixture", "shared"],
)
def test_m5_preset_melts_wide_days_and_joins_calendar_and_prices(
    engine: Engine, settings: Settings, path: Path
) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data sets sit beside the repo)")
    wide = pd.read_csv(path)
    day_columns = [c for c in wide.columns if c.startswith("d_")]

    report = ingest_file(engine, path, resolve_spec("m5"), replace_chunk(settings, 5000))

    assert report.rows_read == report.facts_inserted == len(wide) * len(day_columns)
    sales = sales_table(engine)
    assert sales["units"].sum() == wide[day_columns].to_numpy().sum()
    assert sales["date"].min().isoformat() == "2011-01-29"
    assert sales["date"].max().isoformat() == "2016-04-24"
    first = wide.iloc[0]
    one_series = sales[(sales["sku"] == first["item_id"]) & (sales["store"] == first["store_id"])]
    assert one_series["units"].tolist() == first[day_columns].astype(float).tolist()
    # Prices come from the weekly sell-price file: the first priced day of HOBBIES_1_001 at CA_1.
    prices = pd.read_csv(next(path.parent.glob("sell_prices*")), sep="\t", index_col=0)
    calendar = pd.read_csv(path.parent / "calendar.csv")
    expected = (
        prices.merge(calendar, on="wm_yr_wk")
        .query("item_id == @first.item_id and store_id == @first.store_id")
        .sort_values("date")
        .iloc[0]
    )
    got = one_series.set_index("date").loc[pd.Timestamp(expected["date"]).date()]
    assert got["unit_price"] == pytest.approx(expected["sell_price"])


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "au_monthly/au_monthly_sales.csv", SHARED_DATA / "au_monthly_sales/au_monthly_sales.csv"],
    ids=["fixture", "shared"],
)
def test_au_monthly_preset_loads_every_series(engine: Engine, settings: Settings, path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data sets sit beside the repo)")
    raw = pd.read_csv(path)

    report = ingest_file(engine, path, resolve_spec("au_monthly"), settings)

    assert report.facts_inserted == len(raw) == 918
    sales = sales_table(engine)
    per_series = sales.groupby("sku")["units"].agg(["count", "sum"])
    expected = raw.groupby("series_id")["value"].agg(["count", "sum"])
    assert per_series["count"].to_dict() == expected["count"].to_dict()
    assert per_series["sum"].to_dict() == pytest.approx(expected["sum"].to_dict())


def test_store_item_preset_reads_the_kaggle_layout(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "train.csv",
        "date,store,item,sales\n2013-01-01,1,1,13\n2013-01-02,1,1,11\n2013-01-01,2,1,9\n2013-01-01,1,2,33\n",
    )

    report = ingest_file(engine, path, resolve_spec("store_item"), settings)

    assert report.facts_inserted == 4
    sales = sales_table(engine)
    assert sales.set_index(["sku", "store", "date"])["units"].to_dict() == {
        ("1", "1", pd.Timestamp("2013-01-01").date()): 13.0,
        ("1", "1", pd.Timestamp("2013-01-02").date()): 11.0,
        ("1", "2", pd.Timestamp("2013-01-01").date()): 9.0,
        ("2", "1", pd.Timestamp("2013-01-01").date()): 33.0,
    }


def test_parquet_with_typed_columns_loads_like_csv(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "product": ["A", "A", "B"],
            "store": ["s1", "s1", "s1"],
            "units": [1.0, 2.0, 3.0],
            "unit_price": [2.5, 2.5, 4.0],
            "on_promotion": [False, True, False],
        }
    )
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)

    report = ingest_file(engine, path, resolve_spec(None), settings)

    assert report.facts_inserted == 3
    sales = sales_table(engine)
    assert sales["revenue"].tolist() == [2.5, 5.0, 12.0]
    assert sales["on_promotion"].tolist() == [False, True, False]


# ---------------------------------------------------------------- idempotence and corrections


def replace_chunk(settings: Settings, rows: int) -> Settings:
    return settings.model_copy(update={"ingest_chunk_rows": rows})


def test_loading_the_same_file_twice_changes_nothing(engine: Engine, settings: Settings) -> None:
    path = FIXTURES / "superstore/sample_superstore_300.csv"
    first = ingest_file(engine, path, resolve_spec("superstore"), settings)
    before = sales_table(engine)

    second = ingest_file(engine, path, resolve_spec("superstore"), settings)

    assert first.facts_inserted > 0
    assert (second.facts_inserted, second.facts_updated) == (0, 0)
    assert second.facts_unchanged == first.facts_inserted
    pd.testing.assert_frame_equal(sales_table(engine), before)
    with engine.connect() as conn:
        runs = conn.execute(select(IngestionRun.status, IngestionRun.file_sha256).order_by(IngestionRun.id)).all()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert runs[0].file_sha256 == runs[1].file_sha256


def test_a_corrected_file_updates_only_the_changed_rows(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    original = "date,product,store,units\n2024-01-01,A,s1,5\n2024-01-02,A,s1,6\n2024-01-03,A,s1,7\n"
    corrected = (
        "date,product,store,units\n2024-01-01,A,s1,5\n2024-01-02,A,s1,60\n2024-01-03,A,s1,7\n2024-01-04,A,s1,8\n"
    )
    ingest_file(engine, write_csv(tmp_path / "v1.csv", original), resolve_spec(None), settings)

    report = ingest_file(engine, write_csv(tmp_path / "v2.csv", corrected), resolve_spec(None), settings)

    assert (report.facts_inserted, report.facts_updated, report.facts_unchanged) == (1, 1, 2)
    assert sales_table(engine)["units"].tolist() == [5.0, 60.0, 7.0, 8.0]


# ---------------------------------------------------------------- validation


BAD_FILE = """date,product,store,units,unit_price
2024-01-01,A,s1,5,2.0
2024-13-45,A,s1,5,2.0
2024-01-02,,s1,3,2.0
2024-01-03,A,s1,-2,2.0
2024-01-04,A,s1,lots,2.0
2024-01-05,A,s1,4,2.0,extra
2024-01-06,A,s1,4,cheap
2024-01-07,A,s1,1,2.0
2024-01-07,A,s1,2,2.0
2024-01-08,B,s1,9,1.5
2024-01-09,B,s1,10,1.5
2024-01-10,B,s1,11,1.5
2024-01-11,B,s1,12,1.5
2024-01-12,B,s1,13,1.5
2024-01-13,B,s1,14,1.5
2024-01-14,B,s1,15,1.5
2024-01-15,B,s1,16,1.5
2024-01-16,B,s1,17,1.5
2024-01-17,B,s1,18,1.5
2024-01-18,B,s1,19,1.5
2024-01-19,B,s1,20,1.5
2024-01-20,B,s1,21,1.5
2024-01-21,B,s1,22,1.5
2024-01-22,B,s1,23,1.5
2024-01-23,B,s1,24,1.5
2024-01-24,B,s1,25,1.5
2024-01-25,B,s1,26,1.5
2024-01-26,B,s1,27,1.5
2024-01-27,B,s1,28,1.5
2024-01-28,B,s1,29,1.5
2024-01-29,B,s1,30,1.5
2024-01-30,B,s1,31,1.5
2024-01-31,B,s1,32,1.5
2024-02-01,B,s1,33,1.5
2024-02-02,B,s1,34,1.5
2024-02-03,B,s1,35,1.5
2024-02-04,B,s1,36,1.5
"""


def test_bad_rows_are_reported_by_line_and_only_good_rows_load(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "bad.csv", BAD_FILE)

    lenient = settings.model_copy(update={"ingest_chunk_rows": 4, "ingest_max_bad_share": 0.5})

    report = ingest_file(engine, path, resolve_spec(None), lenient)

    problems = {(p.line, p.column): p.reason for p in report.problems}
    assert problems == {
        (3, "date"): "unparseable date '2024-13-45'",
        (4, "product"): "empty product id",
        (5, "units"): "negative units -2.0 (negative_sales=reject)",
        (6, "units"): "units is not a number: 'lots'",
        (7, None): "malformed row: expected 5 fields, saw 6",
        (8, "unit_price"): "unit_price is not a number: 'cheap'",
        (9, "key"): "duplicate key (product=A, store=s1, date=2024-01-07) first seen on line 9",
        (10, "key"): "duplicate key (product=A, store=s1, date=2024-01-07) first seen on line 9",
    }
    assert report.rows_read == 37
    assert report.rows_rejected == 8
    assert report.rows_accepted == 29
    sales = sales_table(engine)
    assert len(sales) == 29
    assert sales[sales["sku"] == "A"]["units"].tolist() == [5.0]
    with engine.connect() as conn:
        stored = conn.execute(select(RejectedRow.line, RejectedRow.column, RejectedRow.reason)).all()
    assert {(line, column): reason for line, column, reason in stored} == problems
    bad_price_row = next(p for p in report.problems if p.line == 8)
    assert bad_price_row.raw is not None and '"cheap"' in bad_price_row.raw


def test_a_mostly_bad_file_is_refused_and_nothing_is_written(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    lines = ["date,product,store,units"] + [f"not-a-date,A,s1,{i}" for i in range(30)] + ["2024-01-01,A,s1,1"]
    path = write_csv(tmp_path / "garbage.csv", "\n".join(lines) + "\n")

    with pytest.raises(FileRefusedError, match=r"30 of 31 rows \(97%\) are bad.*nothing was loaded"):
        ingest_file(engine, path, resolve_spec(None), settings)

    assert count(engine, "sales") == count(engine, "products") == count(engine, "stores") == 0
    with Session(engine) as session:
        run = session.execute(select(IngestionRun)).scalars().one()
    assert run.status == "refused" and run.rows_read == 31 and run.rows_rejected == 30
    assert run.rows_accepted == 0


@pytest.mark.parametrize("policy, expected_units", [("keep", [-2.0, 5.0]), ("clip", [0.0, 5.0])])
def test_negative_sales_policy_keeps_or_clips_returns(
    engine: Engine, settings: Settings, tmp_path: Path, policy: str, expected_units: list[float]
) -> None:
    path = write_csv(tmp_path / "returns.csv", "date,product,units,revenue\n2024-01-01,A,-2,-20\n2024-01-02,A,5,50\n")

    report = ingest_file(engine, path, resolve_spec(None), settings.model_copy(update={"negative_sales": policy}))

    assert report.rows_rejected == 0
    sales = sales_table(engine)
    assert sales["units"].tolist() == expected_units
    assert sales["revenue"].tolist() == ([-20.0, 50.0] if policy == "keep" else [0.0, 50.0])


def test_order_lines_with_returns_net_out_per_day(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "lines.csv",
        "day,sku,qty,amount\n2024-01-01,A,3,30\n2024-01-01,A,-1,-10\n2024-01-01,A,2,20\n2024-01-02,A,1,10\n",
    )
    spec = resolve_spec(None, {"date": "day", "product": "sku", "units": "qty", "revenue": "amount"})
    spec = spec.model_copy(update={"aggregate": True})

    ingest_file(engine, path, spec, settings.model_copy(update={"negative_sales": "keep"}))

    sales = sales_table(engine)
    assert sales["units"].tolist() == [4.0, 1.0]
    assert sales["revenue"].tolist() == [40.0, 10.0]
    assert sales["store"].tolist() == ["all", "all"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ("date,product,units\n", "the file has no data rows"),
        ("day,product,units\n2024-01-01,A,1\n", r"missing column\(s\) 'date' \(for date\)"),
    ],
)
def test_unusable_files_are_refused_with_a_precise_message(
    engine: Engine, settings: Settings, tmp_path: Path, content: str, message: str
) -> None:
    path = write_csv(tmp_path / "f.csv", content)

    with pytest.raises(FileRefusedError, match=message):
        ingest_file(engine, path, resolve_spec(None), settings)

    assert count(engine, "sales") == 0


# ---------------------------------------------------------------- atomicity


def test_a_database_failure_midway_leaves_the_store_unchanged(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_file(
        engine,
        write_csv(tmp_path / "v1.csv", "date,product,units\n2024-01-01,A,1\n"),
        resolve_spec(None),
        settings,
    )
    before = sales_table(engine)
    real_upsert = staging.upsert_facts

    def upsert_then_fail(conn: Connection, run_id: int, aggregate: bool) -> None:
        real_upsert(conn, run_id, aggregate)  # the new facts and products are written inside the transaction ...
        conn.execute(text("SELECT * FROM no_such_table"))  # ... then the database fails

    monkeypatch.setattr(staging, "upsert_facts", upsert_then_fail)
    rows = "".join(f"2024-02-{d:02d},B{d},{d}\n" for d in range(1, 29))
    path = write_csv(tmp_path / "v2.csv", "date,product,units\n2024-01-01,A,100\n" + rows)

    with pytest.raises(StorageError, match="nothing was loaded"):
        ingest_file(engine, path, resolve_spec(None), settings)

    pd.testing.assert_frame_equal(sales_table(engine), before)
    assert count(engine, "products") == 1
    with engine.connect() as conn:
        statuses = conn.execute(select(IngestionRun.status).order_by(IngestionRun.id)).scalars().all()
    assert statuses == ["succeeded", "failed"]


@pytest.mark.postgres
def test_a_connection_killed_mid_file_loads_nothing(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue("_postgres_engine")
    from tests.conftest import _empty_postgres

    _empty_postgres(engine)
    rows = "".join(f"2024-01-{d:02d},P{p},{d}\n" for p in range(20) for d in range(1, 29))
    path = write_csv(tmp_path / "big.csv", "date,product,units\n" + rows)
    killer = engine.connect()

    def kill_loader_after_two_chunks(rows_read: int) -> None:
        if rows_read == 200:  # chunks of 100 rows: two are staged, more are coming
            killer.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state LIKE 'idle in transaction%'"
                )
            )
            killer.commit()

    with pytest.raises(StorageError, match="nothing was loaded"):
        ingest_file(engine, path, resolve_spec(None), settings, progress=kill_loader_after_two_chunks)
    killer.close()

    assert count(engine, "sales") == count(engine, "products") == 0


# ---------------------------------------------------------------- hostile values (issue 18, defects 2 and 3)


GOOD_ROWS = "".join(f"2024-02-{d:02d},B,Bee,s1,{d},{2 * d},2.0\n" for d in range(1, 29))  # lines 2..29
LONG_ID = "P" * 100_000
HOSTILE_ROWS = [  # (row, column, reason); the rows follow the 28 good ones, from line 30 on
    ("2024-01-01,A,Ay,s1,inf,,2.0", "units", "units is not a finite number: 'inf'"),
    ("2024-01-02,A,Ay,s1,Infinity,,2.0", "units", "units is not a finite number: 'Infinity'"),
    ("2024-01-03,A,Ay,s1,+inf,,2.0", "units", "units is not a finite number: '+inf'"),
    ("2024-01-04,A,Ay,s1,INF,,2.0", "units", "units is not a finite number: 'INF'"),
    ("2024-01-05,A,Ay,s1,-inf,,2.0", "units", "units is not a finite number: '-inf'"),
    ("2024-01-06,A,Ay,s1,1e400,,2.0", "units", "units is not a finite number: '1e400'"),
    ("2024-01-07,A,Ay,s1,1,inf,", "revenue", "revenue is not a finite number: 'inf'"),
    ("2024-01-08,A,Ay,s1,1,,-Infinity", "unit_price", "unit_price is not a finite number: '-Infinity'"),
    ("2024-01-09,A,Ay,s1,1,,-1.5", "unit_price", "negative unit_price -1.5: a price is never negative"),
    (
        "2024-01-10,A,Ay,s1,2,-3,",
        "revenue",
        "negative revenue -3.0 on a row of 2.0 units: only a return (negative units) has negative revenue",
    ),
    (f"2024-01-11,{LONG_ID},Ay,s1,1,,2.0", "product", "product is 100,000 characters long; at most 200 fit"),
    (f"2024-01-12,A,{'n' * 501},s1,1,,2.0", "product_name", "product_name is 501 characters long; at most 500 fit"),
    (f"2024-01-13,A,Ay,{'s' * 201},1,,2.0", "store", "store is 201 characters long; at most 200 fit"),
    ("2024-01-14,A\x00B,Ay,s1,1,,2.0", "product", "product contains a control character (U+0000)"),
    ("2024-01-15,A,A\x07y,s1,1,,2.0", "product_name", "product_name contains a control character (U+0007)"),
    ("0001-01-01,A,Ay,s1,1,,2.0", "date", "date '0001-01-01' is out of range (accepted: 1900-01-01 to 2199-12-31)"),
    ("9999-12-31,A,Ay,s1,1,,2.0", "date", "date '9999-12-31' is out of range (accepted: 1900-01-01 to 2199-12-31)"),
    ("2024-13-45,A,Ay,s1,1,,2.0", "date", "unparseable date '2024-13-45'"),
    ("   ", None, "blank line: only whitespace"),
]


def test_hostile_values_are_rejected_per_row_and_the_good_rows_load(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # An empty line is no row: skipped, neither read nor rejected, and the lines after it keep their numbers.
    rows = [row for row, _, _ in HOSTILE_ROWS]
    body = GOOD_ROWS + "\n".join(rows[:5]) + "\n\n" + "\n".join(rows[5:]) + "\n"
    path = tmp_path / "hostile.csv"
    path.write_text("date,product,product_name,store,units,revenue,unit_price\n" + body, encoding="utf-8")
    expected = {}
    for number, (_, column, reason) in enumerate(HOSTILE_ROWS, start=30):
        expected[(number + (number >= 35), column)] = reason  # the empty line is line 35
    lenient = settings.model_copy(update={"ingest_max_bad_share": 0.5})

    report = ingest_file(engine, path, resolve_spec(None), lenient)

    assert report.status == "succeeded"
    assert {(p.line, p.column): p.reason for p in report.problems} == expected
    bad = len(HOSTILE_ROWS)
    assert (report.rows_read, report.rows_rejected, report.rows_accepted) == (28 + bad, bad, 28)
    sales = sales_table(engine)
    assert sales["sku"].tolist() == ["B"] * 28 and sales["units"].sum() == sum(range(1, 29))
    with engine.connect() as conn:
        stored = conn.execute(select(RejectedRow.line, RejectedRow.column, RejectedRow.reason)).all()
        runs = conn.execute(select(IngestionRun.status, IngestionRun.rows_rejected)).all()
    assert {(line, column): reason for line, column, reason in stored} == expected
    assert runs == [("succeeded", bad)]
    long_row = next(p for p in report.problems if p.column == "product")
    assert long_row.raw is not None and len(long_row.raw) < 1000  # not the whole 100,000 characters


def test_a_rejected_nul_byte_is_stored_printably(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    # PostgreSQL refuses NUL in text: the reason and raw row of a rejected line must not carry one.
    body = GOOD_ROWS + "2024-01-14\x00,A\x00B,Ay,s1,1,,2.0\n"
    path = tmp_path / "nul.csv"
    path.write_text("date,product,product_name,store,units,revenue,unit_price\n" + body, encoding="utf-8")

    report = ingest_file(engine, path, resolve_spec(None), settings)

    assert {(p.line, p.column): p.reason for p in report.problems} == {
        (30, "date"): "unparseable date '2024-01-14\\x00'",
        (30, "product"): "product contains a control character (U+0000)",
    }
    with engine.connect() as conn:
        raw = conn.execute(select(RejectedRow.raw)).scalars().all()
    assert len(raw) == 2 and all(r is not None and "\x00" not in r and "\\u0000" in r for r in raw)
    assert len(sales_table(engine)) == 28


@pytest.mark.parametrize("values", [[float("inf"), 1.0], [float("-inf"), 1.0]])
def test_non_finite_numbers_in_typed_parquet_columns_are_rejected(
    engine: Engine, settings: Settings, tmp_path: Path, values: list[float]
) -> None:
    frame = pd.DataFrame(
        {"date": pd.to_datetime(["2024-01-01", "2024-01-02"]), "product": "A", "units": values, "unit_price": values}
    )
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)

    report = ingest_file(engine, path, resolve_spec(None), settings.model_copy(update={"ingest_max_bad_share": 0.5}))

    assert {(p.line, p.column) for p in report.problems} == {(1, "units"), (1, "unit_price")}
    assert sales_table(engine)["units"].tolist() == [1.0]


# ---------------------------------------------------------------- run records (issue 18, defect 3: kill -9)


def run_statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(IngestionRun.status).order_by(IngestionRun.id)).scalars())


def test_a_running_run_is_interrupted_only_once_its_lock_has_no_holder(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    locks = run_locks(engine)
    with running_run(engine, locks, source="big.csv", preset=None, file_sha256=None) as run_id:
        # Committed while its lock is held: another process sees the run, and sees it alive.
        assert run_statuses(engine) == ["running"]
        assert mark_interrupted(engine, run_locks(engine)) == []
        assert [run.status for run in recent_runs(engine, 5)] == ["running"]
    # The block ended without recording an outcome, as a killed process would.

    [run] = recent_runs(engine, 5)

    assert (run.id, run.status) == (run_id, "interrupted")
    assert run.message is not None and "nothing was loaded" in run.message
    path = write_csv(tmp_path / "next.csv", "date,product,units\n2024-01-01,A,1\n")
    report = ingest_file(engine, path, resolve_spec(None), settings)
    assert (report.run_id, run_statuses(engine)) == (run_id + 1, ["interrupted", "succeeded"])


def test_a_run_stopped_by_an_unexpected_error_records_it(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(staging, "upsert_dimensions", broken)
    path = write_csv(tmp_path / "f.csv", "date,product,units\n2024-01-01,A,1\n")

    with pytest.raises(KeyboardInterrupt):
        ingest_file(engine, path, resolve_spec(None), settings)

    assert run_statuses(engine) == ["interrupted"]
    assert count(engine, "sales") == 0


def test_an_ingest_killed_midway_is_recorded_and_later_shown_as_interrupted(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """A real `salescast ingest` process, killed with SIGKILL while it loads a large file."""
    rows = 400_000
    days = pd.date_range("2020-01-01", periods=1000).strftime("%Y-%m-%d").to_numpy()
    numbers = np.arange(rows)
    frame = pd.DataFrame({"date": days[numbers % 1000], "product": "P" + (numbers // 1000).astype(str), "units": 1})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    env = {
        **os.environ,
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "SALESCAST_INGEST_CHUNK_ROWS": "20000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "salescast.cli", "ingest", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while run_statuses(engine) != ["running"] and time.monotonic() < deadline:
            assert process.poll() is None, "the ingest ended before its run was seen"
            time.sleep(0.02)
        time.sleep(1.0)  # into the load (which takes several seconds)
        assert run_statuses(engine) == ["running"] and process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)

    assert run_statuses(engine) == ["running"]  # the record outlived its process ...
    assert count(engine, "sales") == count(engine, "products") == 0  # ... which loaded nothing
    # PostgreSQL releases the dead session's lock once it notices the closed connection: at most a moment.
    deadline = time.monotonic() + 5
    while recent_runs(engine, 5)[0].status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [run.status for run in recent_runs(engine, 5)] == ["interrupted"]
