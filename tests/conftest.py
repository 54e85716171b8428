from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import LOCAL
from verifymock.app import create_app
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The bundled mock, in process."""
    with TestClient(create_app(Config()), base_url=LOCAL, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def server() -> Iterator[Running]:
    """The bundled mock on a free loopback port, for the whole session."""
    with serve_in_thread(Config(port=0)) as running:
        yield running


@pytest.fixture
def user_specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis-protocol server on a free loopback port, for the whole session (tests keep apart by prefix)."""
    from tests.redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


pytest_plugins = ["pytester"]  # the pytest plugin's own tests run consumer suites through it
