"""`--watch`: edits are served without a restart; a broken edit is reported and the last good version serves on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import write_spec
from verifymock.config import Config
from verifymock.server import serve_in_thread


def greeting_spec(text: str, extra_path: bool = False) -> dict:
    paths: dict = {
        "/greeting": {
            "get": {
                "operationId": "GetGreeting",
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"example": {"text": text}}}}
                },
            }
        },
    }
    if extra_path:
        paths["/farewell"] = {"get": {"operationId": "GetFarewell", "responses": {"200": {"description": "ok"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "hello", "version": "1"},
        "servers": [{"url": "/hello"}],
        "paths": paths,
    }


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15  # a bound for a broken watcher, not a speed goal
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the change was not picked up")
        time.sleep(0.05)


def test_reload_specs_and_scenarios_while_serving(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    specs, scenarios = tmp_path / "specs", tmp_path / "scenarios"
    specs.mkdir(), scenarios.mkdir()
    write_spec(specs, "hello", greeting_spec("hi"))
    scenario = scenarios / "mine.yaml"
    scenario.write_text("summary: first version\n", encoding="utf-8")
    config = Config(port=0, specs=[specs], scenarios=[scenarios], watch=True)
    with (
        serve_in_thread(config) as server,
        httpx.Client(base_url=server.url) as client,
        caplog.at_level(logging.ERROR, logger="verifymock.reload"),
    ):

        def summary() -> str:
            return next(s["summary"] for s in client.get("/_mock/scenarios").json()["data"] if s["id"] == "mine")

        client.put("/_mock/bindings/+13035551234", json={"scenario": "mine"})
        assert client.get("/hello/greeting").json() == {"text": "hi"}

        write_spec(specs, "hello", greeting_spec("hello again", extra_path=True))
        eventually(lambda: client.get("/hello/greeting").json() == {"text": "hello again"})
        assert client.get("/hello/farewell").status_code == 200

        scenario.write_text("summary: second version\n", encoding="utf-8")
        eventually(lambda: summary() == "second version")
        assert client.get("/_mock/bindings").json()["data"][0]["scenario"] == "mine"  # state survives

        scenario.write_text("summary: broken\ncallee:\n  outcome: sings\n", encoding="utf-8")
        (specs / "hello.yaml").write_text("openapi: 3.1.0\npaths: [\n", encoding="utf-8")
        eventually(lambda: len({r.getMessage() for r in caplog.records}) >= 2)
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "mine.yaml at callee/outcome" in messages and "hello.yaml" in messages
        assert summary() == "second version"
        assert client.get("/hello/greeting").json() == {"text": "hello again"}
