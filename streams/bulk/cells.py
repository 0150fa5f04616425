"""One pool worker's tools: memoised time parsing and text repair of cells and columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import compress, filterfalse

from base.errors import (
    InvalidEvent,
)
from streams.bulk.options import MEMO_SIZE, REPEAT_SAMPLE, HarmoniseOptions
from streams.text.repair import fold_fullwidth, repair_short_field, repair_text
from streams.timestd import Instant, parse_instant
from streams.timestd.columns import read_column


class Cells:
    """Parses and repairs cells under one set of options. Values repeat a lot in real exports
    (dates, station names, categories) and both functions are pure: results are memoised."""

    def __init__(self, options: HarmoniseOptions) -> None:
        self.zone = options.zone
        self.convention = options.convention
        self.instants: dict[object, Instant | InvalidEvent] = {}
        self.repairs: dict[str, str] = {}  # "" when the text needs no repair
        self.gbk_texts: set[str] = set()  # texts `repaired` found GBK mojibake (evidence)
        self.repaired_cells: dict[bytes, bytes] = {}  # the same for UTF-8 cells
        self.folded_cells: dict[bytes, bytes] = {}  # b"" when there is nothing to fold
        # Cells repaired from GBK mojibake: a row that has one is evidence for its short fields.
        self.gbk_cells: set[bytes] = set()
        self.short_cells: dict[bytes, bytes] = {}  # b"" when the short field stays as it is

    def instant(self, value: object, reference_ms: int | None = None) -> Instant:
        if reference_ms is not None:  # the answer depends on the row: not memoised
            return parse_instant(
                value, zone=self.zone, convention=self.convention, reference_ms=reference_ms
            )
        hashable = value is None or isinstance(value, str | int | float)
        key = value if value is None or value.__class__ is str else (type(value), value)
        found = self.instants.get(key) if hashable else None
        if found is None:
            try:
                found = parse_instant(value, zone=self.zone, convention=self.convention)
            except InvalidEvent as exc:
                found = exc.with_traceback(None)  # a traceback would keep its chunk alive
            if hashable:
                if len(self.instants) >= MEMO_SIZE:
                    self.instants.clear()
                self.instants[key] = found
        if isinstance(found, InvalidEvent):
            raise InvalidEvent(found.reason, found.message)
        return found

    def reference(self, value: object) -> int | None:
        try:
            return self.instant(value).utc_ms
        except InvalidEvent:
            return None

    def times(self, values: Sequence[bytes], references: Sequence[int | None] | None) -> TimeCells:
        """A column's instants (values: UTF-8 text): the common shapes all at once, the others
        one by one as `instant` reads them (what the column reader settles needs no context).
        A column of few distinct values (dates, say) is read value by distinct value."""
        if references is None and _repetitive(values):
            distinct = list(dict.fromkeys(values))
            return self.times(distinct, None).spread(values, distinct)
        found = read_column(values, self.zone, self.convention)
        errors: dict[int, InvalidEvent] = {}
        inferred: list[int] = []
        for k in found.unsettled:
            reference = None if references is None else references[k]
            try:
                instant = self.instant(values[k].decode(), reference)
            except InvalidEvent as exc:
                errors[k] = exc.with_traceback(None)
                continue
            found.utc_ms[k], found.labels[k] = instant.utc_ms, instant.source_format
            found.iso[k], found.utc_ms_text[k] = instant.iso.encode(), b"%d" % instant.utc_ms
            if instant.inferred:
                inferred.append(k)
        return TimeCells(found.utc_ms, found.iso, found.utc_ms_text, found.labels, errors, inferred)

    def references(self, values: Sequence[bytes]) -> list[int | None]:
        """Each row's context instant; None where the reference is unreadable."""
        found = read_column(values, self.zone, self.convention)
        references: list[int | None] = list(found.utc_ms)
        for k in found.unsettled:
            references[k] = self.reference(values[k].decode())
        return references

    def repaired(self, value: str) -> str:
        """The repaired text, or "" when `value` needs no repair."""
        found = self.repairs.get(value)
        if found is None:
            repair = repair_text(value)
            found = repair.text if repair.changed else ""
            if len(self.repairs) >= MEMO_SIZE:
                self.repairs.clear()
                self.gbk_texts.clear()
            self.repairs[value] = found
            if repair.source_encoding == "gbk":
                self.gbk_texts.add(value)
        return found

    def short_repaired(self, value: str) -> str:
        """A short field of a record whose other text was GBK mojibake, repaired, or "" when
        it stays as it is."""
        return _short_repaired_cell(value.encode()).decode()

    def repairs_of(self, column: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: repaired cell} for the cells of `column` that need repair."""
        return _changes(column, self.repaired_cells, self._repaired_cell)

    def _repaired_cell(self, cell: bytes) -> bytes:
        repair = repair_text(cell.decode())
        if not repair.changed:
            return b""
        if repair.source_encoding == "gbk":
            if len(self.gbk_cells) >= MEMO_SIZE:
                self.gbk_cells.clear()
            self.gbk_cells.add(cell)
        return repair.text.encode()

    def short_repairs_of(self, cells: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: repaired cell} for short fields of rows whose other text was GBK mojibake."""
        return _changes(cells, self.short_cells, _short_repaired_cell)

    def folds_of(self, column: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: folded cell} for the cells of `column` with full-width forms."""
        return _changes(column, self.folded_cells, _folded_cell)


def _changes(
    column: Sequence[bytes], memo: dict[bytes, bytes], change: Callable[[bytes], bytes]
) -> dict[bytes, bytes]:
    """{cell: changed cell} for the distinct cells that `change` changes; it returns b"" for no
    change, and never changes ASCII. Memoised: text values repeat a lot in real exports."""
    distinct = set(filterfalse(bytes.isascii, column))
    fresh = distinct.difference(memo)
    if len(memo) + len(fresh) > MEMO_SIZE:
        memo.clear()
        fresh = distinct
    memo.update(zip(fresh, map(change, fresh), strict=True))
    changed = list(map(memo.__getitem__, distinct))
    return dict(compress(zip(distinct, changed, strict=True), changed))


def _repetitive(values: Sequence[bytes]) -> bool:
    """Whether values repeat enough to read each distinct one once (judged on a sample)."""
    sample = values[:REPEAT_SAMPLE]
    return len(values) > REPEAT_SAMPLE and len(set(sample)) * 2 <= len(sample)


def _short_repaired_cell(cell: bytes) -> bytes:
    repair = repair_short_field(cell.decode())
    return repair.text.encode() if repair.changed else b""


def _folded_cell(cell: bytes) -> bytes:
    text = cell.decode()
    folded = fold_fullwidth(text)
    return folded.encode() if folded != text else b""


@dataclass(slots=True)
class TimeCells:
    """One time column of a chunk: per row, the instant's fields, or an error."""

    utc_ms: list[int]
    iso: list[bytes]
    utc_ms_text: list[bytes]
    labels: list[str]
    errors: dict[int, InvalidEvent]  # by row
    inferred: list[int]  # rows settled by the reference column

    def spread(self, values: Sequence[bytes], distinct: list[bytes]) -> TimeCells:
        """From the cells of the distinct `values` to those of every value."""
        at = list(map({value: k for k, value in enumerate(distinct)}.__getitem__, values))
        errors = {}
        if self.errors:
            errors = {k: self.errors[d] for k, d in enumerate(at) if d in self.errors}
        return TimeCells(
            list(map(self.utc_ms.__getitem__, at)),
            list(map(self.iso.__getitem__, at)),
            list(map(self.utc_ms_text.__getitem__, at)),
            list(map(self.labels.__getitem__, at)),
            errors,
            [],  # no reference, nothing inferred
        )


_CELLS: dict[HarmoniseOptions, Cells] = {}


def cells_for(options: HarmoniseOptions) -> Cells:
    found = _CELLS.get(options)
    if found is None:
        found = _CELLS[options] = Cells(options)
    return found
