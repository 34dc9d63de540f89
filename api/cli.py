"""The spinekg command: kg's commands plus `serve` (the HTTP API), so that kg never imports FastAPI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from spinekg.kg import cli as kg_cli


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from spinekg.api.settings import get_settings

    for key, value in (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers)):
        if value is not None:
            os.environ[f"SPINEKG_{key}"] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    from spinekg.kg.build import build_graph

    build_graph()  # build once here, not in each worker
    uvicorn.run(
        "spinekg.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return kg_cli.EXIT_OK


def add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the JSON API and the read-only SPARQL endpoint (embedded store)")
    p.add_argument("--host", help="default 127.0.0.1 (SPINEKG_HOST)")
    p.add_argument("--port", type=int, help="default 8000 (SPINEKG_PORT)")
    p.add_argument("--workers", type=int, help="uvicorn worker processes, default 1 (SPINEKG_WORKERS)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log request lines (paths only are ever logged, never bodies)",
    )
    p.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    return kg_cli.build_parser(extend=add_serve)


def main(argv: Sequence[str] | None = None) -> int:
    return kg_cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
