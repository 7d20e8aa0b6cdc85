"""Every operation of the OpenAPI document, fed generated input by schemathesis in process, on
SQLite, as an admin: no answer is a 5xx, and every answer (status, content type, body) is one
the document describes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.services import Services
from tests.conftest import open_services

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'tekil.db'}"
    with open_services(url) as services:
        # Generated min_position values lie beyond the head: answer 503 at once, not in 5 s.
        services.reads.wait_timeout = 0.02
        try:
            # schemathesis runs the app's lifespan (the read models are fed) on its first call
            # and keeps it up until told to stop, which must be before the store closes.
            yield create_app(services), services.keys.create("schemathesis", ["admin"])
        finally:
            shutdown_lifespans()


# The document does not depend on the store, so it is read at collection from an app without
# one: one test per operation, named after it.
schema = schemathesis.openapi.from_dict(create_app(cast(Services, None)).openapi())


@schema.parametrize()
@settings(
    # Generated cases only: schemathesis's coverage phase (explicit examples at every bound)
    # sends some 4,600 requests, over two minutes on two cores. Its finds are kept as cases
    # in test_bad_input.py.
    max_examples=10,
    phases=[Phase.generate, Phase.shrink],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_answers_as_documented_and_never_fails(
    case: Any, admin: tuple[Any, str]
) -> None:
    app, key = admin
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
