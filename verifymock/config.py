"""Everything the server is told at start-up."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from verifymock.clock import parse_mode
from verifymock.errors import ConfigError
from verifymock.journal import DEFAULT_BYTES, DEFAULT_SIZE
from verifymock.paths import bundled
from verifymock.state.store import check_store_spec

MIB = 1024 * 1024
DEFAULT_RETAIN = 1_000


MAX_WORKERS = 64


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 4010
    specs: list[Path] = field(default_factory=list)  # user folders, searched before the bundled one
    handlers: list[Path] = field(default_factory=list)
    scenarios: list[Path] = field(default_factory=list)
    bundled: bool = True
    self_check: bool = True
    fast_path: bool = True  # well-formed requests to simple operations skip connexion's layers (same answers)
    max_body_bytes: int = MIB
    max_header_bytes: int = 64 * 1024
    journal_size: int = DEFAULT_SIZE
    journal_bytes: int = DEFAULT_BYTES  # what the journal's bodies and headers may hold together
    retain: int = DEFAULT_RETAIN  # records of each kind kept (calls, verifications, ...); the oldest go first
    control_token: str | None = None
    api_keys: list[str] = field(default_factory=list)  # empty: any bearer key is accepted
    access_log: bool = True
    journal_credentials: bool = False  # keep Authorization and product tokens in the journal as sent
    log_format: str = "text"  # text or json: one line per request either way
    watch: bool = False  # reload edited specs, handlers and scenarios without a restart
    # hosts webhooks and callbacks may go to; None: any (loopback only when the server is bound beyond loopback)
    allow_callback_hosts: list[str] | None = None
    clock: str = "real"  # real, manual or scaled:N
    state: str = "memory"  # memory, sqlite:PATH or redis://HOST:PORT/DB to keep state across restarts
    workers: int = 1  # processes serving one port, sharing the state store
    worker: bool = False  # this process is one of --workers (their supervisor holds a state file's lock)
    telnyx_signing_key: str | None = None  # base64 Ed25519 seed (32 bytes); generated at start when absent
    telesign_customers: dict[str, str] = field(default_factory=dict)  # customer id -> base64 API key
    telesign_callback_url: str | None = None  # where callbacks go when a request names no callback_url
    telesign_date_tolerance: float = 900.0  # seconds a TSA-signed request's Date may be off the real clock
    cm_product_tokens: list[str] = field(default_factory=list)  # empty: the test token in the README

    def spec_dirs(self) -> list[Path]:
        """Bundled first, so a user's file of the same name replaces the bundled one."""
        return ([bundled("specs")] if self.bundled else []) + list(self.specs)

    def handler_dirs(self) -> list[Path]:
        """User folders first: a user's handler shadows the bundled one."""
        return list(self.handlers) + ([bundled("handlers")] if self.bundled else [])

    def scenario_dirs(self) -> list[Path]:
        return ([bundled("scenarios")] if self.bundled else []) + list(self.scenarios)

    def callback_hosts(self) -> frozenset[str] | None:
        """The hosts outgoing webhooks may reach, or None for any."""
        if self.allow_callback_hosts is not None:
            return frozenset(h.lower() for h in self.allow_callback_hosts)
        return None if is_loopback(self.host) else LOOPBACK_HOSTS

    def check(self) -> None:
        """Every flag that can be wrong on its own, before anything starts: a ConfigError naming the first."""
        parse_mode(self.clock)
        check_store_spec(self.state)
        for flag, value, least in (
            ("--port", self.port, 0),
            ("--retain", self.retain, 1),
            ("--journal-size", self.journal_size, 0),
            ("--journal-bytes", self.journal_bytes, 0),
            ("--max-body-bytes", self.max_body_bytes, 1),
        ):
            if value < least:
                raise ConfigError(flag, str(value), f"must be at least {least}", f"pass a number from {least} up")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError("--workers", str(self.workers), "is out of range", f"pass 1 to {MAX_WORKERS}")
        if self.workers > 1 and self.state == "memory":
            raise ConfigError(
                "--workers",
                str(self.workers),
                "needs state the workers share, and memory state lives in one process",
                "add --state sqlite:PATH or --state redis://HOST:PORT/DB",
            )
        if self.workers > 1 and self.watch:
            raise ConfigError("--workers", str(self.workers), "cannot reload with --watch", "drop one of the two")
        if self.port > 65535:
            raise ConfigError("--port", str(self.port), "is not a TCP port", "pass 0 to 65535 (0 picks a free one)")
        if not 0 <= self.telesign_date_tolerance < 10**9:
            raise ConfigError(
                "--telesign-date-tolerance",
                f"{self.telesign_date_tolerance:g}",
                "is out of range",
                "pass seconds, e.g. 900",
            )
        if self.telnyx_signing_key is not None and len(_base64(self.telnyx_signing_key) or b"") != 32:
            raise ConfigError(
                "--telnyx-signing-key",
                self.telnyx_signing_key,
                "is not the base64 of a 32-byte Ed25519 seed",
                'make one with: python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())"',
            )
        for customer_id, key in self.telesign_customers.items():
            if not _base64(key):
                raise ConfigError(
                    "--telesign-customer",
                    f"{customer_id}:{key}",
                    "has an API key that is not base64 (TeleSign's SDK decodes it to sign requests)",
                    "pass the key as TeleSign issues it, base64",
                )
        if not is_loopback(self.host) and not self.control_token:
            raise ConfigError(
                "--host",
                self.host,
                "binding beyond loopback exposes the control API to the network",
                "set --control-token so /_mock requires `Authorization: Bearer <token>`",
            )
        for flag, folders in (("--specs", self.specs), ("--handlers", self.handlers), ("--scenarios", self.scenarios)):
            for folder in folders:
                if not folder.is_dir():
                    raise ConfigError(flag, str(folder), "is not a directory", "pass an existing folder")


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
