"""What a handler returns when a plain body is not enough."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """A response body with its status, extra headers and media type.

    A handler that returns a plain value sends it with the operation's first documented 2xx status.
    """

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
