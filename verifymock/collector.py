"""How the server process uses Python's cyclic garbage collector.

CPython 3.11 collects in one pause, walking every tracked object of the generations it collects, and a full
collection walks all of them. The mock keeps thousands of live objects (calls, verifications, timers, all plain
data), and the state holds no reference cycles (records and timers refer to each other by id), so those walks found
nothing: under load they took about a tenth of the server's time (1.5-1.7 s
in 15 s) and stalled requests for 40-50 ms each time a full collection ran. Measured on a call verification POST
at 64 connections: 3,400-3,900 req/s with a p99 of about 100 ms with the default policy, 4,500-5,100 req/s and
24-63 ms with this one, and 4,600-5,000 req/s and 22-26 ms with no collector at all.

The policy: young collections run as usual (every 700 allocations, each walking only what is new), and what
survives one is moved out of the collector's sight (`gc.freeze`), where reference counting still frees it. A sweep
every `SWEEP_SECONDS` brings everything back, collects once, and freezes the survivors again, so a cycle that
outlived its first collection (an error path's, say) is freed within that time rather than never.

A sweep walks everything the process holds, and holds the GIL while it does: with `--retain 200000` in memory and
600 MB held, one took 2.6 s, a stall of every request each minute. So the wait after a sweep grows with what it
cost: at least SWEEP_SECONDS, and long enough that sweeps take at most SWEEP_SHARE of the time (that sweep: 260 s).

Only the server's own process does this (`verifymock serve`); a mock run inside a test process leaves that
process's collector as it was.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SWEEP_SECONDS = 60.0
SWEEP_SHARE = 0.01  # of the time, at most, that sweeps stall the process


class Collector:
    def __init__(self, sweep_seconds: float = SWEEP_SECONDS, share: float = SWEEP_SHARE) -> None:
        self.sweep_seconds = sweep_seconds
        self.share = share
        self.sweeps = 0
        self._sweeping = False
        self._stop = threading.Event()

    def _after(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and not self._sweeping:
            gc.freeze()  # the survivors of this collection: not walked again until the next sweep

    def sweep(self) -> float:
        """One full collection over everything, then the survivors frozen again; the seconds it took."""
        started = time.perf_counter()
        self._sweeping = True
        try:
            gc.unfreeze()
            gc.collect()
        finally:
            gc.freeze()
            self._sweeping = False
        self.sweeps += 1
        return time.perf_counter() - started

    def _sweeper(self) -> None:
        wait = self.sweep_seconds
        while not self._stop.wait(wait):
            wait = max(self.sweep_seconds, self.sweep() / self.share)

    @contextmanager
    def installed(self) -> Iterator[Collector]:
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._after)
        thread = threading.Thread(target=self._sweeper, name="verifymock-gc-sweep", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            gc.callbacks.remove(self._after)
            gc.unfreeze()
