"""The routing table: every input topic has a decoder and a handler, replay reads its topics from
the table, and a replay dead letter carries the reason and message the live agents would give."""

from __future__ import annotations

from dataclasses import fields

import pytest
from pydantic import ValidationError

from base.errors import InvalidEvent, Reason, invalid_event
from base.topics import TopicNames
from schemas.events import BackupRequest, Claim, ClaimResult
from streams.dispatch.handlers import Outbound
from streams.dispatch.replay import INPUT_TOPICS, ReplaySession
from streams.dispatch.routing import (
    HANDLED_AS,
    INBOXES,
    INGESTS,
    MODELS,
    decode_and_handle,
    deliver_here,
    inbox_of,
    settle,
)
from streams.dispatch.rules import DispatchPolicy

RAW_INPUTS = ("gps_raw", "alerts_raw", "status_raw", "cameras_raw", "backup")


def test_every_input_topic_is_decoded_and_handled() -> None:
    names = {f.name for f in fields(TopicNames)}
    assert set(HANDLED_AS) == set(RAW_INPUTS)
    assert {ingest.raw for ingest in INGESTS} | {"backup"} == set(RAW_INPUTS)
    for topic in [*HANDLED_AS.values(), *(i.normalised for i in INGESTS)]:
        assert topic in names
    for topic in HANDLED_AS.values():
        assert topic in MODELS
    for topic in MODELS:
        if topic != "gps_by_officer":  # the positions app's, not an inbox of the dispatch app
            assert topic in INBOXES[inbox_of(topic)]


def test_replay_reads_the_input_topics_of_the_routing_table() -> None:
    default = TopicNames()
    assert set(INPUT_TOPICS) == {getattr(default, topic) for topic in RAW_INPUTS}


def test_a_replay_dead_letter_has_the_live_reason_and_one_line_message() -> None:
    bad = {"alert_id": "AL-1", "officer_id": "OFF-1", "units": "many", "reason": "crowd"}
    with pytest.raises(ValidationError) as raised:
        BackupRequest.model_validate(bad)
    live = invalid_event(raised.value)

    session = ReplaySession(policy=DispatchPolicy())
    [dead] = session.feed("dispatch.backup", bad)

    assert dead["topic"] == "deadletter"
    assert dead["reason"] == live.reason.value == "invalid_field"
    assert dead["error"] == str(live)  # before: the multi-line pydantic report
    assert "\n" not in dead["error"]


def test_claims_and_answers_are_delivered_here_only_where_this_worker_decides() -> None:
    session = ReplaySession(policy=DispatchPolicy())
    dispatcher = session.dispatcher
    claim = Outbound(
        "claims", "OFF-1", Claim(kind="claim", alert_id="A", officer_id="OFF-1", alert_utc_ms=0)
    )
    answer = Outbound(
        "claim_results", "A", ClaimResult(alert_id="A", officer_id="OFF-1", outcome="rejected")
    )

    def elsewhere(item: Outbound) -> list[Outbound] | None:
        return deliver_here(
            dispatcher, item, 0, decides_for_officer=lambda _: False, alert_partition=1
        )

    assert settle([claim, answer], elsewhere) == [claim, answer]
    here = deliver_here(dispatcher, claim, 0, decides_for_officer=lambda _: True, alert_partition=0)
    assert here is not None  # the officer is unknown here: the claim is answered at once
    assert [item.topic for item in here] == ["claim_results"]


@pytest.mark.parametrize("topic", sorted(set(MODELS) - {"gps_by_officer"}))
def test_an_empty_message_on_a_typed_topic_is_empty(topic: str) -> None:
    # Regression: pydantic's "Invalid JSON: EOF" made it `invalid_field`; the README says `empty`.
    dispatcher = ReplaySession(policy=DispatchPolicy()).dispatcher
    with pytest.raises(InvalidEvent) as raised:
        decode_and_handle(dispatcher, inbox_of(topic), topic, b"", 0, 0)
    assert raised.value.reason is Reason.EMPTY
