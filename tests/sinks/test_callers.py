"""Callers' numbers: masked to the last 4 digits, hashed with a key, found inside raw bytes
(JSON or not, any alias the alert reader accepts) without touching any other byte."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks.callers import PHONE_NAMES, PhoneProtector, load_key
from streams.ingest.alerts import PHONE_NAMES as ALERT_READER_PHONE_NAMES

PROTECTOR = PhoneProtector(b"0123456789abcdef")


def test_mask_keeps_the_last_four_digits_and_the_length() -> None:
    assert PROTECTOR.protect("138-0013-8000").masked == "*******8000"
    assert PROTECTOR.protect("").masked == "" and PROTECTOR.protect("").hmac == ""


def test_the_same_number_written_differently_links_to_one_hash() -> None:
    assert PROTECTOR.protect("138 0013 8000").hmac == PROTECTOR.protect("13800138000").hmac


@given(st.binary(max_size=60), st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_raw_bytes_lose_the_number_and_keep_every_other_byte(noise: bytes, number: str) -> None:
    field = "报警电话".encode()
    raw = noise + b'{"' + field + b'": "' + number.encode() + b'"}'
    protected, hashes = PROTECTOR.raw_bytes(raw)
    assert protected.startswith(noise)
    assert number.encode() not in protected[len(noise) :]
    assert protected.endswith(b'"' + b"*" * 7 + number[-4:].encode() + b'"}')
    assert hashes[-1] == PROTECTOR.protect(number).hmac


def test_unquoted_number_in_broken_json_is_masked() -> None:
    protected, hashes = PROTECTOR.raw_bytes(b'{"caller_phone": 13800138000, "lat": ')
    assert protected == b'{"caller_phone": "*******8000", "lat": '
    assert len(hashes) == 1


def test_key_is_never_shown() -> None:
    assert "0123456789abcdef" not in repr(PROTECTOR)


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PhoneProtector(b"short")


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    first = load_key(None, tmp_path)
    assert load_key(None, tmp_path) == first and len(first) == 64
    key_file = tmp_path / "secrets" / "phone-hmac.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key("configured-key-123", tmp_path) == b"configured-key-123"


def test_phone_fields_are_the_ones_the_alert_reader_accepts() -> None:
    assert PHONE_NAMES == ALERT_READER_PHONE_NAMES
