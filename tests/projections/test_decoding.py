"""Read models get events decoded by orjson and one walk instead of the mapper: for every event
of a whole demo business, and for stored values the walk must leave to the mapper, the domain
event is exactly the one the mapper gives."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from domain.app import open_business
from domain.crm.leads import Lead
from domain.settings import Settings
from projections.decoding import event_decoder, parse
from projections.eventlog import read_log
from replay.demo import load_demo


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == Decimal(1) is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return same(vars(a), vars(b))
    return bool(a == b)


def test_every_event_of_a_business_decodes_as_the_mapper_decodes_it(sqlite_url: str) -> None:
    business = open_business(Settings(database_url=sqlite_url), create_tables=True)
    try:
        business.ensure_defaults()
        load_demo(business, today=date(2026, 11, 27))
        decode = event_decoder(business.mapper)
        assert decode != business.mapper.to_domain_event  # the fast one, for this store
        notifications = read_log(business.recorder, 1, 100_000)
        assert len(notifications) > 100
        for n in notifications:
            expected = business.mapper.to_domain_event(n)
            assert same(decode(n), expected), n.topic
            state, by_orjson = parse(n.state)
            assert by_orjson
            assert same(decode(n, state), expected), n.topic  # from JSON parsed already
    finally:
        business.close()


@dataclass
class Stored:
    topic: str
    state: bytes
    originator_id: Any
    originator_version: int = 1


def outcome(decode: Any, stored: Stored) -> Any:
    try:
        return decode(stored)
    except Exception as error:
        return error


@pytest.mark.parametrize(
    "state",
    [
        b'{"n": 18446744073709551617}',  # beyond 64 bits: orjson would read a float
        b'{"n": 1e400}',  # orjson refuses it, json reads infinity
        b'{"n": [1.5, {"_type_": "decimal_str", "_data_": "2.50"}]}',
        b'{"n": {"_type_": "uuid_hex", "_data_": 7}}',  # not text: the transcoding decides
        b'{"n": {"_type_": "unknown", "_data_": "x"}}',
        b'{"n": {"_type_": "date_iso", "_data_": "2026-11-27", "x": 1}}',  # not a value
        b'{"n": {"a": {"_type_": "date_iso", "_data_": "2026-11-27"}}}',
        b'{"n": "\\ud800"}',
        b"[1]",
    ],
)
def test_what_the_walk_cannot_read_is_decoded_by_the_mapper(state: bytes) -> None:
    business = open_business(Settings(database_url="sqlite:///:memory:"), create_tables=True)
    try:
        decode = event_decoder(business.mapper)
        stored = Stored(
            topic="domain.crm.leads:Lead.Captured",
            state=b'{"timestamp": {"_type_": "datetime_iso", "_data_": '
            b'"2026-11-27T09:00:00+00:00"}, ' + state[1:]
            if state.startswith(b"{")
            else state,
            originator_id=uuid4(),
        )
        expected = outcome(business.mapper.to_domain_event, stored)
        got = [outcome(decode, stored)]
        with contextlib.suppress(Exception):
            state, by_orjson = parse(stored.state)
            if by_orjson:
                got.append(outcome(lambda s: decode(s, state), stored))
        for each in got:
            if isinstance(expected, Exception):  # the mapper's own error, however it fails
                assert (type(each), str(each)) == (type(expected), str(expected))
            else:
                assert type(each) is Lead.Captured
                assert same(each, expected)
    finally:
        business.close()
