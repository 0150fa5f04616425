"""A dispatch worker's global tables read their own writes back: a read-back that a later write
of the same worker has replaced must not roll the table (and the officer view) back. Before the
fix an officer freed and then booked read as free again when the first write came back, and a
claim decided in that window booked them twice (seen after a `kill -9`)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT
from faust.types.tuples import Message

from streams.pipeline.table_writes import WRITER_HEADER, MirroredTable, TableWrites


def officers_table() -> tuple[MirroredTable, TableWrites, list[tuple[str, Any]]]:
    app = faust.App("table-writes-test", broker="kafka://127.0.0.1:9", store="memory://")
    writes = TableWrites(app)
    mirrored: list[tuple[str, Any]] = []
    table = MirroredTable(
        app,
        name="officers",
        beacon=app.tables.beacon,
        partitions=4,
        is_global=True,
        use_partitioner=True,
        mirror=lambda key, value: mirrored.append((key, value)),
        writes=writes,
    )
    app.tables.add(table)
    writes.watch(table)
    return table, writes, mirrored


def write(table: MirroredTable, key: str, value: Any) -> list[tuple[str, bytes]]:
    """What an agent's `table[key] = value` does: the local value, then the changelog write
    (through the topic's `send_soon`, as Faust's table does). Returns the write's headers."""
    table.data[key] = value
    future = table.changelog_topic.send_soon(key=key, value=value, partition=1)
    return list(future.message.headers)


def read_back(
    table: MirroredTable, key: str, value: Any, headers: list[tuple[str, bytes]], offset: int
) -> EventT:
    message = Message(
        table.changelog_topic.get_topic_name(), 1, offset, 0.0, 0, headers, None, None, None
    )
    return faust.Event(table.app, key, value, headers, message)


def test_own_write_read_back_after_a_newer_one_does_not_roll_the_table_back() -> None:
    table, _, mirrored = officers_table()
    freed = write(table, "OFF-7", {"status": "available"})
    booked = write(table, "OFF-7", {"status": "dispatched", "alert_id": "AL-2"})

    table.apply_changelog_batch([read_back(table, "OFF-7", {"status": "available"}, freed, 14)])
    assert table.data["OFF-7"]["status"] == "dispatched"
    assert mirrored == []  # the view is not rolled back either

    latest = {"status": "dispatched", "alert_id": "AL-2"}
    table.apply_changelog_batch([read_back(table, "OFF-7", latest, booked, 15)])
    assert table.data["OFF-7"] == latest
    assert mirrored == [("OFF-7", latest)]


def test_other_workers_writes_and_recovery_are_applied_in_order() -> None:
    table, _, mirrored = officers_table()
    other = [(WRITER_HEADER, b"4242.abcdef/3")]
    for offset, status in enumerate(("available", "dispatched", "available")):
        table.apply_changelog_batch([read_back(table, "OFF-7", {"status": status}, other, offset)])
    assert table.data["OFF-7"] == {"status": "available"}
    assert [value["status"] for _, value in mirrored] == ["available", "dispatched", "available"]
    # a write of an old worker without the header (recovered from before this version)
    table.apply_changelog_batch([read_back(table, "OFF-8", {"status": "busy"}, [], 9)])
    assert table.data["OFF-8"] == {"status": "busy"}


def test_last_own_write_read_back_is_applied_and_the_count_resets() -> None:
    table, _, _ = officers_table()
    first = write(table, "OFF-7", {"status": "available"})
    table.apply_changelog_batch([read_back(table, "OFF-7", {"status": "available"}, first, 1)])
    # another worker took the officer's partition and wrote since: its value wins
    foreign = [(WRITER_HEADER, b"4242.abcdef/4")]
    table.apply_changelog_batch([read_back(table, "OFF-7", {"status": "on_scene"}, foreign, 2)])
    assert table.data["OFF-7"] == {"status": "on_scene"}
    # the count is back to zero: a repeat of the first write (a producer retry) is applied
    table.apply_changelog_batch([read_back(table, "OFF-7", {"status": "available"}, first, 3)])
    assert table.data["OFF-7"] == {"status": "available"}
