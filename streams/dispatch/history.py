"""Background for the responders: earlier alerts at the same address or H3 cell, or from the
same caller number, within a window. Every worker holds the recent history (a GlobalTable)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from schemas.events import AlertCall, BackgroundAlert

Match = Literal["address", "cell", "caller"]
MAX_BACKGROUND = 10
_SPACES = re.compile(r"[\s,，。.、-]+")


def address_key(address: str) -> str:
    """Addresses compared without spaces and punctuation, case-folded."""
    return _SPACES.sub("", address).casefold()


def phone_key(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits[-11:]  # mainland mobile numbers; drops +86 / 0086 prefixes


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    alert_id: str
    category: str
    address: str
    description: str
    event_time: str
    event_utc_ms: int
    address_key: str
    h3_cell: str
    phone_key: str

    @classmethod
    def of(cls, alert: AlertCall) -> HistoryEntry:
        return cls(
            alert.alert_id,
            alert.category,
            alert.address,
            alert.description,
            alert.event_time,
            alert.event_utc_ms,
            address_key(alert.address),
            alert.h3_cell,
            phone_key(alert.caller_phone),
        )


class AlertHistory:
    def __init__(self) -> None:
        self.entries: dict[str, HistoryEntry] = {}
        self._by: dict[Match, dict[str, set[str]]] = {
            "address": defaultdict(set),
            "cell": defaultdict(set),
            "caller": defaultdict(set),
        }

    def __len__(self) -> int:
        return len(self.entries)

    def record(self, entry: HistoryEntry) -> None:
        self.forget(entry.alert_id)
        self.entries[entry.alert_id] = entry
        for match, key in self._keys(entry):
            self._by[match][key].add(entry.alert_id)

    def forget(self, alert_id: str) -> None:
        old = self.entries.pop(alert_id, None)
        if old is None:
            return
        for match, key in self._keys(old):
            self._by[match][key].discard(alert_id)

    @staticmethod
    def _keys(entry: HistoryEntry) -> list[tuple[Match, str]]:
        pairs: list[tuple[Match, str]] = [("cell", entry.h3_cell)]
        if entry.address_key:
            pairs.append(("address", entry.address_key))
        if len(entry.phone_key) >= 7:
            pairs.append(("caller", entry.phone_key))
        return pairs

    def related(self, alert: AlertCall, window_ms: int) -> list[BackgroundAlert]:
        """Earlier alerts (strictly before this one, within the window), newest first."""
        probe = HistoryEntry.of(alert)
        matched: dict[str, list[Match]] = defaultdict(list)
        for match, key in self._keys(probe):
            for alert_id in self._by[match].get(key, ()):
                matched[alert_id].append(match)
        found = []
        for alert_id, matches in matched.items():
            entry = self.entries[alert_id]
            age = alert.event_utc_ms - entry.event_utc_ms
            if alert_id == alert.alert_id or not 0 < age <= window_ms:
                continue
            found.append((entry, sorted(set(matches))))
        found.sort(key=lambda pair: (-pair[0].event_utc_ms, pair[0].alert_id))
        return [
            BackgroundAlert(
                alert_id=entry.alert_id,
                category=entry.category,
                address=entry.address,
                description=entry.description,
                event_time=entry.event_time,
                matched_on=matches,
            )
            for entry, matches in found[:MAX_BACKGROUND]
        ]
