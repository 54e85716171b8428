"""`verifymock`: serve the mock."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from verifymock import __version__
from verifymock.config import DEFAULT_RETAIN, MIB, Config
from verifymock.errors import ConfigError, ConfigErrors
from verifymock.journal import DEFAULT_BYTES, DEFAULT_SIZE


def _folder(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not a directory")
    return path.resolve()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="verifymock",
        description="A validating, scriptable mock of Telnyx Verify, Telnyx toll-free verification, "
        "TeleSign Voice Verify and CM.com Voice DTMF, served from one port.",
    )
    root.add_argument("--version", action="version", version=f"verifymock {__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    validate = commands.add_parser("validate", help="check specs, handlers and scenarios as the server would load them")
    _folders(validate)
    fuzz = commands.add_parser("fuzz", help="run schemathesis, every check, over every operation of every spec")
    _folders(fuzz)
    fuzz.add_argument("--url", help="fuzz a server already running there (default: start one in this process)")
    fuzz.add_argument("--max-examples", type=int, default=50, metavar="N", help="examples per operation (default 50)")
    coverage = commands.add_parser(
        "coverage", help="print which vendor outcomes a running mock has reached; exit 1 below a bar (for CI)"
    )
    coverage.add_argument("--url", default="http://127.0.0.1:4010", help="the mock (default http://127.0.0.1:4010)")
    coverage.add_argument("--control-token", metavar="TOKEN", help="the server's control token, if it has one")
    coverage.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    coverage.add_argument(
        "--fail-under", type=float, metavar="PERCENT", help="exit 1 if fewer than PERCENT of the outcomes were reached"
    )
    coverage.add_argument(
        "--require",
        nargs="+",
        default=[],
        metavar="NAME",
        help="exit 1 unless each of these outcomes was reached (a name ending in a dot, e.g. telnyx.dtmf., "
        "requires every outcome under it)",
    )
    coverage.add_argument(
        "--catalogue", action="store_true", help="print the outcome catalogue as a Markdown table and exit"
    )
    serve = commands.add_parser("serve", help="run the mock server (the default command)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything beyond loopback needs --control-token)",
    )
    serve.add_argument("--port", type=int, default=4010, help="port to bind (default 4010; 0 picks a free one)")
    _folders(serve)
    serve.add_argument(
        "--clock",
        default="real",
        metavar="MODE",
        help="real (default), manual (moves only through POST /_mock/clock/advance) or scaled:N "
        "(N times faster than real time)",
    )
    serve.add_argument(
        "--state",
        default="memory",
        metavar="STORE",
        help="memory (default: state lasts as long as the process), sqlite:PATH (profiles, verifications, calls, "
        "timers, webhooks, bindings, the clock and the journal kept in a SQLite file; a restart continues) or "
        "redis://HOST:PORT/DB[?prefix=NAME] (the same kept in Redis or Valkey, under the prefix)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes serving the one port, sharing the state (needs --state sqlite: or redis://; default 1)",
    )
    serve.add_argument(
        "--telnyx-signing-key",
        metavar="BASE64",
        help="base64 32-byte Ed25519 seed that signs Telnyx webhooks (default: a new key at each start; "
        "GET /_mock/keys gives the public key)",
    )
    serve.add_argument(
        "--telesign-customer",
        action="append",
        default=[],
        metavar="CUSTOMER_ID:API_KEY",
        help="a TeleSign customer and its base64 API key (repeatable; default: the test customer in the README)",
    )
    serve.add_argument(
        "--telesign-callback-url",
        metavar="URL",
        help="the account's TeleSign callback URL, used when a request gives no callback_url",
    )
    serve.add_argument(
        "--telesign-date-tolerance",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how far the Date of a TSA-signed request may be from real time (default 900)",
    )
    serve.add_argument(
        "--cm-product-token",
        action="append",
        default=[],
        metavar="GUID",
        help="a CM.com product token to accept (repeatable; default: the test token in the README)",
    )
    serve.add_argument(
        "--allow-callback-host",
        action="append",
        metavar="HOST",
        help="a host webhooks and callbacks may be sent to (repeatable; default: any, or loopback only when bound "
        "beyond loopback); others are refused and recorded as refused",
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="reload edited specs, handler modules and scenario files without a restart; a broken edit is "
        "reported and the last good version keeps serving",
    )
    serve.add_argument(
        "--control-token", metavar="TOKEN", help="require `Authorization: Bearer TOKEN` on the control API (/_mock)"
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        dest="api_keys",
        help="accept only these Telnyx API keys (repeatable; default: any key)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=MIB,
        metavar="N",
        help=f"largest request body accepted (default {MIB}); larger ones get a 413",
    )
    serve.add_argument(
        "--journal-size",
        type=int,
        default=DEFAULT_SIZE,
        metavar="N",
        help=f"requests kept in the journal (default {DEFAULT_SIZE}); the oldest are dropped",
    )
    serve.add_argument(
        "--journal-bytes",
        type=int,
        default=DEFAULT_BYTES,
        metavar="N",
        help=f"bytes of bodies and headers the journal may hold (default {DEFAULT_BYTES // MIB} MiB); the oldest "
        "entries are dropped",
    )
    serve.add_argument(
        "--journal-credentials",
        action="store_true",
        help="keep credentials (Authorization, X-CM-PRODUCTTOKEN) in the journal as sent; by default only their "
        "scheme is kept",
    )
    serve.add_argument(
        "--retain",
        type=int,
        default=DEFAULT_RETAIN,
        metavar="N",
        help=f"calls, messages, verifications, transactions, toll-free requests and webhook deliveries kept, of "
        f"each (default {DEFAULT_RETAIN}): beyond it the oldest finished are dropped; work under way never is. "
        "With --state sqlite:, finished ones beyond the newest 1000 of each kind are kept in the file only",
    )
    serve.add_argument(
        "--no-self-check",
        action="store_true",
        help="do not validate responses against the specs before sending them (on by default)",
    )
    serve.add_argument(
        "--no-fast-path",
        action="store_true",
        help="send every request through connexion's full stack (the fast path gives the same answers, faster)",
    )
    serve.add_argument("--quiet", action="store_true", help="no per-request log line")
    serve.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="one line per request: text (default) or JSON"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return root


def _folders(command: argparse.ArgumentParser) -> None:
    """The folder options every command that loads specs shares."""
    for name, text in (
        (
            "--specs",
            "a folder of OpenAPI documents served beside the bundled ones; a file named like a bundled one replaces it",
        ),
        ("--handlers", "a folder of handler modules (<spec name>.py), searched before the bundled handlers"),
        ("--scenarios", "a folder of scenario files added to the bundled ones"),
    ):
        command.add_argument(
            name, type=_folder, action="append", default=[], metavar="DIR", help=f"{text} (repeatable)"
        )
    command.add_argument(
        "--no-bundled",
        action="store_true",
        help="serve only the folders given, without the bundled specs, handlers and scenarios",
    )


def config_from(args: argparse.Namespace) -> Config:
    return Config(
        host=args.host,
        port=args.port,
        specs=args.specs,
        handlers=args.handlers,
        scenarios=args.scenarios,
        bundled=not args.no_bundled,
        self_check=not args.no_self_check,
        fast_path=not args.no_fast_path,
        max_body_bytes=args.max_body_bytes,
        journal_size=args.journal_size,
        journal_bytes=args.journal_bytes,
        retain=args.retain,
        journal_credentials=args.journal_credentials,
        control_token=args.control_token,
        api_keys=args.api_keys,
        access_log=not args.quiet,
        log_format=args.log_format,
        allow_callback_hosts=args.allow_callback_host,
        watch=args.watch,
        clock=args.clock,
        state=args.state,
        workers=args.workers,
        telnyx_signing_key=args.telnyx_signing_key,
        telesign_customers=dict(_customer(value) for value in args.telesign_customer),
        telesign_date_tolerance=args.telesign_date_tolerance,
        telesign_callback_url=args.telesign_callback_url,
        cm_product_tokens=args.cm_product_token,
    )


def configure_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_format == "json":  # request lines are bare JSON objects, one per line, for log shippers
        access = logging.getLogger("verifymock.access")
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False


def _customer(value: str) -> tuple[str, str]:
    customer_id, separator, api_key = value.partition(":")
    if not separator or not customer_id or not api_key:
        raise ConfigError(
            "--telesign-customer",
            value,
            "is not CUSTOMER_ID:API_KEY",
            "e.g. --telesign-customer FFFFFFFF-EEEE-DDDD-1234-AB1234567890:dmVyaWZ5bW9jaw==",
        )
    return customer_id, api_key


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["serve", *argv])
    if args.command == "coverage":
        from verifymock.coverage import command

        return command(args.url, args.control_token, args.json, args.fail_under, args.require, args.catalogue)
    if args.command in ("validate", "fuzz"):
        folders = Config(
            specs=args.specs, handlers=args.handlers, scenarios=args.scenarios, bundled=not args.no_bundled
        )
        if args.command == "validate":
            from verifymock.validate import report

            return report(folders)
        from verifymock.fuzz import run

        try:
            return run(folders, args.url, args.max_examples)
        except (ConfigErrors, ConfigError) as exc:
            print(f"verifymock: {exc}", file=sys.stderr)
            return 2
    configure_logging(args)
    try:
        config = config_from(args)
        config.check()
        gc.disable()  # until start-up is over (see verifymock.server.serve); the imports are most of it
        from verifymock.server import serve, serve_workers  # imported late: --help stays fast

        if config.workers > 1:
            serve_workers(config, argv, log_level=args.log_level)
        else:
            serve(config, log_level=args.log_level)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(f"verifymock: {error}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"verifymock: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
