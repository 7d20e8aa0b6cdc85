"""Ids read back from storage, made faster than `UUID(text)`.

Every stored event names its aggregate, and most name others: replaying a million events
makes millions of ids, and `uuid.UUID.__init__` (pure Python: prefixes, braces, dashes,
checks) is a visible share of a rebuild. An id stored as its 32 hex digits (how the store and
the library's `uuid_hex` transcoding write it) is made here from its integer value directly;
anything else goes to `UUID` as before, with the same errors."""

from __future__ import annotations

from uuid import UUID, SafeUUID

from eventsourcing.persistence import UUIDAsHex

_new = object.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown


def uuid_from_hex(text: str) -> UUID:
    """`UUID(text)`, quickly for 32 hex digits."""
    if len(text) == 32:
        value = int(text, 16)  # what UUID() does with 32 characters, with the same errors
        if 0 <= value < 1 << 128:
            uuid = _new(UUID)
            _set(uuid, "int", value)
            _set(uuid, "is_safe", _UNKNOWN)
            return uuid  # type: ignore[no-any-return]
    return UUID(text)


class FastUUIDAsHex(UUIDAsHex):
    """The library's `uuid_hex` transcoding, decoding with `uuid_from_hex`."""

    def decode(self, data: str) -> UUID:
        if not isinstance(data, str):
            raise TypeError(f"an id is stored as text, not {type(data).__name__}")
        return uuid_from_hex(data)
