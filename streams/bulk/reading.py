"""Reading inputs: chunks that end on record boundaries, encodings, headers, formats."""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import orjson

from base.errors import (
    ConfigError,
    HarmoniseError,
)
from streams.bulk.options import (
    CHUNK_BYTES,
    FORMAT_BY_SUFFIX,
    MAX_RECORD_BYTES,
    Format,
    HarmoniseOptions,
)
from streams.bulk.parquet_files import (
    parquet_columns,
)


def _last_record_end(data: bytes, quoted: bool) -> int:
    """Just past the last newline that ends a record (outside CSV quotes); 0 if none does."""
    end = data.rfind(b"\n")
    if not quoted:
        return end + 1
    quotes = data.count(b'"', 0, end)
    while end >= 0:
        if quotes % 2 == 0:
            return end + 1
        previous = data.rfind(b"\n", 0, end)
        quotes -= data.count(b'"', previous + 1, end)
        end = previous
    return 0


def _first_record_end(data: bytes) -> int:
    start = quotes = 0
    while (newline := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1
    return 0


def record_blocks(
    file: IO[bytes], carry: bytes, *, quoted: bool, name: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    while block := file.read(chunk_bytes):
        carry += block
        cut = _last_record_end(carry, quoted)
        if cut:
            yield carry[:cut]
            carry = carry[cut:]
        elif len(carry) > MAX_RECORD_BYTES:
            raise HarmoniseError(f"{name}: a record longer than 64 MiB (unbalanced quotes?)")
    if carry:
        yield carry


def is_utf8_codec(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def to_utf8(blob: bytes, encoding: str) -> bytes:
    """A chunk of an input in another encoding, as UTF-8; bytes that do not decode stay as they
    were, so their row is rejected `invalid_encoding` with them, as in a UTF-8 file."""
    return blob.decode(encoding, "surrogateescape").encode("utf-8", "surrogateescape")


def check_encoding(encoding: str) -> None:
    """Inputs are cut at quotes and line ends before decoding: only encodings that write those
    (and ASCII) as ASCII bytes will do (GBK, GB18030, Big5, Shift-JIS, Latin-1: yes; UTF-16: no)."""
    try:
        ascii_as_is = '"a,\r\n'.encode(encoding) == b'"a,\r\n'
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None
    if not ascii_as_is:
        raise ConfigError(f"encoding {encoding!r}: only ASCII-compatible encodings are read")


def read_header(
    file: IO[bytes], name: str, encoding: str = "utf-8"
) -> tuple[tuple[str, ...] | None, bytes]:
    """A CSV file's columns (None: an empty file) and the bytes read past them."""
    data = b""
    while not (cut := _first_record_end(data)):
        block = file.read(CHUNK_BYTES)
        if not block:
            cut = len(data)
            break
        data += block
        if len(data) > MAX_RECORD_BYTES:
            raise HarmoniseError(f"{name}: no end to the header line")
    line = data[:cut].decode("utf-8-sig" if is_utf8_codec(encoding) else encoding, "replace")
    header = next(csv.reader(io.StringIO(line)), None)
    if not header:
        return None, data[cut:]
    duplicated = [c for c, n in Counter(header).items() if n > 1]
    if duplicated:
        raise ConfigError(f"{name}: column {duplicated[0]!r} appears twice")
    return tuple(header), data[cut:]


def _first_object_keys(path: Path, encoding: str = "utf-8") -> tuple[str, ...] | None:
    with path.open("rb") as file:
        lines = (to_utf8(line, encoding) for line in file if line.strip())
        return next((keys for keys in map(object_keys, lines) if keys is not None), None)


def object_keys(raw: bytes) -> tuple[str, ...] | None:
    """The keys of `raw` when it is a JSON object, else None."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return tuple(obj) if isinstance(obj, dict) else None


def input_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    found = FORMAT_BY_SUFFIX.get(suffix)
    if found is None:
        raise ConfigError(
            f"{path}: cannot tell CSV, JSON Lines or Parquet by the suffix {suffix!r}"
        )
    return found


def output_format(path: Path, given: str | None = None) -> Format:
    if given is not None:
        if given not in ("csv", "jsonl", "parquet"):
            raise ConfigError(f"unknown format {given!r} (csv, jsonl or parquet)")
        return "csv" if given == "csv" else "parquet" if given == "parquet" else "jsonl"
    found = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"{path}: say --format csv, jsonl or parquet (the suffix does not tell)")
    return found


def default_rejects_path(out: Path) -> Path:
    """OUT's sibling: `calls.csv` -> `calls.rejects.csv`; a Parquet output's rejects are JSON
    Lines (`calls.parquet` -> `calls.rejects.jsonl`), the original values as they came."""
    suffix = ".jsonl" if out.suffix.lower() == ".parquet" else out.suffix
    return out.with_name(f"{out.stem}.rejects{suffix}")


def first_columns(
    inputs: Sequence[Path], formats: Sequence[Format], options: HarmoniseOptions, *, same: bool
) -> tuple[str, ...]:
    """The first input's columns (a CSV output's), after checking that every CSV input has the
    columns the options name and, when `same`, the first input's columns."""
    named = [*(options.time_columns or ()), *(options.text_columns or ())]
    named += [options.reference_column] if options.reference_column else []
    first: tuple[str, ...] | None = None
    for path, kind in zip(inputs, formats, strict=True):
        if kind == "jsonl":
            found = _first_object_keys(path, options.encoding) if same and first is None else None
        elif kind == "parquet":
            found = parquet_columns(path)
        else:
            with path.open("rb") as file:
                found = read_header(file, str(path), options.encoding)[0]
            unknown = [c for c in named if found is not None and c not in found]
            if unknown:
                raise ConfigError(f"{path}: no column {unknown[0]!r}")
            if same and None not in (found, first) and set(found or ()) != set(first or ()):
                raise ConfigError(f"{path}: columns differ from those of {inputs[0]}")
        first = first if first is not None else found
    return first or ()
