"""The outermost layer: limits, the control token, the journal and the access log.

It reads the whole body (up to the limit) before anything else runs, so an oversized body is refused without
being parsed, and the journal can keep what was received even when a later layer rejects it.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verifymock import jsonio
from verifymock.config import is_loopback
from verifymock.coverage import error_outcome
from verifymock.engine import Mock, Mounted
from verifymock.errors import ApiError, Problem
from verifymock.fastpath import FastPath, Route
from verifymock.journal import JOURNAL_BODY_LIMIT
from verifymock.renderers import renderer_for
from verifymock.specs import Operation
from verifymock.ui import EVENTS_PATH, UI_HEADER, is_page, serve_events, serve_page

access_log = logging.getLogger("verifymock.access")
log = logging.getLogger("verifymock")

CONTROL_PREFIX = "/_mock"
ADVANCE_PATH = CONTROL_PREFIX + "/clock/advance"
# With a shared store, a request whose commit was refused (its process had lost the term) is served again, up to
# this many attempts in all, before it is answered 503.
ATTEMPTS = 3
ATTEMPT_KEY = "verifymock.attempt"
HEAD_KEY = "verifymock.head"  # in the scope of a HEAD request served as its GET
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def render_error(mock: Mock, scope: Scope, error: ApiError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error, in the envelope of the spec the request belongs to."""
    routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
    mounted, operation = mock.locate(scope.get("path", ""), routing.get("operation_id"))
    vendor = mounted.vendor if mounted else "generic"
    status, body = renderer_for(vendor)(error)
    headers = dict(error.headers)
    if error.problem is Problem.METHOD_NOT_ALLOWED:
        allowed = mock.allowed_methods(scope.get("path", ""))
        headers["Allow"] = ", ".join(allowed) if allowed else headers.get("Allow", "")  # (the event stream's own)
    if status >= 500:
        headers.setdefault("x-should-retry", "false")  # the Telnyx SDKs retry 5xx unless told not to
    if mounted and operation and mock.config.self_check and error.problem is not Problem.INTERNAL:
        problems = mounted.checker.check(operation, status, "application/json", body)
        if problems:
            log.error(
                "error response of %s does not conform to %s: %s",
                operation.operation_id,
                mounted.spec.source.name,
                "; ".join(map(str, problems[:5])),
            )
    return status, headers, jsonio.dumps(body)


class Gate:
    def __init__(self, app: ASGIApp, fast: FastPath | None, mock: Mock) -> None:
        self.app = app
        self.fast = fast
        self.mock = mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.mock.activate()
        started = time.perf_counter()
        config = self.mock.config
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text

        if is_page(scope["path"]):  # static files, no data: served without the token, not journaled
            await serve_page(scope, send)
            return
        scope.setdefault("extensions", {})  # shared with connexion's routing layer, which records the operation
        if scope["method"] == "HEAD" and self._has_get(scope["path"]):
            # HEAD is GET without the body (RFC 9110): the app answers the GET, and uvicorn, which still sees HEAD
            # in its own scope, sends the headers alone
            scope = {**scope, "method": "GET", HEAD_KEY: True}
        media_type = headers.get("content-type")
        if media_type is not None and (not media_type.strip() or media_type != media_type.lower()):
            scope["headers"] = _plain_content_type(scope["headers"])
        context = self.mock.begin_request(headers, f"{scope['method']} {scope['path']}")
        if scope["method"] not in SAFE_METHODS:
            self.mock.changed()
        raw = b""
        error = self._refuse_early(scope, headers)
        if error is None and scope["path"] == EVENTS_PATH:
            if scope["method"] == "GET":
                await serve_events(self.mock.changes, receive, send)
                return
            error = ApiError(Problem.METHOD_NOT_ALLOWED, "The event stream is read with GET.", headers={"Allow": "GET"})
        if error is None:
            raw, error = await self._read_body(receive, config.max_body_bytes)
            context.raw_body = raw  # signature checks need the exact bytes
        # reads of the mock's own state change nothing
        quiet = is_control(scope["path"]) and scope["method"] in SAFE_METHODS

        status = 0
        response_chunks: list[bytes] = []
        held: list[Message] = []  # the answer, sent once what it acknowledges has been kept
        cut = False  # a connection fault ate the rest of the response
        recorded = False

        # with a store shared by several processes, the request is a unit of work under the term (engine.unit):
        # an advance takes the term for each timer it runs instead, so others are served in between
        entered = False
        located: tuple[Mounted | None, Operation | None] = (None, None)  # the spec and operation, once recorded
        refused_before = self.mock.refused  # a commit refused from here on threw this request's decision away
        again = False  # so it is decided again, on the state read afresh

        async def enter() -> bool:
            """False if the shared store cannot be reached: nothing the request does could be kept."""
            nonlocal entered
            if self.mock.term is not None and not entered:
                entered = await self.mock.enter()
                return entered
            return True

        async def record() -> bool:
            """Journal the exchange and commit what it changed: done before any byte of the answer goes out, so a
            client that has its answer can count on it having been kept. False if it could not be kept."""
            nonlocal recorded, located
            recorded = True
            routing = scope["extensions"].get("connexion_routing") or {}
            located = self.mock.locate(scope["path"], routing.get("operation_id"))
            if not await enter():
                return False
            if not (quiet and UI_HEADER in headers):  # the page's own reads would bury everything else
                self._journal(
                    scope,
                    located,
                    headers,
                    raw,
                    status,
                    b"".join(response_chunks),
                    started,
                    context.touched,
                    context.fault,
                )
            if status >= 400 and located[0] is not None:  # an error answer counts as its vendor's outcome
                name = error_outcome(located[0].spec.name, status)
                if name is not None:
                    self.mock.coverage.reach(name)
            if context.told:
                self.mock.answered(context, status)
            if not quiet:
                self.mock.trim()
            kept = await self.mock.commit_soon()
            if not quiet:
                self.mock.changes.notify()
            return kept

        async def capture(message: Message) -> None:
            nonlocal status, again
            if message["type"] == "http.response.start":
                status = message["status"]
                held.append(message)
                return
            if message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    held.append(message)
                    return
                kept = await record()
                if not kept and self.mock.refused != refused_before and scope.get(ATTEMPT_KEY, 1) < ATTEMPTS:
                    held.clear()  # nothing of this attempt is sent: the request is served again (below)
                    again = True
                    return
                if not kept and scope["method"] not in SAFE_METHODS and status < 500:
                    held.clear()  # what it acknowledges was not kept: it is not sent
                    await self._send_error(scope, send, _not_kept(self.mock))
                    return
                for earlier in held:
                    await _forward(earlier)
                held.clear()
            await _forward(message)

        async def _forward(message: Message) -> None:
            nonlocal cut
            if cut or context.fault == "close":
                cut = True
                return
            if context.fault == "reset" and message["type"] == "http.response.body":
                body = message.get("body", b"")
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                cut = True
                return
            await send(message)

        if scope["path"] != ADVANCE_PATH and error is None and not await enter():
            error = _not_kept(self.mock)
        try:
            fast = self.fast.match(scope, headers, raw) if error is None and self.fast is not None else None
            if error is not None:
                await self._send_error(scope, capture, error)
            elif fast is not None:
                await self._serve_fast(scope, capture, *fast)
            else:
                await self.app(scope, _replaying(raw, receive), capture)

            if not recorded:
                await record()
            elapsed = (time.perf_counter() - started) * 1000
            if config.access_log and not again:
                operation = located[1]
                self._log(scope, operation.operation_id if operation else None, status, elapsed, context.scenario)
            if cut:
                # uvicorn closes the connection, sending nothing more, when the app returns a value: the only way an
                # ASGI app can drop a connection (an exception would become a 500)
                return True  # type: ignore[return-value]
        finally:
            if entered:
                self.mock.leave()
        if again:  # under a new term, caught up with what the other processes decided
            await self({**scope, ATTEMPT_KEY: scope.get(ATTEMPT_KEY, 1) + 1}, _replaying(raw, receive), send)

    def _has_get(self, path: str) -> bool:
        return "GET" in (self.mock.concrete_paths.get(path) or self.mock.allowed_methods(path))

    async def _serve_fast(
        self, scope: Scope, send: Send, route: Route, arguments: dict[str, Any], refused: ApiError | None
    ) -> None:
        scope["extensions"]["connexion_routing"] = {"operation_id": route.routed}  # for errors and the journal
        if refused is not None:
            await self._send_error(scope, send, refused)
            return
        try:
            response = await route.endpoint(**arguments)
        except Exception as exc:
            from verifymock.app import as_api_error  # the app module builds this gate; only errors need it

            await self._send_error(scope, send, as_api_error(exc))
            return
        await response(scope, _no_body, send)

    def _journal(
        self,
        scope: Scope,
        located: tuple[Mounted | None, Operation | None],
        headers: dict[str, str],
        raw: bytes,
        status: int,
        response_body: bytes,
        started: float,
        touched: list[str],
        dropped: str | None,
    ) -> None:
        mounted, operation = located
        self.mock.journal.add(
            time.time(),
            "HEAD" if scope.get(HEAD_KEY) else scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            operation.operation_id if operation else None,
            mounted.vendor if mounted else None,
            status,
            tuple(headers.items()) if self.mock.config.journal_credentials else redacted(headers),
            # copies of exactly their size: orjson's output keeps its whole working buffer (about 4 KiB), and a
            # slice of a whole bytes object is that object, which made 10,000 entries hold 40 MB
            memoryview(raw)[: JOURNAL_BODY_LIMIT + 1].tobytes(),
            memoryview(response_body)[: JOURNAL_BODY_LIMIT + 1].tobytes(),
            (time.perf_counter() - started) * 1000,
            tuple(touched),
            dropped,
        )

    def _log(self, scope: Scope, operation_id: str | None, status: int, elapsed: float, scenario: str | None) -> None:
        if self.mock.config.log_format == "json":
            line = {
                "method": scope["method"],
                "path": scope["path"],
                "operation_id": operation_id,
                "status": status,
                "ms": round(elapsed, 2),
                "scenario": scenario,
            }
            access_log.info("%s", jsonio.dumps(line).decode())
        else:
            access_log.info(
                "%s %s %s %d %.1fms%s",
                scope["method"],
                scope["path"],
                operation_id or "-",
                status,
                elapsed,
                f" scenario={scenario}" if scenario else "",
            )

    def _refuse_early(self, scope: Scope, headers: dict[str, str]) -> ApiError | None:
        config = self.mock.config
        size = sum(len(name) + len(value) for name, value in scope["headers"])
        if size > config.max_header_bytes:
            return ApiError(
                Problem.HEADERS_TOO_LARGE,
                f"The request headers total {size} bytes; the limit is {config.max_header_bytes}.",
            )
        path = scope["path"]
        if config.control_token and is_control(path):
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {config.control_token}".encode()):
                return ApiError(Problem.UNAUTHENTICATED, "The control API requires `Authorization: Bearer <token>`.")
        elif is_control(path):
            refusal = foreign(headers)
            if refusal is not None:
                return ApiError(Problem.FORBIDDEN, refusal)
        allowed = self.mock.concrete_paths.get(path)
        if allowed is not None and scope["method"] not in allowed:
            return ApiError(
                Problem.METHOD_NOT_ALLOWED,
                "This method is not allowed on this URL.",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        if "content-encoding" in headers or "transfer-encoding" in headers:
            codings = f"{headers.get('content-encoding', '')},{headers.get('transfer-encoding', '')}".lower()
            unsupported = sorted({c.strip() for c in codings.split(",")} - {"", "identity", "chunked"})
            if unsupported:  # the body would be read as if it were not encoded
                return ApiError(
                    Problem.UNSUPPORTED_MEDIA_TYPE,
                    f"Encoding {', '.join(unsupported)} is not supported: send the body unencoded.",
                )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_body_bytes:
            return _too_large(int(declared), config.max_body_bytes)
        return None

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> tuple[bytes, ApiError | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", _too_large(size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None

    async def _send_error(self, scope: Scope, send: Send, error: ApiError) -> None:
        status, headers, body = render_error(self.mock, scope, error)
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if error.problem in (Problem.BODY_TOO_LARGE, Problem.HEADERS_TOO_LARGE):
            raw_headers.append((b"connection", b"close"))  # the rest of the body is not read
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def _plain_content_type(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """TeleSign's SDK signs GETs with an empty Content-Type, which connexion cannot parse and which means none: it
    is dropped. A media type is case-insensitive (RFC 9110), but connexion matches `application/json` as written
    and hands a handler raw bytes for `Application/JSON`: it is lower-cased (its parameters are left as sent).
    Signatures are checked over the gate's own copy of the headers, as received."""
    plain = []
    for name, value in raw:
        if name == b"content-type":
            if not value.strip():
                continue
            media, semicolon, parameters = value.partition(b";")
            value = media.lower() + semicolon + parameters
        plain.append((name, value))
    return plain


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """The body read already, as the app's first message; then the connection's own (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def foreign(headers: dict[str, str]) -> str | None:
    """Why a control request without a token is refused, if it is. Without a token the control API trusts being
    reachable only from this machine, which a web page can get around: after DNS rebinding its requests carry the
    attacker's Host, and a cross-site form or fetch carries a foreign Origin. Neither is this machine's."""
    host = headers.get("host", "")
    if host and not _is_loopback_authority(host):  # (a browser always sends one; an HTTP/1.0 client may not)
        return f"Host {host!r} is not this machine: without --control-token the control API answers only loopback."
    origin = headers.get("origin")
    if origin is not None and not _is_loopback_authority(urlsplit(origin).netloc if "://" in origin else ""):
        return f"Origin {origin!r} is not this machine: the control API refuses cross-site requests."
    return None


def _is_loopback_authority(authority: str) -> bool:
    """`localhost`, `127.0.0.1:4010`, `[::1]:4010` and the like."""
    try:
        name = urlsplit(f"//{authority}").hostname or ""
    except ValueError:
        return False
    return name == "localhost" or name.endswith(".localhost") or (name != "" and is_loopback(name))


_CREDENTIALS = ("authorization", "x-cm-producttoken")


def redacted(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The headers as the journal keeps them: credentials reduced to their scheme (a Telnyx key, a TeleSign
    customer's key in Basic, a CM product token would otherwise sit in clear for anyone reading the journal)."""
    if not any(name in headers for name in _CREDENTIALS):
        return tuple(headers.items())
    return tuple((k, _redact(v) if k in _CREDENTIALS else v) for k, v in headers.items())


def _redact(value: str) -> str:
    scheme, space, _ = value.strip().partition(" ")
    return f"{scheme} [redacted]" if space else "[redacted]"


def is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def _not_kept(mock: Mock) -> ApiError:
    return ApiError(
        Problem.INTERNAL,
        f"The change could not be saved to {mock.location}; it was not made durable. See the server's log.",
        status=503,
    )


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(Problem.BODY_TOO_LARGE, f"The request body is {size} bytes or more; the limit is {limit} bytes.")
