"""Stored events decoded into domain events exactly as the library's mapper decodes them, in
about half the time: the JSON parsed by orjson, then the transcoded values revived in one walk
over what it gave (the standard library's parser calls the transcoder's hook, a Python
method, for every object, and the common transcodings are called here without a wrapper)."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

from domain.app import DateAsISO
from domain.ids import FastUUIDAsHex, uuid_from_hex

# What these transcodings' `decode` does with text, as one call.
_DIRECT: dict[type, Callable[[str], Any]] = {
    DatetimeAsISO: datetime.fromisoformat,
    DecimalAsStr: Decimal,
    DateAsISO: date.fromisoformat,
    FastUUIDAsHex: uuid_from_hex,
}


class _Unusual(Exception):
    """Left to the mapper: a float, say (orjson reads an integer beyond 64 bits as a float,
    where `json` keeps it exact; the domain stores amounts as text)."""


_classes: dict[str, type] = {}


def event_class(topic: str) -> type:
    """The class of a stored event's topic, resolved once per topic."""
    cls = _classes.get(topic)
    if cls is None:
        cls = _classes[topic] = resolve_topic(topic)
    return cls


def event_decoder(mapper: Mapper[Any]) -> Callable[..., Any]:
    """`mapper.to_domain_event`, or a faster equivalent where the mapper is the library's with
    its JSON transcoder and nothing between (no cipher, no compression). Its second argument,
    if given, is the stored JSON as `parse` gave it, which it then changes in place."""
    transcoder = mapper.transcoder
    if (
        type(mapper) is not Mapper
        or mapper.cipher is not None
        or mapper.compressor is not None
        or not isinstance(transcoder, JSONTranscoder)
        or type(transcoder).decode is not JSONTranscoder.decode
        or type(transcoder)._decode_obj is not JSONTranscoder._decode_obj
    ):
        return lambda stored, parsed=None: mapper.to_domain_event(stored)
    return _Decoder(mapper, transcoder).to_domain_event


def parse(state: bytes) -> tuple[Any, bool]:
    """A stored event's JSON, parsed by orjson where it can (several times faster than `json`)
    and by `json` where orjson refuses (NaN, say); and whether orjson parsed it."""
    try:
        return orjson.loads(state), True
    except orjson.JSONDecodeError:
        return json.loads(state), False


class _Decoder:
    def __init__(self, mapper: Mapper[Any], transcoder: JSONTranscoder) -> None:
        self.slow = mapper.to_domain_event
        # What the transcoder's hook calls for each `{"_type_": name, "_data_": ...}` object.
        self.decode = {name: t.decode for name, t in transcoder.names.items()}
        self.direct = {
            name: _DIRECT[type(t)] for name, t in transcoder.names.items() if type(t) in _DIRECT
        }

    def to_domain_event(self, stored: Any, parsed: Any = None) -> Any:
        """What `Mapper.to_domain_event` gives; anything unusual (an error, a float, JSON orjson
        refuses) is left to it, so that it also raises what it raises."""
        try:
            event_state = self.revive(orjson.loads(stored.state) if parsed is None else parsed)
            cls = event_class(stored.topic)
        except Exception:
            return self.slow(stored)
        if type(event_state) is not dict:
            return self.slow(stored)
        # As the mapper does from here on.
        convert = find_id_convertor(cls, cast(Hashable, type(stored.originator_id)))
        event_state["originator_id"] = convert(stored.originator_id)
        event_state["originator_version"] = stored.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event

    def revive(self, value: Any) -> Any:
        """What `json.loads` with the transcoder's hook gives, from what orjson gave: every
        object, innermost first, that is exactly `{"_type_": name, "_data_": data}` becomes the
        value its transcoding decodes from `data`."""
        direct = self.direct
        if type(value) is dict:
            for key, item in value.items():
                kind = type(item)
                if kind is dict:
                    # (most often a transcoded value of text: decoded here, without a call)
                    data = item.get("_data_")
                    if len(item) == 2 and type(data) is str:
                        decode = direct.get(item.get("_type_"))
                        if decode is not None:
                            value[key] = decode(data)
                            continue
                    value[key] = self.revive(item)
                elif kind is list:
                    value[key] = self.revive(item)
                elif kind is float:
                    raise _Unusual
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                name, data = value["_type_"], value["_data_"]
                if type(data) is str and name in direct:
                    return direct[name](data)
                return self.decode[name](data)
            return value
        if type(value) is list:
            for i, item in enumerate(value):
                kind = type(item)
                if kind is dict or kind is list:
                    value[i] = self.revive(item)
                elif kind is float:
                    raise _Unusual
        elif type(value) is float:
            raise _Unusual
        return value
