"""The ceiling: a bare ASGI app that answers each benchmark request with the body verifymock gave for it.

No routing framework, no validation, no state: what uvicorn can do on this core with the same bytes going out,
served the way verifymock serves (its transport, writing once per connection per loop turn, and no proxy-headers
middleware), so the ratio compares the app and not the server settings. Run as a script:
`python benchmarks/ceiling.py --port N`. `VERIFYMOCK_CEILING` names a JSON file of routes: [{"method", "path",
"contains", "status", "body"}], the first route whose method and path match (and whose `contains` text is in the
request body, if given) answers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import uvicorn

from verifymock.transport import SERVER_SETTINGS

ROUTES: list[dict[str, Any]] = json.loads(Path(os.environ["VERIFYMOCK_CEILING"]).read_text(encoding="utf-8"))
for route in ROUTES:
    route["raw"] = json.dumps(route["body"], separators=(",", ":")).encode()
    route["needle"] = route["contains"].encode() if route.get("contains") else None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    for route in ROUTES:
        same = route["method"] == scope["method"] and route["path"] == scope["path"]
        if same and (route["needle"] is None or route["needle"] in body):
            break
    else:
        route = {"status": 404, "raw": b"{}"}
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(route["raw"])).encode())]
    await send({"type": "http.response.start", "status": route["status"], "headers": headers})
    await send({"type": "http.response.body", "body": route["raw"]})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the bare-ASGI ceiling")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_SETTINGS)
