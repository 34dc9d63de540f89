"""The API plus a trivial endpoint returning a constant dict, as the baseline for bench/api_bench.py
(served in the same process, so the ratio holds on a noisy machine). Not part of the product."""

from __future__ import annotations

from fastapi import FastAPI

from spinekg.api.main import create_app


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.get("/constant", include_in_schema=False)
    async def constant() -> dict[str, str]:
        return {"status": "ok", "service": "spinekg"}

    return app
