"""Ids read back from storage: `uuid_from_hex` is `UUID(text)`, value and errors alike."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.app import Business
from domain.ids import uuid_from_hex


def outcome(make, text: str):  # type: ignore[no-untyped-def]
    try:
        made = make(text)
    except (ValueError, TypeError) as error:
        return type(error)
    return (made, made.int, made.hex, str(made), hash(made), made.is_safe, made.version)


@given(st.text(alphabet="0123456789abcdefABCDEF_x- {}+", min_size=28, max_size=36))
def test_any_text_gives_what_uuid_gives(text: str) -> None:
    assert outcome(uuid_from_hex, text) == outcome(UUID, text)


@pytest.mark.parametrize("n", range(50))
def test_a_stored_id_comes_back_equal(n: int) -> None:
    made = uuid4()
    again = uuid_from_hex(made.hex)

    assert again == made
    assert isinstance(again, UUID)
    assert {again: n}[made] == n


def test_the_store_reads_its_ids_back_with_it() -> None:
    business = Business(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    transcoder = business.mapper.transcoder
    made = uuid4()

    assert transcoder.decode(transcoder.encode({"id": made})) == {"id": made}
    with pytest.raises(TypeError):
        transcoder.decode(b'{"_type_":"uuid_hex","_data_":5}')
