"""Running the app under uvicorn: in the foreground for the CLI, in a thread for tests."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from uvicorn.supervisors import Multiprocess

from verifymock.app import create_app
from verifymock.collector import Collector
from verifymock.config import Config
from verifymock.gate import Gate
from verifymock.transport import SERVER_SETTINGS


def uvicorn_config(config: Config, log_level: str = "info") -> uvicorn.Config:
    app = create_app(config)
    # what start-up built (specs, schemas, validators, the connexion app) lives as long as the server: frozen, the
    # cyclic collector stops walking it on every full collection, which otherwise stalled requests for tens of ms
    gc.collect()
    gc.freeze()
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        lifespan="on",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,  # open event streams of the web page must not hold up a stop
        **SERVER_SETTINGS,  # one write per connection per loop turn, no proxy headers (see verifymock.transport)
    )


WORKER_ARGV = "VERIFYMOCK_WORKER_ARGV"  # the command line each worker of `serve --workers` builds its app from


def serve_workers(config: Config, argv: list[str], log_level: str = "info") -> None:
    """`serve --workers N`: uvicorn's supervisor binds the port and starts N processes that accept on it, each
    building the app from the same command line and sharing the state store (engine.unit). This process checks the
    specs and the store first, so a mistake stops here with exit 2, and holds a state file's lock while they run."""
    from verifymock.engine import Mock
    from verifymock.state.store import open_store

    Mock.check_specs(config)
    store = open_store(config.state)  # (a file's lock; Redis is reached and its layout checked)
    os.environ[WORKER_ARGV] = json.dumps(argv)
    server_config = uvicorn.Config(
        "verifymock.server:worker_app",
        factory=True,
        workers=config.workers,
        host=config.host,
        port=config.port,
        log_level=log_level,
        lifespan="on",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
        **SERVER_SETTINGS,
    )
    try:
        Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()
    finally:
        if store is not None:
            asyncio.run(store.close())


def worker_app() -> Gate:
    """One worker of `serve --workers`: the app its supervisor's command line describes."""
    from verifymock.cli import config_from, configure_logging, parser

    args = parser().parse_args(json.loads(os.environ[WORKER_ARGV]))
    configure_logging(args)
    config = config_from(args)
    config.worker = True
    # uvicorn calls this inside its event loop; start-up reads the store in a loop of its own, so in a thread
    with ThreadPoolExecutor(1) as starting:
        return starting.submit(create_app, config).result()


def serve(config: Config, log_level: str = "info") -> None:
    # start-up (the CLI's imports, then specs, schemas and validators) makes a few hundred thousand objects and frees
    # almost none, so the cyclic collector's 200-odd runs over a growing heap found nothing and cost 0.06-0.1 s of
    # a 0.9 s start; it is off until what start-up built is collected once and frozen, then on for serving
    gc.disable()
    try:
        server = uvicorn.Server(uvicorn_config(config, log_level))
    finally:
        gc.enable()
    with Collector().installed():  # this process is the server's own: its collector follows the server's policy
        server.run()


@dataclass
class Running:
    """A server started by `serve_in_thread`."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def serve_in_thread(config: Config | None = None, log_level: str = "warning") -> Iterator[Running]:
    """Serve on a free loopback port (config.port 0) for the duration of the block."""
    config = config or Config(port=0)
    server = uvicorn.Server(uvicorn_config(config, log_level))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("verifymock did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(config.host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
