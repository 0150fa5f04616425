"""The dispatch worker's table writes: handed to the Kafka client in order before anything that
depends on them is published, and read back without rolling a table back.

Faust queues a table's changelog writes in its own producer buffer, drained by a background
task, so an assignment sent straight away could reach the broker before the booking it depends
on, and a `kill -9` in between published a decision the tables forgot. Here the writes are
queued by us instead and `hand_over` appends them to the Kafka client's accumulator, in the
order they were made, before the caller publishes: the client sends one request at a time per
broker, batches drained in order, so a write is always sent with or before the messages
published after it, and a crash loses both or neither. That costs no broker round trip, unlike
waiting for the writes' acknowledgements (`durable`), which is what a rebalance does so that
the next owner of a partition recovers every write. The residue: a broker that rejects the
changelog batch (a leader change) while accepting the assignment in the same request, followed
by a crash before the client's retry succeeds.

A global table is also fed its own changelog, this worker's writes included: each write comes
back a few milliseconds later. A key written twice in quick succession (an officer freed, then
booked) would be set back to the first value when that one is read back, until the second is
too; a claim decided in between saw a booked officer free and booked them twice (after a
`kill -9`, when a partition's backlog is handled in a burst). `MirroredTable` skips the read-back
of a write that this worker has since overwritten."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.types import EventT
from faust.types.tuples import FutureMessage

WRITER_HEADER = "writer"


class TableWrites:
    """The changelog writes of the tables it watches: queued and handed over in order. Its
    header names the writer (process and group generation): after a crash the changelog tells
    which worker decided what."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._writer_id = f"{os.getpid()}.{uuid.uuid4().hex[:6]}".encode()
        self._queued: deque[FutureMessage] = deque()
        self._handed: list[FutureMessage] = []
        self._order = asyncio.Lock()

    def watch(self, table: faust.types.TableT) -> None:
        topic = table.changelog_topic
        # Only a mirrored (global) table reads its own writes back; counting those of a
        # partitioned table would grow for good.
        read_back = table.wrote if isinstance(table, MirroredTable) else None

        def send_soon_queued(
            *, key: Any = None, force: bool = False, headers: Any = None, **kwargs: Any
        ) -> FutureMessage:
            future = topic.as_future_message(key=key, headers=self._headers(), **kwargs)
            self._queued.append(future)
            if read_back is not None:
                read_back(str(key))
            return future

        topic.send_soon = send_soon_queued  # type: ignore[method-assign]

    def _headers(self) -> list[tuple[str, bytes]]:
        generation = str(self._app.consumer_generation_id).encode()
        return [(WRITER_HEADER, self._writer_id + b"/" + generation)]

    def wrote(self, event: EventT) -> bool:
        """Whether `event`, read from a changelog, is a write of this worker's."""
        headers = dict(event.message.headers or ())
        return headers.get(WRITER_HEADER, b"").split(b"/")[0] == self._writer_id

    async def hand_over(self) -> None:
        """Return once every write made so far is in the Kafka client's queue, in order."""
        async with self._order:  # another agent's hand-over may hold writes made before ours
            while self._queued:
                future = self._queued.popleft()
                await future.message.channel.publish_message(future, wait=False)
                self._handed.append(future)
            if len(self._handed) > 1024:
                self._handed = [f for f in self._handed if not f.done()]

    async def durable(self) -> None:
        """Return once every write made so far is acknowledged by the broker (raises if one
        failed)."""
        await self.hand_over()
        handed, self._handed = self._handed, []
        if handed:
            await asyncio.gather(*handed)


def changelog_key(event: EventT) -> str:
    key = event.key
    return key.decode() if isinstance(key, bytes) else str(key)


class MirroredTable(faust.GlobalTable):
    """A global table whose changelog (recovery, other workers' writes, its own read back)
    also feeds `mirror`, skipping the read-back of writes this worker has since overwritten."""

    def __init__(
        self,
        *args: Any,
        mirror: Callable[[str, Any], None],
        writes: TableWrites,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._mirror = mirror
        self._writes = writes
        self._unread: dict[str, int] = {}  # key -> this worker's writes not read back yet

    def wrote(self, key: str) -> None:
        """This worker wrote `key` (its changelog will bring the write back)."""
        self._unread[key] = self._unread.get(key, 0) + 1

    def _overwritten_since(self, key: str, event: EventT) -> bool:
        """Whether `event` is this worker's own write of `key` that a later write of its own
        has replaced (True: do not apply it)."""
        if not self._writes.wrote(event):
            return False
        unread = self._unread.get(key, 0) - 1
        if unread <= 0:
            self._unread.pop(key, None)
            return False
        self._unread[key] = unread
        return True

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        keyed = [(changelog_key(event), event) for event in batch]
        fresh = [(key, event) for key, event in keyed if not self._overwritten_since(key, event)]
        super().apply_changelog_batch([event for _, event in fresh])
        for key, event in fresh:
            self._mirror(key, event.value)
