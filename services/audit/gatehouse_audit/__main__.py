"""``gatehouse-audit [serve]``: run the audit subscriber (health on its port); ``… tail``: show events."""

from __future__ import annotations

import argparse

from gatehouse_contracts.config import run_http

from . import tail
from .app import build
from .settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse-audit",
        description="Gatehouse's audit trail: store every bus event in MongoDB, and show them.",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "serve",
        help="run the audit subscriber (the default)",
        description="Consume GATEHOUSE_EVENTS with a durable consumer and store every event in MongoDB.",
    )
    tail.add_arguments(
        commands.add_parser(
            "tail",
            help="print stored events, oldest first",
            description="Print the stored events that match every filter given, oldest first, one a line.",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "tail":
        tail.main(args)
        return
    run_http("audit", Settings.from_env, build, host_attr="audit_host", port_attr="audit_health_port")


if __name__ == "__main__":
    main()
