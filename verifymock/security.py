"""Credentials as connexion's security layer checks them, without Python paths in the specs."""

from __future__ import annotations

from typing import Any

from connexion.security import BearerSecurityHandler

from verifymock.config import Config


def security_map(config: Config) -> dict[str, Any]:
    """Bearer: any key unless the server was given a list of valid keys."""
    valid = frozenset(config.api_keys)

    def token_info(token: str) -> dict[str, Any] | None:
        return {"sub": token} if not valid or token in valid else None

    class Bearer(BearerSecurityHandler):  # type: ignore[misc]
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Any:
            return token_info

    return {"bearer": Bearer}
