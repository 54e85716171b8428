#!/usr/bin/env python3
"""Load benchmark: verifymock beside Prism and a bare-ASGI ceiling, on the same spec, in one run.

Every server is started pinned to core 0 (taskset), one after the other, and then driven in turn by wrk pinned
to core 1 on loopback: GET an existing verification, a valid trigger-call POST and an invalid one (a bad phone
number), at each connection count. The targets take turns row by row (and repeat by repeat with --repeat N, which
reports the median run), so a slow patch of this shared machine falls on all of them rather than on one.
Printed: req/s, p50 and p99 per row, start-up to the first 200, RSS after the runs (with --held, also once the
records are held, before the rows: the rows add verifications still pending, which memory keeps), and the ratios
verifymock / Prism and verifymock / ceiling. Figures only: nothing here passes or fails.

    python3 scripts/dev.py bench [--duration 10] [--connections 16 64] [--targets verifymock prism ceiling]
    python3 scripts/dev.py bench --repeat 3          # each row three times per target, medians reported
    python3 scripts/dev.py bench --soak 1000000     # RSS of verifymock after that many requests (mixed rows)
    python3 scripts/dev.py bench --held 100000      # each verifymock first holds that many finished verifications

Targets: verifymock (state in memory), verifymock-sqlite (`--state sqlite:` in a fresh file), verifymock-redis
(`--state redis://` on a Valkey server the run starts, pinned to the servers' core), verifymock-workers
(`--workers 2` on that Valkey: two processes taking turns under the state term), prism, ceiling.

Needs wrk (Debian: apt-get install wrk). Prism (@stoplight/prism-cli) is installed from npm into
~/.cache/verifymock-bench the first time (needs Node.js and npm); without npm its column reads n/a.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "telnyx_verify.yaml"
PRISM_VERSION = "5.14.2"
LOGS = Path(tempfile.gettempdir()) / "verifymock-bench-logs"  # each server's output, for a row that looks wrong
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "verifymock-bench"
AUTH = "Bearer bench-key"
BAD_PHONE = "3035551234"
ROWS = ("GET verification", "valid POST call", "invalid POST call")


@dataclass
class Target:
    name: str
    command: list[str]
    prefix: str  # where the spec's paths start on this server
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    method: str
    path: str  # after the prefix
    body: dict[str, str] | None


def prepare(base: str) -> dict[str, Row]:
    """A profile and a verification to read, made on verifymock (Prism and the ceiling keep no state)."""
    headers = {"Authorization": AUTH}
    profile = httpx.post(f"{base}/v2/verify_profiles", json={"name": "bench", "call": {}}, headers=headers).json()
    valid = {"phone_number": "+13035551234", "verify_profile_id": profile["data"]["id"]}
    verification = httpx.post(f"{base}/v2/verifications/call", json=valid, headers=headers).json()["data"]
    return {
        "GET verification": Row("GET", f"/verifications/{verification['id']}", None),
        "valid POST call": Row("POST", "/verifications/call", valid),
        "invalid POST call": Row("POST", "/verifications/call", {**valid, "phone_number": BAD_PHONE}),
    }


def ceiling_routes(base: str, rows: dict[str, Row]) -> list[dict[str, object]]:
    """What verifymock answered to each row, for the ceiling to give back (the invalid row first: same path)."""
    routes = []
    for name in ("invalid POST call", "GET verification", "valid POST call"):
        row = rows[name]
        answer = httpx.request(row.method, f"{base}/v2{row.path}", json=row.body, headers={"Authorization": AUTH})
        routes.append(
            {
                "method": row.method,
                "path": f"/v2{row.path}",
                "contains": BAD_PHONE if name.startswith("invalid") else None,
                "status": answer.status_code,
                "body": answer.json(),
            }
        )
    # the start-up probe (every target is timed to its first 200 on the same URL)
    routes.append({"method": "GET", "path": "/v2/verify_profiles", "contains": None, "status": 200, "body": {}})
    return routes


def prism_command() -> list[str] | None:
    binary = CACHE / "prism" / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            return None
        print(f"installing @stoplight/prism-cli@{PRISM_VERSION} into {binary.parent.parent}", flush=True)
        (CACHE / "prism").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", f"@stoplight/prism-cli@{PRISM_VERSION}"],
            cwd=CACHE / "prism",
            check=True,
        )
    return [str(binary), "mock", "-h", "127.0.0.1", "-v", "error", str(SPEC)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *command] if taskset and (os.cpu_count() or 1) > 1 else command


def start(target: Target, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server pinned to core 0; seconds until it first answers 200."""
    started = time.perf_counter()
    LOGS.mkdir(exist_ok=True)
    log = open(LOGS / f"{target.name}.log", "wb")  # noqa: SIM115 - the server's own, closed when it exits
    process = subprocess.Popen(
        pinned(0, [*target.command, "--port", str(port)]),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **target.env},
        cwd=ROOT,
    )
    probe = f"http://127.0.0.1:{port}{target.prefix}/verify_profiles"
    while True:
        try:
            if httpx.get(probe, headers={"Authorization": AUTH}, timeout=0.2).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            sys.exit(f"{target.name} exited during start-up")
        time.sleep(0.01)


def lua_script(method: str, body: dict[str, str] | None) -> str:
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "{AUTH}"']
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    return "\n".join(lines) + "\n"


def _millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def steal_ticks(stat: str) -> dict[int, int]:
    """Per core, the clock ticks the hypervisor gave to other guests (`steal`, the 8th figure of a cpuN line of
    /proc/stat): time a core of this VM wanted to run and could not."""
    ticks = {}
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0][3:].isdigit() and len(fields) > 8:
            ticks[int(fields[0][3:])] = int(fields[8])
    return ticks


def read_steal() -> dict[int, int]:
    stat = Path("/proc/stat")
    return steal_ticks(stat.read_text()) if stat.exists() else {}


def steal_share(before: dict[int, int], after: dict[int, int], core: int, seconds: float) -> float:
    """The share of `seconds` that `core` lost to other guests, in percent (nan where the kernel does not say)."""
    if core not in before or core not in after or seconds <= 0:
        return float("nan")
    return 100.0 * (after[core] - before[core]) / os.sysconf("SC_CLK_TCK") / seconds


def run_wrk(url: str, connections: int, duration: int, script: str) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    before, began = read_steal(), time.monotonic()
    try:
        output = subprocess.run(
            pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", handle.name, url]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    after, took = read_steal(), time.monotonic() - began
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    figures["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}(?:\.000)?%\s+(\S+)", output, re.M)
        figures[f"p{percentile}"] = _millis(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    figures["steal_server"] = steal_share(before, after, 0, took)
    figures["steal_load"] = steal_share(before, after, 1, took)
    return figures


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Result:
    startup: float = float("nan")
    rss: float = float("nan")
    rows: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    runs: dict[tuple[str, int], list[dict[str, float]]] = field(default_factory=dict)


@dataclass
class Started:
    target: Target
    process: subprocess.Popen[bytes]
    base: str
    rows: dict[str, Row]
    result: Result


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median req/s (its own p50 and p99 with it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def measure(targets: list[Target], rows: dict[str, Row], args: argparse.Namespace) -> dict[str, Result]:
    """Start every target (one at a time, so start-up is timed alone), then load them in turn, row by row and
    repeat by repeat, so a slow patch of the machine falls on all of them alike rather than on one."""
    started: list[Started] = []
    try:
        for target in targets:
            port = free_port()
            process, startup = start(target, port)
            own = rows
            if target.name.startswith("verifymock"):  # it keeps state: its own profile and verification to read
                own = prepare(f"http://127.0.0.1:{port}")
                if args.held:
                    fill(f"http://127.0.0.1:{port}", args.held)
                    print(
                        f"  {target.name}: holding {args.held} more finished verifications, RSS before the rows: "
                        f"{rss_mb(process.pid):.0f} MB",
                        flush=True,
                    )
            started.append(Started(target, process, f"http://127.0.0.1:{port}{target.prefix}", own, Result(startup)))
        for name in ROWS:
            for connections in args.connections:
                for _ in range(args.repeat):
                    for each in started:
                        row = each.rows[name]
                        figures = run_wrk(
                            each.base + row.path, connections, args.duration, lua_script(row.method, row.body)
                        )
                        each.result.runs.setdefault((name, connections), []).append(figures)
                        print(
                            f"  {each.target.name:<10} {name:<18} {connections:>3} conns: {figures['rps']:>7.0f} req/s"
                            f"  (steal: server {figures['steal_server']:.1f}%, wrk {figures['steal_load']:.1f}%)",
                            flush=True,
                        )
                for each in started:
                    each.result.rows[(name, connections)] = median_run(each.result.runs[(name, connections)])
        for each in started:
            each.result.rss = rss_mb(each.process.pid)
    finally:
        for each in started:
            stop(each.process)
    return {each.target.name: each.result for each in started}


def fill(base: str, count: int) -> None:
    """Make the server hold `count` more verifications, each finished: an SMS code checked at once (8 clients)."""
    headers = {"Authorization": AUTH}
    profile = httpx.post(f"{base}/v2/verify_profiles", json={"name": "held", "sms": {}}, headers=headers).json()
    body = {"verify_profile_id": profile["data"]["id"], "custom_code": "1234"}

    def make(first: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for i in range(first, count, 8):
                made = client.post("/v2/verifications/sms", json={**body, "phone_number": f"+1303{i:07d}"})
                client.post(f"/v2/verifications/{made.json()['data']['id']}/actions/verify", json={"code": "1234"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(8)))


def verifymock_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "verifymock", "serve", "--quiet", "--log-level", "warning", *extra]


def soak(total: int, duration: int) -> None:
    """RSS of verifymock while it serves `total` requests, the three rows in turn at 64 connections."""
    port = free_port()
    process, _ = start(Target("verifymock", verifymock_command(), "/v2"), port)
    base = f"http://127.0.0.1:{port}"
    try:
        rows = prepare(base)
        served = 0
        print(f"{'requests':>10} {'RSS MB':>8}")
        while served < total:
            for name in ROWS:
                row = rows[name]
                figures = run_wrk(f"{base}/v2{row.path}", 64, duration, lua_script(row.method, row.body))
                served += int(figures["requests"])
            print(f"{served:>10} {rss_mb(process.pid):>8.0f}", flush=True)
    finally:
        stop(process)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b == b and b > 0 and a == a else "n/a"


def report(results: dict[str, Result], connections: list[int]) -> None:
    print()
    names = list(results)
    header = f"{'row':<18} {'conns':>5} " + " ".join(f"{n + ' req/s':>17} {'p50':>7} {'p99':>8}" for n in names)
    print(header + "  vm/prism  vm/ceiling  sqlite/vm  redis/vm")
    for row in ROWS:
        for conns in connections:
            cells = []
            for name in names:
                f = results[name].rows.get(
                    (row, conns), {"rps": float("nan"), "p50": float("nan"), "p99": float("nan")}
                )
                cells.append(f"{f['rps']:>17.0f} {f['p50']:>6.1f}ms {f['p99']:>6.1f}ms")
            vm = results.get("verifymock", Result()).rows.get((row, conns), {}).get("rps", float("nan"))
            lite = results.get("verifymock-sqlite", Result()).rows.get((row, conns), {}).get("rps", float("nan"))
            red = results.get("verifymock-redis", Result()).rows.get((row, conns), {}).get("rps", float("nan"))
            prism = results.get("prism", Result()).rows.get((row, conns), {}).get("rps", float("nan"))
            top = results.get("ceiling", Result()).rows.get((row, conns), {}).get("rps", float("nan"))
            print(
                f"{row:<18} {conns:>5} " + " ".join(cells) + f"  {ratio(vm, prism):>8}  {ratio(vm, top):>10}"
                f"  {ratio(lite, vm):>9}  {ratio(red, vm):>8}"
            )
    print()
    for name, result in results.items():
        print(f"{name:<10} start-up to first 200: {result.startup:.2f} s   RSS after the runs: {result.rss:.0f} MB")
    print(steal_summary([run for result in results.values() for runs in result.runs.values() for run in runs]))
    print(f"each server's log: {LOGS}/TARGET.log")


def steal_summary(runs: list[dict[str, float]]) -> str:
    """How much of the runs the hypervisor took from this VM's cores: on a shared machine this, more than the code,
    is what makes one run's figures differ from the next."""
    parts = []
    for key, core in (("steal_server", "server core"), ("steal_load", "wrk core")):
        shares = sorted(run[key] for run in runs if not math.isnan(run.get(key, math.nan)))
        if shares:
            parts.append(f"{core} median {shares[len(shares) // 2]:.1f}%, worst {shares[-1]:.1f}%")
    if not parts:
        return "CPU steal: not reported by this kernel"
    return "CPU steal (time the host gave this VM's cores to other guests): " + "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--targets", nargs="+", default=["verifymock", "verifymock-sqlite", "prism", "ceiling"], metavar="TARGET"
    )
    parser.add_argument("--held", type=int, default=0, metavar="N", help="verifications each verifymock holds first")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each row per target, interleaved; the median is reported"
    )
    parser.add_argument("--soak", type=int, metavar="N", help="only: verifymock's RSS over N requests")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.soak:
        soak(args.soak, args.duration)
        return 0

    # the rows and the ceiling's answers come from a verifymock started only for that
    port = free_port()
    process, _ = start(Target("verifymock", verifymock_command(), "/v2"), port)
    try:
        rows = prepare(f"http://127.0.0.1:{port}")
        routes = ceiling_routes(f"http://127.0.0.1:{port}", rows)
        handle, routes_file = tempfile.mkstemp(suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(routes, out)
    finally:
        stop(process)

    state_dir = tempfile.TemporaryDirectory(prefix="verifymock-bench-")  # removed when the run ends
    held = ("--retain", str(2 * args.held)) if args.held else ()  # so that what is held is kept
    servers = ExitStack()
    redis: list[str] = []

    def redis_url() -> str:
        """A Valkey server for the Redis targets, started once (the tests' own starter)."""
        if not redis:
            sys.path.insert(0, str(ROOT))
            from tests.redis_server import redis_server

            redis.append(servers.enter_context(redis_server(Path(state_dir.name) / "redis", ("taskset", "-c", "0"))))
        return redis[0]

    builders: dict[str, Callable[[], Target | None]] = {
        "verifymock": lambda: Target("verifymock", verifymock_command(*held), "/v2"),
        "verifymock-sqlite": lambda: Target(
            "verifymock-sqlite", verifymock_command("--state", f"sqlite:{state_dir.name}/bench.db", *held), "/v2"
        ),
        "verifymock-redis": lambda: Target(
            "verifymock-redis", verifymock_command("--state", f"{redis_url()}?prefix=one", *held), "/v2"
        ),
        "verifymock-workers": lambda: Target(
            "verifymock-workers",
            verifymock_command("--workers", "2", "--state", f"{redis_url()}?prefix=two", *held),
            "/v2",
        ),
        "prism": lambda: (lambda command: Target("prism", command, "") if command else None)(prism_command()),
        "ceiling": lambda: Target(
            "ceiling",
            [sys.executable, str(ROOT / "benchmarks" / "ceiling.py")],
            "/v2",
            {"VERIFYMOCK_CEILING": routes_file},
        ),
    }
    targets: list[Target] = []
    for name in args.targets:
        target = builders[name]()
        if target is None:
            print(f"{name}: not available (npm missing); its column reads n/a", file=sys.stderr)
            continue
        targets.append(target)
    try:
        results = measure(targets, rows, args)
    finally:
        os.unlink(routes_file)
        servers.close()
    report(results, args.connections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
