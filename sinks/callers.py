"""Callers' numbers in the warehouse: a masked form (last 4 digits) to read and a keyed hash
(HMAC-SHA256 with a secret from settings) to count and link repeat callers. The full number
travels only in the dispatch message to the responders, never into an analytic table."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

KEY_FILE = "phone-hmac.key"
# Every name the alert reader accepts for the caller's number (streams/ingest/alerts.py; sinks
# sit below streams, so the list is repeated here and a test keeps the two the same).
PHONE_NAMES = ("caller_phone", "phone", "caller", "tel", "报警电话")
_NOT_DIGIT = re.compile(r"\D")
# A phone field inside raw JSON bytes: "caller_phone": "138…" or "tel": 138… (any field name
# the alert reader accepts), so dead letters that are not valid JSON are protected too.
_RAW_PHONE = re.compile(
    rb'("(?:'
    + b"|".join(re.escape(n.encode()) for n in PHONE_NAMES)
    + rb')"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9+\-]+)'
)


@dataclass(frozen=True, slots=True)
class ProtectedPhone:
    masked: str
    hmac: str


class PhoneProtector:
    """Masks and hashes callers' numbers with one secret key (never printed or logged)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the phone HMAC key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "PhoneProtector(key=***)"

    def protect(self, number: str) -> ProtectedPhone:
        digits = _NOT_DIGIT.sub("", number)
        if not digits:
            return ProtectedPhone("", "")
        tail = digits[-4:]
        masked = "*" * (len(digits) - len(tail)) + tail
        digest = hmac.new(self._key, digits.encode(), hashlib.sha256).hexdigest()
        return ProtectedPhone(masked, digest)

    def message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """An assignment (or any message with top-level `caller_phone`) with the number masked
        and its hash added as `caller_phone_hmac`."""
        out = dict(message)
        phone = self.protect(str(out.get("caller_phone", "")))
        out["caller_phone"] = phone.masked
        out["caller_phone_hmac"] = phone.hmac
        return out

    def raw_bytes(self, value: bytes) -> tuple[bytes, list[str]]:
        """Raw input bytes (a dead letter) with every phone field's value masked, and the hashes
        of the numbers found; every other byte stays as it was (invalid UTF-8 included)."""
        found: list[str] = []

        def mask(match: re.Match[bytes]) -> bytes:
            literal = match.group(2)
            number = literal[1:-1] if literal.startswith(b'"') else literal
            phone = self.protect(number.decode("latin-1"))
            if not phone.hmac:
                return match.group(0)
            found.append(phone.hmac)
            return match.group(1) + b'"' + phone.masked.encode() + b'"'

        return _RAW_PHONE.sub(mask, value), found


def load_key(configured: str | None, state_dir: Path) -> bytes:
    """The configured key, or one generated once into the state folder (mode 0600) so the
    embedded stack hashes the same number the same way across restarts."""
    if configured:
        return configured.encode()
    path = state_dir / "secrets" / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_bytes(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def protect_payload(protector: PhoneProtector, payload: bytes) -> tuple[str, ProtectedPhone]:
    """An assignment's JSON bytes, number masked, plus the protected number."""
    message = protector.message(orjson.loads(payload))
    phone = ProtectedPhone(message["caller_phone"], message["caller_phone_hmac"])
    return orjson.dumps(message).decode(), phone
