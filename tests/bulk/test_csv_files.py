"""streams/bulk/csv_files.py: records read and rows written exactly as Python's csv module reads
and writes them, whatever the cells hold (quotes, commas, line breaks, blank lines, CRLF)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from base.errors import UnreadableCsv
from streams.bulk.csv_files import read_columns, read_records, render_columns

cells = st.one_of(
    st.text(alphabet='ab ,"\r\n中é', max_size=6),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
)
tables = st.integers(1, 4).flatmap(
    lambda width: st.lists(st.lists(cells, min_size=width, max_size=width), max_size=12)
)


def csv_records(text: str) -> list[list[bytes]]:
    return [[c.encode() for c in row] for row in csv.reader(io.StringIO(text)) if row]


@hypothesis_settings(max_examples=300, deadline=None)
@given(tables, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_records_are_what_csv_reader_reads(
    rows: list[list[str]], line_end: str, blank_lines: bool
) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator=line_end).writerows(rows)
    text = out.getvalue().replace(line_end, line_end * 2) if blank_lines else out.getvalue()
    try:
        expected = csv_records(text)
    except csv.Error:  # a bare CR written unquoted with "\n" line ends: csv cannot read it back
        with pytest.raises(UnreadableCsv):
            read_records(text.encode())
        return

    assert read_records(text.encode()) == expected


@hypothesis_settings(max_examples=300, deadline=None)
@given(tables)
def test_columns_of_a_simple_chunk_are_its_records_transposed(rows: list[list[str]]) -> None:
    text = "".join(",".join(row) + "\n" for row in rows)
    width = len(rows[0]) if rows else 1

    columns = read_columns(text.encode(), width)

    if columns is not None:  # only when nothing needs the csv module
        assert [list(r) for r in zip(*columns, strict=True)] == csv_records(text)


@hypothesis_settings(max_examples=300, deadline=None)
@given(tables, st.data())
def test_rendered_rows_are_what_csv_writer_writes(
    rows: list[list[str]], data: st.DataObject
) -> None:
    keep = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    width = len(rows[0]) if rows else 1
    columns = [[row[k].encode() for row in rows] for k in range(width)]
    expected = io.StringIO()
    csv.writer(expected).writerows(row for row, kept in zip(rows, keep, strict=True) if kept)

    assert render_columns(columns, keep) == expected.getvalue().encode()
    if all(keep):
        assert render_columns(columns, None) == expected.getvalue().encode()
