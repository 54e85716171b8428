#!/usr/bin/env python3
"""Store benchmark: what the SQLite store costs per request, apart from HTTP and the event loop, in CPU time.

A mock in this process (manual clock, `--state sqlite:` in a temporary folder) serves N valid call verifications to
one number, advancing its clock a second every 50 so that calls ring, are answered, end and are trimmed. Every unit
of work it commits is recorded. The units are then merged into groups of `--group` (what the server's group
commit does under load) and replayed into a fresh file, once as they are and once without each part in turn, so a
change to the store's layout or settings can be judged by CPU time, which a shared machine's CPU steal disturbs less
than req/s (runs still differ by about 10%: compare interleaved pairs). The second half of the replay is timed (the
file is no longer new). Figures only: nothing here passes or fails.

    .venv/bin/python benchmarks/store.py [--requests 10000] [--group 30]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from verifymock.app import create_app  # noqa: E402
from verifymock.config import Config  # noqa: E402
from verifymock.state.sqlite import SqliteStore  # noqa: E402
from verifymock.state.store import Changes  # noqa: E402

NUMBER = "+13035551234"
JOURNAL = 10_000


def record(requests: int, folder: Path) -> list[Changes]:
    app = create_app(Config(clock="manual", state=f"sqlite:{folder / 'recorded.db'}"))
    store = app.mock.store
    assert isinstance(store, SqliteStore)
    recorded: list[Changes] = []
    commit = store.commit

    async def recording(changes: Changes, journal_size: int) -> int:
        recorded.append(copy.deepcopy(changes))
        return int(await commit(changes, journal_size))

    store.commit = recording  # type: ignore[method-assign]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = "Bearer bench-key"
        profile = client.post("/v2/verify_profiles", json={"name": "bench", "call": {}}).json()["data"]["id"]
        body = {"phone_number": NUMBER, "verify_profile_id": profile}
        for i in range(requests):
            assert client.post("/v2/verifications/call", json=body).status_code == 200
            if i % 50 == 49:
                client.post("/_mock/clock/advance", json={"seconds": 1})
    return recorded


def grouped(units: list[Changes], size: int) -> list[Changes]:
    """Units merged `size` at a time (they share their puts with the groups: `replay` works on a copy)."""
    groups = []
    for start in range(0, len(units), size):
        group = Changes()
        for unit in units[start : start + size]:
            group.merge(unit)
        groups.append(group)
    return groups


def without_index_entries(changes: Changes) -> None:
    for put in changes.put.values():
        if put.indexes is not None:
            put.indexes = ()


def without_timers(changes: Changes) -> None:
    changes.schedule, changes.cancel = [], set()


def without_journal(changes: Changes) -> None:
    changes.journal = []


PARTS: dict[str, Callable[[Changes], None] | None] = {
    "as committed": None,
    "without index entries": without_index_entries,
    "without timers": without_timers,
    "without the journal": without_journal,
}


def replay(groups: list[Changes], path: Path, leave_out: Callable[[Changes], None] | None) -> dict[str, float]:
    groups = copy.deepcopy(groups)
    half = len(groups) // 2
    requests = sum(len(group.journal) for group in groups[half:]) or 1  # (each request journals one entry)
    for group in groups:
        if leave_out is not None:
            leave_out(group)
    store = SqliteStore(path)

    versions: dict[tuple[str, str], int] = {}
    for group in groups:  # a merged group bumps a version once, as one commit of the engine's does
        for key in group.expect:
            group.expect[key] = versions.get(key, 0)
        versions.update({key: group.expect[key] + 1 for key in group.put})
        for key in group.delete:
            versions.pop(key, None)

    async def run() -> dict[str, float]:
        for group in groups[:half]:
            await store.commit(group, JOURNAL)
        cpu, wall = time.process_time(), time.perf_counter()
        for group in groups[half:]:
            await store.commit(group, JOURNAL)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await store.close()
        return {"cpu_us": cpu * 1e6 / requests, "wall_us": wall * 1e6 / requests}

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="call verifications to record")
    parser.add_argument("--group", type=int, default=30, help="units of work per replayed commit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        units = record(args.requests, Path(folder))
        groups = grouped(units, args.group)
        print(f"recorded {len(units)} units of work in {time.perf_counter() - began:.0f} s; {len(groups)} commits")
        print(f"{'replayed':24} {'CPU µs/request':>15} {'wall µs/request':>16}")
        for n, (name, leave_out) in enumerate(PARTS.items()):
            cost = replay(groups, Path(folder) / f"replay{n}.db", leave_out)
            print(f"{name:24} {cost['cpu_us']:15.0f} {cost['wall_us']:16.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
