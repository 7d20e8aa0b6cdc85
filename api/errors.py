"""Every error is application/problem+json (RFC 9457), mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    Conflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    RuleViolation,
    VersionMismatch,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TYPES = "https://tekil.dev/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPES + kind, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    path = ""
    for part in loc[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return where, path or where


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        where, field = _field(tuple(error.get("loc", ())))
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            field, message = "body", "the body is not valid JSON"
        errors.append({"field": field, "in": where, "message": message})
    fields = ", ".join(e["field"] for e in errors)
    return problem(
        422,
        "Invalid input",
        f"the request has invalid fields: {fields}",
        kind="invalid-input",
        instance=request.url.path,
        errors=errors,
    )


def _domain(request: Request, exc: DomainError) -> JSONResponse:
    path = request.url.path
    match exc:
        case InvalidInput():
            return problem(
                422,
                exc.title,
                exc.detail,
                kind="invalid-input",
                instance=path,
                errors=[{"field": exc.field, "in": "body", "message": exc.reason}],
            )
        case IdempotencyKeyReused():
            return problem(
                422,
                exc.title,
                exc.detail,
                kind="idempotency-key-reused",
                instance=path,
                errors=[{"field": "Idempotency-Key", "in": "header", "message": exc.detail}],
            )
        case NotFound():
            return problem(404, exc.title, exc.detail, kind="not-found", instance=path)
        case VersionMismatch():
            return problem(
                409,
                exc.title,
                exc.detail,
                kind="version-mismatch",
                instance=path,
                expected_version=exc.expected,
                current_version=exc.actual,
            )
        case Conflict():
            return problem(409, exc.title, exc.detail, kind="conflict", instance=path)
        case RuleViolation():
            return problem(409, exc.title, exc.detail, kind="rule-violated", instance=path)
    return problem(409, exc.title, exc.detail, kind="rule-violated", instance=path)


_HTTP_TITLES = {
    401: ("Unauthorized", "unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    413: ("Content too large", "content-too-large"),
    503: ("Not ready", "not-ready"),
}


def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot decode at all (not UTF-8): as for bad JSON.
        return problem(
            422,
            "Invalid input",
            "the request has invalid fields: body",
            kind="invalid-input",
            instance=request.url.path,
            errors=[{"field": "body", "in": "body", "message": "the body is not valid JSON"}],
        )
    title, kind = _HTTP_TITLES.get(exc.status_code, ("Error", "error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(
        exc.status_code,
        title,
        detail,
        kind=kind,
        instance=request.url.path,
        headers=getattr(exc, "headers", None),
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(
        500,
        "Internal error",
        "the server failed while handling this request; the log has the details",
        kind="internal",
        instance=request.url.path,
    )


# What the OpenAPI document says an error answer looks like (every route under /api may give
# any of these; FastAPI's own 422 shape is replaced, since ours is problem+json too).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "in", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_MEANINGS = {
    401: "No API key, or one that is unknown or revoked",
    403: "The key's roles do not allow this",
    404: "No such record",
    409: "A business rule or a concurrent change stands in the way; nothing was recorded",
    413: "The request body is larger than the server accepts",
    422: "Invalid input: `errors` names each offending field; nothing was recorded",
    503: "The read model has not reached `min_position` yet, or the database is unreachable; "
    "retry after `Retry-After`",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": meaning, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
    for status, meaning in _MEANINGS.items()
}


# The database went away under the request (a restart, a failover, a dropped connection, a
# pool that could not connect in time): the next attempt will most likely work, so the answer
# is 503 with Retry-After, not 500. A command that gets it may have been recorded or not (the
# connection can drop after the commit): a caller repeats it with its Idempotency-Key.
UNAVAILABLE = (StoreOperationalError, StoreInterfaceError, psycopg.OperationalError)


def _lost_database(exc: Exception) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, UNAVAILABLE)
    return isinstance(exc, UNAVAILABLE)


def _database(request: Request, exc: Exception) -> JSONResponse:
    if not _lost_database(exc):
        return _unexpected(request, exc)
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, exc, exc_info=True
    )
    return problem(
        503,
        "Service unavailable",
        "the database could not be reached; retry shortly (a command sent with an "
        "Idempotency-Key is recorded once however often it is repeated)",
        kind="unavailable",
        instance=request.url.path,
        headers={"Retry-After": "1"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    for error in (*UNAVAILABLE, DBAPIError, psycopg.InterfaceError):
        app.add_exception_handler(error, _database)
    app.add_exception_handler(Exception, _unexpected)
