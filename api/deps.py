"""Typed dependencies: who is calling, running a command on their behalf, and reading a read
model no older than the caller's last write."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection

from api.keys import Caller
from api.services import Services
from domain import context
from domain.app import Business
from domain.core import Result
from domain.errors import InvalidInput
from projections.engine import Projection
from projections.eventlog import position_of
from projections.explain import Explanation
from projections.store import ReadStore
from replay import asof

# The cheap dependencies are `async def`: FastAPI runs a plain `def` dependency in its
# thread pool, a hand-over that costs more than what most of them do.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticate(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise HTTPException(
            401,
            "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    caller = services.keys.trusted(key) or await run_in_threadpool(services.keys.authenticate, key)
    if caller is None:
        raise HTTPException(
            401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return caller


def require(*roles: str) -> Any:
    """A dependency that lets through callers holding one of `roles` (admin always)."""

    async def check(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if not caller.may(*roles):
            raise HTTPException(
                403,
                f"this needs one of the roles {', '.join(sorted(roles))}; "
                f"key {caller.name!r} has {', '.join(sorted(caller.roles))}",
            )
        return caller

    return Depends(check)


@dataclass(frozen=True)
class Answer:
    id: uuid.UUID
    version: int
    position: int
    extra: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "position": self.position,
            **self.extra,
        }


class Commander:
    """Runs one command as the caller, with the request's idempotency key and If-Match.

    Commands run on the few threads kept for them (`Services.commands`), not in FastAPI's
    thread pool: a process's commands take turns anyway (domain/core.py), and dozens of
    threads queueing for the turn cost more in switches than the commands themselves."""

    def __init__(self, services: Services, ctx: context.CommandContext) -> None:
        self.services = services
        self.ctx = ctx

    async def __call__(self, decide: Callable[[Business], Result]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.services.commands, self.run, decide)

    def run(self, decide: Callable[[Business], Result]) -> dict[str, Any]:
        business = self.services.business
        with context.acting(self.ctx):
            result = decide(business)
        position = result.position
        if result.replayed:
            # The first answer's position is that of its command record, saved last.
            record_id = _record_id(self.ctx)
            position = position_of(business, record_id, 1)
        else:
            self.services.runner.wake()
        return Answer(result.id, result.version, position or 0, result.extra).body()


def _record_id(ctx: context.CommandContext) -> uuid.UUID:
    from domain.commands import command_record_id

    assert ctx.idempotency_key is not None
    return command_record_id(ctx.actor, ctx.idempotency_key)


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise InvalidInput("If-Match", "must be the version number the resource had, e.g. 3")
    return int(raw)


async def commander(
    request: Request,
    services: ServicesDep,
    caller: Annotated[Caller, Depends(authenticate)],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    if_match: Annotated[str | None, Header()] = None,
    x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
) -> Commander:
    body = await request.body()
    fingerprint = ""
    if idempotency_key:
        try:
            canonical = json.dumps(json.loads(body or b"null"), sort_keys=True)
        except ValueError:
            canonical = body.decode("utf-8", "replace")
        fingerprint = hashlib.sha256(
            f"{request.method} {request.url.path}\n{canonical}".encode()
        ).hexdigest()
    command_id = idempotency_key or str(uuid.uuid4())
    ctx = context.CommandContext(
        actor=caller.name,
        command_id=command_id,
        correlation_id=x_correlation_id or command_id,
        causation_id=command_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        expected_version=_expected_version(if_match),
    )
    return Commander(services, ctx)


CommandDep = Annotated[Commander, Depends(commander)]


AS_OF = (
    "a position (1234) or an instant (2026-11-01T17:30:00+03:00): the report as it stood "
    "then, replayed from the store. A day (2026-11-01): for reports of business dates (trial "
    "balance, income statement, balance sheet, aging) the books on that day as known now; "
    "for the others, as they stood at the end of that day"
)


def read_model(*names: str, dated: bool = False, positioned: bool = False) -> Any:
    """A dependency giving a read connection once the named read models have processed the
    caller's `min_position` (read-your-writes); 503 with Retry-After if they don't in time.
    With `as_of`, the read models are replayed up to that moment instead, in memory; for a
    `dated` report, a plain day is a business date read from the live models. A
    `positioned` report reads the live models up to the moment's position itself (its
    Reader's `up_to`) once they have passed it: they only ever add rows, each with its
    position (the ledger's lines)."""

    def wait(
        services: ServicesDep,
        min_position: Annotated[
            int | None,
            Query(ge=0, description="wait until the read model has processed this position"),
        ] = None,
        as_of: Annotated[str | None, Query(max_length=40, description=AS_OF)] = None,
    ) -> Any:
        try:
            business_day = (
                asof.business_day(as_of) if as_of and dated and asof.is_day(as_of) else None
            )
            moment = asof.resolve(services.business, as_of) if as_of and not business_day else None
        except InvalidInput as error:  # (a query parameter, not a field of a body)
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", error.field), "msg": error.reason}]
            ) from None
        if moment is not None:
            if positioned and services.reads.wait_for(moment.position, names, timeout=0):
                with services.reads.reader.connect() as conn:
                    yield Reader(conn, services.reads, moment, up_to=moment.position)
                return
            past = asof.replay(services.business, names, moment.position)
            try:
                with past.reader.connect() as conn:
                    yield Reader(conn, past, moment)
            finally:
                past.dispose()
            return
        if min_position and not services.reads.wait_for(min_position, names, timeout=0):
            head = services.business.recorder.max_notification_id() or 0
            if min_position > head:
                # No write answered with this position: waiting would not bring it.
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", "min_position"),
                            "msg": f"no event has position {min_position}; the last is {head}",
                            "input": min_position,
                        }
                    ]
                )
        if min_position and not services.reads.wait_for(min_position, names):
            raise HTTPException(
                503,
                f"the read models {', '.join(names)} have not reached position {min_position} "
                "yet; retry shortly",
                headers={"Retry-After": "1"},
            )
        with services.reads.reader.connect() as conn:
            yield Reader(conn, services.reads, business_day)

    return Depends(wait)


@dataclass(frozen=True)
class Reader:
    """A read-only connection (one consistent snapshot) and the read models behind it."""

    conn: Connection
    reads: ReadStore
    # With as_of: the moment replayed to, or (position None) the business day asked for.
    moment: asof.Moment | None = None
    # With as_of, for a `positioned` report: the live read models, up to this position.
    up_to: int | None = None

    def __getitem__(self, projection: str) -> Projection:
        return self.reads[projection]


EXPLAIN = (
    "true: the answer gains `explain`, mapping each figure (by its JSON pointer into the "
    "answer, e.g. /totals/value) to the events that make it up: their positions, names and "
    "amounts, which add up to the figure. A JSON pointer instead of true explains only the "
    "figures at or under it"
)
_YES = ("true", "1", "yes", "on")
_NO = ("false", "0", "no", "off", "")


async def explanation(
    explain: Annotated[str | None, Query(max_length=500, description=EXPLAIN)] = None,
) -> Explanation | None:
    if explain is None or explain.strip().lower() in _NO:
        return None
    if explain.strip().lower() in _YES:
        return Explanation()
    if explain.startswith("/"):
        return Explanation(only=explain.rstrip("/") or None)
    raise InvalidInput("explain", "give true, false or a JSON pointer into the answer (/totals)")


ExplainDep = Annotated[Explanation | None, Depends(explanation)]
