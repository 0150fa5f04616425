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
    """The changelog writes of the tables it watches: queued, handed over in order, counted
    until read back. Its header names the writer (process and group generation): after a crash
    the changelog tells which worker decided what."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._writer_id = f"{os.getpid()}.{uuid.uuid4().hex[:6]}".encode()
        self._queued: deque[FutureMessage] = deque()
        self._handed: list[FutureMessage] = []
        self._order = asyncio.Lock()
        self._unread: dict[tuple[str, str], int] = {}  # (table, key) -> own writes not read back

    def watch(self, table: faust.types.TableT) -> None:
        topic, name = table.changelog_topic, table.name

        def send_soon_queued(
            *, key: Any = None, force: bool = False, headers: Any = None, **kwargs: Any
        ) -> FutureMessage:
            future = topic.as_future_message(key=key, headers=self._headers(), **kwargs)
            self._queued.append(future)
            counted = (name, str(key))
            self._unread[counted] = self._unread.get(counted, 0) + 1
            return future

        topic.send_soon = send_soon_queued  # type: ignore[method-assign]

    def _headers(self) -> list[tuple[str, bytes]]:
        generation = str(self._app.consumer_generation_id).encode()
        return [(WRITER_HEADER, self._writer_id + b"/" + generation)]

    def overwritten_since(self, table: str, key: str, event: EventT) -> bool:
        """Whether `event`, read back from `table`'s changelog, is this worker's own write of
        `key` that a later write of its own has replaced (True: do not apply it)."""
        headers = dict(event.message.headers or ())
        writer = headers.get(WRITER_HEADER, b"").split(b"/")[0]
        if writer != self._writer_id:
            return False
        counted = (table, key)
        unread = self._unread.get(counted, 0) - 1
        if unread <= 0:
            self._unread.pop(counted, None)
            return False
        self._unread[counted] = unread
        return True

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

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        fresh = [
            event
            for event in batch
            if not self._writes.overwritten_since(self.name, changelog_key(event), event)
        ]
        super().apply_changelog_batch(fresh)
        for event in fresh:
            self._mirror(changelog_key(event), event.value)
