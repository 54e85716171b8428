#!/usr/bin/env python3
"""Load benchmark: start-up time, then req/s and latency for GET, valid POST and invalid POST.

Starts `verifymock serve` (pinned to core 0 when taskset exists), drives it with wrk (pinned to core 1) on
loopback, and prints one table. Figures only: nothing here passes or fails.

    python3 scripts/dev.py bench [--duration 10] [--connections 16 64] [--url http://127.0.0.1:4010]

Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

AUTH = "Bearer bench-key"


def scenarios(base: str) -> dict[str, tuple[str, str, dict[str, str] | None]]:
    """GET an existing verification, trigger a call under an existing profile, and a bad phone number."""
    headers = {"Authorization": AUTH}
    profile = httpx.post(f"{base}/v2/verify_profiles", json={"name": "bench", "call": {}}, headers=headers).json()
    valid = {"phone_number": "+13035551234", "verify_profile_id": profile["data"]["id"]}
    verification = httpx.post(f"{base}/v2/verifications/call", json=valid, headers=headers).json()["data"]
    return {
        "GET verification": ("GET", f"/v2/verifications/{verification['id']}", None),
        "valid POST call": ("POST", "/v2/verifications/call", valid),
        "invalid POST call": ("POST", "/v2/verifications/call", {**valid, "phone_number": "3035551234"}),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *command] if taskset and (os.cpu_count() or 1) > 1 else command


def start_server(port: int) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        pinned(
            0, [sys.executable, "-m", "verifymock", "serve", "--port", str(port), "--quiet", "--log-level", "warning"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=0.2).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            sys.exit("verifymock exited during start-up")
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


def run_wrk(url: str, connections: int, duration: int, script: str) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", handle.name, url]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}(?:\.000)?%\s+(\S+)", output, re.M)
        figures[f"p{percentile}"] = _millis(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--url", help="benchmark a server that is already running instead of starting one")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    process = None
    if args.url:
        base = args.url.rstrip("/")
        print(f"server: {base} (already running)")
    else:
        port = free_port()
        process, startup = start_server(port)
        base = f"http://127.0.0.1:{port}"
        print(f"start-up to first 200: {startup:.2f} s")
    try:
        print(f"{'scenario':<20} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for name, (method, path, body) in scenarios(base).items():
            for connections in args.connections:
                figures = run_wrk(base + path, connections, args.duration, lua_script(method, body))
                print(
                    f"{name:<20} {connections:>5} {figures['rps']:>9.0f} {figures['p50']:>8.2f} "
                    f"{figures['p99']:>8.2f} {figures['non2xx']:>8.0f}"
                )
        if process is not None:
            print(f"server RSS after the runs: {rss_mb(process.pid):.0f} MB")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
