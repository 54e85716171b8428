"""Credentials as connexion's security layer checks them, without Python paths in the specs."""

from __future__ import annotations

import asyncio
from typing import Any

from connexion.exceptions import OAuthResponseProblem
from connexion.lifecycle import ConnexionRequest
from connexion.security import NO_VALUE, ApiKeySecurityHandler, BearerSecurityHandler

from verifymock.config import Config
from verifymock.engine import engine


class _Precomputed:
    """connexion inspects a credential function's signature on every request; here it is done once."""

    def _generic_check(self, func: Any, exception_msg: str) -> Any:
        takes_scopes = self._accepts_kwarg(func, self.required_scopes_kw)  # type: ignore[attr-defined]
        takes_request = self._accepts_kwarg(func, self.request_kw)  # type: ignore[attr-defined]

        async def wrapper(request: Any, *args: Any, required_scopes: Any = None) -> Any:
            kwargs: dict[str, Any] = {}
            if takes_scopes:
                kwargs[self.required_scopes_kw] = required_scopes  # type: ignore[attr-defined]
            if takes_request:
                kwargs[self.request_kw] = request  # type: ignore[attr-defined]
            token_info = func(*args, **kwargs)
            while asyncio.iscoroutine(token_info):
                token_info = await token_info
            if token_info is NO_VALUE:
                return NO_VALUE
            if token_info is None:
                raise OAuthResponseProblem(detail=exception_msg)
            return token_info

        return wrapper


def security_map(config: Config) -> dict[str, Any]:
    """Bearer: any key unless the server was given a list of valid keys."""
    valid = frozenset(config.api_keys)

    def token_info(token: str) -> dict[str, Any] | None:
        return {"sub": token} if not valid or token in valid else None

    class Bearer(_Precomputed, BearerSecurityHandler):  # type: ignore[misc]
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Any:
            return token_info

    class ApiKey(_Precomputed, ApiKeySecurityHandler):  # type: ignore[misc]
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Any:
            checks = {"telesign": telesign_credentials, "cm": cm_product_token}
            return checks.get(security_scheme.get("x-verifymock-auth", ""), any_api_key)

    return {"bearer": Bearer, "apiKey": ApiKey}


def any_api_key(api_key: str) -> dict[str, Any]:
    return {"sub": api_key}


def cm_product_token(api_key: str) -> dict[str, Any]:
    return {"sub": engine().cm.authenticate(api_key)}


def telesign_credentials(api_key: str, request: ConnexionRequest) -> dict[str, Any]:
    """TeleSign's Basic and TSA (HMAC) schemes, over the exact bytes received."""
    mock = engine()
    context = mock.request()
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    customer_id = mock.telesign.authenticate(
        api_key, request.scope["method"], raw_path.decode("latin-1"), context.headers, context.raw_body
    )
    context.principal = customer_id
    return {"sub": customer_id}
