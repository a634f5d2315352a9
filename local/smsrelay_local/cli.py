"""`smsrelay` console script: `smsrelay local` runs the whole system on this machine; `smsrelay setup
VENDOR --stack NAME` readies one vendor on a deployed (or the local) stack."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


class DropEmf:
    """stdout without the functions' EMF metric lines (Powertools prints them; a console wants status lines)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._skip_newline = threading.local()

    def write(self, text: str) -> int:
        if text.startswith('{"_aws"'):
            self._skip_newline.value = True  # print() writes the newline separately
            return len(text)
        if text == "\n" and getattr(self._skip_newline, "value", False):
            self._skip_newline.value = False
            return 1
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsrelay", description="smsrelay, the serverless multi-vendor SMS gateway"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser(
        "local",
        help="run the whole system on loopback (no AWS account, no Docker)",
        description=(
            "Runs template.yaml locally: moto for the AWS services, the functions in-process (API routes, "
            "SQS event-source mappings, schedules) and a simulator per vendor. Ctrl-C stops it."
        ),
    )
    local.add_argument("--port", type=int, default=3000, help="API port (default 3000; 0 = any free port)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help=(
            "vendor settings JSON, one key per vendor (README, 'Vendor settings'); a vendor given a base_url "
            "talks to that server, not its simulator"
        ),
    )
    local.add_argument(
        "--template", type=Path, help="SAM template (default ./template.yaml or the repository's)"
    )
    local.add_argument(
        "--param",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter override (repeatable), e.g. --param RoutingRules='[...]'",
    )
    local.add_argument(
        "--schedule-scale",
        type=float,
        default=None,
        metavar="F",
        help="multiply schedule intervals by F (0.05: rate(1 minute) fires every 3 s); env SMSRELAY_LOCAL_SCHEDULE_SCALE",
    )
    local.add_argument("--no-simulators", action="store_true", help="start no vendor simulator")
    local.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the functions and the stack (default WARNING: status lines stay readable)",
    )
    local.add_argument(
        "--metrics", action="store_true", help="print the functions' EMF metrics (off by default)"
    )
    local.add_argument("--quiet", action="store_true", help="no banner, no status lines")
    local.add_argument(
        "--stack-name",
        default="smsrelay-local",
        help="the stack's name (default smsrelay-local): names the bus, secrets, ...; `smsrelay setup --stack`",
    )
    from .setup import add_parser as add_setup

    add_setup(commands)
    return parser


def run_local(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .stack import LocalStack, TemplateError

    env: dict[str, Any] = {"POWERTOOLS_LOG_LEVEL": args.log_level}
    if not args.metrics:
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
        sys.stdout = DropEmf(sys.stdout)  # type: ignore[assignment]  # single_metric ignores the flag
        warnings.filterwarnings("ignore", message="No application metrics to publish")
    from smsrelay.observability import logger as function_logger

    function_logger.setLevel(args.log_level)  # created at import, before the stack's environment applies
    stack = LocalStack(
        port=args.port,
        host=args.host,
        template=args.template,
        settings_file=args.settings,
        parameters=dict(args.param),
        simulators=not args.no_simulators,
        schedule_scale=args.schedule_scale,
        env=env,
        echo=None if args.quiet else lambda line: print(line, flush=True),
        stack_name=args.stack_name,
        publish_stack=True,  # `smsrelay setup --endpoint-url` works on it
    )
    stopping = threading.Event()
    # Ctrl-C and SIGTERM stop the stack. Set here, not left to Python's default: a shell starts
    # background jobs with SIGINT ignored, and Python then keeps ignoring it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack.start()
    except (TemplateError, OSError, ValueError) as exc:
        print(f"smsrelay local: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        if not args.quiet:
            print("ready; Ctrl-C stops", flush=True)
        stopping.wait()
    finally:
        if not args.quiet:
            print("stopping...", flush=True)
        stack.stop()
    running = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if running:
        # An invocation still in flight (a pool thread) would hold the exit until it ends:
        # Ctrl-C means now, and everything the stack owns is stopped and cleaned up.
        print(f"stopped ({len(running)} invocation(s) still running were not waited for)", flush=True)
        sys.stderr.flush()
        os._exit(0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return run_local(args)
    if args.command == "setup":
        from .setup import run as run_setup

        return run_setup(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
