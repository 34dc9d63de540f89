"""Settings from environment variables (prefix SPINEKG_), read when the app is created."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from spinekg.kg.claims.limits import MAX_CLAIM_BYTES, MAX_CLAIM_LINES, MAX_LINES_CEILING

# A list setting is written comma-separated in its variable (SPINEKG_CORS_ORIGINS=https://a.org,https://b.org).
CommaList = Annotated[list[str], NoDecode]
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINEKG_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="interface to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    batch_max_claims: int = Field(default=1000, ge=1, description="most claims in one POST /claims/validate/batch")
    # Claim limits: bounded work per request (kg/claims/limits.py holds the defaults the CLI shares).
    max_claim_lines: int = Field(
        default=MAX_CLAIM_LINES, ge=1, le=MAX_LINES_CEILING, description="most lines in one claim (the 837P allows 50); more: 422"
    )
    max_claim_bytes: int = Field(
        default=MAX_CLAIM_BYTES, ge=1024, description="largest body of POST /claims/validate, in bytes; larger: 413"
    )
    batch_max_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="largest body of POST /claims/validate/batch, in bytes; larger: 413"
    )
    claim_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="claim checks run at once, in worker threads (never on the event loop); the checks are pure "
        "Python, so one thread keeps the event loop quickest (more processes: SPINEKG_WORKERS)",
    )
    sparql_timeout_seconds: float = Field(default=10.0, gt=0, description="a SPARQL query running longer is stopped")
    sparql_max_rows: int = Field(default=10_000, ge=1, description="most solutions or triples a SPARQL answer returns")
    sparql_workers: int = Field(default=2, ge=1, le=32, description="processes that evaluate SPARQL queries")
    max_query_length: int = Field(default=100_000, ge=100, description="longest SPARQL query text accepted, in characters")
    sparql_max_result_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="largest serialised SPARQL answer; a larger one is refused (413)"
    )
    sparql_worker_memory_mb: int = Field(
        default=512,
        ge=0,
        description="address-space limit of each SPARQL worker process, in MiB (0: none); a query needing more gets a 503",
    )
    sparql_queue_size: int = Field(
        default=32, ge=0, description="SPARQL queries that may wait for a worker; beyond them a 503 with Retry-After"
    )
    sparql_allow_unconfined: bool = Field(
        default=False,
        description="serve SPARQL even where its workers cannot install their seccomp network filter (not Linux on x86-64 "
        "or AArch64); SERVICE is then refused by the parser alone. Off: /sparql answers 503 there",
    )
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s?#]+$",
        description="the service's public URL (e.g. https://kg.example.org), for the SPARQL service description; "
        "unset: the description uses relative IRIs (never the request's Host header)",
    )
    # The HTTP shell (api/main.py, api/cli.py): parser, proxies, hosts and browsers.
    http_parser: Literal["h11", "httptools"] = Field(
        default="h11",
        description="uvicorn's HTTP parser: h11 refuses a request line and headers over SPINEKG_MAX_HEADER_BYTES; "
        "httptools is faster but bounds nothing, so use it only behind a proxy that limits header size",
    )
    max_header_bytes: int = Field(
        default=128 * 1024,
        ge=8 * 1024,
        description="longest request line plus headers (h11 only), in bytes; longer: 400. Send long SPARQL queries by POST",
    )
    forwarded_allow_ips: CommaList = Field(
        default=[],
        description="proxy addresses or networks trusted to set X-Forwarded-For/-Proto (comma-separated, * for any); "
        "empty: trust none, so the logged client is the connecting peer",
    )
    allowed_hosts: CommaList = Field(
        default=["*"], description="Host header values served, e.g. api.example.org,*.example.org; others get 400; * serves any"
    )
    cors_origins: CommaList = Field(
        default=["*"],
        description="browser origins that may call the read-only routes (lookups, named queries, /sparql); "
        "* for any, empty for none",
    )
    cors_claims_origins: CommaList = Field(
        default=[], description="browser origins that may call /claims/* (claims are health data); empty: none"
    )

    @field_validator("forwarded_allow_ips", "allowed_hosts", "cors_origins", "cors_claims_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"{host!r}: a wildcard is * alone or *.domain")
        return hosts

    @field_validator("cors_origins", "cors_claims_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return origins


@lru_cache
def get_settings() -> Settings:
    return Settings()
