"""Settings from environment variables (prefix SPINEKG_), read when the app is created."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPINEKG_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="interface to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    batch_max_claims: int = Field(default=1000, ge=1, description="most claims in one POST /claims/validate/batch")
    sparql_timeout_seconds: float = Field(default=10.0, gt=0, description="a SPARQL query running longer is stopped")
    sparql_max_rows: int = Field(default=10_000, ge=1, description="most solutions or triples a SPARQL answer returns")
    sparql_workers: int = Field(default=2, ge=1, le=32, description="processes that evaluate SPARQL queries")
    max_query_length: int = Field(default=100_000, ge=100, description="longest SPARQL query text accepted, in characters")


@lru_cache
def get_settings() -> Settings:
    return Settings()
