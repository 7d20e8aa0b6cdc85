"""Fixtures: real SQLite files and a real PostgreSQL server (one fresh schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.services import Services
from domain.settings import Settings, postgres_params

POSTGRES_URL = os.environ.get(
    "TEKIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


def _pg_connect() -> psycopg.Connection[Any]:
    pg = postgres_params(POSTGRES_URL)
    return psycopg.connect(
        dbname=pg["dbname"],
        host=pg["host"],
        port=pg["port"],
        user=pg["user"],
        password=pg["password"],
        autocommit=True,
    )


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a schema of their own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tekil.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@contextmanager
def open_services(database_url: str) -> Iterator[Services]:
    services = Services.open(Settings(database_url=database_url), initialise=True)
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    with open_services(database_url) as services:
        yield services


class Api:
    """A test client that speaks as one API key, and reads its own writes."""

    def __init__(self, client: TestClient, services: Services, key: str) -> None:
        self.client = client
        self.services = services
        self.key = key
        self.last_position = 0

    def as_role(self, *roles: str, name: str | None = None) -> Api:
        name = name or f"{'-'.join(roles)}-{uuid.uuid4().hex[:6]}"
        return Api(self.client, self.services, self.services.keys.create(name, list(roles)))

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self.client.post(path, json=json, headers=self.headers(headers))
        if response.status_code in (200, 201) and "position" in response.json():
            self.last_position = max(self.last_position, response.json()["position"])
        return response

    def post_raw(self, path: str, content: bytes, headers: dict[str, str] | None = None) -> Any:
        """POST bytes as they are (for bodies that are not valid JSON)."""
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.client.post(path, content=content, headers=self.headers(headers))

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        params = {"min_position": self.last_position, **(params or {})}
        return self.client.get(path, params=params, headers=self.headers(kw.get("headers")))

    def ok(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        response = (
            getattr(self, method)(path, json, **kw) if method == "post" else self.get(path, **kw)
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


@contextmanager
def serve(services: Services) -> Iterator[Api]:
    with TestClient(create_app(services)) as client:
        yield Api(client, services, services.keys.create("admin-test", ["admin"]))


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with serve(services) as api:
        yield api


# One store per backend shared by a whole module: for tests that only read, or that assert
# their own commands were rejected (recording nothing), a fresh store per test buys nothing.


@pytest.fixture(scope="module", params=BACKENDS)
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('tekil') / 'tekil.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture(scope="module")
def shared_services(shared_database_url: str) -> Iterator[Services]:
    with open_services(shared_database_url) as services:
        yield services


@pytest.fixture(scope="module")
def shared_api(shared_services: Services) -> Iterator[Api]:
    with serve(shared_services) as api:
        yield api


def event_count(services: Services) -> int:
    return services.business.recorder.max_notification_id() or 0


def read_model_rows(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, ordered by primary key, by "projection.table"."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with services.reads.reader.connect() as conn:
        for projection in services.reads.projections.values():
            for short, table in projection.tables.items():
                query = select(table).order_by(*table.primary_key.columns)
                rows[f"{projection.name}.{short}"] = [tuple(r) for r in conn.execute(query).all()]
    return rows
