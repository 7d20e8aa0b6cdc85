"""`tekil serve --workers N`: several API processes on PostgreSQL and a projection runner
beside them, as a real server; refused on the embedded SQLite store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from replay.cli import main
from tests.reliability.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
TEKIL = [sys.executable, "-m", "replay.cli"]


def test_several_workers_on_sqlite_are_refused(sqlite_url: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--db", sqlite_url, "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers needs PostgreSQL" in result.output


def _healthy(base: str, server: subprocess.Popen[Any]) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


def test_two_workers_serve_commands_and_the_runner_beside_them_feeds_the_read_models(
    postgresql_url: str,
) -> None:
    run = CliRunner()
    assert run.invoke(main, ["db", "init", "--db", postgresql_url]).exit_code == 0
    created = run.invoke(
        main, ["keys", "create", "--name", "w", "--role", "admin", "--db", postgresql_url]
    )
    key = created.output.split()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # a real server: uvicorn's workers are processes
        [*TEKIL, "serve", "--db", postgresql_url, "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _healthy(base, server)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            answers = [
                http.post("/api/leads", json={"name": f"Lead {i}", "company": "Çınar Ltd."})
                for i in range(8)
            ]
            assert [a.status_code for a in answers] == [201] * 8
            last = max(a.json()["position"] for a in answers)
            listed = http.get("/api/leads", params={"min_position": last, "limit": 50})
            assert listed.status_code == 200, listed.text
            names = {lead["name"] for lead in listed.json()["items"]}
            assert {f"Lead {i}" for i in range(8)} <= names
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    assert server.returncode == 0
