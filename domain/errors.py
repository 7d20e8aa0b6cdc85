"""Errors the business raises. The API maps each family to one HTTP status; nothing else does."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """Base of every error a command can answer with. Nothing is recorded when one is raised."""

    title = "Business rule violated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """A value is not acceptable (HTTP 422). `field` names it as the caller sent it."""

    title = "Invalid input"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = detail


class NotFound(DomainError):
    """An id or document that does not exist (HTTP 404)."""

    title = "Not found"

    def __init__(self, kind: str, key: UUID | str) -> None:
        super().__init__(f"{kind} {key} does not exist")
        self.kind = kind
        self.key = str(key)


class RuleViolation(DomainError):
    """The command breaks a business rule in the current state (HTTP 409)."""

    title = "Business rule violated"


class Conflict(DomainError):
    """Someone else changed the same thing first (HTTP 409)."""

    title = "Conflict"


class VersionMismatch(Conflict):
    title = "Version mismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, but the current version is {actual}")
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request (HTTP 422)."""

    title = "Idempotency key reused"
