"""The spinekg command: kg's commands plus `serve` (the HTTP API), so that kg never imports FastAPI."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from spinekg.kg import cli as kg_cli
from spinekg.kg.errors import InputError, SpinekgError

if TYPE_CHECKING:
    from spinekg.api.settings import Settings

SERVE_STATUS = "A setting of the wrong type or range exits with status 2; an address that cannot be listened on, 3."


def settings_help() -> str:
    """Every setting with its variable, default and description, from api/settings.py (the one source)."""
    import textwrap

    from spinekg.api.settings import Settings

    lines = ["settings (environment variables; --host, --port and --workers win over theirs):"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = ",".join(default) if isinstance(default, list) else ("" if default is None else str(default))
        lines.append(f"  SPINEKG_{name.upper()}={shown}")
        lines.extend(textwrap.wrap(field.description or "", width=96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join([*lines, "", SERVE_STATUS])


class _ServeHelp(argparse.Action):
    """-h for serve: the settings are listed only when asked for, so that other commands never import them."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.epilog = settings_help()
        parser.print_help()
        parser.exit()


def load_settings(args: argparse.Namespace) -> Settings:
    """The SPINEKG_ settings with --host/--port/--workers over them; a bad value is one line naming it."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from spinekg.api.settings import Settings

    given = {name: getattr(args, name) for name in ("host", "port", "workers") if getattr(args, name) is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "settings"
        where = f"--{name}" if name in given else f"SPINEKG_{name.upper()}"
        raise InputError(where, f"{error['msg']} (got {str(error.get('input'))[:60]!r})") from None
    except SettingsError as exc:
        raise InputError("settings", str(exc)) from None


def check_address(host: str, port: int) -> None:
    """Fail in one line, before the graph is loaded, when the address cannot be listened on (a port in
    use, an address that is not this machine's); uvicorn would log several lines and exit with 1."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind((host, port))
    except OSError as exc:
        shown = f"[{host}]" if ":" in host else host
        raise SpinekgError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}") from None


def uvicorn_options(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of uvicorn.run. Proxy headers are off unless SPINEKG_FORWARDED_ALLOW_IPS
    names the proxies: uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, so that any local
    process could put another client address in the access log."""
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": ",".join(settings.forwarded_allow_ips) or None,
        # h11 bounds the request line and headers (httptools reads any size, super-linearly: a 60 MB
        # header held the event loop 3.4 s); httptools is about a third faster behind a proxy that bounds them
        "http": settings.http_parser,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from spinekg.kg.build import build_graph

    settings = load_settings(args)  # the app reads the same variables again (create_app), in each worker
    check_address(settings.host, settings.port)
    build_graph()  # build once here, not in each worker
    # the claim rules (the site's own from SPINEKG_RULES_DIR too) compiled once here, so that a bad rule
    # file stops serve with one line rather than a traceback from each worker's start-up
    from spinekg.kg.claims import ClaimValidator
    from spinekg.kg.graph import load_graph

    ClaimValidator(load_graph(quiet=True))
    uvicorn.run("spinekg.api.main:create_app", **uvicorn_options(settings, args))
    return kg_cli.EXIT_OK


def add_serve(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the JSON API and the read-only SPARQL endpoint (embedded store)",
        epilog="Settings: SPINEKG_ environment variables, listed by --help. " + SERVE_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_ServeHelp, nargs=0, help="show this help, with every setting, and exit")
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
