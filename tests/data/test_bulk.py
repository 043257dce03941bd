"""Bulk inserts read back as written, on SQLite and on PostgreSQL (COPY)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from salescast.data.bulk import insert_frame
from salescast.data.schema import Store


def test_a_frame_reads_back_as_written_quotes_commas_and_nulls_included(engine: Engine) -> None:
    frame = pd.DataFrame({"code": ["A", "B,2", 'C"3', "D"], "name": ['Main "street", 1', None, "", "x\ny"]})

    with engine.begin() as conn:
        assert insert_frame(conn, Store, frame) == 4

    with engine.connect() as conn:
        rows = conn.execute(select(Store.code, Store.name).order_by(Store.code)).all()
    # An empty name stays an empty string, a missing one is NULL.
    assert [tuple(row) for row in rows] == [("A", 'Main "street", 1'), ("B,2", None), ('C"3', ""), ("D", "x\ny")]


def test_an_unknown_column_or_a_failed_insert_writes_nothing(engine: Engine) -> None:
    with pytest.raises(ValueError, match="stores has no column colour"), engine.begin() as conn:
        insert_frame(conn, Store, pd.DataFrame({"code": ["A"], "colour": ["red"]}))
    with pytest.raises(Exception, match=r"(?i)unique"), engine.begin() as conn:
        insert_frame(conn, Store, pd.DataFrame({"code": ["A", "B", "A"]}))

    with engine.connect() as conn:
        assert conn.scalars(select(Store.code)).all() == []
    with engine.begin() as conn:
        assert insert_frame(conn, Store, pd.DataFrame({"code": pd.Series([], dtype=object)})) == 0
