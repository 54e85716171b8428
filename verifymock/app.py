"""The application factory: every spec mounted on one connexion app, behind the gate.

Request path, top to bottom:
  Gate (header and body limits, control token, journal, access log)
  → connexion: routing → security → request validation (ours) → endpoint (handler or the spec's example)
  → self-check of the response against the original spec.
Every failure on the way becomes an `ApiError`, rendered by the renderer of the spec the path belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import Response

from verifymock import jsonio
from verifymock.config import Config
from verifymock.engine import Mock, Mounted
from verifymock.errors import ApiError, Problem
from verifymock.fastpath import FastPath
from verifymock.faults import delay, error_for, numbers_in
from verifymock.gate import Gate, render_error
from verifymock.generate import example_body, resolve
from verifymock.reply import Reply
from verifymock.resolver import Resolution, accepted_arguments
from verifymock.security import security_map
from verifymock.selfcheck import media_key, response_key
from verifymock.specs import Operation, Spec, merged_view, routed_id
from verifymock.validation import VALIDATORS, RequestValidation

log = logging.getLogger("verifymock")

_PROBLEM_BY_STATUS = {
    400: Problem.INVALID_PARAMETER,
    401: Problem.UNAUTHENTICATED,
    403: Problem.FORBIDDEN,
    404: Problem.NOT_FOUND,
    405: Problem.METHOD_NOT_ALLOWED,
    413: Problem.BODY_TOO_LARGE,
    415: Problem.UNSUPPORTED_MEDIA_TYPE,
}

Endpoint = Callable[..., Awaitable[Response]]


def create_app(config: Config | None = None) -> Gate:
    """The ASGI app serving every spec in the configured folders. Raises `ConfigErrors` for bad input."""
    config = config or Config()
    mock = Mock(config)
    gate: Gate

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        mock.resume()
        tasks = [loop.create_task(mock.clock.run_forever())]
        if mock.term is not None:
            tasks.append(loop.create_task(mock.follow()))
        if config.watch:
            from verifymock.reload import watch

            tasks.append(loop.create_task(watch(gate, lambda: build(mock, None))))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await mock.webhooks.settle()
            mock.changed()
            await mock.commit()
            if mock.term is not None:
                await mock.term.close()
            if mock.store is not None:
                await mock.store.close()

    gate = Gate(*build(mock, lifespan), mock)
    return gate


def build(mock: Mock, lifespan: Any) -> tuple[AsyncApp, FastPath | None]:
    """The connexion app over the mock's mounted specs and the fast path to the same endpoints; built again when
    a watched spec changes."""
    app = AsyncApp(
        "verifymock",
        lifespan=lifespan,
        middlewares=[
            ServerErrorMiddleware,
            ExceptionMiddleware,
            RoutingMiddleware,
            SecurityMiddleware,
            RequestValidation,
            LifespanMiddleware,
            ContextMiddleware,
        ],
        validator_map=VALIDATORS,
        security_map=security_map(mock.config),
    )
    endpoints = {
        routed_id(mounted.spec.name, op_id): _endpoint(mock, mounted, mounted.spec.operations[op_id], resolution)
        for mounted in mock.mounted
        for op_id, resolution in mounted.resolutions.items()
    }
    by_base: dict[str, list[Spec]] = {}
    for mounted in mock.mounted:  # user documents first, so they win a path they share with a bundled one
        by_base.setdefault(mounted.spec.base_path, []).append(mounted.spec)
    for base_path, specs in by_base.items():
        app.add_api(
            merged_view(specs),
            base_path=base_path,
            name="+".join(s.name for s in specs),
            resolver=Resolver(function_resolver=endpoints.__getitem__),
        )

    async def on_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        # async: connexion runs a plain function in a worker thread, which cost more than the rest of a 4xx
        status, headers, body = render_error(mock, request.scope, as_api_error(exc))
        return ConnexionResponse(status_code=status, body=body, headers=headers, mimetype="application/json")

    for kind in (Exception, HTTPException, ProblemException, ApiError):
        app.add_error_handler(kind, on_error)
    return app, (FastPath(mock, endpoints) if mock.config.fast_path else None)


def as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        problem = _PROBLEM_BY_STATUS.get(exc.status_code, Problem.INTERNAL)
        detail = {
            Problem.NOT_FOUND: "The requested resource or URL could not be found.",
            Problem.METHOD_NOT_ALLOWED: "This method is not allowed on this URL.",
        }.get(problem, str(exc.detail))
        return ApiError(problem, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, ProblemException):
        problem = _PROBLEM_BY_STATUS.get(exc.status, Problem.INTERNAL)
        if problem is Problem.UNAUTHENTICATED:
            return ApiError(problem, "The required authentication headers were either invalid or not included.")
        return ApiError(problem, str(exc.detail or exc.title))
    if isinstance(exc, MultiPartException):  # a form over starlette's limits (1,000 fields, say)
        return ApiError(Problem.INVALID_PARAMETER, f"The form body cannot be read: {exc.message}")
    log.error("unhandled error", exc_info=exc)
    return ApiError(Problem.INTERNAL, "An unexpected error occurred in the mock.")


def _endpoint(mock: Mock, mounted: Mounted, operation: Operation, resolution: Resolution) -> Endpoint:
    """The function connexion calls for one operation, built once at start-up."""
    handler = resolution.handler
    names, takes_any = accepted_arguments(handler) if handler else (frozenset(), True)
    is_async = handler is not None and inspect.iscoroutinefunction(handler)
    generic: list[Reply] = []

    injectable = mounted.vendor != "mock"  # faults never hit the control API itself

    async def endpoint(**kwargs: Any) -> Response:
        if injectable and mock.faults.active:
            fault = mock.faults.match(operation.operation_id, numbers_in(kwargs))
            if fault is not None:
                await delay(fault.latency_ms, fault.latency_ms_max)
                if fault.status is not None:
                    raise error_for(fault.status, fault.code, fault.detail, f"fault {fault.id}")
                if fault.connection is not None:
                    mock.request().fault = fault.connection
                    if fault.connection == "close":  # nothing is processed; the gate drops the connection
                        return Response(b"", status_code=204)
        if handler is None:
            if not generic:
                generic.append(_generic_reply(mounted, operation))
            reply = generic[0]
        else:
            arguments = kwargs if takes_any else {k: v for k, v in kwargs.items() if k in names}
            result = await handler(**arguments) if is_async else handler(**arguments)
            reply = result if isinstance(result, Reply) else Reply(result, operation.success_status)
        if mock.config.self_check:
            problems = mounted.checker.check(operation, reply.status, reply.media_type, reply.body)
            if problems:
                listed = "; ".join(str(p) for p in problems[:5])
                log.error("non-conforming response from %s (%s): %s", operation.operation_id, mounted.spec.name, listed)
                raise ApiError(
                    Problem.INTERNAL,
                    f"verifymock bug: the {reply.status} response of {operation.operation_id} does not conform to "
                    f"{mounted.spec.source.name}: {listed}",
                )
        content = b"" if reply.body is None else jsonio.dumps(reply.body)
        return Response(
            content,
            status_code=reply.status,
            headers=reply.headers,
            media_type=reply.media_type if reply.body is not None else None,
        )

    endpoint.__name__ = resolution.operation_id
    return endpoint


def _generic_reply(mounted: Mounted, operation: Operation) -> Reply:
    """The answer for an operation nobody wrote a handler for: its first success response, from the spec."""
    doc = mounted.spec.original
    responses = operation.definition.get("responses") or {}
    status = operation.success_status
    key = response_key(responses, status)
    if key is None:
        return Reply(None, status)
    content = resolve(doc, responses[key]).get("content") or {}
    if not content:
        return Reply(None, status)
    media = media_key(content, "application/json") or next(iter(content))
    return Reply(example_body(doc, content[media]), status, media_type=media)
