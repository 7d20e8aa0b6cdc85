"""Who is acting and why, for the duration of one command.

The API, the CLI and the scheduler open a context; every event recorded inside it carries
its metadata (actor, command id, correlation id, causation id). Apply methods never read it.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class CommandContext:
    actor: str
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = ""
    causation_id: str = ""
    # Set when the caller sent an Idempotency-Key: the fingerprint of the request, so that a
    # repeat with another body can be told apart from a true repeat.
    idempotency_key: str | None = None
    fingerprint: str = ""
    # Set when the caller sent If-Match: the version the target aggregate must have.
    expected_version: int | None = None

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.command_id)
        if not self.causation_id:
            object.__setattr__(self, "causation_id", self.command_id)

    def metadata(self) -> dict[str, str]:
        return {
            "actor": self.actor,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


SYSTEM = CommandContext(actor="system")

_current: contextvars.ContextVar[CommandContext | None] = contextvars.ContextVar(
    "tekil_command_context", default=None
)


def current() -> CommandContext:
    return _current.get() or SYSTEM


@contextmanager
def acting(context: CommandContext | None = None, /, **changes: object) -> Iterator[CommandContext]:
    """Run the enclosed command as `context` (or the current one with `changes`)."""
    ctx = context if context is not None else current()
    if changes:
        ctx = replace(ctx, **changes)  # type: ignore[arg-type]
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
