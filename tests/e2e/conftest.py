"""One real server and one webhook receiver for the end-to-end modules, reset before every test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import CM_TOKEN, TELESIGN_CUSTOMER, TELESIGN_KEY
from tests.receiver import Receiver, webhook_receiver
from verifymock.config import Config
from verifymock.server import Running, serve_in_thread


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="session")
def mock_server() -> Iterator[Running]:
    config = Config(
        port=0, clock="manual", telesign_customers={TELESIGN_CUSTOMER: TELESIGN_KEY}, cm_product_tokens=[CM_TOKEN]
    )
    with serve_in_thread(config) as running:
        yield running


@pytest.fixture
def control(mock_server: Running, receiver: Receiver) -> Iterator[httpx.Client]:
    """The control API of a freshly reset server; the receiver is emptied too."""
    with httpx.Client(base_url=f"{mock_server.url}/_mock") as client:
        client.post("/reset")
        receiver.clear()
        yield client
